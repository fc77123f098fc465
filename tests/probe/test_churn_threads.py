"""churn with threads: every thread runs ops allocate-use-release pairs of its own, at once, in
the allocate slot; each times its own loop (slowest_thread_ns)."""

from __future__ import annotations

import pytest

from runner.probe.native import ProbeBinary
from tests.probe.running import PAGE, measured, scenario

OPS = 512


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_each_thread_faults_its_own_fresh_page_once_per_pair(probe: ProbeBinary,
                                                              threads: int) -> None:
    """A written 4 KiB mmap-anon pair takes one fault, whoever runs it: the window holds ops
    pairs per thread, so ops x threads faults (the first iteration also faults in the worker
    threads' stacks, so the later ones are counted)."""
    s = scenario(backing="mmap-anon", size_bytes=PAGE, ops=OPS, workload="churn",
                 threads=threads)
    for it in measured(probe, s, 3)[1:]:
        assert it["phases"]["allocate"]["minor_faults"] == OPS * threads
        assert it["observations"]["joined_neighbour"] == 0


@pytest.mark.probe
def test_malloc_pairs_fault_only_while_a_thread_makes_its_arena(probe: ProbeBinary) -> None:
    """Each worker's first malloc creates its arena (faults in the first iteration); from then
    on every pair reuses the chunk the thread just freed: no faults, as with one thread."""
    s = scenario(backing="malloc", size_bytes=PAGE, ops=OPS, workload="churn", threads=2)
    iterations = measured(probe, s, 3)
    assert iterations[0]["phases"]["allocate"]["minor_faults"] > 0
    for it in iterations[1:]:
        assert it["phases"]["allocate"]["minor_faults"] <= 2


@pytest.mark.probe
def test_a_thread_times_its_own_pairs_inside_the_window(probe: ProbeBinary) -> None:
    """With one thread the loop is the window, so slowest_thread_ns is the allocate phase's
    time; with two, each thread's loop lies between the barriers the window is timed around,
    so the slowest is at most the window."""
    (alone,) = measured(probe, scenario(backing="malloc", size_bytes=64, ops=OPS,
                                        workload="churn"))
    assert alone["observations"]["slowest_thread_ns"] == alone["phases"]["allocate"]["ns"]
    for it in measured(probe, scenario(backing="malloc", size_bytes=64, ops=OPS,
                                       workload="churn", threads=2), 3):
        slowest = it["observations"]["slowest_thread_ns"]
        assert 0 < slowest <= it["phases"]["allocate"]["ns"]
        for phase in ("first_touch", "second_pass", "free"):
            assert it["phases"][phase]["ns"] == 0


@pytest.mark.probe
def test_threads_name_their_shared_memory_apart(probe: ProbeBinary) -> None:
    """shm blocks are named by their index: each thread's blocks count on from ops x thread,
    so two threads never shm_open the same name at once (O_EXCL would fail the process)."""
    s = scenario(backing="shm", sharing="shared", size_bytes=PAGE, ops=64, workload="churn",
                 threads=2, access="read-all")
    for it in measured(probe, s, 2):
        assert it["checksum"] == 0  # fresh shared memory reads as zeros
        assert it["observations"]["slowest_thread_ns"] > 0
