"""Transparent huge pages and protection: one fault per 2 MiB where THP serves, and protections
enforced (a forbidden access traps), as the probe reports them."""

from __future__ import annotations

import ctypes
import mmap
from pathlib import Path

import pytest

from runner.machine import preconditions
from runner.probe.native import (
    ProbeBinary,
)
from tests.probe.running import MIB, PAGE, measured, scenario

# --- transparent huge pages ------------------------------------------------------------------

def _thp_enabled() -> str | None:
    return preconditions.read_facts().thp_enabled


@pytest.mark.probe
def test_thp_huge_backs_a_block_with_huge_pages(probe: ProbeBinary) -> None:
    if _thp_enabled() not in ("madvise", "always"):
        pytest.skip(f"THP enabled is {_thp_enabled()}: MADV_HUGEPAGE cannot take effect")
    pages = 64 * MIB // PAGE
    s = scenario(backing="mmap-anon", size_bytes=64 * MIB, thp="huge")
    for it in measured(probe, s, 2):
        huge_bytes = it["observations"]["anon_huge_bytes"]
        assert it["observations"]["alignment_bytes"] % (2 << 20) == 0
        assert 0 < huge_bytes <= 64 * MIB
        # One fault per huge page, one per small page elsewhere: far fewer than pages.
        huge_pages = huge_bytes // (2 << 20)
        small_pages = pages - huge_bytes // PAGE
        faults = it["phases"]["first_touch"]["minor_faults"]
        assert faults <= small_pages + huge_pages + 16
        assert faults < pages // 4, "most of the block should be huge on an idle machine"


def _kernel_aligns_2mib_mappings() -> bool:
    """Whether this kernel places an anonymous mapping of whole 2 MiB on a 2 MiB boundary
    by itself (Linux 6.7 and later with THP): four tries, all aligned."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    length = 4 * MIB
    addresses = [libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                           -1, 0) for _ in range(4)]
    for address in addresses:
        libc.munmap(address, length)
    return all(address % (2 * MIB) == 0 for address in addresses)


@pytest.mark.probe
@pytest.mark.parametrize("thp", ["huge", "nohuge"])
def test_thp_blocks_the_kernel_aligns_cost_one_mmap_and_one_madvise(probe: ProbeBinary,
                                                                   thp: str) -> None:
    """Blocks of whole 2 MiB come aligned from a recent kernel: no map-and-trim, just mmap
    and madvise; other sizes are mapped 2 MiB larger and trimmed (an mmap, up to two munmap
    calls and the madvise). Either way every block starts on a 2 MiB boundary."""
    ops = 4
    whole, odd = measured(probe, scenario(backing="mmap-anon", size_bytes=4 * MIB, thp=thp,
                                          ops=ops))[0], \
        measured(probe, scenario(backing="mmap-anon", size_bytes=3 * MIB, thp=thp, ops=ops))[0]
    for it in (whole, odd):
        assert it["observations"]["alignment_bytes"] % (2 * MIB) == 0
        assert it["observations"]["free_syscalls"] == ops
    assert 2 * ops <= odd["observations"]["allocate_syscalls"] <= 4 * ops
    if _kernel_aligns_2mib_mappings():
        assert whole["observations"]["allocate_syscalls"] == 2 * ops
    else:
        assert whole["observations"]["allocate_syscalls"] <= 6 * ops


@pytest.mark.probe
def test_thp_nohuge_keeps_small_pages(probe: ProbeBinary) -> None:
    pages = 64 * MIB // PAGE
    s = scenario(backing="mmap-anon", size_bytes=64 * MIB, thp="nohuge")
    (it,) = measured(probe, s)
    assert it["observations"]["anon_huge_bytes"] == 0
    assert it["observations"]["alignment_bytes"] % (2 << 20) == 0
    assert 0.9 * pages <= it["phases"]["first_touch"]["minor_faults"] <= 1.1 * pages


@pytest.mark.probe
def test_thp_default_reports_no_huge_page_observation(probe: ProbeBinary) -> None:
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=MIB))
    assert not {"anon_huge_bytes", "hugetlb_bytes"} & set(it["observations"])
    assert "alignment_bytes" in it["observations"]


# --- protection: enforcement and the cost of mprotect ----------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("backing", ["mmap-anon", "mmap-file", "memfd", "shm"])
@pytest.mark.parametrize(("protection", "access"), [("read", "read-page"), ("none", "none")])
def test_forbidden_accesses_fault_and_are_reported_not_fatal(
        probe: ProbeBinary, tmp_path: Path, backing: str, protection: str, access: str) -> None:
    s = scenario(backing=backing, protection=protection, access=access, size_bytes=4 * PAGE,
                 ops=16, file_dir=str(tmp_path))
    for it in measured(probe, s, 2):
        assert it["observations"]["protection_enforced"] == 1
        assert "mprotect_ns" in it["observations"]


@pytest.mark.probe
def test_read_write_memory_reports_no_protection_observations(probe: ProbeBinary) -> None:
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=MIB))
    assert "protection_enforced" not in it["observations"]
    assert "mprotect_ns" not in it["observations"]
