"""Preconditions: what each scenario needs from the machine, decided from the facts alone."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from runner.core.kinds import Value
from runner.core.model import Scenario
from runner.core.parameters import DEFAULTS
from runner.machine.preconditions import MachineFacts, check_preconditions, find_unmet, read_facts

MiB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
# An unprivileged user on a machine like the workplace's, with no huge pages reserved.
FACTS = MachineFacts(free_huge_pages=0, memlock_limit_bytes=8 * MiB, euid=1000,
                     thp_enabled="madvise", max_map_count=65530, kernel=(6, 18))


def scenario(**params: Value) -> Scenario:
    return Scenario.from_params({**DEFAULTS, "ops": 1, **params})


@pytest.mark.parametrize("params", [
    {},
    {"backing": "mmap-anon", "thp": "nohuge"},
    {"backing": "mmap-anon", "populate": "madv-populate-write"},
    {"backing": "memfd", "ops": 1000},
    {"backing": "mmap-anon", "populate": "mlock", "size": 8 * MiB},  # exactly the limit
])
def test_what_the_machine_has_is_not_skipped(params: dict[str, Value]) -> None:
    assert check_preconditions(scenario(**params), FACTS) is None


def test_hugetlb_needs_enough_free_huge_pages() -> None:
    s = scenario(backing="mmap-hugetlb", size=3_000_000, ops=4)  # two 2 MiB pages per block
    assert check_preconditions(s, FACTS) == (
        "needs 8 free 2 MiB huge pages, the machine has 0 (reserve them as root: "
        "echo 8 > /proc/sys/vm/nr_hugepages)")
    assert check_preconditions(s, replace(FACTS, free_huge_pages=7)) is not None
    assert check_preconditions(s, replace(FACTS, free_huge_pages=8)) is None
    assert check_preconditions(s, replace(FACTS, free_huge_pages=None)) == (
        "this kernel offers no 2 MiB hugetlb pages")


def test_churn_threads_beyond_ops_need_a_huge_page_each() -> None:
    """churn holds one block per thread: 4 threads of 1 pair each need 4 huge pages."""
    s = scenario(backing="mmap-hugetlb", size=2 * MiB, ops=1, workload="churn", threads=4)
    assert check_preconditions(s, replace(FACTS, free_huge_pages=3)) is not None
    assert check_preconditions(s, replace(FACTS, free_huge_pages=4)) is None


def test_mlock_past_the_limit_is_skipped_unless_root_or_unlimited() -> None:
    s = scenario(backing="mmap-anon", populate="mlock", size=4 * MiB, ops=3)
    assert check_preconditions(s, FACTS) == (
        "mlock of 12MiB is past RLIMIT_MEMLOCK (8MiB; raise `ulimit -l` or run as root)")
    assert check_preconditions(s, replace(FACTS, euid=0)) is None
    assert check_preconditions(s, replace(FACTS, memlock_limit_bytes=None)) is None
    # Blocks are locked in whole pages: 100 bytes lock a page.
    pages = 8 * MiB // PAGE
    assert check_preconditions(scenario(backing="mmap-anon", populate="mlock", size=100,
                                        ops=pages), FACTS) is None
    assert check_preconditions(scenario(backing="mmap-anon", populate="mlock", size=100,
                                        ops=pages + 1), FACTS) is not None


def test_thp_needs_a_kernel_with_thp_enabled() -> None:
    huge = scenario(backing="mmap-anon", thp="huge")
    assert "enabled = never" in str(check_preconditions(huge, replace(FACTS,
                                                                      thp_enabled="never")))
    assert check_preconditions(huge, replace(FACTS, thp_enabled="always")) is None
    nohuge = scenario(backing="mmap-anon", thp="nohuge")
    assert check_preconditions(nohuge, replace(FACTS, thp_enabled="never")) is None
    assert "no transparent huge pages" in str(
        check_preconditions(nohuge, replace(FACTS, thp_enabled=None)))


def test_madv_populate_write_needs_linux_5_14() -> None:
    s = scenario(backing="mmap-anon", populate="madv-populate-write")
    assert check_preconditions(s, replace(FACTS, kernel=(5, 13))) == (
        "MADV_POPULATE_WRITE needs Linux 5.14 or later, this is 5.13")
    assert check_preconditions(s, replace(FACTS, kernel=(5, 14))) is None


@pytest.mark.parametrize("backing", ["memfd", "shm"])
def test_a_file_per_block_must_fit_the_mapping_limit(backing: str) -> None:
    s = scenario(backing=backing, size=64, ops=65500)
    assert "vm.max_map_count (65530)" in str(check_preconditions(s, FACTS))
    # Anonymous blocks merge into few mappings: no limit applies.
    assert check_preconditions(scenario(backing="mmap-anon", size=64, ops=65500), FACTS) is None


def test_tunables_this_glibc_lacks_are_skipped_not_silently_ignored() -> None:
    facts = replace(FACTS, glibc_tunables=frozenset({"glibc.malloc.mmap_threshold",
                                                     "glibc.malloc.arena_max"}))
    known = scenario(tunables="glibc.malloc.mmap_threshold=4096:glibc.malloc.arena_max=1")
    assert check_preconditions(known, facts) is None
    typo = scenario(tunables="glibc.malloc.arena_max=1:glibc.malloc.mmap_treshold=4096")
    assert check_preconditions(typo, facts) == (
        "this machine's glibc has no tunable glibc.malloc.mmap_treshold and would ignore it "
        "(`ld.so --list-tunables` lists those it has)")
    # Where the list cannot be read (not glibc, glibc before 2.33), nothing is checked.
    assert check_preconditions(typo, FACTS) is None


def test_mlock_of_a_block_grown_by_mremap_counts_the_grown_size() -> None:
    s = scenario(backing="mmap-anon", populate="mlock", size=3 * MiB, ops=2, workload="resize",
                 grow_method="mremap")
    assert "mlock of 12MiB" in str(check_preconditions(s, FACTS))  # 6 MiB, grown twice


def test_find_unmet_lists_the_skipped_scenarios_by_id() -> None:
    ok = scenario(backing="mmap-anon")
    huge = scenario(backing="mmap-hugetlb", size=2 * MiB)
    assert find_unmet([ok, huge], FACTS) == {huge.id: check_preconditions(huge, FACTS)}


def test_read_facts_reads_this_machine() -> None:
    facts = read_facts()
    assert facts.euid == os.geteuid()
    assert facts.kernel >= (3, 0)
    assert facts.thp_enabled in (None, "always", "madvise", "never")
    assert facts.free_huge_pages is None or facts.free_huge_pages >= 0
    assert facts.memlock_limit_bytes is None or facts.memlock_limit_bytes >= 0
    assert facts.max_map_count is None or facts.max_map_count > 0
    if facts.glibc_tunables is not None:  # glibc 2.33 or later
        assert "glibc.malloc.mmap_threshold" in facts.glibc_tunables
