"""The heap (the program break, the dynamic mmap threshold, tunables, the heap trace), history,
leaks and host warming, the limits of mmap, initialisation, mappings and threads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runner.probe.native import (
    ProbeBinary,
)
from tests.probe.running import MIB, N_PAGES, PAGE, measured, scenario

# --- heap: the program break, the dynamic mmap threshold, tunables ----------------------------

@pytest.mark.probe
def test_small_mallocs_lie_in_the_heap_and_move_the_break(probe: ProbeBinary) -> None:
    first, second = measured(probe, scenario(backing="malloc", size_bytes=1000, ops=100), 2)
    assert first["observations"]["blocks_in_heap"] == 100
    assert first["observations"]["brk_growth_bytes"] >= 100 * 1000
    assert second["observations"]["brk_growth_bytes"] == 0  # freed chunks are reused
    (anon,) = measured(probe, scenario(backing="mmap-anon", size_bytes=MIB))
    assert "blocks_in_heap" not in anon["observations"]


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["malloc", "calloc"])
def test_heap_pad_keep_keeps_brk_and_fresh_pages_out_of_the_batch(probe: ProbeBinary,
                                                                 backing: str) -> None:
    """A batch of 1024 blocks of 4 KiB: by default every iteration grows the heap inside
    allocate (a fault per block: the chunk headers on fresh pages) and free trims it back; with
    heap_pad keep the heap was grown once before timing and stays: no break moves, next to no
    faults, nothing given back."""
    ops = 1024
    for it in measured(probe, scenario(backing=backing, size_bytes=PAGE, ops=ops), 2):
        assert it["observations"]["brk_growth_bytes"] >= 0.9 * ops * PAGE
        assert it["phases"]["allocate"]["minor_faults"] >= 0.9 * ops
        assert it["phases"]["second_pass"]["rss_bytes"] - it["phases"]["free"]["rss_bytes"] \
            >= 0.9 * ops * PAGE
    kept = measured(probe, scenario(backing=backing, size_bytes=PAGE, ops=ops, heap_pad="keep"),
                    2)
    for it in kept:
        phases = it["phases"]
        assert it["observations"]["brk_growth_bytes"] == 0
        assert phases["allocate"]["minor_faults"] + phases["first_touch"]["minor_faults"] \
            <= 0.05 * ops
        assert abs(phases["free"]["rss_bytes"] - phases["second_pass"]["rss_bytes"]) <= 16 * PAGE
        assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 16 * PAGE
    # the heap trace's fresh image has the pad too: the break moves in few, large steps
    assert kept[0]["observations"]["brk_moves"] <= 4
    assert kept[0]["observations"]["brk_step_median_bytes"] >= ops * PAGE


@pytest.mark.probe
def test_freeing_a_mapped_chunk_raises_the_mmap_threshold(probe: ProbeBinary) -> None:
    """glibc maps a 1 MiB malloc (threshold 128 KiB); freeing it raises the threshold to its
    size, so the next 1 MiB malloc comes from the heap and moves the break."""
    first, second = measured(probe, scenario(backing="malloc", size_bytes=MIB), 2)
    assert first["observations"]["blocks_in_heap"] == 0
    assert second["observations"]["blocks_in_heap"] == 1
    assert second["observations"]["brk_growth_bytes"] >= MIB


@pytest.mark.probe
def test_tunables_reach_the_probe_and_win_over_inherited_ones(probe: ProbeBinary) -> None:
    """A fixed mmap_threshold turns the dynamic threshold off: both 1 MiB blocks are mapped.
    Inherited the other way round, the scenario's tunable still decides."""
    fixed = scenario(backing="malloc", size_bytes=MIB,
                     tunables="glibc.malloc.mmap_threshold=131072")
    assert [it["observations"]["blocks_in_heap"] for it in measured(probe, fixed, 2)] == [0, 0]
    high = dataclasses.replace(fixed, tunables="glibc.malloc.mmap_threshold=4194304")
    inherited = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=131072"}
    assert [it["observations"]["blocks_in_heap"]
            for it in measured(probe, high, 2, env=inherited)] == [1, 1]


# --- heap: one call at a time (the heap trace) -----------------------------------------------

@pytest.mark.probe
def test_small_mallocs_seldom_move_the_break_and_then_by_more_than_asked(
        probe: ProbeBinary) -> None:
    """glibc grows the heap by the request plus a 128 KiB top pad, page-rounded: most 64-byte
    mallocs find room in the top chunk, and a call that moves the break moves it far."""
    its = measured(probe, scenario(backing="malloc", size_bytes=64, ops=4096), 2)
    for it in its:
        observed = it["observations"]
        assert observed["brk_moves"] < 0.01 * 4096
        assert observed["brk_step_median_bytes"] >= 128 << 10
        assert observed["brk_step_median_bytes"] % PAGE == 0
        assert 64 * 4096 <= observed["usable_bytes"] < (64 + 32) * 4096
    trace = ("brk_moves", "brk_step_median_bytes", "usable_bytes")
    first, second = ([it["observations"][name] for name in trace] for it in its)
    assert first == second  # one trace per process, carried by every iteration
    # the timed iterations differ: only the first grows the heap
    assert its[1]["observations"]["brk_growth_bytes"] < its[0]["observations"]["brk_growth_bytes"]


@pytest.mark.probe
def test_large_mallocs_are_mapped_and_only_the_first_call_moves_the_break(
        probe: ProbeBinary) -> None:
    """Above the 128 KiB mmap threshold of a fresh process each 1 MiB malloc is a mapping of
    its own. The first malloc of a process sets up glibc's per-thread cache from the heap,
    which moves the break once, by the top pad, not by the request."""
    (it,) = measured(probe, scenario(backing="malloc", size_bytes=MIB, ops=16))
    observed = it["observations"]
    assert observed["brk_moves"] == 1
    assert observed["brk_step_median_bytes"] < MIB
    assert MIB <= observed["usable_bytes"] / 16 < MIB + PAGE


@pytest.mark.probe
def test_calls_that_never_reach_the_heap_report_no_step(probe: ProbeBinary) -> None:
    """The heap trace is for heap backings only, and a step needs a call that moved."""
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=MIB))
    assert not {"brk_moves", "brk_step_median_bytes", "usable_bytes"} & set(it["observations"])
    threaded = scenario(backing="malloc", size_bytes=64, ops=8, threads=2)
    (it,) = measured(probe, threaded)
    assert "brk_moves" not in it["observations"]


# --- history, leaks and host warming ----------------------------------------------------------

@pytest.mark.probe
def test_recycled_malloc_blocks_are_dirty_and_calloc_clears_them(probe: ProbeBinary) -> None:
    """A freed chunk keeps what was written into it (and free() writes list pointers): the
    recycled block has non-zero bytes. A fresh process's first block reads zero, and calloc
    clears recycled memory."""
    def observed(backing: str, history: str, ops: int = 1) -> dict[str, int]:
        (it,) = measured(probe, scenario(backing=backing, size_bytes=64 << 10, ops=ops,
                                         check_zero=True, history=history))
        return dict(it["observations"])

    recycled = observed("malloc", "recycled")
    assert recycled["nonzero_blocks"] == 1
    assert recycled["nonzero_bytes_at_allocate"] > 0
    fresh = observed("malloc", "fresh")
    assert (fresh["nonzero_blocks"], fresh["nonzero_bytes_at_allocate"]) == (0, 0)
    assert observed("calloc", "recycled", 16)["nonzero_blocks"] == 0


@pytest.mark.probe
def test_recycled_memory_past_the_trimmed_heap_top_comes_back_zero(probe: ProbeBinary) -> None:
    """Freeing 16 blocks of 64 KiB merges them into the top chunk, and glibc gives the top
    back to the kernel beyond its 128 KiB pad: only the blocks inside the pad stay dirty."""
    (it,) = measured(probe, scenario(backing="malloc", size_bytes=64 << 10, ops=16,
                                     check_zero=True, history="recycled"))
    assert 1 <= it["observations"]["nonzero_blocks"] < 16


@pytest.mark.probe
def test_recycled_mappings_are_zero(probe: ProbeBinary) -> None:
    """The kernel clears every page it hands out, however the process used it before."""
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=64 << 10, ops=4,
                                     check_zero=True, history="recycled"))
    assert it["observations"]["nonzero_blocks"] == 0


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("backing", ["malloc", "mmap-anon"])
def test_blocks_never_freed_stay_resident_and_add_up(probe: ProbeBinary, backing: str) -> None:
    size = 16 * MIB
    its = measured(probe, scenario(backing=backing, size_bytes=size, release="none"), 2)
    for it in its:
        phases = it["phases"]
        assert phases["free"]["rss_bytes"] >= phases["second_pass"]["rss_bytes"]
    grown = its[1]["phases"]["free"]["rss_bytes"] - its[0]["rss_before_bytes"]
    assert 1.9 * size <= grown <= 2.2 * size


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_host_warming_leaves_the_measured_blocks_untouched(probe: ProbeBinary) -> None:
    """host_warm writes pages of its own region, not the blocks: their first touch still
    takes one minor fault per page and makes each resident."""
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE,
                                     host_warm=True))
    touch = it["phases"]["first_touch"]
    assert 0.9 * N_PAGES <= touch["minor_faults"] <= 1.1 * N_PAGES
    assert touch["rss_bytes"] - it["phases"]["allocate"]["rss_bytes"] >= 0.9 * N_PAGES * PAGE
    assert it["rss_before_bytes"] < N_PAGES * PAGE  # the warming region is gone


# --- limits of mmap ---------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("backing", ["mmap-anon", "mmap-file"])
def test_small_mappings_are_refused_at_the_map_count_limit(probe: ProbeBinary,
                                                           backing: str) -> None:
    (it,) = measured(probe, scenario(backing=backing, size_bytes=PAGE, workload="limits",
                                     access="none"))
    observed = it["observations"]
    limit = observed["max_map_count"]
    assert limit == int(Path("/proc/sys/vm/max_map_count").read_text())
    assert observed["map_errno"] == 12  # ENOMEM
    assert limit - 300 <= observed["mappings_until_refused"] < limit
    assert 999_000 <= observed["mappings_at_refusal_ppm"] <= 1_001_000
    assert observed["rlimit_as_enforced"] == 1
    # never touched: the blocks took address space, not memory
    assert it["phases"]["allocate"]["rss_bytes"] - it["rss_before_bytes"] < 64 * PAGE
    assert it["phases"]["allocate"]["minor_faults"] < 0.01 * limit


@pytest.mark.probe
def test_large_mappings_run_out_of_address_space_first(probe: ProbeBinary) -> None:
    """Blocks of 16 GiB fill the 128 TiB of a 47-bit user address space after some 8192
    mappings, long before the map count limit."""
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=16 << 30,
                                     workload="limits", access="none"))
    observed = it["observations"]
    assert observed["map_errno"] == 12
    assert 4000 <= observed["mappings_until_refused"] <= 8192
    assert observed["mappings_at_refusal_ppm"] < 500_000


# --- initialisation, mappings, threads --------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize(("backing", "size", "recycled_zero"), [
    ("calloc", 1000, True),
    ("mmap-anon", MIB, True),
    ("malloc", 1000, False),
])
def test_fresh_memory_is_zero_and_recycled_malloc_memory_is_not(
        probe: ProbeBinary, backing: str, size: int, recycled_zero: bool) -> None:
    s = scenario(backing=backing, size_bytes=size, ops=8, access="write-all", check_zero=True)
    fresh, recycled = measured(probe, s, 2)  # iteration 1 gets what iteration 0 wrote and freed
    assert fresh["observations"]["nonzero_bytes_at_allocate"] == 0
    assert (recycled["observations"]["nonzero_bytes_at_allocate"] == 0) == recycled_zero
    (unchecked,) = measured(probe, dataclasses.replace(s, check_zero=False))
    assert "nonzero_bytes_at_allocate" not in unchecked["observations"]


@pytest.mark.probe
def test_a_file_per_block_is_a_mapping_each_and_anonymous_blocks_merge(
        probe: ProbeBinary) -> None:
    ops = 512

    def observed(backing: str, sharing: str) -> dict[str, int]:
        (it,) = measured(probe, scenario(backing=backing, sharing=sharing, size_bytes=PAGE,
                                         ops=ops, access="none"))
        return dict(it["observations"])

    memfd, anon = observed("memfd", "shared"), observed("mmap-anon", "private")
    assert memfd["mappings"] >= ops
    assert anon["mappings"] < 64  # adjacent private anonymous mappings merged
    # Shared anonymous memory is a hidden file per mapping: no merging either.
    assert observed("mmap-anon", "shared")["mappings"] >= ops
    assert memfd["vm_size_growth_bytes"] >= ops * PAGE
    assert anon["vm_size_growth_bytes"] >= ops * PAGE


@pytest.mark.probe
def test_address_space_is_taken_at_allocate_memory_at_first_touch(probe: ProbeBinary) -> None:
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=64 * MIB))
    assert it["observations"]["vm_size_growth_bytes"] >= 64 * MIB
    assert it["phases"]["allocate"]["rss_bytes"] - it["rss_before_bytes"] < 1 * MIB


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_threads_share_out_the_blocks(probe: ProbeBinary) -> None:
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE // 16, ops=16, threads=4)
    for it in measured(probe, s, 2):
        touch = it["phases"]["first_touch"]
        assert 0.9 * N_PAGES <= touch["minor_faults"] <= 1.1 * N_PAGES  # every thread's
        assert touch["rss_bytes"] - it["rss_before_bytes"] >= 0.9 * N_PAGES * PAGE
        assert abs(it["phases"]["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB


@pytest.mark.probe
def test_threads_malloc_from_arenas_of_their_own(probe: ProbeBinary) -> None:
    s = scenario(backing="malloc", size_bytes=1000, ops=64, threads=2)
    (it,) = measured(probe, s)
    assert it["observations"]["blocks_in_heap"] < 64  # not all from the main heap
