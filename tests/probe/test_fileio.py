"""File I/O measured as the claims about it need: a share of pages visited, the page cache and
storage I/O a pass causes, kernel entries, a file created inside the timed window, what a
mapping shows past the end of its file and in its holes, and a file opened per block.

Physical facts these tests rely on (Linux 6.18, ext4 under the temporary directory, 4 KiB
pages): a fault in a default file mapping reads around it (up to read_ahead_kb), MADV_RANDOM
and pread read only what is asked; /proc/self/io counts the reads a process submits
(read-ahead included) and the pages it dirties; reading a page wholly past the end of a mapped
file raises SIGBUS, the rest of the page holding the end reads 0, and so do holes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from runner.analysis.frame import build_frame
from runner.analysis.frame import measured as measured_samples
from runner.core.combinations import find_conflict
from runner.core.kinds import Value
from runner.core.metrics import BY_NAME, DETERMINISTIC
from runner.core.model import PHASES, Scenario, Span
from runner.core.observations import OBSERVATIONS_BY_NAME
from runner.core.parameters import BY_KEY, DEFAULTS, PARAMETERS
from runner.core.sizing import resolve_ops
from runner.core.units import PPM
from runner.core.upgrade import upgrade_params
from runner.measure import pipeline
from runner.probe.native import ProbeBinary
from runner.spec.schema import build_schema
from runner.store.folders import load_run
from tests.probe.running import PAGE, good_args, measured, run_raw, scenario

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


def observed(it: dict[str, Any]) -> dict[str, int]:
    return it["observations"]  # type: ignore[no-any-return]


def faults(it: dict[str, Any], phase: str) -> int:
    values = it["phases"][phase]
    return int(values["minor_faults"]) + int(values["major_faults"])


def kept_per_block(pages: int, share_ppm: int) -> int:
    """The pages of a block a touch_share visits: rounded up, at least one."""
    return max(1, -(-pages * share_ppm // PPM))


# --- touch_share: which pages, how many ------------------------------------------------------

def chosen_pages(ops: int, pages_per_block: int, share_ppm: int) -> set[int]:
    """The global page indexes the probe's fixed random order keeps for a share (the C's
    shuffle_pages and choose_units, again): the first of each block's pages in the order."""
    mask, state = (1 << 64) - 1, 0x9E3779B97F4A7C15
    count = ops * pages_per_block
    order = list(range(count))
    for i in range(count, 1, -1):
        state ^= state >> 12
        state = (state ^ (state << 25)) & mask
        state ^= state >> 27
        j = ((state * 0x2545F4914F6CDD1D) & mask) % i
        order[i - 1], order[j] = order[j], order[i - 1]
    keep, taken, chosen = kept_per_block(pages_per_block, share_ppm), [0] * ops, set()
    for unit in order:
        block = unit // pages_per_block
        if taken[block] < keep:
            taken[block] += 1
            chosen.add(unit)
    return chosen


@pytest.mark.probe
@pytest.mark.parametrize("order", ["random", "sequential"])
def test_a_touch_share_reads_the_chosen_pages_of_every_block_once_per_pass(
        probe: ProbeBinary, tmp_path: Path, order: str) -> None:
    """read-page sums one byte per visited page of the file's pattern: the sum says which
    pages were read. Both orders read the same pages (sequential in ascending order)."""
    ops, pages, share = 3, 64, 50_000  # 5%: 3.2 pages, so 4 of each block
    s = scenario(backing="mmap-file", size_bytes=pages * PAGE, ops=ops, access="read-page",
                 order=order, touch_share_ppm=share, file_dir=str(tmp_path))
    chosen = chosen_pages(ops, pages, share)
    assert len(chosen) == ops * 4
    one_pass = sum((unit * PAGE) % 251 + 1 for unit in chosen)
    for it in measured(probe, s, 2):
        assert it["checksum"] == 2 * one_pass
        assert observed(it)["touched_pages"] == ops * 4


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
@pytest.mark.parametrize("order", ["random", "sequential"])
def test_a_touch_share_of_anonymous_memory_faults_only_the_pages_it_visits(
        probe: ProbeBinary, order: str) -> None:
    ops, pages, share = 4, 256, 50_000
    s = scenario(backing="mmap-anon", size_bytes=pages * PAGE, ops=ops, order=order,
                 touch_share_ppm=share)
    visited = ops * kept_per_block(pages, share)
    for it in measured(probe, s, 2):
        assert it["phases"]["first_touch"]["minor_faults"] == visited
        growth = it["phases"]["first_touch"]["rss_bytes"] - it["phases"]["allocate"]["rss_bytes"]
        assert growth == visited * PAGE
        assert observed(it)["touched_pages"] == visited


# --- the page cache and storage I/O of a cold read -------------------------------------------

SPARSE_FILE_BYTES = 64 * MIB
SPARSE_SHARE = 10_000  # 1%


def sparse_read(backing: str, disk: Path, **fields: Any) -> Scenario:
    buffer = {"read_buffer_bytes": PAGE} if backing == "read-file" else {}
    return scenario(backing=backing, size_bytes=SPARSE_FILE_BYTES, access="read-page",
                    cache="cold", order="random", touch_share_ppm=SPARSE_SHARE,
                    file_dir=str(disk), **buffer, **fields)


@pytest.mark.probe
@pytest.mark.parametrize(("backing", "advice"), [("read-file", "none"), ("mmap-file", "random")])
def test_a_sparse_cold_read_by_pread_or_madv_random_caches_about_what_it_reads(
        probe: ProbeBinary, disk_dir: Path, backing: str, advice: str) -> None:
    """1% of a cold 64 MiB file at random offsets: pread of a page, or a fault in a mapping
    advised MADV_RANDOM, reads that page and no read-ahead around it."""
    visited = kept_per_block(SPARSE_FILE_BYTES // PAGE, SPARSE_SHARE)
    for it in measured(probe, sparse_read(backing, disk_dir, advice=advice), 2):
        seen = observed(it)
        assert seen["resident_ppm_before"] <= 10_000  # really cold
        assert seen["touched_pages"] == visited
        assert visited <= seen["cached_pages_added"] <= 2 * visited
        assert visited * PAGE <= seen["first_touch_io_read_bytes"] <= 2 * visited * PAGE
        if backing == "read-file":
            assert seen["first_touch_syscalls"] == visited  # one pread per page
        else:
            assert it["phases"]["first_touch"]["major_faults"] >= 0.9 * visited


@pytest.mark.probe
def test_a_sparse_cold_read_through_a_default_mapping_reads_far_more_than_it_visits(
        probe: ProbeBinary, disk_dir: Path) -> None:
    """Without advice every major fault reads around itself (read_ahead_kb, 8 MiB here): 1%
    of the pages at random brings in most of the file."""
    visited = kept_per_block(SPARSE_FILE_BYTES // PAGE, SPARSE_SHARE)
    for it in measured(probe, sparse_read("mmap-file", disk_dir), 2):
        seen = observed(it)
        assert seen["cached_pages_added"] >= 10 * visited
        assert seen["first_touch_io_read_bytes"] >= 10 * visited * PAGE
        assert seen["first_touch_io_read_bytes"] >= seen["cached_pages_added"] * PAGE * 0.9


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["read-file", "mmap-file"])
def test_a_cold_whole_read_fetches_the_file_from_storage_and_a_warm_one_nothing(
        probe: ProbeBinary, disk_dir: Path, backing: str) -> None:
    size = 16 * MIB
    cold = scenario(backing=backing, size_bytes=size, access="read-all", cache="cold",
                    file_dir=str(disk_dir))
    for it in measured(probe, cold, 2):
        seen = observed(it)
        assert seen["first_touch_io_read_bytes"] >= size
        assert seen["cached_pages_added"] >= 0.99 * size // PAGE
        assert seen["resident_ppm_after"] >= 990_000
    for it in measured(probe, dataclasses.replace(cold, cache="warm"), 2):
        seen = observed(it)
        assert all(seen[f"{phase}_io_read_bytes"] == 0 for phase in PHASES)
        assert seen["cached_pages_added"] == 0
        assert seen["resident_ppm_after"] == 1_000_000


@pytest.mark.probe
def test_io_and_cache_are_reported_for_file_backings_of_workload_cycle_only(
        probe: ProbeBinary) -> None:
    (anon,) = measured(probe, scenario(backing="mmap-anon", size_bytes=MIB))
    assert not {"cached_pages_added", "allocate_io_read_bytes", "touched_pages"} & set(
        observed(anon))
    (shared,) = measured(probe, scenario(backing="mmap-anon", size_bytes=MIB,
                                         touch_share_ppm=500_000))
    assert observed(shared)["touched_pages"] == MIB // PAGE // 2
    assert "cached_pages_added" not in observed(shared)


# --- kernel entries, through the runner and the frame ----------------------------------------

ENTRIES_SPEC = """\
name: entries
title: Kernel entries of reading a warm file
question: How often does reading a file once enter the kernel?
matrix:
  backing: [mmap-file, read-file]
fixed:
  size: 1MiB
  ops: 4
  access: read-page
  file_dir: {file_dir}
  touch_share: 100%
repetitions:
  processes: 1
  iterations: 2
"""


@pytest.mark.probe
def test_a_warm_mapped_read_enters_the_kernel_twice_per_block_plus_its_faults(
        probe: ProbeBinary, tmp_path: Path) -> None:
    """mmap and munmap per block, and the read's page faults; read() of the block through a
    1 MiB buffer is one pread and no fault. Run as `alloclab run` runs it, into the frame."""
    spec = tmp_path / "entries.yaml"
    spec.write_text(ENTRIES_SPEC.format(file_dir=tmp_path))
    [plan] = pipeline.load_plans([spec])
    options = pipeline.RunOptions(results_dir=tmp_path / "results", machine="m",
                                  command="alloclab run", seed=1)
    summary = pipeline.run_plan(plan, probe, options, lambda _: None)
    frame = measured_samples(build_frame(load_run(summary.run_dir)))
    assert len(frame) == 4
    for _, row in frame.iterrows():
        single = ("allocate", "first_touch", "free")
        entries = sum(row[f"{phase}_syscalls_per_op"] + row[f"{phase}_minor_faults_per_op"]
                      + row[f"{phase}_major_faults_per_op"] for phase in single)
        assert row["single_pass_kernel_entries_per_op"] == entries
        if row["backing"] == "mmap-file":
            assert row["single_pass_syscalls_per_op"] == 2  # mmap, munmap
            assert row["first_touch_minor_faults_per_op"] >= 1
            assert entries == 2 + sum(row[f"{phase}_minor_faults_per_op"] for phase in single)
        else:
            assert entries == 1  # one pread of the whole block
        assert row["total_kernel_entries_per_op"] >= entries
        assert row["cached_per_touched_page"] == 0  # warm: nothing brought in


# --- a file created inside allocate ----------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("sync", ["none", "fsync"])
def test_a_new_sparse_file_mapped_shared_and_written_faults_per_folio_and_owes_its_size(
        probe: ProbeBinary, disk_dir: Path, sync: str) -> None:
    """allocate opens (O_CREAT|O_TRUNC), ftruncates and maps: 3 calls. A write to a hole
    faults a page-cache folio in and maps the whole folio: the first read_ahead_kb of the file
    comes in single pages, the rest in larger folios (order 2, then growing), so writing one
    byte per page of 16 MiB took 2560 faults here, one per page for the first 8 MiB and one
    per 4 pages after. /proc/self/io counts every page as owed to storage when it is dirtied,
    synced or not. After fsync the pages are clean and write-protected again: the second pass
    faults once per page and dirties them again."""
    size, pages = 16 * MIB, 16 * MIB // PAGE
    s = scenario(backing="mmap-file", sharing="shared", size_bytes=size, access="write-page",
                 file_origin="new", sync=sync, file_dir=str(disk_dir))
    for it in measured(probe, s, 2):
        seen = observed(it)
        assert "resident_ppm_before" not in seen  # no file before the iteration
        assert seen["allocate_syscalls"] == 3
        assert seen["first_touch_syscalls"] == (1 if sync == "fsync" else 0)
        assert pages // 512 <= faults(it, "first_touch") < pages
        assert seen["cached_pages_added"] == pages
        assert seen["first_touch_io_write_bytes"] >= size
        assert seen["first_touch_io_read_bytes"] == 0  # holes: nothing to read
        second = it["phases"]["second_pass"]["minor_faults"]
        if sync == "fsync":
            assert second == pages
            assert seen["second_pass_io_write_bytes"] >= size
        else:
            assert second == 0
            assert seen["second_pass_io_write_bytes"] == 0
    assert list(disk_dir.iterdir()) == []  # closed and unlinked after each iteration


@pytest.mark.probe
def test_a_new_file_written_with_pwrite_grows_from_empty(probe: ProbeBinary,
                                                         disk_dir: Path) -> None:
    size = 4 * MIB
    s = scenario(backing="write-file", size_bytes=size, ops=2, access="write-all",
                 file_origin="new", sync="fsync", file_dir=str(disk_dir))
    for it in measured(probe, s, 2):
        seen = observed(it)
        assert seen["allocate_syscalls"] == 1  # the open: write-file makes no ftruncate
        assert seen["first_touch_syscalls"] == 2 * 4 + 1  # 1 MiB chunks, then the fsync
        assert seen["first_touch_io_write_bytes"] >= 2 * size
        assert seen["cached_pages_added"] == 2 * size // PAGE
    assert list(disk_dir.iterdir()) == []


# --- what a mapping shows of its file --------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("size", [3 * 4096 + 57, 1 * MIB])
@pytest.mark.parametrize(("layout", "access", "expected"), [
    ("whole", "read-all", {"content_matches": 1}),
    ("short", "none", {"content_matches": 1, "tail_zero": 1, "sigbus_beyond_eof": 1}),
    ("holes", "read-all", {"content_matches": 1, "holes_zero": 1}),
    ("holes", "none", {"content_matches": 1, "holes_zero": 1}),
    ("truncated", "none", {"content_matches": 1, "sigbus_after_truncate": 1}),
])
@pytest.mark.parametrize("sharing", ["private", "shared"])
def test_a_file_mapping_shows_the_file_zeros_past_its_end_and_sigbus_beyond(
        probe: ProbeBinary, tmp_path: Path, layout: str, access: str,
        expected: dict[str, int], sharing: str, size: int) -> None:
    s = scenario(backing="mmap-file", size_bytes=size, ops=3, access=access, sharing=sharing,
                 protection="read", check_content=True, file_layout=layout,
                 file_dir=str(tmp_path))
    checks = {"content_matches", "tail_zero", "sigbus_beyond_eof", "holes_zero",
              "sigbus_after_truncate"}
    for it in measured(probe, s, 2):  # truncated: the file is whole again for the second
        seen = observed(it)
        assert {k: v for k, v in seen.items() if k in checks} == expected
        assert all(faults(it, phase) == 0 for phase in PHASES if access == "none")


@pytest.mark.probe
def test_content_is_read_back_after_a_cold_start(probe: ProbeBinary, disk_dir: Path) -> None:
    s = scenario(backing="mmap-file", size_bytes=4 * MIB, access="read-page", cache="cold",
                 order="random", check_content=True, file_dir=str(disk_dir))
    for it in measured(probe, s, 2):
        assert observed(it)["content_matches"] == 1


# --- a file opened per block -----------------------------------------------------------------

@pytest.mark.probe
def test_mapping_a_small_file_per_block_is_open_mmap_close_then_munmap(
        probe: ProbeBinary, tmp_path: Path) -> None:
    ops = resolve_ops(0, 4096, "mmap-file")
    s = scenario(backing="mmap-file", size_bytes=4096, ops=ops, access="read-all",
                 file_open="per-block", file_dir=str(tmp_path))
    for it in measured(probe, s, 2):
        seen = observed(it)
        assert seen["allocate_syscalls"] == 3 * ops
        assert seen["free_syscalls"] == ops
        assert seen["first_touch_syscalls"] == seen["second_pass_syscalls"] == 0
    assert list(tmp_path.iterdir()) == []  # the named private file is gone with the probe


@pytest.mark.probe
@pytest.mark.parametrize(("buffer", "phase"), [(4096, "first_touch"), (0, "allocate")])
def test_reading_a_small_file_per_block_is_open_pread_close(
        probe: ProbeBinary, tmp_path: Path, buffer: int, phase: str) -> None:
    ops = resolve_ops(0, 4096, "read-file")
    s = scenario(backing="read-file", size_bytes=4096, ops=ops, access="read-all",
                 file_open="per-block", read_buffer_bytes=buffer, file_dir=str(tmp_path))
    for it in measured(probe, s, 2):
        assert observed(it)[f"{phase}_syscalls"] == 3 * ops
        assert it["checksum"] > 0
    once = measured(probe, dataclasses.replace(s, file_open="once"))[0]
    assert observed(once)[f"{phase}_syscalls"] == ops
    assert list(tmp_path.iterdir()) == []


# --- the command line ------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("args", [
    good_args(touch_share_ppm="0"),
    good_args(touch_share_ppm="1000001"),
    good_args(touch_share_ppm="10000", access="none"),
    good_args(touch_share_ppm="10000", workload="fork"),
    good_args(file_origin="old"),
    good_args(file_origin="new"),  # malloc has no file
    good_args(file_origin="new", backing="read-file"),
    good_args(file_origin="new", backing="mmap-file", cache="cold"),
    good_args(file_layout="short", backing="mmap-file", access="none"),  # no check_content
    good_args(file_layout="short", backing="mmap-file", access="read-page", check_content="1",
               size_bytes="65536"),
    good_args(file_layout="truncated", backing="mmap-file", access="none", check_content="1",
               size_bytes="65536", populate="map-populate"),
    good_args(file_layout="holes", backing="mmap-file", access="none", check_content="1"),
    good_args(check_content="1", backing="mmap-file", access="write-page"),
    good_args(check_content="1"),
    good_args(check_content="2", backing="mmap-file", access="none"),
    good_args(file_open="per-block"),  # malloc opens nothing
    good_args(file_open="per-block", backing="read-file", order="random"),
    good_args(file_open="per-block", backing="mmap-file", sharing="shared", sync="fsync"),
])
def test_file_options_that_make_no_sense_exit_2(probe: ProbeBinary, args: list[str]) -> None:
    result = run_raw(probe, args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("probe: ")


# --- the vocabulary --------------------------------------------------------------------------

def params(**overrides: Value) -> dict[str, Value]:
    return {**DEFAULTS, "ops": 1, **overrides}


def test_touch_share_is_a_percentage_held_in_parts_per_million() -> None:
    share = BY_KEY["touch_share"]
    assert (share.field, share.kind, share.default) == ("touch_share_ppm", "share", PPM)
    assert [share.parse(text) for text in ("1%", "0.5%", " 12.5 %", "100%", "0.0001%")] == [
        10_000, 5_000, 125_000, PPM, 1]
    assert share.format(10_000) == "1%" and share.format(5_000) == "0.5%"
    assert share.label_text(PPM) == "touch_share=100%"
    assert share.parse_stored(10_000) == 10_000
    for bad in ("0%", "101%", "-1%", "1", 1, 0.5, True, "1 percent", ""):
        with pytest.raises(ValueError, match=r"is not a share \(use a percentage above 0% and "
                                             r"at most 100%, e.g. 1%, 5% or 100%\)"):
            share.parse(bad)
    with pytest.raises(ValueError, match="finer than a millionth"):
        share.parse("0.00001%")
    with pytest.raises(ValueError):
        share.parse_stored(0)


SHARE_SPEC = """\
name: shares
title: Shares
question: Does a range of shares select them?
matrix:
  touch_share: [1%, 5%, 100%]
fixed:
  backing: mmap-anon
checks:
  - claim: a sparse touch faults less
    metric: first_touch_minor_faults_per_op
    expect: lower
    candidate: {touch_share: 1%}
    reference: {touch_share: 5%}
    where: {touch_share: {from: 0.5%, to: 5%}}
"""


def test_a_spec_takes_shares_and_a_range_of_them(tmp_path: Path) -> None:
    path = tmp_path / "shares.yaml"
    path.write_text(SHARE_SPEC)
    [plan] = pipeline.load_plans([path])
    assert [s.touch_share_ppm for s in plan.scenarios] == [10_000, 50_000, PPM]
    assert plan.scenarios[0].label(plan.label_keys) == "touch_share=1%"
    assert plan.spec.checks[0].where == (("touch_share", Span(5_000, 50_000)),)
    schema = build_schema()
    assert schema["$defs"]["touch_share"]["type"] == "string"
    assert "e.g. 1%" in schema["$defs"]["touch_share"]["description"]


def test_the_new_parameters_keep_every_stored_scenarios_id() -> None:
    """Their defaults are what the probe did before them, so the ids of scenarios stored by
    probe version 7 (every scenario of the suite's runs then, kept in a golden file) hash the
    same, and such runs stay matched to their specs."""
    stored = json.loads((ROOT / "tests" / "golden" / "probe7_scenarios.json").read_text())
    assert len(stored["scenarios"]) > 200
    for entry in stored["scenarios"]:
        scenario_now = Scenario(**upgrade_params(entry["params"]))  # type: ignore[arg-type]
        assert scenario_now.touch_share_ppm == PPM
        assert scenario_now.id == entry["id"], entry


def test_scenario_field_defaults_are_the_new_parameters_defaults() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(Scenario)}
    for key in ("touch_share", "file_origin", "file_layout", "check_content", "file_open"):
        assert fields[BY_KEY[key].field] == DEFAULTS[key]
    keys = [p.key for p in PARAMETERS]
    start = keys.index("touch_share")
    assert keys[start:start + 5] == [
        "touch_share", "file_origin", "file_layout", "check_content", "file_open"]


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"touch_share": 10_000, "backing": "mmap-anon", "access": "none"},
     "access none visits none"),
    ({"touch_share": 10_000, "workload": "fork"}, "applies to workload cycle only"),
    ({"touch_share": 10_000, "threads": 2, "ops": 2}, "is measured with one thread"),
    ({"file_origin": "new", "backing": "read-file"}, "nothing to read"),
    ({"file_origin": "new"}, "backing malloc has none"),
    ({"file_origin": "new", "backing": "mmap-file", "cache": "cold"}, "nothing to evict"),
    ({"file_origin": "new", "backing": "mmap-file", "file_open": "per-block"},
     "opens the data file by its name"),
    ({"file_layout": "short", "backing": "read-file"}, "maps none"),
    ({"file_layout": "holes", "backing": "mmap-file", "size": 4096, "check_content": True,
      "access": "none"}, "at least two pages"),
    ({"file_layout": "holes", "backing": "mmap-file", "size": 65536, "access": "none"},
     "use check_content: true"),
    ({"file_layout": "short", "backing": "mmap-file", "size": 65536, "check_content": True,
      "access": "read-page"}, "would raise SIGBUS inside a timed phase"),
    ({"file_layout": "truncated", "backing": "mmap-file", "size": 65536,
      "check_content": True, "access": "none", "populate": "madv-populate-write"},
     "past the end of the file"),
    ({"file_layout": "holes", "backing": "mmap-file", "size": 65536, "check_content": True,
      "access": "none", "file_origin": "new"}, "use file_origin: existing"),
    ({"check_content": True, "backing": "read-file"}, "is not one"),
    ({"check_content": True, "backing": "mmap-file", "sharing": "shared",
      "access": "write-all"}, "which access write-all overwrites"),
    ({"check_content": True, "backing": "mmap-file", "access": "none", "protection": "none"},
     "protection none forbids"),
    ({"file_open": "per-block", "backing": "write-file"}, "does neither"),
    ({"file_open": "per-block", "backing": "read-file", "order": "random"},
     "interleaves or skips them"),
    ({"file_open": "per-block", "backing": "mmap-file", "sharing": "shared",
      "access": "write-page", "sync": "fsync"}, "use sync: msync"),
    ({"file_open": "per-block", "backing": "mmap-file", "workload": "churn"},
     "applies to workload cycle only"),
])
def test_file_combinations_that_make_no_sense_are_refused(overrides: dict[str, Value],
                                                          reason: str) -> None:
    found = find_conflict(params(**overrides))
    assert found is not None and reason in found, found
    assert "(use " in found or "(leave " in found  # every refusal says what to do instead


@pytest.mark.parametrize("overrides", [
    {"touch_share": 10_000, "backing": "read-file", "access": "none", "read_buffer": 4096,
     "order": "random"},
    {"touch_share": 10_000, "backing": "mmap-file", "access": "read-page", "advice": "random"},
    {"touch_share": 10_000, "backing": "write-file", "access": "write-page",
     "file_origin": "new"},
    {"file_origin": "new", "backing": "mmap-file", "sharing": "shared", "sync": "msync",
     "access": "write-all"},
    {"file_layout": "short", "backing": "mmap-file", "size": 8192, "check_content": True,
     "access": "none", "advice": "willneed"},
    {"file_layout": "holes", "backing": "mmap-file", "size": 65536, "check_content": True,
     "access": "read-all", "order": "random", "cache": "cold"},
    {"check_content": True, "backing": "mmap-file", "protection": "read", "access": "read-page"},
    {"file_open": "per-block", "backing": "mmap-file", "sharing": "shared", "sync": "msync",
     "access": "write-page"},
    {"file_open": "per-block", "backing": "read-file", "read_buffer": 0, "cache": "cold"},
])
def test_file_combinations_that_make_sense_are_accepted(overrides: dict[str, Value]) -> None:
    assert find_conflict(params(**overrides)) is None


def test_the_new_observations_and_metrics_are_declared_once() -> None:
    for name in ("touched_pages", "cached_pages_added", "resident_ppm_after", "content_matches",
                 "tail_zero", "sigbus_beyond_eof", "holes_zero", "sigbus_after_truncate",
                 *(f"{phase}_io_{way}_bytes" for phase in PHASES for way in ("read", "write"))):
        assert name in OBSERVATIONS_BY_NAME
    for name in ("cached_per_touched_page", "single_pass_kernel_entries_per_op",
                 "total_kernel_entries_per_op", "resident_fraction_after",
                 "single_pass_io_read_bytes_per_op", "touched_pages_per_op"):
        assert name in BY_NAME
    assert {"single_pass_kernel_entries_per_op", "total_kernel_entries_per_op",
            "content_matches", "sigbus_after_truncate", "touched_pages_per_op"} <= DETERMINISTIC


# --- pause_ms: the other work between preparing memory and using it ---------------------------

@pytest.mark.probe
def test_willneed_reads_a_cold_file_in_before_first_touch(probe: ProbeBinary,
                                                          disk_dir: Path) -> None:
    """MADV_WILLNEED starts reading a cold file in inside allocate (as far as the device's
    read-ahead window allows: 8 MiB of 16 here), so the first touch after a pause (the
    program's other work) reads that much less from storage; without the advice, the first
    touch reads it all."""
    def io(advice: str) -> tuple[int, int]:
        s = scenario(backing="mmap-file", size_bytes=16 * MIB, access="read-page",
                     cache="cold", protection="read", advice=advice, pause_ms=50,
                     file_dir=str(disk_dir))
        [it] = measured(probe, s)
        assert observed(it)["resident_ppm_before"] == 0  # really cold
        return (observed(it)["allocate_io_read_bytes"],
                observed(it)["first_touch_io_read_bytes"])

    advised, plain = io("willneed"), io("none")
    assert plain == (0, 16 * MIB)
    assert advised[0] >= MIB and advised[1] <= 16 * MIB - advised[0]


def test_pause_is_for_workload_cycle_alone() -> None:
    params = {**DEFAULTS, "workload": "churn", "pause_ms": 10, "ops": 4}
    assert "pause_ms sleeps between allocate and first touch of workload cycle" in str(
        find_conflict(params))
    assert find_conflict({**DEFAULTS, "pause_ms": 10, "ops": 4}) is None


@pytest.mark.probe
def test_the_probe_refuses_a_pause_outside_cycle_or_past_a_minute(probe: ProbeBinary) -> None:
    assert run_raw(probe, good_args(workload="churn", pause_ms="5")).returncode == 2
    assert run_raw(probe, good_args(pause_ms="60001")).returncode == 2
    assert run_raw(probe, good_args(pause_ms="5")).returncode == 0
