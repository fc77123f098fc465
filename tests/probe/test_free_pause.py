"""free_pause_ms: after cycle's free phase the program goes on calling its allocator, and the
resident set is read again (rss_after_pause_bytes). The real probe, one pristine batch per
process: what each allocator gives back by then, that the pause elapses, and the combinations
refused."""

from __future__ import annotations

import time
from typing import Any

import pytest

from runner.core.combinations import find_conflict
from runner.core.model import Scenario
from runner.core.parameters import DEFAULTS
from runner.probe.native import ProbeBinary
from tests.probe.running import PAGE, good_args, one_iteration, run_raw, scenario
from tests.probe.test_allocator_physics import library_of

MIB = 1 << 20


def batch(**fields: Any) -> Scenario:
    """A 16 MiB batch of 1 MiB blocks, one byte written per page, freed together."""
    return scenario(**{"size_bytes": MIB, "ops": 16, "release": "free", **fields})


def pristine_iteration(probe: ProbeBinary, s: Scenario, library: str | None) -> dict[str, Any]:
    """The one iteration of a fresh process (no warm-up: the batch's memory is new)."""
    iteration = one_iteration(probe, s, library)
    resident = iteration["phases"]["second_pass"]["rss_bytes"] - iteration["rss_before_bytes"]
    assert resident >= s.ops * s.size_bytes // 2  # the batch was written
    return iteration


def shares(iteration: dict[str, Any]) -> tuple[float, float]:
    """The shares given back by the free phase and by the end of the pause (as
    free_returned_fraction and pause_returned_fraction)."""
    touched = iteration["phases"]["second_pass"]["rss_bytes"]
    resident = touched - iteration["rss_before_bytes"]
    after_free = iteration["phases"]["free"]["rss_bytes"]
    after_pause = iteration["observations"]["rss_after_pause_bytes"]
    return (touched - after_free) / resident, (touched - after_pause) / resident


@pytest.mark.probe
def test_glibc_gives_a_mapped_batch_back_at_free_and_the_pause_changes_nothing(
        probe: ProbeBinary) -> None:
    """glibc unmaps each 1 MiB chunk in free; nothing in it runs later. The program's calls
    after the pause make at most its chunk headers resident at the top of the heap (a page or
    two): never is anything more given back."""
    iteration = pristine_iteration(probe, batch(free_pause_ms=100), None)
    freed, paused = shares(iteration)
    assert freed > 0.99
    after_free = iteration["phases"]["free"]["rss_bytes"]
    after_pause = iteration["observations"]["rss_after_pause_bytes"]
    assert after_free <= after_pause <= after_free + 4 * PAGE, (after_free, after_pause)
    assert paused <= freed


@pytest.mark.probe
def test_mimalloc_gives_a_batch_back_only_once_the_program_goes_on(probe: ProbeBinary) -> None:
    """mimalloc keeps the freed spans committed at free and decommits them when it frees a
    page of their segment after decommit_delay (25 ms): by the end of a 200 ms pause, all but
    the page the program's calls took (512 KiB of 16 MiB)."""
    library = library_of("mimalloc")
    freed, paused = shares(pristine_iteration(probe, batch(allocator="mimalloc",
                                                           free_pause_ms=200), library))
    assert freed < 0.05 and paused > 0.9, (freed, paused)


@pytest.mark.probe
def test_jemalloc_decays_a_freed_batch_over_seconds(probe: ProbeBinary) -> None:
    """jemalloc gives nothing back at free and purges dirty pages along a curve over
    dirty_decay_ms (10 s): after 300 ms, a small share at most, never less than at free."""
    library = library_of("jemalloc")
    freed, paused = shares(pristine_iteration(probe, batch(allocator="jemalloc",
                                                           free_pause_ms=300), library))
    assert freed < 0.05 and freed - 0.01 <= paused < 0.5, (freed, paused)


@pytest.mark.probe
def test_tcmalloc_keeps_a_freed_batch_whatever_the_pause(probe: ProbeBinary) -> None:
    """tcmalloc releases by the amount freed to its page heap, never by time."""
    library = library_of("tcmalloc")
    freed, paused = shares(pristine_iteration(probe, batch(allocator="tcmalloc",
                                                           free_pause_ms=200), library))
    assert freed < 0.05 and paused < 0.05, (freed, paused)


@pytest.mark.probe
def test_the_pause_elapses_and_without_one_nothing_is_reported(probe: ProbeBinary) -> None:
    """A lower bound of a sleep, not a timing: the process lives at least as long as its
    pause. With free_pause_ms 0 nothing runs after the free phase and nothing is reported."""
    started = time.monotonic()
    paused = run_raw(probe, good_args(size_bytes=str(MIB), ops="16", free_pause_ms="400"))
    elapsed_s = time.monotonic() - started
    assert paused.returncode == 0, paused.stderr
    assert elapsed_s >= 0.4
    assert '"rss_after_pause_bytes"' in paused.stdout
    plain = run_raw(probe, good_args(size_bytes=str(MIB), ops="16"))
    assert plain.returncode == 0 and '"rss_after_pause_bytes"' not in plain.stdout


@pytest.mark.parametrize(("fields", "message"), [
    ({"backing": "mmap-anon"}, "backing mmap-anon maps its blocks (use backing malloc"),
    ({"backing": "read-file"}, "with read_buffer 1MiB reuses one buffer and frees no block "
                               "(use read_buffer: whole"),
    ({"workload": "churn"}, "and workload is churn (use workload: cycle"),
    ({"threads": 2, "ops": 4}, "and threads is 2 (use threads: 1"),
    ({"release": "none"}, "release none frees none (use release: free or malloc-trim)"),
])
def test_a_pause_where_no_allocator_frees_is_refused(fields: dict[str, Any],
                                                      message: str) -> None:
    params = {**DEFAULTS, "free_pause_ms": 1000, **fields}
    reason = find_conflict(params)
    assert reason is not None and message in reason, reason
    assert reason.startswith("free_pause_ms")
    assert find_conflict({**params, "free_pause_ms": 0}) is None


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    {"backing": "mmap-anon", "release": "munmap"},
    {"backing": "read-file"},
    {"workload": "churn", "ops": "4"},
    {"threads": "2", "ops": "4"},
    {"release": "none"},
    {"free_pause_ms": "60001"},
])
def test_the_probe_refuses_the_same(probe: ProbeBinary, args: dict[str, str]) -> None:
    refused = run_raw(probe, good_args(**{"free_pause_ms": "10", **args}))
    assert refused.returncode == 2
    assert "--free_pause_ms" in refused.stderr, refused.stderr
    assert run_raw(probe, good_args(free_pause_ms="10")).returncode == 0
