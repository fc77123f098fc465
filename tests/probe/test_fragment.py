"""Workload fragment: a steady set of malloc'd blocks of mixed sizes, replaced at random, then
freed (all, or all but every keep_every-th). The real probe: the draws are the same in every
process, what the blocks ask for adds up, the heap holds what they need, glibc's free gives
memory back only from the top of the heap (its tcache pins the rest), and its trim gives it
back; and the combinations refused."""

from __future__ import annotations

from typing import Any

import pytest

from runner.core.combinations import find_conflict
from runner.core.model import Scenario
from runner.core.parameters import DEFAULTS
from runner.core.sizing import fragment_mean_bytes
from runner.probe.native import ProbeBinary
from tests.probe.running import good_args, measure, one_iteration, run_raw, scenario
from tests.probe.test_allocator_physics import library_of

KIB = 1 << 10
SLOTS = 2048
LARGEST = 64 * KIB
MEAN_BYTES = fragment_mean_bytes(LARGEST)  # about 8 KiB


def fragment(**fields: Any) -> Scenario:
    return scenario(**{"workload": "fragment", "backing": "malloc", "size_bytes": LARGEST,
                       "ops": SLOTS, "release": "free", **fields})


def held(it: dict[str, Any], phase: str) -> int:
    """Resident memory the iteration added by the end of `phase`."""
    return int(it["phases"][phase]["rss_bytes"]) - int(it["rss_before_bytes"])


@pytest.mark.probe
def test_every_process_draws_the_same_blocks_and_they_add_up(probe: ProbeBinary) -> None:
    """Live bytes at their peak: about the slots times the mean size (the draws' sum wanders
    by a few percent), the same in two processes; one slot in 16 kept holds about a 16th."""
    first, second = (one_iteration(probe, fragment(keep_every=16)) for _ in range(2))
    peak, kept = (first["observations"][k] for k in ("peak_live_bytes", "kept_bytes"))
    assert (peak, kept) == (second["observations"]["peak_live_bytes"],
                            second["observations"]["kept_bytes"])
    assert 0.9 * SLOTS * MEAN_BYTES <= peak <= 1.25 * SLOTS * MEAN_BYTES, peak
    assert peak / 32 <= kept <= peak / 8, (peak, kept)


@pytest.mark.probe
def test_the_heap_holds_the_blocks_written_and_a_little_more(probe: ProbeBinary) -> None:
    """Every block is written as it is allocated, so the heap holds at least the blocks alive
    now (most of the peak); glibc's headers and free chunks add a few percent, not half."""
    it = one_iteration(probe, fragment())
    peak = it["observations"]["peak_live_bytes"]
    assert 0.85 * peak <= held(it, "second_pass") <= 1.5 * peak, (held(it, "second_pass"), peak)


@pytest.mark.probe
def test_glibc_frees_from_the_top_only_and_its_tcache_pins_the_heap(probe: ProbeBinary) -> None:
    """glibc's free gives memory back only from the top of the heap. Its per-thread cache keeps
    up to 7 freed chunks of each small size, anywhere in the heap, and everything beneath the
    highest stays: almost nothing goes back. Without the cache (tcache_count=0) the whole heap
    coalesces into its top and is trimmed."""
    cached = one_iteration(probe, fragment())
    uncached = one_iteration(probe, fragment(tunables="glibc.malloc.tcache_count=0"))
    for it in (cached, uncached):
        assert held(it, "second_pass") >= 0.85 * it["observations"]["peak_live_bytes"]
    assert held(cached, "free") >= 0.8 * held(cached, "second_pass")
    assert held(uncached, "free") <= 0.05 * held(uncached, "second_pass")


@pytest.mark.probe
def test_glibc_trim_gives_back_all_but_the_kept_blocks_pages(probe: ProbeBinary) -> None:
    """malloc_trim gives back every whole free page in the heap: after freeing all, nearly
    everything; with one block in 16 kept, the pages the kept blocks lie on and little more
    (at least their own bytes, well under the 16-fold a free without trim keeps)."""
    everything = one_iteration(probe, fragment(release="malloc-trim"))
    assert held(everything, "free") <= 0.1 * held(everything, "second_pass")
    kept_trimmed = one_iteration(probe, fragment(release="malloc-trim", keep_every=16))
    kept_freed = one_iteration(probe, fragment(keep_every=16))
    kept = kept_trimmed["observations"]["kept_bytes"]
    assert kept <= held(kept_trimmed, "free") <= 4 * kept, (held(kept_trimmed, "free"), kept)
    assert held(kept_freed, "free") >= 10 * kept, (held(kept_freed, "free"), kept)


@pytest.mark.probe
def test_each_thread_keeps_blocks_of_its_own(probe: ProbeBinary) -> None:
    """Two threads, each its own slots and draws (the first thread's are one thread's): the
    live bytes about double, and the heap holds them."""
    one = one_iteration(probe, fragment())["observations"]["peak_live_bytes"]
    it = one_iteration(probe, fragment(threads=2))
    two = it["observations"]["peak_live_bytes"]
    assert 1.7 * one <= two <= 2.3 * one, (one, two)
    assert held(it, "second_pass") >= 0.85 * two


@pytest.mark.probe
def test_threads_taking_turns_each_keep_a_working_set_in_glibc_but_not_in_one_arena(
        probe: ProbeBinary) -> None:
    """Four threads take an iteration each in turn: glibc gives each its own arena, and what a
    thread freed stays there (pinned by its cache), so after every thread's turn the process
    holds about four working sets; with one arena for all (arena_max=1) the next thread reuses
    what the last freed, and it holds about one."""
    def held(**fields: Any) -> list[float]:
        out = measure(probe, fragment(threads=4, thread_turns=True, **fields), 4, 4)
        return [it["observations"]["held_bytes"] / it["observations"]["peak_live_bytes"]
                for it in out["iterations"] if not it["warmup"]]
    assert all(3.5 <= share <= 5 for share in held()), held()
    assert all(0.9 <= share <= 1.5 for share in held(tunables="glibc.malloc.arena_max=1"))


@pytest.mark.probe
@pytest.mark.parametrize("name", ["jemalloc", "tcmalloc", "mimalloc"])
def test_other_allocators_keep_what_was_freed_until_asked(probe: ProbeBinary, name: str) -> None:
    """jemalloc, tcmalloc and mimalloc give nothing back at free; asked to trim, each gives
    back some of it (tcmalloc least: about half)."""
    library = library_of(name)
    freed = one_iteration(probe, fragment(allocator=name), library)
    trimmed = one_iteration(probe, fragment(allocator=name, release="malloc-trim"), library)
    assert held(freed, "free") >= 0.95 * held(freed, "second_pass")
    assert held(trimmed, "free") <= 0.8 * held(trimmed, "second_pass")


@pytest.mark.parametrize(("fields", "message"), [
    ({"backing": "mmap-anon"}, "backing mmap-anon is neither (use backing: malloc or calloc)"),
    ({"access": "read-all"}, "access read-all writes nothing (use access: write-page"),
    ({"release": "none"}, "release none does not (use release: free or malloc-trim)"),
    ({"size": 8}, "and size is 8B (use size: 16B or more)"),
    ({"workload": "cycle", "thread_turns": True},
     "and this is workload cycle (use workload: fragment, or leave thread_turns out)"),
])
def test_what_fragment_cannot_do_is_refused(fields: dict[str, Any], message: str) -> None:
    params = {**DEFAULTS, "workload": "fragment", "size": LARGEST, **fields}
    reason = find_conflict(params)
    assert reason is not None and message in reason, reason
    assert find_conflict({**DEFAULTS, "workload": "fragment", "keep_every": 16,
                          "threads": 2}) is None


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    {"backing": "mmap-anon", "release": "munmap"},
    {"access": "read-all"},
    {"release": "none"},
    {"size_bytes": "15"},
    {"workload": "cycle", "thread_turns": "1"},
])
def test_the_probe_refuses_the_same(probe: ProbeBinary, args: dict[str, str]) -> None:
    refused = run_raw(probe, good_args(**{"workload": "fragment", "ops": "16", **args}))
    assert refused.returncode == 2
    assert "--workload=fragment" in refused.stderr, refused.stderr
    assert run_raw(probe, good_args(workload="fragment", ops="16", keep_every="4",
                                    threads="2")).returncode == 0
