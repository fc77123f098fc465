"""The heap trace's address-space figures (VmSize after each call, in the fresh image) under
glibc and under a preloaded allocator: a large malloc grows the address space by its request in
one call, small mallocs in few steps many times their request, and jemalloc never moves the
program break while still growing the address space.

An allocator this machine lacks is skipped, naming the package that installs it (a failure when
$CI is set), as in test_allocator_physics.
"""

from __future__ import annotations

from typing import Any

import pytest

from runner.core.model import Scenario
from runner.probe.native import ProbeBinary
from tests.probe.running import MIB, PAGE, one_iteration, scenario
from tests.probe.test_allocator_physics import library_of


def traced(probe: ProbeBinary, s: Scenario, library: str | None = None) -> dict[str, Any]:
    """The observations of one process's only iteration (no warm-up): the trace's figures."""
    observed: dict[str, Any] = one_iteration(probe, s, library)["observations"]
    assert observed["malloc_from_allocator"] == 1
    return observed


@pytest.mark.probe
def test_a_64_mib_glibc_malloc_grows_the_address_space_by_its_request_in_one_call(
        probe: ProbeBinary) -> None:
    """Above the mmap threshold glibc maps the block with a page for its header; the first
    malloc of a process also sets up the per-thread cache on the heap (the break moves by the
    132 KiB top pad), in the same call."""
    observed = traced(probe, scenario(backing="malloc", size_bytes=64 * MIB, ops=1,
                                      access="none"))
    assert observed["vm_grows"] == 1
    step = observed["vm_step_median_bytes"]
    assert 64 * MIB < step <= 64 * MIB + PAGE + observed["brk_step_median_bytes"]
    assert observed["brk_step_median_bytes"] <= 256 << 10  # the top pad, not the block
    assert observed["vm_call_growth_median_bytes"] == step  # one call: it is the typical one


@pytest.mark.probe
def test_glibc_maps_each_block_from_its_threshold_one_mapping_a_call(probe: ProbeBinary) -> None:
    """16 blocks of 1 MiB: every call grows the address space by the block plus a page."""
    observed = traced(probe, scenario(backing="malloc", size_bytes=MIB, ops=16, access="none"))
    assert observed["vm_grows"] == 16
    assert observed["vm_call_growth_median_bytes"] == MIB + PAGE


@pytest.mark.probe
def test_small_glibc_mallocs_grow_the_address_space_in_few_big_steps(probe: ProbeBinary) -> None:
    """4096 blocks of 64 bytes (256 KiB): a handful of calls grow the address space, each by
    the heap's 128 KiB top pad and more; the brk trace and the VmSize trace agree, since only
    the heap grows; the typical call grows nothing."""
    observed = traced(probe, scenario(backing="malloc", size_bytes=64, ops=4096, access="none"))
    assert 1 <= observed["vm_grows"] < 0.01 * 4096
    assert observed["vm_grows"] == observed["brk_moves"]
    assert observed["vm_step_median_bytes"] == observed["brk_step_median_bytes"]
    assert observed["vm_step_median_bytes"] >= 128 << 10
    assert observed["vm_call_growth_median_bytes"] == 0


@pytest.mark.probe
def test_the_typical_call_of_two_is_the_smaller(probe: ProbeBinary) -> None:
    """Two calls, one growing and one not, make a typical growth of 0 (the lower median), not
    the step: half the calls is not a typical call."""
    # 2 blocks of 64 KiB: the first call grows the heap by block + pad, the second fits in it.
    observed = traced(probe, scenario(backing="malloc", size_bytes=64 << 10, ops=2,
                                      access="none"))
    assert observed["vm_grows"] == 1
    assert observed["vm_call_growth_median_bytes"] == 0


@pytest.mark.probe
def test_under_jemalloc_the_break_never_moves_but_the_address_space_grows(
        probe: ProbeBinary) -> None:
    """The fresh image of the trace inherits LD_PRELOAD (its malloc is jemalloc's, or the probe
    fails): no call moves the break, which glibc's first malloc always does, yet the address
    space grows: 65,536 blocks of 64 bytes (4 MiB, more than jemalloc maps when it starts) in a
    few steps of megabytes, and for every 64 MiB block."""
    library = library_of("jemalloc")
    ops = 65536
    small = traced(probe, scenario(allocator="jemalloc", backing="malloc", size_bytes=64,
                                   ops=ops, access="none"), library)
    assert small["brk_moves"] == 0
    assert "brk_step_median_bytes" not in small
    assert 1 <= small["vm_grows"] <= 0.001 * ops
    assert small["vm_step_median_bytes"] >= MIB
    large = traced(probe, scenario(allocator="jemalloc", backing="malloc", size_bytes=64 * MIB,
                                   ops=2, access="none"), library)
    assert large["brk_moves"] == 0
    assert large["vm_grows"] == 2
    assert large["vm_call_growth_median_bytes"] >= 64 * MIB
