"""Memory pressure in a real memory cgroup (memory_limit): what the kernel can take back from a
process that runs short, and what it cannot.

Each test runs the real probe in a cgroup of its own made the way a run makes it
(runner.measure.schedule.run_limited), and needs what a run needs: root or a writable cgroup
(runner.machine.memcg), else it is skipped with the reason. The cgroup has no swap, so
anonymous memory past the limit cannot be reclaimed at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.core.model import ProcessRecord
from runner.machine import memcg
from runner.probe.execute import run_process
from runner.probe.native import ProbeBinary, probe_argv, probe_env
from tests.probe.running import LIMIT, MIB, PAGE, run_in_limit, scenario


def iteration(record: ProcessRecord) -> dict[str, object]:
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    return record.probe["iterations"][0]  # type: ignore[no-any-return]


@pytest.mark.probe
def test_touched_anonymous_memory_past_the_limit_is_oom_killed_and_recorded(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy) -> None:
    """256 MiB of private anonymous memory, a byte written per page, under a 64 MiB limit and
    no swap: nothing of it can be reclaimed, so the kernel's OOM killer ends the process in
    its cgroup; the record says so (status oom, SIGKILL, the cgroup's kill count)."""
    s = scenario(backing="mmap-anon", size_bytes=256 * MIB, access="write-page")
    record = run_in_limit(probe, hierarchy, s)
    assert record.status == "oom", record.stderr_tail
    assert record.signal == "SIGKILL"
    assert record.probe is None
    assert "OOM-killed in its memory cgroup (limit 64MiB, no swap; the cgroup counted 1 OOM " \
           "kill)" in record.stderr_tail


@pytest.mark.probe
def test_a_mapping_far_larger_than_the_limit_is_granted_untouched(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy) -> None:
    """A cgroup limits what is charged (pages touched), not what is mapped: 4 GiB of address
    space under a 64 MiB limit is granted, and, untouched, costs no memory."""
    s = scenario(backing="mmap-anon", size_bytes=4096 * MIB, access="none")
    observed = iteration(run_in_limit(probe, hierarchy, s))["observations"]
    assert observed["vm_size_growth_bytes"] == 4096 * MIB  # type: ignore[index]


@pytest.mark.probe
def test_clean_file_pages_are_reclaimed_and_read_back_with_major_faults(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy, disk_dir: Path) -> None:
    """A 256 MiB file on disk read twice through a mapping (a byte per page), cold: without a
    limit the second pass finds every page cached (no major fault, nothing read); under a
    64 MiB limit the clean pages of the first pass were reclaimed to make room, so the second
    pass faults them in from storage again.

    Read-ahead (read_ahead_kb, 8 MiB on the virtio disk here) makes the fault count far smaller
    than the pages: one major fault reads a whole window around it, and the asynchronous
    read-ahead that a sequential pass triggers brings the next windows in without faulting at
    all. So the exact facts are: at least one major fault in the second pass, and at least
    what the cgroup could not have kept cached (file size minus the limit) read from storage
    in it (/proc/self/io read_bytes counts read-ahead too)."""
    size = 256 * MIB
    s = scenario(backing="mmap-file", size_bytes=size, access="read-page", cache="cold",
                 file_dir=str(disk_dir))
    free = iteration(run_process(probe_argv(probe, s, 0, 1), scenario_id=s.id, process_index=0,
                                 timeout_s=120, extra_env=probe_env(s)))
    limited = iteration(run_in_limit(probe, hierarchy, s))
    phases, observed = free["phases"], free["observations"]
    assert phases["second_pass"]["major_faults"] == 0  # type: ignore[index]
    assert observed["second_pass_io_read_bytes"] == 0  # type: ignore[index]
    phases, observed = limited["phases"], limited["observations"]
    assert phases["second_pass"]["major_faults"] >= 1  # type: ignore[index]
    assert observed["second_pass_io_read_bytes"] >= size - LIMIT  # type: ignore[index]


@pytest.mark.probe
def test_page_cache_is_charged_to_the_cgroup_that_reads_the_file(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy, disk_dir: Path) -> None:
    """A cold 32 MiB file read through a mapping under a 64 MiB limit: the pages it brings into
    the page cache are charged to the reader's cgroup, all of them (it fits), as memory.stat
    says. Read-ahead cannot add more: it stops at the end of the file."""
    s = scenario(backing="mmap-file", size_bytes=32 * MIB, access="read-page", cache="cold",
                 file_dir=str(disk_dir))
    observed = iteration(run_in_limit(probe, hierarchy, s))["observations"]
    assert 0.95 * 1_000_000 <= observed["cgroup_cache_ppm"] <= 1_050_000  # type: ignore[index]


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("release", ["madv-free", "madv-dontneed"])
def test_released_memory_under_pressure_reads_zero(
        probe: ProbeBinary, hierarchy: memcg.Hierarchy, release: str) -> None:
    """48 MiB written, released by madvise, then (untimed, under the limit) 48 MiB more written:
    96 MiB does not fit in 64 MiB, and what MADV_FREE left is the only memory the cgroup can
    reclaim (no swap, no file pages of its own), so at least 96 - 64 = 32 MiB of it, two
    thirds of the pages, is discarded and reads zero; the second pass faults those pages in
    afresh. MADV_DONTNEED dropped every page at once: all read zero, all fault again."""
    blocks = 48 * MIB
    s = scenario(backing="mmap-anon", size_bytes=blocks, workload="reuse", release=release)
    it = iteration(run_in_limit(probe, hierarchy, s))
    zero = it["observations"]["released_zero_ppm"] / 1_000_000  # type: ignore[index]
    faults = it["phases"]["second_pass"]["minor_faults"]  # type: ignore[index]
    pages = blocks // PAGE
    if release == "madv-dontneed":
        assert zero == 1.0
        assert faults >= pages
    else:
        assert zero >= (2 * blocks - LIMIT) / blocks
        assert faults >= zero * pages
