"""The probe end to end: build it, run it, and check the physics it reports (never timings).

Physical facts these tests rely on (Linux, 4 KiB pages, THP not `always`): the first write to
an untouched private anonymous page takes one minor fault and makes it resident; MAP_POPULATE
takes those faults inside mmap; reading untouched anonymous memory maps the shared zero page
(faults, no RSS); glibc serves a 64 MiB malloc from its own mapping and unmaps it on free;
read() from a file in the page cache takes no major faults.
"""

from __future__ import annotations

import ctypes
import dataclasses
import fcntl
import json
import mmap
import os
import resource
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.core.errors import ProbeBuildError
from runner.core.model import PHASES, Scenario
from runner.core.parameters import PARAMETERS
from runner.machine import preconditions
from runner.probe.execute import run_process
from runner.probe.native import (
    CFLAGS,
    EXIT_SKIPPED,
    PROBE_VERSION,
    ProbeBinary,
    build_probe,
    find_compiler,
    hash_sources,
    parse_probe_output,
    probe_argv,
    probe_env,
    probe_sources,
)

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
N_PAGES = 4096  # 16 MiB of 4 KiB pages
PROBE_DIR = Path(__file__).resolve().parent.parent / "runner" / "probe"
C_SOURCES = sorted(PROBE_DIR.glob("*.c"))


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ProbeBinary:
    return build_probe(tmp_path_factory.mktemp("probe-cache"))


def scenario(**fields: Any) -> Scenario:
    """A scenario from PARAMETERS' defaults, with ops=1 unless given."""
    values: dict[str, Any] = {p.field: p.default for p in PARAMETERS}
    values["ops"] = 1
    values.update(fields)
    return Scenario(**values)


def measure(probe: ProbeBinary, s: Scenario, warmup: int = 0, iterations: int = 1,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    record = run_process(probe_argv(probe, s, warmup, iterations), scenario_id=s.id,
                         process_index=0, timeout_s=60, extra_env=probe_env(s, env))
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    return record.probe


def measured(probe: ProbeBinary, s: Scenario, iterations: int = 1,
             env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The non-warm-up iterations."""
    return [i for i in measure(probe, s, 0, iterations, env)["iterations"] if not i["warmup"]]


def pattern_sums(size: int, ops: int) -> tuple[int, int]:
    """(read-all, read-page) sums over `ops` blocks of the probe's file pattern, one pass."""
    stride = -(-size // PAGE) * PAGE
    words = size // 8
    read_all = read_page = 0
    for block in range(ops):
        data = bytes((k % 251) + 1 for k in range(block * stride, block * stride + size))
        read_all += sum(int.from_bytes(data[8 * w:8 * w + 8], "little") for w in range(words))
        read_all += sum(data[8 * words:])
        read_page += sum(data[offset] for offset in range(0, size, PAGE))
    return read_all % 2**64, read_page


@pytest.fixture
def mlock_allowed(request: pytest.FixtureRequest) -> None:
    """populate mlock of 16 MiB needs root or an RLIMIT_MEMLOCK that large."""
    if request.node.callspec.params.get("populate") != "mlock":
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < N_PAGES * PAGE:
        pytest.skip(f"mlock of 16 MiB is past RLIMIT_MEMLOCK ({soft} bytes) and not root")


@pytest.fixture
def no_thp_always() -> None:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if path.exists() and "[always]" in path.read_text():
        pytest.skip("THP is 'always': anonymous memory may come in 2 MiB pages, one fault each")


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
    for it in measured(probe, s, 2):
        phases = it["phases"]
        assert 0.9 * N_PAGES <= phases["first_touch"]["minor_faults"] <= 1.1 * N_PAGES
        growth = phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"]
        assert 0.9 * N_PAGES * PAGE <= growth <= 1.1 * N_PAGES * PAGE
        # Each block was the last reference to its file: unmapping it frees the pages.
        assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB
        assert it["observations"]["alignment_bytes"] % PAGE == 0
    if backing == "shm":  # each name was unlinked right after shm_open
        assert not list(Path("/dev/shm").glob("alloclab-*"))


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


# --- releasing memory ------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_madv_dontneed_returns_the_pages_of_private_anonymous_memory(
        probe: ProbeBinary) -> None:
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE, release="madv-dontneed")
    for it in measured(probe, s, 2):
        phases = it["phases"]
        assert phases["second_pass"]["rss_bytes"] - it["rss_before_bytes"] >= \
            0.9 * N_PAGES * PAGE
        assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_madv_free_leaves_the_pages_resident_without_memory_pressure(
        probe: ProbeBinary) -> None:
    """MADV_FREE only marks the pages lazily freeable: with memory to spare, the kernel keeps
    them mapped and counted in RSS until the munmap after the phase."""
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE, release="madv-free")
    for it in measured(probe, s, 2):
        phases = it["phases"]
        assert phases["free"]["rss_bytes"] - it["rss_before_bytes"] >= 0.9 * N_PAGES * PAGE
        assert it["rss_before_bytes"] <= phases["second_pass"]["rss_bytes"]


@pytest.mark.probe
def test_malloc_trim_returns_freed_heap_pages_that_free_keeps(probe: ProbeBinary) -> None:
    """256 blocks of 64 KiB come from the heap (under the 128 KiB mmap threshold). Freeing
    them all merges them into the heap top, which glibc trims by itself once it exceeds the
    trim threshold; raised to 1 GiB here, free keeps the 16 MiB and malloc_trim returns it."""
    env = {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1073741824"}
    size, ops = 64 * 1024, 256

    def kept_after_free(release: str, tunables: dict[str, str] | None) -> float:
        (it,) = measured(probe, scenario(backing="malloc", size_bytes=size, ops=ops,
                                         release=release), env=tunables)
        return float(it["phases"]["free"]["rss_bytes"] - it["rss_before_bytes"])

    assert kept_after_free("free", env) >= 0.9 * size * ops
    assert kept_after_free("malloc-trim", env) <= 1 * MIB
    assert kept_after_free("free", None) <= 1 * MIB  # the default threshold trims by itself


@pytest.mark.probe
def test_one_block_kept_at_the_heap_top_pins_the_freed_memory(probe: ProbeBinary) -> None:
    """64 blocks of 64 KiB from the heap: freed all, glibc trims the top and returns them;
    with the last (topmost) one kept, the freed ones stay resident behind it, until
    malloc_trim gives back the whole pages of the free chunks."""
    size, ops = 64 * 1024, 64

    def kept_after_free(release: str) -> float:
        (it,) = measured(probe, scenario(backing="malloc", size_bytes=size, ops=ops,
                                         release=release))
        return float(it["phases"]["free"]["rss_bytes"] - it["rss_before_bytes"])

    assert kept_after_free("free") <= 1 * MIB
    assert kept_after_free("free-but-last") >= 0.9 * size * ops
    assert kept_after_free("malloc-trim-but-last") <= 2 * size + 1 * MIB


# --- files: cold cache, page order, write() and msync -----------------------------------------

def _is_tmpfs(path: Path) -> bool:
    """Whether the filesystem holding `path` is tmpfs: its longest mount point in /proc."""
    resolved, best, fs_type = path.resolve(), "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount_point, kind, *_ = line.split()
        if (resolved == Path(mount_point) or Path(mount_point) in resolved.parents) and \
                len(mount_point) >= len(best):
            best, fs_type = mount_point, kind
    return fs_type == "tmpfs"


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """A directory on a filesystem that evicts clean pages (not tmpfs)."""
    if _is_tmpfs(tmp_path):
        pytest.skip(f"{tmp_path} is tmpfs: nothing can be evicted there")
    return tmp_path


@pytest.mark.probe
def test_cold_cache_evicts_the_file_and_mapping_it_reads_the_disk(probe: ProbeBinary,
                                                                  disk_dir: Path) -> None:
    cold = scenario(backing="mmap-file", size_bytes=16 * MIB, access="read-page",
                    cache="cold", file_dir=str(disk_dir))
    for it in measured(probe, cold, 2):  # evicted again before each iteration
        assert it["observations"]["resident_ppm_before"] <= 10_000  # at most 1% cached
        assert it["phases"]["first_touch"]["major_faults"] > 0
    (warm,) = measured(probe, dataclasses.replace(cold, cache="warm"))
    assert warm["observations"]["resident_ppm_before"] == 1_000_000
    assert warm["phases"]["first_touch"]["major_faults"] == 0


@pytest.mark.probe
def test_cold_cache_on_tmpfs_stays_resident_and_says_so(probe: ProbeBinary) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not _is_tmpfs(shm):
        pytest.skip("no tmpfs at /dev/shm")
    s = scenario(backing="mmap-file", size_bytes=4 * MIB, access="read-page", cache="cold",
                 file_dir=str(shm))
    output = measure(probe, s)
    assert output["file_fs"] == "tmpfs"
    (it,) = output["iterations"]
    assert it["observations"]["resident_ppm_before"] == 1_000_000  # not cold: said so
    assert it["phases"]["first_touch"]["major_faults"] == 0


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["write-file", "mmap-file"])
def test_written_file_pages_are_written_back_so_they_can_be_evicted(
        probe: ProbeBinary, disk_dir: Path, backing: str) -> None:
    """Iteration 1 wrote the file (pwrite, or stores to a shared mapping): dirty pages stay
    cached unless written back, so a second cold start shows the probe writes back first."""
    s = scenario(backing=backing, sharing="shared" if backing == "mmap-file" else "private",
                 size_bytes=4 * MIB, access="write-all", cache="cold", file_dir=str(disk_dir))
    for it in measured(probe, s, 2):
        assert it["observations"]["resident_ppm_before"] <= 10_000


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_random_order_touches_every_page_exactly_once(probe: ProbeBinary) -> None:
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE // 4, ops=4, order="random")
    for it in measured(probe, s, 2):
        touch = it["phases"]["first_touch"]
        assert 0.98 * N_PAGES <= touch["minor_faults"] <= 1.02 * N_PAGES
        growth = touch["rss_bytes"] - it["rss_before_bytes"]
        assert 0.98 * N_PAGES * PAGE <= growth <= 1.02 * N_PAGES * PAGE


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["read-file", "mmap-file"])
@pytest.mark.parametrize("access", ["read-all", "read-page"])
def test_random_order_reads_every_byte_of_the_file_once(probe: ProbeBinary, tmp_path: Path,
                                                        backing: str, access: str) -> None:
    size, ops = 3 * PAGE + 57, 3  # partial last pages, blocks a stride apart
    s = scenario(backing=backing, size_bytes=size, ops=ops, access=access, order="random",
                 file_dir=str(tmp_path))
    read_all, read_page = pattern_sums(size, ops)
    one_pass = read_all if access == "read-all" else read_page
    for it in measured(probe, s, 2):
        assert it["checksum"] == (2 * one_pass) % 2**64


@pytest.mark.probe
@pytest.mark.parametrize(("sync", "cleaned"), [("none", False), ("msync", True),
                                                ("fsync", True)])
def test_syncing_a_shared_file_mapping_writes_it_back(probe: ProbeBinary, disk_dir: Path,
                                                      sync: str, cleaned: bool) -> None:
    """Writeback cleans the pages and write-protects them again, so after msync or fsync the
    second pass takes a write fault per page; unsynced, the pages stay dirty and writable."""
    pages = 4 * MIB // PAGE
    s = scenario(backing="mmap-file", sharing="shared", size_bytes=4 * MIB,
                 access="write-page", sync=sync, file_dir=str(disk_dir))
    (it,) = measured(probe, s)
    faults = it["phases"]["second_pass"]["minor_faults"]
    assert faults >= 0.9 * pages if cleaned else faults < 0.05 * pages


# --- fork: visibility, copy-on-write, PSS -----------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize(("backing", "sharing", "shared"), [
    ("malloc", "private", False),
    ("mmap-anon", "private", False),
    ("mmap-anon", "shared", True),
    ("memfd", "shared", True),
    ("shm", "private", False),
    ("mmap-file", "shared", True),
    ("mmap-file", "private", False),
])
def test_fork_child_sees_the_parent_and_only_shared_memory_carries_back(
        probe: ProbeBinary, tmp_path: Path, backing: str, sharing: str, shared: bool) -> None:
    s = scenario(backing=backing, sharing=sharing, size_bytes=256 * 1024, ops=2,
                 workload="fork", access="write-all", file_dir=str(tmp_path))
    for it in measured(probe, s, 2):
        assert it["observations"]["child_sees_parent"] == 1
        assert it["observations"]["parent_sees_child"] == int(shared)


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("sharing", ["private", "shared"])
def test_fork_copies_private_pages_on_write_and_splits_shared_ones(probe: ProbeBinary,
                                                                   sharing: str) -> None:
    size = N_PAGES * PAGE
    s = scenario(backing="mmap-anon", sharing=sharing, size_bytes=size, workload="fork")
    (it,) = measured(probe, s)
    observed, phases = it["observations"], it["phases"]
    child_faults = phases["second_pass"]["minor_faults"]
    parent_rss = phases["second_pass"]["rss_bytes"]
    if sharing == "private":
        assert 0.9 * N_PAGES <= child_faults <= 1.1 * N_PAGES  # one copy per page written
        for pss in (observed["parent_pss_bytes"], observed["child_pss_bytes"]):
            assert pss >= 0.9 * size  # each has its own copy
        assert parent_rss - observed["parent_pss_bytes"] < 0.1 * size
    else:
        # no copies, but fork copied no page table entries of the shared mapping: the child's
        # first write, which nothing before it read, maps each page with one fault
        assert 0.9 * N_PAGES <= child_faults <= 1.1 * N_PAGES
        assert observed["child_sees_parent"] == 1
        for pss in (observed["parent_pss_bytes"], observed["child_pss_bytes"]):
            assert 0.45 * size <= pss <= 0.6 * size + 2 * MIB  # half of every shared page
        assert parent_rss - observed["parent_pss_bytes"] >= 0.45 * size
    assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB


# --- resize -----------------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize(("backing", "method", "copies"), [
    ("malloc", "realloc", False),  # a chunk glibc mapped: realloc is mremap
    ("mmap-anon", "mremap", False),
    ("malloc", "copy", True),
    ("mmap-anon", "copy", True),
])
def test_growing_a_large_block_moves_pages_or_copies_bytes(
        probe: ProbeBinary, backing: str, method: str, copies: bool) -> None:
    s = scenario(backing=backing, size_bytes=N_PAGES * PAGE, workload="resize",
                 grow_method=method)
    first, _ = its = measured(probe, s, 2)
    for it in its:
        grow = it["phases"]["second_pass"]
        assert it["observations"]["data_survived"] == 1
        if copies:
            assert grow["minor_faults"] >= 0.9 * N_PAGES  # the new block's pages
            assert it["observations"]["blocks_moved"] == 1
        else:
            assert grow["minor_faults"] < 0.05 * N_PAGES  # page table entries moved
            assert grow["rss_bytes"] - it["phases"]["first_touch"]["rss_bytes"] < 1 * MIB
    # In a fresh process every block is mapped and goes back at free. (Later iterations may
    # find the threshold raised by those frees, and keep the heap.)
    assert abs(first["phases"]["free"]["rss_bytes"] - first["rss_before_bytes"]) <= 2 * MIB


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["malloc", "calloc", "posix-memalign"])
def test_realloc_of_small_heap_blocks_keeps_their_data(probe: ProbeBinary,
                                                       backing: str) -> None:
    s = scenario(backing=backing, size_bytes=1000, ops=8, workload="resize",
                 access="write-all", grow_factor=3)
    for it in measured(probe, s, 2):
        assert it["observations"]["data_survived"] == 1
        assert 0 <= it["observations"]["blocks_moved"] <= 8


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("populate", ["none", "map-populate", "madv-populate-write"])
def test_the_fault_in_window_counts_every_page_once_wherever_populate_puts_it(
        probe: ProbeBinary, populate: str) -> None:
    """fault_in (allocate + first touch) sees one fault per page whether populate moved the
    faults into allocate or first touch took them."""
    (it,) = measured(probe, scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE,
                                     populate=populate))
    phases = it["phases"]
    faults = phases["allocate"]["minor_faults"] + phases["first_touch"]["minor_faults"]
    assert 0.9 * N_PAGES <= faults <= 1.1 * N_PAGES
    growth = phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"]
    assert 0.9 * N_PAGES * PAGE <= growth <= 1.1 * N_PAGES * PAGE


@pytest.mark.probe
def test_an_anonymous_block_is_a_mapping_of_its_own_not_part_of_the_probes_memory(
        probe: ProbeBinary) -> None:
    """The kernel places a new mapping right below the last one, and the probe's own memory
    is private anonymous read-write too: a read-write block mapped next to it would join it
    (mmap extending the probe's mapping, munmap splitting it: other kernel work than for a
    mapping of its own). A read-only block never joins it; a read-write block must add as
    many mappings as a read-only one, in every iteration."""
    counts = {}
    for protection in ("read-write", "read"):
        s = scenario(backing="mmap-anon", size_bytes=PAGE, access="none", protection=protection)
        counts[protection] = {it["observations"]["mappings"] for it in measured(probe, s, 2)}
    assert counts["read-write"] == counts["read"]
    assert len(counts["read"]) == 1


# --- churn ------------------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("backing", ["mmap-anon", "memfd", "posix-memalign"])
def test_churn_faults_each_fresh_block_once_and_keeps_none(probe: ProbeBinary,
                                                         backing: str) -> None:
    """Each pair maps (or allocates) one page, writes it and gives it back: one fault per
    pair for a mapping, which comes fresh every time; nothing stays resident; the whole loop
    is the allocate slot and the other three are empty."""
    ops = 256
    s = scenario(backing=backing, size_bytes=PAGE, ops=ops, workload="churn",
                 sharing="shared" if backing == "memfd" else "private")
    for it in measured(probe, s, 2):
        phases = it["phases"]
        if backing != "posix-memalign":
            assert 0.9 * ops <= phases["allocate"]["minor_faults"] <= 1.1 * ops + 8
        assert phases["allocate"]["ns"] > 0
        assert abs(phases["allocate"]["rss_bytes"] - it["rss_before_bytes"]) <= 64 * PAGE
        for phase in ("first_touch", "second_pass", "free"):
            assert phases[phase]["ns"] == 0 and phases[phase]["minor_faults"] == 0
            assert phases[phase]["rss_bytes"] == phases["allocate"]["rss_bytes"]


@pytest.mark.probe
def test_churn_reuses_one_heap_chunk_where_cycle_keeps_a_batch(probe: ProbeBinary) -> None:
    """malloc/free pairs of 4 KiB reuse the same chunk: after the first iteration no faults
    and no growth; cycle's batch of the same blocks grows the heap by all of them at once."""
    ops = 1024
    churn = measured(probe, scenario(backing="malloc", size_bytes=PAGE, ops=ops,
                                     workload="churn"), 3)
    for it in churn[1:]:
        assert it["phases"]["allocate"]["minor_faults"] <= 2
    first_churn = churn[0]["phases"]["allocate"]["rss_bytes"] - churn[0]["rss_before_bytes"]
    assert first_churn < 64 * PAGE
    (cycle,) = measured(probe, scenario(backing="malloc", size_bytes=PAGE, ops=ops))
    assert cycle["observations"]["brk_growth_bytes"] >= ops * PAGE
    # the batch's fresh pages fault in allocate (chunk headers) and first touch together
    faults = sum(cycle["phases"][phase]["minor_faults"] for phase in ("allocate", "first_touch"))
    assert faults >= 0.9 * ops


@pytest.mark.probe
def test_churn_reads_what_it_wrote_nowhere_else(probe: ProbeBinary) -> None:
    """access read-all of fresh calloc'd blocks sums zeros: the checksum is 0; the pairs are
    done (the loop is not optimised away: it takes time and, for 64 KiB blocks above no
    threshold, returns memory each time)."""
    (it,) = measured(probe, scenario(backing="calloc", size_bytes=64 << 10, ops=64,
                                     workload="churn", access="read-all"))
    assert it["checksum"] == 0
    assert it["phases"]["allocate"]["ns"] > 0


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize(("backing", "method"), [("mmap-anon", "mremap"),
                                                 ("malloc", "realloc")])
def test_a_growth_chain_faults_only_the_parts_it_touches(probe: ProbeBinary, backing: str,
                                                         method: str) -> None:
    """64 KiB doubled 4 times is 1 MiB. mremap moves or extends the mapping and faults
    nothing; realloc copies a heap chunk at most once per step, no more than the old part,
    and the copies of all steps together are at most the pages the chain adds. With
    touch_grown each step's new part is written once, one fault per page it adds. The data
    of every step survives the later ones."""
    start, steps = 64 << 10, 4
    final = start << steps
    added_pages = (final - start) // PAGE
    copies = 0 if method == "mremap" else added_pages  # at most
    for touch in (False, True):
        s = scenario(backing=backing, size_bytes=start, workload="resize", grow_method=method,
                     grow_steps=steps, touch_grown=touch)
        for it in measured(probe, s, 2):
            grow = it["phases"]["second_pass"]
            assert it["observations"]["data_survived"] == 1
            growth = grow["rss_bytes"] - it["phases"]["first_touch"]["rss_bytes"]
            touched = added_pages if touch else 0
            assert 0.9 * touched <= grow["minor_faults"] <= 1.1 * (touched + copies) + 8
            if touch:
                assert growth >= 0.9 * (final - start)
            elif method == "mremap":
                assert growth <= 0.1 * (final - start)


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


# --- the command line and exit statuses -----------------------------------------------------

def _run_raw(probe: ProbeBinary, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(probe.path), *args], capture_output=True, text=True,
                          timeout=30, check=False)


def _good_args(**overrides: str) -> list[str]:
    args = {"backing": "malloc", "size_bytes": "4096", "sharing": "private",
            "protection": "read-write", "populate": "none", "access": "write-page", "ops": "1",
            "file_dir": "/tmp", "thp": "default", "release": "auto", "workload": "cycle",
            "cache": "warm", "order": "sequential", "sync": "none", "grow_method": "realloc",
            "grow_factor": "2", "check_zero": "0", "threads": "1", "history": "fresh",
            "host_warm": "0", "advice": "none", "read_buffer_bytes": "1048576",
            "write_buffer_bytes": "1048576", "grow_steps": "1", "touch_grown": "0",
            "heap_pad": "default", "touch_share_ppm": "1000000", "file_origin": "existing",
            "file_layout": "whole", "check_content": "0", "file_open": "once", "noreserve": "0",
            "keep_every": "0", "pause_ms": "0", "warmup": "0",
            "iterations": "1", **overrides}
    return [f"--{k}={v}" for k, v in args.items()]


@pytest.mark.probe
def test_good_arguments_print_one_json_line(probe: ProbeBinary) -> None:
    result = _run_raw(probe, _good_args())
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("}\n") and result.stdout.count("\n") == 1
    parse_probe_output(result.stdout)


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    [],
    _good_args()[1:],  # missing --backing
    [*_good_args(), "--ops=2"],  # given twice
    [*_good_args(), "--colour=blue"],
    _good_args(backing="sbrk"),
    _good_args(size_bytes="4k"),
    _good_args(size_bytes="-1"),
    _good_args(ops="0"),  # 'auto' must be resolved before the probe runs
    _good_args(populate="yes"),
    _good_args(populate="1"),  # the probe takes the choice; true/false are spec aliases only
    _good_args(iterations="0"),
    _good_args(release="munmap"),  # heap memory must never reach munmap
    _good_args(backing="mmap-anon", release="malloc-trim"),
    _good_args(thp="huge"),  # thp is for mmap-anon
    _good_args(thp="always"),
    _good_args(threads="0"),
    _good_args(threads="2"),  # more threads than blocks
    _good_args(grow_factor="1"),
    _good_args(check_zero="2"),
    _good_args(workload="fork", order="random"),
    _good_args(workload="resize", backing="mmap-anon", release="munmap"),  # realloc of a map
    _good_args(workload="resize", grow_method="mremap"),  # mremap of heap memory
    _good_args(sync="msync"),
    _good_args(backing="write-file", sync="msync"),
    _good_args(cache="cold"),
    _good_args(history="used"),
    _good_args(history="recycled", backing="read-file"),  # the pattern would meet the file
    _good_args(host_warm="2"),
    _good_args(workload="limits", backing="malloc", access="none"),
    _good_args(workload="limits", backing="mmap-anon", release="munmap"),  # touches pages
    _good_args(workload="limits", backing="memfd", access="none", release="munmap"),
    [*_good_args(), "--trace_heap=1"],  # the trace's own argument has no value
    _good_args(protection="read"),  # malloc gives no control over protection
    _good_args(backing="calloc", protection="exec"),
    _good_args(advice="willneed"),  # advice is for mappings
    _good_args(advice="hugepage"),
    _good_args(read_buffer_bytes="1000"),  # whole 4 KiB units
    _good_args(read_buffer_bytes=str(128 << 20)),
    _good_args(write_buffer_bytes="1000"),
    _good_args(backing="write-file", write_buffer_bytes="4096", check_zero="1"),
    _good_args(backing="read-file", workload="resize"),  # a read buffer keeps no blocks
    _good_args(backing="read-file", check_zero="1"),
    _good_args(grow_steps="0"),
    _good_args(grow_steps="31"),
    _good_args(touch_grown="2"),
    _good_args(workload="resize", grow_factor="64", grow_steps="30"),  # 64^30 overflows
    _good_args(heap_pad="always"),
    _good_args(heap_pad="keep", backing="mmap-anon", release="munmap"),  # no heap
    _good_args(heap_pad="keep", release="malloc-trim"),
    _good_args(heap_pad="keep", threads="2", ops="2"),
    _good_args(workload="churn", release="none"),  # churn ends each block at once
    _good_args(workload="churn", backing="mmap-anon", release="madv-dontneed"),
    _good_args(workload="churn", backing="posix-memalign", protection="read",
               access="read-page"),
    _good_args(workload="churn", threads="2", ops="2"),
    _good_args(workload="churn", backing="write-file"),
    # reuse writes again what madvise released: no other release, no other memory
    _good_args(workload="reuse", backing="mmap-anon", release="munmap"),
    _good_args(workload="reuse", backing="memfd", release="madv-free"),
    _good_args(workload="reuse", backing="mmap-anon", sharing="shared", release="madv-free"),
    ["backing=malloc"],
])
def test_bad_arguments_exit_2(probe: ProbeBinary, args: list[str]) -> None:
    result = _run_raw(probe, args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("probe: ")


@pytest.mark.probe
def test_failing_system_call_exits_3_naming_it(probe: ProbeBinary, tmp_path: Path) -> None:
    result = _run_raw(probe, _good_args(backing="read-file", file_dir=str(tmp_path / "nope")))
    assert result.returncode == 3
    assert "statfs: No such file or directory" in result.stderr
    huge = _run_raw(probe, _good_args(size_bytes=str(1 << 46)))  # 64 TiB: more than any VM
    assert huge.returncode == 3
    assert "malloc: Cannot allocate memory" in huge.stderr


@pytest.mark.probe
def test_probe_argv_names_every_parameter_field(probe: ProbeBinary) -> None:
    s = scenario(backing="mmap-anon", populate="map-populate", ops=7, size_bytes=8192,
                 check_zero=True, tunables="glibc.malloc.mmap_threshold=4096",
                 history="recycled", host_warm=True)
    argv = probe_argv(probe, s, warmup=2, iterations=3)
    assert argv[0] == str(probe.path)
    options = [p for p in PARAMETERS if p.probe_option]
    assert [p.field for p in PARAMETERS if not p.probe_option] == ["tunables"]
    assert argv[1:] == [f"--{p.field}={v}" for p, v in zip(options, [
        "mmap-anon", "8192", "private", "read-write", "map-populate", "write-page", "7", "/tmp",
        "default", "auto", "cycle", "warm", "sequential", "none", "realloc", "2", "1", "1",
        "none", "1048576", "1048576", "recycled", "1", "1", "0", "default", "1000000",
        "existing", "whole", "0", "once", "0", "0", "0"],
        strict=True)] + ["--warmup=2", "--iterations=3"]


# --- building -------------------------------------------------------------------------------

@pytest.mark.probe
def test_source_compiles_without_warnings(tmp_path: Path) -> None:
    compiler, _ = find_compiler()
    result = subprocess.run([*compiler, *CFLAGS, "-Werror", "-o", str(tmp_path / "p"),
                             *map(str, C_SOURCES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_probe_sources_are_every_c_file_and_header() -> None:
    names = [path.name for path in probe_sources(PROBE_DIR)]
    assert "probe.c" in names and "probe.h" in names and len(names) > 5
    assert names == sorted(path.name for path in PROBE_DIR.iterdir()
                           if path.suffix in (".c", ".h"))


def test_content_hash_covers_every_source_file(tmp_path: Path) -> None:
    for name in ("a.c", "b.c", "p.h"):
        (tmp_path / name).write_text(f"/* {name} */\n")
    sources = probe_sources(tmp_path)
    before = hash_sources(sources, CFLAGS, "cc 1")
    assert hash_sources(sources, CFLAGS, "cc 1") == before
    for name in ("a.c", "b.c", "p.h"):
        (tmp_path / name).write_text(f"/* {name}, edited */\n")
        after = hash_sources(sources, CFLAGS, "cc 1")
        assert after != before, name
        before = after
    assert hash_sources(sources, CFLAGS, "cc 2") != before
    assert hash_sources(sources[:2], CFLAGS, "cc 1") != before  # a file fewer


@pytest.mark.probe
def test_build_is_cached_by_content_hash(probe: ProbeBinary) -> None:
    before = probe.path.stat().st_mtime_ns
    again = build_probe(probe.path.parent)
    assert again == probe
    assert probe.path.stat().st_mtime_ns == before
    assert probe.path.name == f"probe-{probe.source_hash}" and len(probe.source_hash) == 16
    assert probe.flags == CFLAGS and probe.compiler


@pytest.mark.probe
def test_concurrent_builds_leave_one_working_binary(tmp_path: Path) -> None:
    results: list[ProbeBinary] = []
    threads = [threading.Thread(target=lambda: results.append(build_probe(tmp_path)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len({r.path for r in results}) == 1
    assert [p.name for p in tmp_path.iterdir()] == [results[0].path.name]  # no temp files
    assert _run_raw(results[0], _good_args()).returncode == 0


def test_missing_compiler_is_a_build_error(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-alloclab")
    with pytest.raises(ProbeBuildError, match=r"no-such-compiler-alloclab.*(install|set CC)"):
        build_probe(tmp_path)


def test_compile_failure_reports_the_compiler_errors(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    fake = tmp_path / "fakecc"
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "fakecc 1.0"; exit 0; fi\n'
                    'echo "probe.c:1:1: error: the compiler says no" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(ProbeBuildError, match="error: the compiler says no"):
        build_probe(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # the temp file was removed


# --- the output contract --------------------------------------------------------------------

def _sample_output() -> dict[str, Any]:
    phase = {"ns": 10, "minor_faults": 1, "major_faults": 0, "rss_bytes": 4096}
    return {"probe_version": PROBE_VERSION, "libc": {"name": "glibc", "version": "2.36"},
            "page_size_bytes": 4096, "file_fs": None,
            "iterations": [{"warmup": False, "rss_before_bytes": 0, "checksum": 2**64 - 1,
                            "phases": {p: dict(phase) for p in PHASES},
                            "observations": {"alignment_bytes": 16, "mprotect_ns": 0}}]}


def test_probe_env_appends_the_scenarios_tunables_to_the_inherited_ones() -> None:
    inherited = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1", "MALLOC_ARENA_MAX": "2"}
    s = scenario(tunables="glibc.malloc.mmap_threshold=4096")
    assert probe_env(s, inherited) == {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=4096",
        "MALLOC_ARENA_MAX": "2"}
    assert probe_env(s) == {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"}
    assert probe_env(scenario(), inherited) == inherited
    assert inherited["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=1"  # not changed in place


def test_parse_accepts_the_documented_shape() -> None:
    assert parse_probe_output(json.dumps(_sample_output())) == _sample_output()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("libc"), "missing libc"),
    (lambda d: d.update(extra=1), "unexpected extra"),
    (lambda d: d.update(probe_version=0), "probe_version 0"),
    (lambda d: d.update(iterations=[]), "non-empty"),
    (lambda d: d.update(file_fs=3), "file_fs"),
    (lambda d: d["iterations"][0].update(warmup=0), r"iterations\[0\].warmup"),
    (lambda d: d["iterations"][0]["phases"].pop("free"), "missing free"),
    (lambda d: d["iterations"][0]["phases"]["free"].update(ns=-1),
     r"iterations\[0\].phases.free.ns: expected a whole number >= 0, got -1"),
    (lambda d: d["iterations"][0]["phases"]["allocate"].update(minor_faults=1.5), "1.5"),
    (lambda d: d["iterations"][0].update(checksum=True), "checksum"),
    (lambda d: d["iterations"][0].pop("observations"), "missing observations"),
    (lambda d: d["iterations"][0].update(observations=[]), "observations: expected an object"),
    (lambda d: d["iterations"][0]["observations"].update(colour=1), "unknown colour"),
    (lambda d: d["iterations"][0]["observations"].update(mprotect_ns=-5),
     r"observations.mprotect_ns: expected a whole number >= 0, got -5"),
])
def test_parse_rejects_anything_off(mutate: Any, message: str) -> None:
    data = _sample_output()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_probe_output(json.dumps(data))


def test_parse_rejects_text_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_probe_output("Segmentation fault\n")


# --- reading files: the reused read buffer, system calls, advice, read-only mappings ----------

@pytest.mark.probe
def test_a_reused_read_buffer_takes_no_faults_and_one_pread_per_chunk(probe: ProbeBinary,
                                                                      tmp_path: Path) -> None:
    """The buffer is made and written before timing, so reading a warm file into it faults
    nothing: the copy from the page cache is all the phases time."""
    s = scenario(backing="read-file", size_bytes=16 * MIB, ops=2, access="read-all",
                 file_dir=str(tmp_path))  # read_buffer: its default, 1 MiB
    for it in measured(probe, s, 2):
        phases, observed = it["phases"], it["observations"]
        for phase in PHASES:
            assert phases[phase]["minor_faults"] <= 2, phase
            assert phases[phase]["major_faults"] == 0, phase
        assert phases["second_pass"]["rss_bytes"] - it["rss_before_bytes"] < 1 * MIB
        assert observed["read_buffer_page_offset_bytes"] == 0
        # a warm file: pread fills the whole buffer each time (no short reads)
        assert (observed["allocate_syscalls"], observed["free_syscalls"]) == (0, 0)
        assert observed["first_touch_syscalls"] == observed["second_pass_syscalls"] == 32
        assert "alignment_bytes" not in observed  # no blocks


@pytest.mark.probe
def test_reading_whole_blocks_faults_the_fresh_heap_buffer_in_allocate(probe: ProbeBinary,
                                                                       tmp_path: Path) -> None:
    s = scenario(backing="read-file", size_bytes=16 * MIB, ops=2, access="read-all",
                 file_dir=str(tmp_path), read_buffer_bytes=0)
    (it,) = measured(probe, s)
    observed = it["observations"]
    assert it["phases"]["allocate"]["minor_faults"] >= 0.9 * 2 * N_PAGES  # the new blocks
    assert observed["allocate_syscalls"] == 2  # one pread per block
    assert observed["first_touch_syscalls"] == 0
    assert observed["read_buffer_page_offset_bytes"] == 16  # glibc's chunk header


@pytest.mark.probe
@pytest.mark.parametrize("order", ["sequential", "random"])
@pytest.mark.parametrize("access", ["read-all", "read-page", "write-page"])
@pytest.mark.parametrize("buffer", [4096, 8192, 1 * MIB])
def test_a_read_buffer_reads_every_byte_of_the_file_once_per_pass(
        probe: ProbeBinary, tmp_path: Path, order: str, access: str, buffer: int) -> None:
    size, ops = 3 * PAGE + 57, 3  # chunks that do not divide the block, partial last pages
    s = scenario(backing="read-file", size_bytes=size, ops=ops, access=access, order=order,
                 file_dir=str(tmp_path), read_buffer_bytes=buffer)
    read_all, read_page = pattern_sums(size, ops)
    one_pass = {"read-all": read_all, "read-page": read_page, "write-page": 0}[access]
    chunks = ops * -(-size // buffer)
    for it in measured(probe, s, 2):
        assert it["checksum"] == (2 * one_pass) % 2**64
        assert it["observations"]["first_touch_syscalls"] == chunks


@pytest.mark.probe
def test_a_reused_write_buffer_takes_no_faults_and_one_pwrite_per_chunk(
        probe: ProbeBinary, tmp_path: Path) -> None:
    """Like the read buffer: made and written before timing, so writing a file through it
    faults nothing, and the process's memory does not grow with the file."""
    s = scenario(backing="write-file", size_bytes=16 * MIB, ops=2, access="write-all",
                 file_dir=str(tmp_path))  # write_buffer: its default, 1 MiB
    for it in measured(probe, s, 2):
        phases, observed = it["phases"], it["observations"]
        for phase in PHASES:
            assert phases[phase]["minor_faults"] <= 2, phase
        assert phases["second_pass"]["rss_bytes"] - it["rss_before_bytes"] < 1 * MIB
        assert (observed["allocate_syscalls"], observed["free_syscalls"]) == (0, 0)
        assert observed["first_touch_syscalls"] == observed["second_pass_syscalls"] == 32


@pytest.mark.probe
def test_writing_whole_blocks_faults_a_heap_block_as_large_as_the_file(
        probe: ProbeBinary, tmp_path: Path) -> None:
    s = scenario(backing="write-file", size_bytes=16 * MIB, ops=2, access="write-all",
                 file_dir=str(tmp_path), write_buffer_bytes=0)
    (it,) = measured(probe, s)
    assert it["phases"]["first_touch"]["minor_faults"] >= 0.9 * 2 * N_PAGES
    assert it["observations"]["first_touch_syscalls"] == 2  # one pwrite per block


@pytest.mark.probe
@pytest.mark.parametrize("order", ["sequential", "random"])
@pytest.mark.parametrize("buffer", [4096, 8192, 1 * MIB])
def test_a_write_buffer_writes_every_chunk_once_per_pass(
        probe: ProbeBinary, tmp_path: Path, order: str, buffer: int) -> None:
    size, ops = 3 * PAGE + 57, 3  # chunks that do not divide the block, partial last pages
    s = scenario(backing="write-file", size_bytes=size, ops=ops, access="write-page",
                 order=order, file_dir=str(tmp_path), write_buffer_bytes=buffer, sync="fsync")
    chunks = ops * -(-size // buffer)
    for it in measured(probe, s, 2):
        assert it["observations"]["first_touch_syscalls"] == chunks + 1  # and the fsync
        assert it["observations"]["second_pass_syscalls"] == chunks + 1


@pytest.mark.probe
def test_file_mappings_count_one_mmap_and_one_munmap_per_block(probe: ProbeBinary,
                                                               tmp_path: Path) -> None:
    s = scenario(backing="mmap-file", size_bytes=1 * MIB, ops=4, access="read-all",
                 advice="sequential", file_dir=str(tmp_path))
    (it,) = measured(probe, s)
    observed = it["observations"]
    assert observed["allocate_syscalls"] == 8  # mmap and madvise per block
    assert observed["first_touch_syscalls"] == observed["second_pass_syscalls"] == 0
    assert observed["free_syscalls"] == 4
    (anon,) = measured(probe, scenario(backing="mmap-anon", size_bytes=1 * MIB, ops=4))
    assert "allocate_syscalls" not in anon["observations"]  # file backings only


@pytest.mark.probe
@pytest.mark.parametrize("sharing", ["private", "shared"])
def test_populating_a_read_only_file_mapping_maps_cached_pages_without_copies(
        probe: ProbeBinary, tmp_path: Path, sharing: str) -> None:
    """MAP_POPULATE of a read-only file mapping maps the page cache's pages, many per fault
    (fault-around, large folios); of a writable private one it breaks copy-on-write for
    writing: one fault, and one copy, per page."""
    pages = 16 * MIB // PAGE
    read_only = scenario(backing="mmap-file", size_bytes=16 * MIB, access="read-all",
                         protection="read", populate="map-populate", sharing=sharing,
                         file_dir=str(tmp_path))
    (it,) = measured(probe, read_only)
    assert it["phases"]["allocate"]["minor_faults"] < 0.2 * pages
    assert it["phases"]["first_touch"]["minor_faults"] < 0.01 * pages
    assert it["phases"]["allocate"]["rss_bytes"] - it["rss_before_bytes"] >= 0.9 * 16 * MIB
    (writable,) = measured(probe, dataclasses.replace(read_only, protection="read-write",
                                                      sharing="private"))
    assert writable["phases"]["allocate"]["minor_faults"] >= 0.9 * pages


@pytest.mark.probe
def test_madv_populate_read_moves_a_file_mappings_faults_into_allocate(
        probe: ProbeBinary, tmp_path: Path) -> None:
    pages = 16 * MIB // PAGE
    s = scenario(backing="mmap-file", size_bytes=16 * MIB, access="read-page",
                 protection="read", file_dir=str(tmp_path))
    (plain,) = measured(probe, s)
    assert plain["phases"]["first_touch"]["minor_faults"] > 0
    (advised,) = measured(probe, dataclasses.replace(s, advice="madv-populate-read"))
    assert advised["phases"]["allocate"]["minor_faults"] > 0
    assert advised["phases"]["first_touch"]["minor_faults"] < 0.01 * pages
    assert advised["phases"]["first_touch"]["major_faults"] == 0


@pytest.mark.probe
def test_random_advice_turns_off_readahead_of_a_cold_file(probe: ProbeBinary,
                                                          disk_dir: Path) -> None:
    """Without advice the first fault of a cold file reads far ahead (ext4 maps the pages in
    large chunks too): a few major faults for the whole file. MADV_RANDOM reads only the page
    that faulted, so every page is a major fault; MADV_WILLNEED reads ahead at madvise."""
    pages = 16 * MIB // PAGE
    s = scenario(backing="mmap-file", size_bytes=16 * MIB, access="read-page", cache="cold",
                 protection="read", file_dir=str(disk_dir))
    (plain,) = measured(probe, s)
    (scattered,) = measured(probe, dataclasses.replace(s, advice="random"))
    (ahead,) = measured(probe, dataclasses.replace(s, advice="willneed"))
    assert plain["phases"]["first_touch"]["major_faults"] < 0.05 * pages
    assert scattered["phases"]["first_touch"]["major_faults"] >= 0.9 * pages
    assert ahead["phases"]["first_touch"]["major_faults"] < 0.05 * pages


@pytest.mark.probe
@pytest.mark.parametrize(("protection", "access"), [("read", "read-all"), ("exec", "read-page"),
                                                    ("none", "none")])
def test_page_aligned_heap_memory_can_be_protected(probe: ProbeBinary, protection: str,
                                                   access: str) -> None:
    size = 3 * PAGE + 57  # rounded up to whole pages, so no neighbour's header is protected
    s = scenario(backing="posix-memalign", size_bytes=size, ops=8, access=access,
                 protection=protection, release="malloc-trim")
    for it in measured(probe, s, 3):  # later iterations reuse the chunks freed before
        observed = it["observations"]
        assert observed["protection_enforced"] == 1
        assert observed["alignment_bytes"] % PAGE == 0
        assert "mprotect_ns" in observed


@pytest.fixture
def noexec_dir(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted noexec (root only), unmounted after the test."""
    target = tmp_path / "noexec"
    target.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,size=16m", "tmpfs",
                            str(target)], capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a noexec tmpfs here: {mount.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.mark.probe
def test_exec_on_a_noexec_filesystem_is_skipped_with_the_reason(probe: ProbeBinary,
                                                                noexec_dir: Path) -> None:
    s = scenario(backing="mmap-file", size_bytes=64 * 1024, access="read-page",
                 protection="exec", file_dir=str(noexec_dir))
    record = run_process(probe_argv(probe, s, 0, 1), scenario_id=s.id, process_index=0,
                         timeout_s=60)
    assert record.status == "skipped"
    assert record.exit_code == EXIT_SKIPPED
    assert "noexec" in str(record.skip_reason)


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["mmap-anon", "mmap-file", "memfd"])
def test_exec_mappings_can_be_read_but_not_written(probe: ProbeBinary, tmp_path: Path,
                                                   backing: str) -> None:
    s = scenario(backing=backing, size_bytes=64 * 1024, access="read-page", protection="exec",
                 sharing="shared" if backing == "memfd" else "private", file_dir=str(tmp_path))
    record = run_process(probe_argv(probe, s, 0, 1), scenario_id=s.id, process_index=0,
                         timeout_s=60)
    if record.status == "skipped":
        assert "noexec" in record.stderr_tail
        return
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    assert record.probe["iterations"][0]["observations"]["protection_enforced"] == 1


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize(("release", "faults_per_page"), [("madv-free", 0), ("madv-dontneed", 1)])
def test_reuse_writes_again_what_madvise_kept_or_faults_it_in_afresh(
        probe: ProbeBinary, release: str, faults_per_page: int) -> None:
    """Workload reuse: after MADV_FREE the pages are still there (no memory pressure), so the
    write after the release takes no fault and the resident set never dropped; after
    MADV_DONTNEED the free phase gave them back and every page faults in again."""
    s = scenario(backing="mmap-anon", size_bytes=N_PAGES * PAGE, release=release,
                 workload="reuse")
    for it in measured(probe, s, 2):
        phases = it["phases"]
        assert phases["first_touch"]["minor_faults"] >= N_PAGES
        again = phases["second_pass"]["minor_faults"]
        assert N_PAGES * faults_per_page <= again <= N_PAGES * faults_per_page + 8
        dropped = phases["first_touch"]["rss_bytes"] - phases["free"]["rss_bytes"]
        assert (dropped >= 0.9 * N_PAGES * PAGE) == (release == "madv-dontneed")
        assert phases["second_pass"]["rss_bytes"] - it["rss_before_bytes"] >= \
            0.9 * N_PAGES * PAGE

