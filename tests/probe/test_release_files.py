"""Releasing memory and files: what each release gives back, cold and warm file pages, page
order, write() and msync, and reading files through a reused buffer, system calls and advice."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.core.model import PHASES
from runner.probe.execute import run_process
from runner.probe.native import (
    EXIT_SKIPPED,
    ProbeBinary,
    probe_argv,
)
from tests.probe.running import (
    MIB,
    N_PAGES,
    PAGE,
    is_tmpfs,
    measure,
    measured,
    pattern_sums,
    scenario,
)

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
    if not shm.is_dir() or not is_tmpfs(shm):
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
