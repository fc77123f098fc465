"""The probe end to end: the physics of first touch, every backing working and reading what is
there, and the special backings (posix-memalign, memfd, shm, hugetlb). Never timings."""

from __future__ import annotations

import dataclasses
import fcntl
import os
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.core.model import PHASES
from runner.machine import preconditions
from runner.probe.execute import run_process
from runner.probe.native import (
    EXIT_SKIPPED,
    PROBE_VERSION,
    ProbeBinary,
    probe_argv,
)
from tests.probe.running import (
    MIB,
    N_PAGES,
    PAGE,
    measure,
    measured,
    pattern_sums,
    scenario,
)

# --- physics --------------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_first_write_per_page_costs_one_minor_fault_and_one_resident_page(
        probe: ProbeBinary) -> None:
    for it in measured(probe, scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE), 2):
        phases = it["phases"]
        touch = phases["first_touch"]
        assert 0.9 * N_PAGES <= touch["minor_faults"] <= 1.1 * N_PAGES
        growth = touch["rss_bytes"] - phases["allocate"]["rss_bytes"]
        assert 0.9 * N_PAGES * PAGE <= growth <= 1.1 * N_PAGES * PAGE
        assert phases["allocate"]["minor_faults"] < 0.05 * N_PAGES
        assert phases["second_pass"]["minor_faults"] < 0.01 * N_PAGES
        assert abs(phases["second_pass"]["rss_bytes"] - touch["rss_bytes"]) <= 16 * PAGE


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always", "mlock_allowed")
@pytest.mark.parametrize("populate", ["map-populate", "madv-populate-write", "mlock"])
@pytest.mark.parametrize("backing", ["mmap-anon", "memfd"])
def test_populate_moves_the_faults_into_allocate(probe: ProbeBinary, populate: str,
                                                 backing: str) -> None:
    s = scenario(backing=backing, size_bytes=N_PAGES * PAGE, populate=populate,
                 sharing="shared" if backing == "memfd" else "private")
    (it,) = measured(probe, s)
    phases = it["phases"]
    assert phases["allocate"]["minor_faults"] >= 0.9 * N_PAGES
    assert phases["allocate"]["rss_bytes"] - it["rss_before_bytes"] >= 0.9 * N_PAGES * PAGE
    assert phases["first_touch"]["minor_faults"] < 0.05 * N_PAGES
    assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB


@pytest.mark.probe
@pytest.mark.parametrize("access", ["read-all", "read-page"])
def test_reading_untouched_anonymous_memory_maps_the_zero_page(
        probe: ProbeBinary, access: str) -> None:
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE, access=access)
    (it,) = measured(probe, s)
    touch = it["phases"]["first_touch"]
    assert touch["minor_faults"] >= 0.9 * N_PAGES  # faults are counted...
    growth = touch["rss_bytes"] - it["phases"]["allocate"]["rss_bytes"]
    assert growth < 0.05 * N_PAGES * PAGE  # ...but no page becomes resident
    assert it["checksum"] == 0


@pytest.mark.probe
def test_large_malloc_is_its_own_mapping_and_free_returns_it(probe: ProbeBinary) -> None:
    for it in measured(probe, scenario(backing="malloc", size_bytes=64 * MIB), 2):
        phases = it["phases"]
        assert phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"] >= 60 * MIB
        assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB


@pytest.mark.probe
def test_reading_a_cached_file_takes_no_major_faults(probe: ProbeBinary, tmp_path: Path) -> None:
    s = scenario(backing="read-file", size_bytes=64 * MIB, access="read-all",
                 file_dir=str(tmp_path), read_buffer_bytes=0)
    output = measure(probe, s, iterations=2)
    assert isinstance(output["file_fs"], str)
    for it in output["iterations"]:
        for phase in PHASES:
            assert it["phases"][phase]["major_faults"] == 0, phase
        # read() copied the file into the heap buffer: all of it is resident after allocate
        assert it["phases"]["allocate"]["rss_bytes"] - it["rss_before_bytes"] >= 60 * MIB
    assert list(tmp_path.iterdir()) == []  # the data file was unlinked at once


@pytest.mark.probe
def test_mapping_a_cached_file_takes_no_major_faults(probe: ProbeBinary, tmp_path: Path) -> None:
    s = scenario(backing="mmap-file", size_bytes=16 * MIB, access="read-page",
                 file_dir=str(tmp_path))
    (it,) = measured(probe, s)
    for phase in PHASES:
        assert it["phases"][phase]["major_faults"] == 0, phase
    assert it["phases"]["first_touch"]["minor_faults"] > 0


# --- every backing works, and reads what is there -------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize(("fields", "expect_fs"), [
    ({"backing": "malloc", "access": "write-all"}, False),
    ({"backing": "malloc", "access": "read-page", "ops": 64, "size_bytes": 1000}, False),
    ({"backing": "calloc", "access": "write-page"}, False),
    ({"backing": "mmap-anon", "access": "write-all", "populate": "map-populate"}, False),
    ({"backing": "mmap-anon", "access": "write-page", "sharing": "shared"}, False),
    ({"backing": "mmap-anon", "access": "none", "protection": "none"}, False),
    ({"backing": "mmap-file", "access": "write-page", "sharing": "shared"}, True),
    ({"backing": "mmap-file", "access": "write-all", "populate": "map-populate"}, True),
    ({"backing": "read-file", "access": "write-all"}, True),
    ({"backing": "posix-memalign", "access": "write-all", "release": "malloc-trim"}, False),
    ({"backing": "memfd", "access": "write-page", "sharing": "shared"}, False),
    ({"backing": "memfd", "access": "read-all", "protection": "read"}, False),
    ({"backing": "shm", "access": "write-all", "populate": "madv-populate-write"}, False),
    ({"backing": "shm", "access": "none", "protection": "none", "sharing": "shared"}, False),
    ({"backing": "mmap-anon", "access": "write-page", "thp": "huge", "release": "madv-free"},
     False),
    ({"backing": "mmap-file", "access": "read-page", "release": "madv-dontneed"}, True),
    ({"backing": "write-file", "access": "write-all", "sync": "fsync"}, True),
    ({"backing": "write-file", "access": "write-page", "order": "random", "ops": 3}, True),
    ({"backing": "write-file", "access": "write-all", "ops": 3, "write_buffer_bytes": 0},
     True),
    ({"backing": "write-file", "access": "write-all", "threads": 2, "ops": 3,
      "write_buffer_bytes": 64 * 1024}, True),
    ({"backing": "mmap-file", "access": "write-all", "sharing": "shared", "sync": "msync",
      "order": "random", "ops": 2}, True),
    ({"backing": "read-file", "access": "read-page", "cache": "cold", "order": "random"}, True),
    ({"backing": "calloc", "access": "write-page", "workload": "fork"}, False),
    ({"backing": "read-file", "access": "write-page", "workload": "resize", "ops": 2,
      "read_buffer_bytes": 0}, True),
    ({"backing": "read-file", "access": "read-all", "threads": 2, "ops": 3,
      "read_buffer_bytes": 64 * 1024}, True),
    ({"backing": "read-file", "access": "none", "order": "random", "ops": 2,
      "read_buffer_bytes": 16 * 1024}, True),
    ({"backing": "posix-memalign", "access": "read-all", "protection": "read",
      "release": "malloc-trim", "ops": 4}, False),
    ({"backing": "mmap-file", "access": "read-page", "protection": "exec",
      "advice": "sequential"}, True),
    ({"backing": "memfd", "access": "write-all", "sharing": "shared", "advice": "willneed"},
     False),
    ({"backing": "shm", "access": "write-page", "threads": 3, "ops": 7}, False),
])
def test_each_backing_runs(probe: ProbeBinary, tmp_path: Path, fields: dict[str, Any],
                           expect_fs: bool) -> None:
    fields = {"size_bytes": 256 * 1024, "file_dir": str(tmp_path), **fields}
    output = measure(probe, scenario(**fields), warmup=1, iterations=2)
    assert output["probe_version"] == PROBE_VERSION
    assert output["page_size_bytes"] == PAGE
    assert (output["file_fs"] is not None) == expect_fs
    assert [it["warmup"] for it in output["iterations"]] == [True, False, False]


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("sharing", ["private", "shared"])
def test_shared_and_private_anonymous_memory_fault_per_page(probe: ProbeBinary,
                                                            sharing: str) -> None:
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE, sharing=sharing)
    (it,) = measured(probe, s)
    assert 0.9 * N_PAGES <= it["phases"]["first_touch"]["minor_faults"] <= 1.1 * N_PAGES
    growth = it["phases"]["first_touch"]["rss_bytes"] - it["rss_before_bytes"]
    assert growth >= 0.9 * N_PAGES * PAGE


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["read-file", "mmap-file"])
@pytest.mark.parametrize("access", ["read-all", "read-page"])
def test_file_blocks_read_back_the_known_pattern(probe: ProbeBinary, tmp_path: Path,
                                                 backing: str, access: str) -> None:
    size, ops = 3 * PAGE + 57, 3  # a tail that is not a whole word, blocks a stride apart
    protection = "read" if backing == "mmap-file" else "read-write"
    s = scenario(backing=backing, size_bytes=size, ops=ops, access=access,
                 protection=protection, file_dir=str(tmp_path))
    read_all, read_page = pattern_sums(size, ops)
    one_pass = read_all if access == "read-all" else read_page
    for it in measured(probe, s, 2):
        assert it["checksum"] == (2 * one_pass) % 2**64  # first touch + second pass


@pytest.mark.probe
@pytest.mark.parametrize("size", [1000, 1 * MIB])  # from the heap, and from its own mapping
def test_calloc_memory_reads_as_zero(probe: ProbeBinary, size: int) -> None:
    # By the third iteration the blocks are recycled heap chunks that free() wrote its list
    # pointers into (see the malloc test below): only calloc's clearing keeps them zero.
    for it in measured(probe, scenario(backing="calloc", size_bytes=size, ops=8,
                                       access="read-all"), 3):
        assert it["checksum"] == 0


@pytest.mark.probe
def test_recycled_malloc_memory_is_not_zero(probe: ProbeBinary) -> None:
    """What makes the calloc test able to fail: malloc hands back chunks free() wrote into."""
    its = measured(probe, scenario(backing="malloc", size_bytes=1000, ops=8,
                                   access="read-all"), 3)
    assert its[0]["checksum"] == 0  # a fresh heap is zero
    assert its[2]["checksum"] != 0


@pytest.mark.probe
def test_read_only_mapping_can_be_read(probe: ProbeBinary) -> None:
    s = scenario(backing="mmap-anon", size_bytes=MIB, protection="read", access="read-all")
    (it,) = measured(probe, s)
    assert it["checksum"] == 0


@pytest.mark.probe
def test_written_memory_is_read_by_nobody_but_still_written(probe: ProbeBinary) -> None:
    """write-all's memset before free must survive the optimiser: it faults every page."""
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE, access="write-all")
    (it,) = measured(probe, s)
    assert it["phases"]["first_touch"]["rss_bytes"] - it["rss_before_bytes"] >= \
        0.9 * N_PAGES * PAGE


# --- backings: posix-memalign, memfd, shm, hugetlb ------------------------------------------

@pytest.mark.probe
def test_posix_memalign_blocks_are_page_aligned_and_malloc_blocks_are_not(
        probe: ProbeBinary) -> None:
    def alignment(backing: str) -> int:
        (it,) = measured(probe, scenario(backing=backing, size_bytes=1000, ops=8))
        return int(it["observations"]["alignment_bytes"])

    assert alignment("posix-memalign") % PAGE == 0
    assert alignment("malloc") < PAGE  # a 16-byte aligned chunk after its header
    assert alignment("mmap-anon") % PAGE == 0


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("sharing", ["private", "shared"])
@pytest.mark.parametrize("backing", ["memfd", "shm"])
def test_shared_memory_files_fault_per_page_and_munmap_returns_them(
        probe: ProbeBinary, backing: str, sharing: str) -> None:
    s = scenario(backing=backing, sharing=sharing, size_bytes=N_PAGES * PAGE // 4, ops=4)
    names_before = set(Path("/dev/shm").glob("alloclab-*"))  # others' runs may hold some
    for it in measured(probe, s, 2):
        phases = it["phases"]
        assert 0.9 * N_PAGES <= phases["first_touch"]["minor_faults"] <= 1.1 * N_PAGES
        growth = phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"]
        assert 0.9 * N_PAGES * PAGE <= growth <= 1.1 * N_PAGES * PAGE
        # Each block was the last reference to its file: unmapping it frees the pages.
        assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB
        assert it["observations"]["alignment_bytes"] % PAGE == 0
    if backing == "shm":  # each name was unlinked right after shm_open
        assert not set(Path("/dev/shm").glob("alloclab-*")) - names_before


HUGEPAGES = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")


@pytest.fixture
def huge_page_lock() -> Iterator[None]:
    """Test runs of other checkouts on this machine take turns with the huge page pool."""
    with open("/tmp/alloclab-tests-hugepages.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def reserved_huge_pages(huge_page_lock: None) -> Iterator[int]:
    """8 more 2 MiB huge pages reserved for the test, and given back after it."""
    nr = HUGEPAGES / "nr_hugepages"
    if not nr.exists() or os.geteuid() != 0:
        pytest.skip("reserving huge pages needs root and 2 MiB hugetlb pages")
    before = int(nr.read_text())
    try:
        nr.write_text(str(before + 8))
        if (preconditions.read_facts().free_huge_pages or 0) < 8:
            pytest.skip("the kernel could not reserve 8 huge pages (memory fragmented?)")
        yield 8
    finally:
        nr.write_text(str(before))


@pytest.mark.probe
@pytest.mark.parametrize("populate", ["none", "map-populate"])
def test_hugetlb_blocks_fault_once_per_huge_page(probe: ProbeBinary, reserved_huge_pages: int,
                                                 populate: str) -> None:
    # 4 blocks of 3 MB: each takes two 2 MiB pages, 8 in all.
    s = scenario(backing="mmap-hugetlb", size_bytes=3_000_000, ops=4, populate=populate)
    assert preconditions.check_preconditions(s, preconditions.read_facts()) is None
    for it in measured(probe, s, 2):
        phases = it["phases"]
        faulting = "allocate" if populate == "map-populate" else "first_touch"
        # one fault per huge page, not one per small page (2930 of them)
        assert reserved_huge_pages <= phases[faulting]["minor_faults"] <= reserved_huge_pages + 4
        assert it["observations"]["hugetlb_bytes"] == 4 * (4 << 20)
        assert it["observations"]["alignment_bytes"] % (2 << 20) == 0
        # hugetlb pages are not counted in the resident set
        assert phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"] < 1 * MIB


@pytest.mark.probe
@pytest.mark.usefixtures("huge_page_lock")
def test_hugetlb_without_enough_free_huge_pages_is_skipped_with_the_reason(
        probe: ProbeBinary) -> None:
    available = preconditions.read_facts().free_huge_pages
    if available is None:
        pytest.skip("no 2 MiB hugetlb pages in this kernel")
    s = scenario(backing="mmap-hugetlb", size_bytes=2 << 20, ops=available + 1)
    assert "free 2 MiB huge pages" in str(
        preconditions.check_preconditions(s, preconditions.read_facts()))
    record = run_process(probe_argv(probe, s, 0, 1), scenario_id=s.id, process_index=0,
                         timeout_s=60)
    assert record.status == "skipped", record.stderr_tail
    assert record.exit_code == EXIT_SKIPPED and record.probe is None
    assert record.stderr_tail.startswith("probe: skipped: mmap(MAP_HUGETLB): not enough free")
    assert record.stderr_tail.count("\n") == 1


@pytest.mark.probe
def test_mlock_past_the_limit_is_skipped_with_the_reason(probe: ProbeBinary,
                                                         tmp_path: Path) -> None:
    """As an ordinary user (root is exempt), mlock of more than RLIMIT_MEMLOCK is refused."""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None or soft == resource.RLIM_INFINITY:
        pytest.skip("needs root, setpriv and a finite RLIMIT_MEMLOCK to run as another user")
    size = -(-(soft + 1) // PAGE) * PAGE
    s = scenario(backing="mmap-anon", size_bytes=size, populate="mlock")
    user = dataclasses.replace(preconditions.read_facts(), euid=65534)
    assert "past RLIMIT_MEMLOCK" in str(preconditions.check_preconditions(s, user))
    shared = tmp_path / "shared"  # a directory the other user may enter
    shared.mkdir()
    shared.chmod(0o755)
    binary = shutil.copy(probe.path, shared / "probe")
    argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", str(binary),
            *probe_argv(probe, s, 0, 1)[1:]]
    tmp_path.chmod(0o755)
    record = run_process(argv, scenario_id=s.id, process_index=0, timeout_s=60)
    assert record.status == "skipped", record.stderr_tail
    assert record.stderr_tail.startswith("probe: skipped: mlock: Cannot allocate memory "
                                         f"(RLIMIT_MEMLOCK is {soft} bytes")
