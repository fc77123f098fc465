"""A database's reads of a file larger than its memory (experiments/sparse-reads.yaml): a cold
file four times a memory cgroup's limit, 1% of its pages read at random, twice, by pread into
one reused 4 KiB buffer, through a mapping advised MADV_RANDOM and through a default mapping.

Physical facts these tests rely on (Linux 6.18, ext4 under the temporary directory, 4 KiB
pages), each the reason of a bound below:

- /proc/self/io read_bytes counts every read the process submits to storage, read-ahead
  included, and counts a page again each time it is read again.
- A random pread() is not a sequential stream, so the kernel reads the pages asked for and no
  window around them (its read-ahead starts only on a read next to the previous one).
- MADV_RANDOM (VM_RAND_READ) turns a mapping's read-around off: a major fault reads the one
  page it needs.
- A default mapping's major fault reads a window of up to read_ahead_kb around itself, and a
  fault that meets a page marked for read-ahead starts one more such window: a pass reads at
  most one window per fault. Under a limit the windows evict each other (and the pages read)
  before they are used, so the same pages read again come back from storage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.core.units import PPM
from runner.machine import memcg
from runner.machine.file_dirs import find_mount, read_block_device
from runner.probe.native import ProbeBinary
from tests.probe.running import MIB, PAGE, run_in_limit, scenario

LIMIT = 16 * MIB  # small, so that a file four times larger is read in seconds
FILE_BYTES = 4 * LIMIT
SHARE_PPM = PPM // 100  # 1%
TOUCHED = -(-(FILE_BYTES // PAGE) * SHARE_PPM // PPM)  # pages read per pass, rounded up


def sparse_pass(probe: ProbeBinary, hierarchy: memcg.Hierarchy, disk: Path, backing: str,
                advice: str = "none") -> dict[str, Any]:
    """One cold iteration (two passes over the same pages) under the limit."""
    fields: dict[str, Any] = ({"read_buffer_bytes": PAGE} if backing == "read-file"
                              else {"protection": "read", "advice": advice})
    s = scenario(backing=backing, size_bytes=FILE_BYTES, access="read-page", cache="cold",
                 order="random", touch_share_ppm=SHARE_PPM, file_dir=str(disk), **fields)
    record = run_in_limit(probe, hierarchy, s, LIMIT)
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    it: dict[str, Any] = record.probe["iterations"][0]
    assert it["observations"]["resident_ppm_before"] <= 10_000  # really cold
    assert it["observations"]["touched_pages"] == TOUCHED
    return it


def read_ahead_bytes(directory: Path) -> int:
    """The read-ahead window of the device holding `directory` (queue/read_ahead_kb)."""
    mount = find_mount(str(directory), Path("/proc/self/mountinfo").read_text())
    device = read_block_device(mount) if mount is not None else None
    if device is None or not device.read_ahead_kb:
        pytest.skip(f"{directory}: no block device read-ahead to bound the reads with")
    return device.read_ahead_kb * 1024


@pytest.mark.probe
@pytest.mark.parametrize(("backing", "advice"), [("read-file", "none"), ("mmap-file", "random")])
def test_pread_and_madv_random_read_only_the_pages_they_use_and_keep_them(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy, disk_dir: Path, backing: str,
        advice: str) -> None:
    """Every page the first pass reads comes from storage (the file is cold), and nothing
    more: no read-ahead for random preads, none for a mapping advised MADV_RANDOM (one major
    fault per page). The 1% of a 64 MiB file read (656 KiB) fits easily in the 16 MiB limit,
    so the second pass over the same pages finds them all cached: nothing read, no fault."""
    it = sparse_pass(probe, hierarchy, disk_dir, backing, advice)
    seen, first, second = it["observations"], it["phases"]["first_touch"], \
        it["phases"]["second_pass"]
    # At most one page more than asked in a hundred: a chosen page right after the previous
    # one read looks sequential and may start a small read-ahead window.
    assert TOUCHED * PAGE <= seen["first_touch_io_read_bytes"] <= 1.01 * TOUCHED * PAGE
    assert seen["second_pass_io_read_bytes"] == 0
    assert second["major_faults"] == 0
    if backing == "mmap-file":
        assert first["major_faults"] == TOUCHED
    else:
        assert first["major_faults"] == 0  # pread copies: the buffer was faulted before timing
        assert seen["first_touch_syscalls"] == TOUCHED


@pytest.mark.probe
def test_a_default_mapping_reads_windows_around_its_faults_and_reads_them_again(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy, disk_dir: Path) -> None:
    """A default mapping's first pass reads every page it uses from storage and a read-ahead
    window around each fault: at least ten times the pages it uses (a window holds 32 pages
    even at the common 128 KiB), at most one window per fault of the pass. When those windows
    together are several times the limit, they evict the pages used before the second pass
    comes back to them: it reads from storage again, as much as a page per page used."""
    window = read_ahead_bytes(disk_dir)
    it = sparse_pass(probe, hierarchy, disk_dir, "mmap-file")
    seen = it["observations"]
    for phase in ("first_touch", "second_pass"):
        counts = it["phases"][phase]
        faults = counts["major_faults"] + counts["minor_faults"]
        read = seen[f"{phase}_io_read_bytes"]
        assert counts["major_faults"] >= 1
        assert read <= faults * window, phase
    assert seen["first_touch_io_read_bytes"] >= 10 * TOUCHED * PAGE
    if TOUCHED * window < 4 * LIMIT:
        pytest.skip(f"read-ahead of {window // 1024} KiB: the windows of one pass fit in the "
                    f"limit, so the second pass may find the pages cached")
    assert seen["second_pass_io_read_bytes"] >= TOUCHED * PAGE
