"""Huge pages in practice: a hugetlb pool alloclab reserves and runs dry, transparent huge pages
for malloc'd memory (glibc.malloc.hugetlb), and what THP costs a sparse touch.

The pool tests set vm.nr_hugepages the way a run does (runner.measure.schedule.run_in_pool) and
need root, else they are skipped; each checks the pool is given back. Physical facts relied on:
a MAP_HUGETLB mapping reserves its pages at mmap (ENOMEM past the free pool), one made with
MAP_NORESERVE does not (SIGBUS at the fault that finds the pool empty); glibc serves a 64 MiB
malloc from a mapping of its own whose user pointer is 16 bytes past its start, never 2 MiB
aligned; this machine's THP mode is madvise (not always).
"""

from __future__ import annotations

import os

import pytest

from runner.machine import hugetlb_pool
from runner.machine.preconditions import read_facts
from runner.measure.schedule import Job, run_in_pool
from runner.probe.native import ProbeBinary, probe_argv, probe_env
from tests.probe.running import MIB, PAGE, measured, scenario

HUGE = 2 * MIB


@pytest.fixture
def root() -> None:
    if os.geteuid() != 0:
        pytest.skip("setting vm.nr_hugepages needs root")
    if hugetlb_pool.available_pages() is None:
        pytest.skip("this kernel offers no 2 MiB hugetlb pages")


@pytest.mark.probe
def test_a_pool_runs_dry_at_mmap_when_reserved_and_at_a_fault_with_noreserve(
        probe: ProbeBinary, root: None) -> None:
    """A pool of 3 pages, blocks of 2 pages: the probe's blocks get hugetlb memory, mapping 4
    pages is refused at mmap, and with MAP_NORESERVE the 4th page's write raises SIGBUS (caught,
    reported, the process goes on). vm.nr_hugepages is what it was before, after."""
    before = hugetlb_pool.NR_HUGEPAGES.read_text()
    s = scenario(backing="mmap-hugetlb", size_bytes=2 * HUGE, hugetlb_pool=3)
    record = run_in_pool(Job(s, 0), probe_argv(probe, s, 0, 1), None, timeout_s=60,
                         extra_env=probe_env(s))
    assert hugetlb_pool.NR_HUGEPAGES.read_text() == before
    assert not hugetlb_pool.RECORD.exists()
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    observed = record.probe["iterations"][0]["observations"]
    assert observed["hugetlb_bytes"] == 2 * HUGE
    assert observed["hugetlb_pool_pages"] == 3
    assert observed["hugetlb_past_pool_refused"] == 1
    assert observed["hugetlb_sigbus_at_pool_end"] == 1


@pytest.mark.probe
def test_without_alloclab_s_pool_the_probe_does_not_run_the_pool_dry(
        probe: ProbeBinary, root: None) -> None:
    """No ALLOCLAB_HUGETLB_POOL: the machine's pool is not the probe's to exhaust."""
    with hugetlb_pool.reserved(1):
        (it,) = measured(probe, scenario(backing="mmap-hugetlb", size_bytes=HUGE))
    assert it["observations"]["hugetlb_bytes"] == HUGE
    assert "hugetlb_past_pool_refused" not in it["observations"]


def test_without_root_a_pool_scenario_is_skipped_with_the_command() -> None:
    from dataclasses import replace

    from runner.machine.preconditions import check_preconditions
    facts = replace(read_facts(), euid=1000)
    reason = check_preconditions(scenario(backing="mmap-hugetlb", size_bytes=HUGE,
                                          hugetlb_pool=4), facts)
    assert reason is not None
    assert "echo 4 > /proc/sys/vm/nr_hugepages" in reason


@pytest.mark.probe
def test_glibc_malloc_hugetlb_makes_a_large_malloc_block_huge_but_its_straddled_page(
        probe: ProbeBinary) -> None:
    """64 MiB malloc'd: with glibc.malloc.hugetlb=1 glibc advises its mapping for THP, and every
    2 MiB page wholly inside the mapping becomes huge: 31 or 32 of 32 (the block is 16 bytes
    past the mapping's start, which lies where ASLR put it); without the tunable none."""
    plain = scenario(backing="malloc", size_bytes=64 * MIB)
    advised = scenario(backing="malloc", size_bytes=64 * MIB, tunables="glibc.malloc.hugetlb=1")
    (it_plain,) = measured(probe, plain)
    (it_advised,) = measured(probe, advised)
    assert it_plain["observations"]["anon_huge_bytes"] == 0
    assert it_advised["observations"]["alignment_bytes"] == 16
    assert it_advised["observations"]["anon_huge_bytes"] in (31 * HUGE, 32 * HUGE)
    faults = it_advised["phases"]["first_touch"]["minor_faults"]
    huge_pages = it_advised["observations"]["anon_huge_bytes"] // HUGE
    # one fault per huge page, one per 4 KiB page of the rest (the header's page faulted in
    # allocate)
    small_pages = (64 * MIB - huge_pages * HUGE) // PAGE
    assert huge_pages + small_pages - 1 <= faults <= huge_pages + small_pages


@pytest.mark.probe
def test_a_sparse_touch_makes_a_huge_page_resident_per_region_with_thp(
        probe: ProbeBinary) -> None:
    """One page in 512 of a 64 MiB block (32 pages, drawn with the probe's seed): with
    MADV_HUGEPAGE each 2 MiB region touched becomes resident whole; with MADV_NOHUGEPAGE only
    the pages touched."""
    runs = {}
    for thp in ("huge", "nohuge"):
        (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=64 * MIB, thp=thp,
                                         access="write-page", touch_share_ppm=1953))
        growth = it["phases"]["first_touch"]["rss_bytes"] - it["phases"]["allocate"]["rss_bytes"]
        runs[thp] = (it["observations"]["touched_pages"], growth,
                     it["observations"]["anon_huge_bytes"])
    touched, growth, huge = runs["nohuge"]
    assert touched == 32
    assert growth == 32 * PAGE
    assert huge == 0
    touched, growth, huge = runs["huge"]
    assert huge % HUGE == 0
    assert 16 * HUGE <= huge <= 32 * HUGE  # 32 draws over 32 regions: some regions twice
    assert growth == huge
