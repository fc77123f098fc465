"""The probe's memory measurements end to end: zeroing as its own pass, which heap a block lies
in, page tables, execute permission, /dev/zero, MAP_NORESERVE, blocks that live on among freed
ones, and malloc_trim in thread arenas. Physical facts only, never timings; the vocabulary's
refusals of the new combinations, in Python and in the probe, are here too.

Facts these tests rely on (Linux, 4 KiB pages, glibc's malloc, THP not `always`) are stated
in each test's docstring where they are not obvious.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.core.combinations import find_conflict
from runner.core.kinds import Value
from runner.core.model import ProcessRecord, Scenario
from runner.core.parameters import DEFAULTS
from runner.measure.datafiles import can_share
from runner.probe.execute import run_process
from runner.probe.native import ProbeBinary, build_probe, find_compiler, probe_argv
from tests.probe.running import (  # noqa: F401  (no_thp_always: a fixture, used by name)
    MIB,
    N_PAGES,
    PAGE,
    good_args,
    measure,
    measured,
    no_thp_always,
    pattern_sums,
    run_raw,
    scenario,
)

KIB = 1 << 10
EXEC_ARCHITECTURES = ("x86_64", "aarch64")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ProbeBinary:
    return build_probe(tmp_path_factory.mktemp("probe-cache"))


def run_record(probe: ProbeBinary, s: Scenario, iterations: int = 1,
               env: dict[str, str] | None = None) -> ProcessRecord:
    """One probe process, whatever its status (measure() insists on ok)."""
    return run_process(probe_argv(probe, s, 0, iterations), scenario_id=s.id, process_index=0,
                       timeout_s=120, extra_env=env)


def retained(it: dict[str, Any], requested_bytes: int) -> float:
    """retained_per_requested_byte of one iteration (runner.analysis.frame's definition)."""
    return (it["phases"]["free"]["rss_bytes"] - it["rss_before_bytes"]) / requested_bytes


def free_returned(it: dict[str, Any]) -> float:
    """free_returned_fraction of one iteration (runner.analysis.frame's definition)."""
    phases = it["phases"]
    resident = phases["second_pass"]["rss_bytes"] - it["rss_before_bytes"]
    assert resident > 0
    return (phases["second_pass"]["rss_bytes"] - phases["free"]["rss_bytes"]) / resident


def build_preload(tmp_path: Path, name: str, source: str) -> Path:
    """A shared library from C source, to preload into the probe. -O0 and no builtins, so
    that a loop in it never becomes a call to the very function it stands in for."""
    compiler, _ = find_compiler()
    (tmp_path / f"{name}.c").write_text(source)
    library = tmp_path / f"{name}.so"
    subprocess.run([*compiler, "-shared", "-fPIC", "-O0", "-fno-builtin", "-o", str(library),
                    str(tmp_path / f"{name}.c")], check=True, capture_output=True, text=True)
    return library


# --- zero-then-write-all ----------------------------------------------------------------------

# memset standing in for libc's, counting the calls of one length by whether they write
# zeroes; the counts are appended to $MEMSET_COUNTS at exit (the heap trace's fresh image
# appends its own line).
_MEMSET_COUNTER = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static unsigned long zeroing, writing;
void *memset(void *p, int c, size_t n)
{
    static size_t watched;
    if (watched == 0) {
        const char *text = getenv("MEMSET_SIZE");
        watched = text ? strtoul(text, NULL, 10) : (size_t)-1;
    }
    volatile unsigned char *q = p;
    for (size_t i = 0; i < n; i++)
        q[i] = (unsigned char)c;
    if (n == watched) {
        if (c == 0)
            zeroing++;
        else
            writing++;
    }
    return p;
}
__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("MEMSET_COUNTS");
    int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT, 0600) : -1;
    if (fd < 0)
        return;
    char line[64];
    int length = snprintf(line, sizeof line, "%lu %lu\n", zeroing, writing);
    if (write(fd, line, (size_t)length) != length)
        _exit(3);
    close(fd);
}
"""


@pytest.mark.probe
@pytest.mark.parametrize(("access", "zeroings"), [("zero-then-write-all", 1),
                                                  ("write-all", 0)])
def test_zero_then_write_all_zeroes_every_block_before_writing_it(
        probe: ProbeBinary, tmp_path: Path, access: str, zeroings: int) -> None:
    """Each touching phase calls memset(0) once per block and then the write-all memset:
    the compiler kept the zeroing that the write right after makes look useless. Counted by
    a memset preloaded in libc's place, for calls of the blocks' (unusual) length."""
    size, ops = 12345, 8
    counts = tmp_path / "counts"
    env = {"LD_PRELOAD": str(build_preload(tmp_path, "memset", _MEMSET_COUNTER)),
           "MEMSET_SIZE": str(size), "MEMSET_COUNTS": str(counts)}
    measured(probe, scenario(backing="malloc", size_bytes=size, ops=ops, access=access),
             env=env)
    lines = [tuple(map(int, line.split())) for line in counts.read_text().splitlines()]
    zeroing, writing = (sum(column) for column in zip(*lines, strict=True))
    assert writing == 2 * ops  # first touch and second pass
    assert zeroing == 2 * ops * zeroings


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize(("backing", "access"), [("malloc", "zero-then-write-all"),
                                                 ("calloc", "write-all")])
def test_zeroing_and_writing_fault_every_page_once_like_calloc_and_writing(
        probe: ProbeBinary, backing: str, access: str) -> None:
    """The two sides of "calloc is cheaper than malloc followed by memset": a fresh 16 MiB
    block is a mapping of its own either way, so each side faults every page once in first
    touch (calloc skips clearing memory the kernel gives zeroed), and what it wrote holds."""
    s = scenario(backing=backing, size_bytes=N_PAGES * PAGE, access=access)
    (it,) = measured(probe, s)
    phases = it["phases"]
    assert 0.95 * N_PAGES <= phases["first_touch"]["minor_faults"] <= 1.05 * N_PAGES
    assert phases["second_pass"]["minor_faults"] < 0.01 * N_PAGES
    assert phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"] >= 0.95 * N_PAGES * PAGE
    (child,) = measured(probe, dataclasses.replace(s, backing="malloc", workload="fork"))
    assert child["observations"]["child_sees_parent"] == 1  # every byte, after the zeroing


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_a_large_calloc_faults_one_header_page_per_block_and_clears_nothing(
        probe: ProbeBinary) -> None:
    """"For large blocks calloc costs no more than a fresh mmap": glibc maps a 1 MiB block on
    its own and knows the kernel zeroed it, so calloc clears nothing — its allocate takes one
    page fault per block (the chunk header it writes into the mapping's first page; the
    process's first malloc sets its arena up with one more), exactly as malloc's does, and
    first touch then faults every other page."""
    ops, pages = 16, MIB // PAGE

    def first_iteration(backing: str) -> dict[str, Any]:
        s = scenario(backing=backing, size_bytes=MIB, ops=ops, access="write-page")
        (it,) = measured(probe, s)
        return it["phases"]  # type: ignore[no-any-return]

    calloc, malloc = first_iteration("calloc"), first_iteration("malloc")
    assert ops <= calloc["allocate"]["minor_faults"] <= ops + 2
    assert calloc["allocate"]["minor_faults"] == malloc["allocate"]["minor_faults"]
    assert calloc["first_touch"]["minor_faults"] >= ops * (pages - 1) * 0.95


# --- which heap a block lies in -----------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("size", [16, 1000, 4 * KIB, 64 * KIB])
def test_heap_blocks_below_the_mmap_threshold_are_never_mapped_on_their_own(
        probe: ProbeBinary, size: int) -> None:
    ops = 64
    for it in measured(probe, scenario(backing="malloc", size_bytes=size, ops=ops), 2):
        observed = it["observations"]
        assert observed["blocks_mmapped"] == 0
        assert observed["blocks_in_thread_arena"] == 0
        assert observed["blocks_in_heap"] == ops


@pytest.mark.probe
def test_a_1mib_malloc_in_a_fresh_process_is_one_mapping_per_block(probe: ProbeBinary) -> None:
    """From the mmap threshold (128 KiB at start) malloc is one mmap per block, which is why
    blocks_in_heap says 0 for it. Freeing such a chunk raises the threshold past it, so the
    second iteration's blocks come from the heap."""
    ops = 4
    fresh, again = measured(probe, scenario(backing="malloc", size_bytes=MIB, ops=ops), 2)
    assert fresh["observations"]["blocks_mmapped"] == ops
    assert fresh["observations"]["blocks_in_heap"] == 0
    assert fresh["observations"]["vm_size_growth_bytes"] >= ops * MIB
    assert again["observations"]["blocks_mmapped"] == 0
    assert again["observations"]["blocks_in_heap"] == ops


@pytest.mark.probe
def test_worker_threads_malloc_from_thread_arenas_outside_the_main_heap(
        probe: ProbeBinary) -> None:
    """Each worker thread gets an arena of its own, a heap glibc carves from a 64 MiB mapping:
    heap memory that blocks_in_heap, which looks at [heap] alone, does not count."""
    ops = 64
    s = scenario(backing="malloc", size_bytes=1000, ops=ops, threads=2)
    (it,) = measured(probe, s)
    observed = it["observations"]
    assert observed["blocks_in_thread_arena"] == ops
    assert observed["blocks_in_heap"] == 0
    assert observed["blocks_mmapped"] == 0
    (alone,) = measured(probe, dataclasses.replace(s, threads=1))
    assert alone["observations"]["blocks_in_thread_arena"] == 0


# malloc and its family forwarded to glibc's own: the chunks are glibc's, but malloc is
# defined by another object, as with a preloaded allocator.
_FORWARDING_MALLOC = r"""
#include <stddef.h>
extern void *__libc_malloc(size_t), *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
void *malloc(size_t n) { return __libc_malloc(n); }
void *calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
"""


@pytest.mark.probe
def test_chunk_flags_are_not_read_when_malloc_is_not_glibcs(probe: ProbeBinary,
                                                            tmp_path: Path) -> None:
    """A preloaded allocator keeps no glibc header before its blocks: the probe reports no
    chunk flags rather than reading whatever lies there."""
    env = {"LD_PRELOAD": str(build_preload(tmp_path, "forward", _FORWARDING_MALLOC))}
    (it,) = measured(probe, scenario(backing="malloc", size_bytes=1000, ops=8), env=env)
    assert "blocks_in_heap" in it["observations"]
    assert not {"blocks_mmapped", "blocks_in_thread_arena"} & set(it["observations"])


# --- page tables ----------------------------------------------------------------------------------

PTE_BLOCK_BYTES = 256 * MIB
PTE_BYTES_TOUCHED = PTE_BLOCK_BYTES // PAGE * 8  # 8 bytes per page: 512 KiB
UPPER_LEVELS_BYTES = 4 * PAGE  # a new PMD table or two, at most, for 256 MiB


@pytest.fixture
def four_kib_pages() -> None:
    if PAGE != 4096:
        pytest.skip(f"the page-table figures are those of 4 KiB pages, these are {PAGE} bytes")


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always", "four_kib_pages")
@pytest.mark.parametrize("access", ["write-page", "read-page"])
def test_touching_every_page_grows_the_page_tables_by_8_bytes_a_page(
        probe: ProbeBinary, access: str) -> None:
    """256 MiB of 4 KiB pages need 65,536 page-table entries of 8 bytes: 512 KiB, whether the
    pages are written or read (the shared zero page needs its entries too)."""
    s = scenario(backing="mmap-anon", size_bytes=PTE_BLOCK_BYTES, access=access)
    (it,) = measured(probe, s)
    growth = it["observations"]["vm_pte_growth_bytes"]
    assert PTE_BYTES_TOUCHED <= growth <= PTE_BYTES_TOUCHED + UPPER_LEVELS_BYTES
    (untouched,) = measured(probe, dataclasses.replace(s, access="none"))
    assert untouched["observations"]["vm_pte_growth_bytes"] <= 2 * PAGE


@pytest.mark.probe
@pytest.mark.usefixtures("four_kib_pages")
def test_huge_pages_do_not_shrink_the_page_tables_the_process_holds(probe: ProbeBinary) -> None:
    """With THP each 2 MiB is one PMD entry, not 512 PTEs; yet VmPTE grows as for 4 KiB pages:
    with every anonymous huge page the kernel keeps a page table in reserve (deposited, so
    that it can split the huge page later without allocating) and counts it. So "huge pages
    save page-table memory" does not hold for what the process is charged."""
    s = scenario(backing="mmap-anon", size_bytes=PTE_BLOCK_BYTES, thp="huge")
    record = run_record(probe, s)
    if record.status == "skipped":
        pytest.skip(record.skip_reason or "")
    assert record.probe is not None
    observed = record.probe["iterations"][0]["observations"]
    if observed["anon_huge_bytes"] < 0.9 * PTE_BLOCK_BYTES:
        pytest.skip("the kernel gave too few huge pages (fragmented memory?)")
    growth = observed["vm_pte_growth_bytes"]
    assert 0.9 * PTE_BYTES_TOUCHED <= growth <= PTE_BYTES_TOUCHED + UPPER_LEVELS_BYTES


# --- execute permission -------------------------------------------------------------------------

@pytest.fixture
def exec_code() -> None:
    if platform.machine() not in EXEC_ARCHITECTURES:
        pytest.skip(f"the probe has machine code for {', '.join(EXEC_ARCHITECTURES)} only")


EXEC_BLOCKS: list[dict[str, Value]] = [
    {"backing": "mmap-anon"},
    {"backing": "mmap-anon", "sharing": "shared"},
    {"backing": "mmap-file"},
    {"backing": "mmap-file", "sharing": "shared"},
    {"backing": "memfd", "sharing": "shared"},
    {"backing": "shm", "sharing": "shared"},
    {"backing": "dev-zero"},
    {"backing": "dev-zero", "sharing": "shared"},
    {"backing": "posix-memalign"},
]


@pytest.mark.probe
@pytest.mark.usefixtures("exec_code")
@pytest.mark.parametrize("fields", EXEC_BLOCKS)
def test_code_copied_into_executable_memory_runs(probe: ProbeBinary, tmp_path: Path,
                                                 fields: dict[str, Value]) -> None:
    """PROT_EXEC works for anonymous, file (ext4 /tmp, private and shared), memfd, POSIX
    shared memory and /dev/zero mappings, and for page-aligned heap memory by mprotect."""
    s = scenario(size_bytes=64 * KIB, ops=4, access="read-page", protection="exec",
                 file_dir=str(tmp_path), **fields)
    record = run_record(probe, s, iterations=2)
    if record.status == "skipped":
        assert "noexec" in str(record.skip_reason)
        return
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    for it in record.probe["iterations"]:
        assert it["observations"]["exec_ran"] == 1
        assert "exec_trapped" not in it["observations"]


@pytest.mark.probe
@pytest.mark.usefixtures("exec_code")
@pytest.mark.parametrize("protection", ["read-write", "read"])
@pytest.mark.parametrize("fields", EXEC_BLOCKS)
def test_calling_into_memory_without_exec_faults_and_faults_nothing_in(
        probe: ProbeBinary, tmp_path: Path, fields: dict[str, Value], protection: str) -> None:
    """No code runs from memory mapped without PROT_EXEC: the NX bit of the page the access
    pattern mapped refuses the fetch. The blocks are never freed (release none), so the
    resident set after the free phase shows that the refused calls, one per block, faulted
    no page in (in the second iteration: the first also grows the probe's own stack). With
    access none the probe does not ask: on x86-64 the call would first fault the page in (a
    resident one for files and shared memory), then meet the NX bit."""
    ops, size = 64, 64 * KIB
    s = scenario(size_bytes=size, ops=ops, access="read-page", protection=protection,
                 release="none", file_dir=str(tmp_path), **fields)
    iterations = measured(probe, s, 2)
    for it in iterations:
        assert it["observations"]["exec_trapped"] == 1
        assert "exec_ran" not in it["observations"]
    phases = iterations[-1]["phases"]
    added = phases["free"]["rss_bytes"] - phases["second_pass"]["rss_bytes"]
    assert added <= 8 * PAGE  # one page per block would be 64
    (untouched,) = measured(probe, dataclasses.replace(s, access="none"))
    assert "exec_trapped" not in untouched["observations"]


@pytest.mark.probe
@pytest.mark.usefixtures("exec_code")
def test_running_code_in_a_shared_file_mapping_leaves_the_file_as_it_was(
        probe: ProbeBinary, tmp_path: Path) -> None:
    """exec_ran writes its function into the data file through a shared mapping, and puts the
    bytes back: the next iteration reads the file's pattern again."""
    size, ops = 3 * PAGE + 57, 3
    s = scenario(backing="mmap-file", sharing="shared", protection="exec", access="read-all",
                 size_bytes=size, ops=ops, file_dir=str(tmp_path))
    read_all, _ = pattern_sums(size, ops)
    record = run_record(probe, s, iterations=3)
    if record.status == "skipped":
        pytest.skip(record.skip_reason or "")
    assert record.probe is not None
    for it in record.probe["iterations"]:
        assert it["observations"]["exec_ran"] == 1
        assert it["checksum"] == (2 * read_all) % 2**64


# --- /dev/zero ------------------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("sharing", ["private", "shared"])
def test_dev_zero_reads_zero_and_faults_once_per_written_page(probe: ProbeBinary,
                                                              sharing: str) -> None:
    zero = scenario(backing="dev-zero", sharing=sharing, size_bytes=MIB, ops=4,
                    access="read-all", check_zero=True)
    for it in measured(probe, zero, 2):
        assert it["checksum"] == 0
        assert it["observations"]["nonzero_bytes_at_allocate"] == 0
    written = dataclasses.replace(zero, size_bytes=N_PAGES * PAGE, ops=1, access="write-page",
                                  check_zero=False)
    for it in measured(probe, written, 2):
        phases = it["phases"]
        assert 0.95 * N_PAGES <= phases["first_touch"]["minor_faults"] <= 1.05 * N_PAGES
        assert phases["first_touch"]["rss_bytes"] - it["rss_before_bytes"] >= \
            0.95 * N_PAGES * PAGE
        assert abs(phases["free"]["rss_bytes"] - it["rss_before_bytes"]) <= 1 * MIB


@pytest.mark.probe
@pytest.mark.parametrize(("sharing", "shared"), [("private", 0), ("shared", 1)])
def test_a_forked_child_writes_into_shared_dev_zero_memory_only(probe: ProbeBinary,
                                                                sharing: str,
                                                                shared: int) -> None:
    """MAP_SHARED of /dev/zero is shared memory, as memfd is: the parent sees the child's
    writes; MAP_PRIVATE is anonymous memory, copied on write."""
    s = scenario(backing="dev-zero", sharing=sharing, size_bytes=MIB, ops=4,
                 workload="fork")
    (it,) = measured(probe, s)
    assert it["observations"]["child_sees_parent"] == 1
    assert it["observations"]["parent_sees_child"] == shared


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_private_dev_zero_is_anonymous_memory_that_madv_free_keeps(probe: ProbeBinary) -> None:
    s = scenario(backing="dev-zero", size_bytes=N_PAGES * PAGE, release="madv-free",
                 workload="reuse")
    (it,) = measured(probe, s)
    assert it["phases"]["second_pass"]["minor_faults"] <= 8  # the pages were still there


# --- MAP_NORESERVE --------------------------------------------------------------------------------

def _meminfo_bytes(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0]) * 1024
    raise AssertionError(f"/proc/meminfo has no {key}")


@pytest.fixture
def overcommit_heuristic() -> None:
    mode = Path("/proc/sys/vm/overcommit_memory").read_text().strip()
    if mode != "0":
        pytest.skip(f"vm.overcommit_memory is {mode}: only the heuristic (0) refuses a single "
                    "mapping larger than memory and swap at once, and honours MAP_NORESERVE "
                    "as tested here")


@pytest.mark.probe
@pytest.mark.usefixtures("overcommit_heuristic")
def test_noreserve_grants_a_private_mapping_larger_than_memory_and_swap(
        probe: ProbeBinary) -> None:
    """The heuristic refuses a writable private mapping that could never be backed; with
    MAP_NORESERVE nothing is counted against memory, and the mapping is granted (workload
    limits then maps such blocks until the address space is full)."""
    size = 2 * (_meminfo_bytes("MemTotal") + _meminfo_bytes("SwapTotal")) // PAGE * PAGE
    limits = scenario(backing="mmap-anon", size_bytes=size, workload="limits", access="none")
    (refused,) = measured(probe, limits)
    assert refused["observations"]["mappings_until_refused"] == 0
    assert refused["observations"]["map_errno"] == 12  # ENOMEM
    (granted,) = measured(probe, dataclasses.replace(limits, noreserve=True))
    assert granted["observations"]["mappings_until_refused"] >= 1
    cycle = dataclasses.replace(limits, workload="cycle", noreserve=True)
    (mapped,) = measured(probe, cycle)
    assert mapped["observations"]["vm_size_growth_bytes"] >= size
    failed = run_record(probe, dataclasses.replace(cycle, noreserve=False))
    assert failed.status == "failed"
    assert "mmap: Cannot allocate memory" in failed.stderr_tail


# --- blocks that live on among freed ones ---------------------------------------------------------

@pytest.mark.probe
def test_small_blocks_kept_among_freed_ones_pin_every_heap_page(probe: ProbeBinary) -> None:
    """64-byte requests are 80-byte chunks side by side: keeping one in 16 leaves about three
    on every page, so no page of the batch comes free — even malloc_trim, which gives back
    every whole free page, finds none (about 1.25 bytes retained per byte requested, 20 times
    the 1/16 kept). Without the kept blocks malloc_trim returns nearly all. (Plain free returns
    nothing here even with none kept: free puts chunks this small on per-thread and fast
    lists without merging them, so the heap's top is never trimmed.) The next batches take
    15 chunks in 16 from the holes, so each adds only its kept 1/16 to the heap."""
    size, ops, every = 64, 65536, 16
    s = scenario(backing="malloc", size_bytes=size, ops=ops, keep_every=every,
                 release="malloc-trim", access="write-all")
    first, *later = measured(probe, s, 3)
    assert retained(first, size * ops) >= 1.0
    (none_kept,) = measured(probe, dataclasses.replace(s, keep_every=0))
    assert retained(none_kept, size * ops) <= 0.05
    for it in [*later, *measured(probe, dataclasses.replace(s, release="free"), 3)[1:]]:
        assert 0.9 / every <= retained(it, size * ops) <= 1.5 / every


@pytest.mark.probe
def test_page_sized_blocks_kept_among_freed_ones_leave_one_in_sixteen(
        probe: ProbeBinary) -> None:
    """64 KiB blocks come from the heap (below the 128 KiB mmap threshold); freed 15 in 16,
    each run of 15 merges into a free chunk of whole pages between two kept blocks. malloc_trim
    gives those pages back: 1/16 of the batch stays, every iteration. Plain free returns
    nothing from the middle of the main heap (it trims only the top, which the last kept
    block pins), so the first batch stays resident whole; every later batch fills the holes
    and adds just its kept 1/16."""
    size, ops, every = 64 * KIB, 1024, 16
    s = scenario(backing="malloc", size_bytes=size, ops=ops, keep_every=every,
                 release="malloc-trim", access="write-page")
    for it in measured(probe, s, 3):
        assert 0.9 / every <= retained(it, size * ops) <= 1.25 / every
    first, *later = measured(probe, dataclasses.replace(s, release="free"), 3)
    assert retained(first, size * ops) >= 0.95
    for it in later:
        assert 0.9 / every <= retained(it, size * ops) <= 1.25 / every


# --- malloc_trim and thread arenas ----------------------------------------------------------------

@pytest.mark.probe
def test_malloc_trim_gives_back_what_each_threads_kept_top_pins(probe: ProbeBinary) -> None:
    """Two threads, each with 32 blocks of 4 KiB in its own arena, each keeping its last one:
    the 31 freed behind it merge into one free chunk, which free leaves resident and
    malloc_trim(0) — walking every arena — gives back but for its edges. Freeing all 32
    instead merges them into the arena's top, which malloc_trim trims in the main arena
    only: in a thread arena it returns little (glibc 2.36 mtrim)."""
    ops = 64
    s = scenario(backing="malloc", size_bytes=4 * KIB, ops=ops, threads=2,
                 release="malloc-trim-but-last")
    (trimmed,) = measured(probe, s)
    assert trimmed["observations"]["blocks_in_thread_arena"] == ops
    assert free_returned(trimmed) >= 0.7
    (kept,) = measured(probe, dataclasses.replace(s, release="free-but-last"))
    assert free_returned(kept) <= 0.1
    (all_freed,) = measured(probe, dataclasses.replace(s, release="malloc-trim"))
    assert free_returned(all_freed) <= 0.1


# --- the vocabulary -------------------------------------------------------------------------------

def params(**overrides: Value) -> dict[str, Value]:
    return {**DEFAULTS, "ops": 1, **overrides}


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"backing": "malloc", "noreserve": True}, "use an mmap backing, or noreserve: false"),
    ({"backing": "mmap-anon", "keep_every": 16}, "allocates no heap blocks"),
    ({"backing": "read-file", "keep_every": 16}, "read-file with read_buffer: whole"),
    ({"keep_every": 16, "workload": "churn"}, "use workload: cycle"),
    ({"keep_every": 16, "release": "none"}, "use release: free or malloc-trim"),
    ({"keep_every": 16, "release": "free-but-last"}, "use release: free or malloc-trim"),
    ({"release": "malloc-trim-but-last", "workload": "resize"}, "needs workload cycle"),
    ({"backing": "dev-zero", "release": "free"}, "is a mapping"),
    ({"backing": "dev-zero", "sharing": "shared", "release": "madv-free"},
     "mmap-anon or dev-zero with sharing: private"),
    ({"backing": "dev-zero", "thp": "huge"}, "use backing mmap-anon"),
    ({"backing": "dev-zero", "sharing": "shared", "workload": "reuse",
      "release": "madv-dontneed"}, "mmap-anon or dev-zero with sharing: private"),
    ({"backing": "mmap-anon", "protection": "read", "access": "zero-then-write-all"},
     "forbids writing"),
    ({"backing": "mmap-anon", "workload": "limits", "access": "none", "keep_every": 2},
     "leave keep_every out"),
])
def test_new_combinations_that_make_no_sense_are_refused(overrides: dict[str, Value],
                                                         reason: str) -> None:
    assert reason in str(find_conflict(params(**overrides)))


@pytest.mark.parametrize("overrides", [
    {"backing": "mmap-anon", "noreserve": True, "workload": "limits", "access": "none"},
    {"backing": "mmap-hugetlb", "noreserve": True},
    {"backing": "malloc", "keep_every": 16, "threads": 2, "ops": 64},
    {"backing": "read-file", "read_buffer": 0, "keep_every": 4, "release": "malloc-trim"},
    {"release": "free-but-last", "threads": 2, "ops": 2},
    {"backing": "dev-zero", "release": "madv-free"},
    {"backing": "dev-zero", "workload": "reuse", "release": "madv-free"},
    {"backing": "dev-zero", "sharing": "shared", "workload": "fork", "populate": "mlock"},
    {"backing": "write-file", "access": "zero-then-write-all", "sync": "fsync"},
    {"backing": "mmap-file", "sharing": "shared", "access": "zero-then-write-all",
     "sync": "msync"},
])
def test_new_combinations_that_make_sense_are_accepted(overrides: dict[str, Value]) -> None:
    assert find_conflict(params(**overrides)) is None


def test_a_shared_file_mapping_that_zeroes_and_writes_keeps_its_data_file() -> None:
    """Writing into the data file changes it for the next process: no sharing."""
    s = scenario(backing="mmap-file", sharing="shared", access="zero-then-write-all")
    assert not can_share(s)
    assert can_share(dataclasses.replace(s, access="read-all"))


def test_new_parameters_keep_the_ids_of_scenarios_that_do_not_set_them() -> None:
    plain = scenario(backing="mmap-anon")
    assert (plain.noreserve, plain.keep_every) == (False, 0)
    assert dataclasses.replace(plain, noreserve=True).id != plain.id
    assert dataclasses.replace(plain, keep_every=16).id != plain.id


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    good_args(noreserve="2"),
    good_args(noreserve="1"),  # malloc: no mmap to give the flag to
    good_args(keep_every="-1"),
    good_args(keep_every="4", backing="mmap-anon", release="munmap"),
    good_args(keep_every="4", workload="churn"),
    good_args(keep_every="4", release="none"),
    good_args(keep_every="4", release="free-but-last"),
    good_args(keep_every="4", backing="read-file"),  # a reused buffer: no blocks
    good_args(release="free-but-last", workload="fork"),
    good_args(backing="dev-zero", release="free"),
    good_args(backing="dev-zero", workload="reuse", sharing="shared",
               release="madv-dontneed"),
    good_args(access="zero-then-write"),
])
def test_the_probe_refuses_them_too(probe: ProbeBinary, args: list[str]) -> None:
    result = run_raw(probe, args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("probe: ")


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    good_args(backing="dev-zero", release="munmap", noreserve="1"),
    good_args(keep_every="2", ops="4", iterations="2"),
    good_args(release="malloc-trim-but-last", threads="2", ops="4"),
    good_args(access="zero-then-write-all", order="random"),
    good_args(backing="dev-zero", release="madv-free", workload="reuse"),
])
def test_the_probe_runs_them(probe: ProbeBinary, args: list[str]) -> None:
    result = run_raw(probe, args)
    assert result.returncode == 0, result.stderr


def test_exec_architectures_are_the_ones_the_probe_has_code_for() -> None:
    source = Path(__file__).resolve().parents[2] / "runner" / "probe" / "observe.c"
    text = source.read_text()
    assert all(f"defined(__{arch}__)" in text for arch in EXEC_ARCHITECTURES)


def test_untouched_noreserve_blocks_need_no_memory_however_large() -> None:
    """The memory guard lets a never-touched MAP_NORESERVE mapping twice memory's size run;
    touched, or reserved, it counts whole."""
    huge = scenario(backing="mmap-anon", size_bytes=1 << 45, access="none", noreserve=True)
    assert huge.memory_bytes == 0
    assert dataclasses.replace(huge, noreserve=False).memory_bytes == 1 << 45
    assert dataclasses.replace(huge, access="read-page").memory_bytes == 1 << 45
    assert dataclasses.replace(huge, protection="exec").memory_bytes == 1 << 45


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_host_warm_for_huge_pages_leaves_the_block_to_fault_a_huge_page_each_2mib(
        probe: ProbeBinary) -> None:
    """host_warm for thp huge warms the host with huge pages of its own (what the block's huge
    page faults take next) and unmaps them: the block is untouched, and its first touch still
    faults once per 2 MiB, every byte in huge pages."""
    size = 64 * MIB
    s = scenario(backing="mmap-anon", thp="huge", host_warm=True, size_bytes=size,
                 access="write-page")
    for it in measured(probe, s, 2):
        faults = it["phases"]["first_touch"]["minor_faults"]
        assert size // (2 * MIB) <= faults <= size // (2 * MIB) + 2
        assert it["observations"]["anon_huge_bytes"] == size
