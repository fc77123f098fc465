"""Results on disk: append-as-you-go, crash tolerance, format versioning, run selection."""

import json
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from runner.core.errors import StoreError
from runner.core.model import PHASES, ProcessRecord, Repetitions
from runner.core.parameters import PARAMETERS
from runner.store import folders, select, untrusted

PHASE = {"ns": 10, "minor_faults": 1, "major_faults": 0, "rss_bytes": 8192}
PROBE = {"probe_version": 4, "page_size_bytes": 4096, "libc": {"name": "glibc", "version": "2"},
         "file_fs": None, "iterations": [{"warmup": False, "rss_before_bytes": 4096,
                                          "checksum": 0, "phases": dict.fromkeys(PHASES, PHASE),
                                          "observations": {}}]}


def _record(index: int, status: str = "ok") -> ProcessRecord:
    return ProcessRecord(scenario_id="abc", process_index=index, status=status,  # type: ignore[arg-type]
                         exit_code=0, signal=None, wall_s=0.1, stderr_tail="",
                         probe=PROBE if status == "ok" else None)


def _manifest(experiment: str, run_id: str, finished: bool = True) -> dict[str, object]:
    """A manifest as `alloclab run` writes one, small."""
    params = {p.field: p.default for p in PARAMETERS} | {"size_bytes": 4096, "ops": 1}
    return {"experiment": experiment, "run_id": run_id, "machine_label": "m",
            "spec_text": f"name: {experiment}\ntitle: T\nquestion: Q?\nmatrix:\n  size: 4KiB\n",
            "spec_hash": "s", "measurement_hash": "s", "probe": {"source_hash": "p"},
            "repetitions": asdict(Repetitions(processes=5)),
            "scenarios": [{"id": "abc", "label": "4KiB", "params": params}],
            "label_keys": ["size"], "seed": 1, "timeout_s": 60.0,
            "started_utc": "2026-01-01T00:00:00Z",
            "finished_utc": "2026-01-01T00:00:00Z" if finished else None}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return folders.run_path(tmp_path, "m", "e", "r1")


def test_records_round_trip_in_append_order(run_dir: Path) -> None:
    folders.write_manifest(run_dir, _manifest("e", "r1"))
    for i in range(3):
        folders.append_record(run_dir, _record(i))
    run = folders.load_run(run_dir)
    assert [r.process_index for r in run.records] == [0, 1, 2]
    assert run.records[0] == _record(0)
    assert run.manifest["format_version"] == untrusted.FORMAT_VERSION


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_append(run_dir: Path) -> None:
    folders.write_manifest(run_dir, _manifest("e", "r1"))
    folders.append_record(run_dir, _record(0))
    with open(run_dir / folders.SAMPLES, "a") as out:
        out.write('{"scenario_id": "ab')  # killed mid-write
    assert len(folders.load_run(run_dir).records) == 1
    folders.append_record(run_dir, _record(1))
    assert [r.process_index for r in folders.load_run(run_dir).records] == [0, 1]


def test_a_damaged_middle_line_is_an_error_naming_the_line(run_dir: Path) -> None:
    folders.write_manifest(run_dir, _manifest("e", "r1"))
    (run_dir / folders.SAMPLES).write_text('{"torn\n' + json.dumps(_record(1).to_json()) + "\n")
    with pytest.raises(StoreError, match=r"samples.jsonl:1: not a JSON record"):
        folders.load_run(run_dir)


def test_unknown_format_version_is_refused(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / folders.MANIFEST).write_text(json.dumps({"format_version": 99}))
    with pytest.raises(StoreError, match="result format 99, this alloclab reads 1"):
        folders.load_run(run_dir)


def test_latest_runs_prefers_finished_then_newest(tmp_path: Path) -> None:
    for run_id, finished in (("r1", True), ("r2", True), ("r3", False)):
        run_dir = folders.run_path(tmp_path, "m", "e", run_id)
        folders.write_manifest(run_dir, _manifest("e", run_id, finished))
        folders.append_record(run_dir, _record(0))
    empty = folders.run_path(tmp_path, "m", "other", "r9")
    folders.write_manifest(empty, _manifest("other", "r9"))  # no records: nothing to show
    assert [r.run_id for r in select.latest_runs(tmp_path)] == ["r2"]


def test_find_resumable_matches_what_is_measured_and_stops_at_a_finished_run(
        tmp_path: Path) -> None:
    reps = Repetitions(processes=5)
    unfinished = folders.run_path(tmp_path, "m", "e", "r1")
    folders.write_manifest(unfinished, _manifest("e", "r1", finished=False))
    assert select.find_resumable(tmp_path, "m", "e", "s", "p", reps) is not None
    assert select.find_resumable(tmp_path, "m", "e", "other-spec", "p", reps) is None
    assert select.find_resumable(tmp_path, "m", "e", "s", "other-probe", reps) is None
    # An interrupted smoke run (--processes 1) is not finished by a full run.
    assert select.find_resumable(tmp_path, "m", "e", "s", "p", Repetitions(processes=1)) is None
    folders.write_manifest(folders.run_path(tmp_path, "m", "e", "r2"), _manifest("e", "r2"))
    assert select.find_resumable(tmp_path, "m", "e", "s", "p", reps) is None


def test_the_machine_is_the_folder_a_run_lives_in(tmp_path: Path) -> None:
    """Copying results/vm/ to results/laptop/ keeps two same-named hosts apart."""
    run_dir = folders.run_path(tmp_path, "laptop", "e", "r1")
    folders.write_manifest(run_dir, _manifest("e", "r1"))  # recorded label: "m"
    assert folders.load_run(run_dir).machine == "laptop"


def test_a_report_prefers_a_full_run_to_a_newer_quick_one(tmp_path: Path) -> None:
    for run_id, profile in (("r1", "full"), ("r2", "reduced")):
        run_dir = folders.run_path(tmp_path, "m", "e", run_id)
        folders.write_manifest(run_dir, {**_manifest("e", run_id), "profile": profile})
        folders.append_record(run_dir, _record(0))
    assert [r.run_id for r in select.latest_runs(tmp_path)] == ["r1"]
    run_dir = folders.run_path(tmp_path, "m", "e", "r3")
    folders.write_manifest(run_dir, {**_manifest("e", "r3"), "profile": "full"})
    folders.append_record(run_dir, _record(0))
    assert [r.run_id for r in select.latest_runs(tmp_path)] == ["r3"]


def test_record_writer_appends_after_a_torn_tail_and_syncs_only_when_asked(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folders.write_manifest(run_dir, _manifest("e", "r1"))
    synced: list[int] = []
    real_fsync = folders.os.fsync
    monkeypatch.setattr(folders.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    with folders.RecordWriter(run_dir) as writer:
        assert not (run_dir / folders.SAMPLES).exists()  # no record, no file
        writer.sync()
        assert synced == []
    folders.append_record(run_dir, _record(0))
    with open(run_dir / folders.SAMPLES, "a") as out:
        out.write('{"scenario_id": "ab')  # killed mid-write
    synced.clear()
    with folders.RecordWriter(run_dir) as writer:
        writer.append(_record(1))
        writer.append(_record(2))
        # Written through to the kernel at once: a killed runner loses nothing appended.
        assert [r.process_index for r in folders.load_run(run_dir).records] == [0, 1, 2]
        assert synced == []
        writer.sync()
        writer.sync()  # nothing new: no second fsync
        assert len(synced) == 1
        writer.append(_record(3))
    assert len(synced) == 2  # closing syncs what is left
    assert [r.process_index for r in folders.load_run(run_dir).records] == [0, 1, 2, 3]


def test_to_json_holds_every_field_and_shares_the_probe_output() -> None:
    record = _record(0)
    stored = record.to_json()
    assert list(stored) == [f.name for f in fields(ProcessRecord)]
    assert all(stored[name] == getattr(record, name) for name in stored)
    assert stored["probe"] is record.probe  # no deep copy per record


def test_a_report_reads_the_samples_of_the_runs_it_shows_only(tmp_path: Path) -> None:
    for run_id in ("r1", "r2"):
        run_dir = folders.run_path(tmp_path, "m", "e", run_id)
        folders.write_manifest(run_dir, _manifest("e", run_id))
        folders.append_record(run_dir, _record(0))
    # An older run no report shows: its samples are never parsed, so a bad line is no error.
    old = folders.run_path(tmp_path, "m", "e", "r1") / folders.SAMPLES
    old.write_text("not json\n" + old.read_text())
    assert select.shown_run_dirs(tmp_path) == [folders.run_path(tmp_path, "m", "e", "r2")]
    assert [r.run_id for r in select.latest_runs(tmp_path)] == ["r2"]
    # The newest run holding only a torn line has no records: the one before it is shown.
    torn = folders.run_path(tmp_path, "m", "e", "r3")
    folders.write_manifest(torn, _manifest("e", "r3"))
    (torn / folders.SAMPLES).write_text('{"scenario_id": ')
    assert [r.run_id for r in select.latest_runs(tmp_path)] == ["r2"]


def test_newest_finished_times_come_newest_first_without_the_unfinished(
        tmp_path: Path) -> None:
    from tests.synthetic import SMALL_SPEC, write_synthetic_run

    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    results = tmp_path / "results"
    for run_id in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        write_synthetic_run(results, spec_path, run_id=run_id)
    unfinished = folders.run_path(results, "test-machine", "small", "20260103T000000Z")
    folders.write_manifest(unfinished, {**folders.read_manifest(unfinished), "finished_utc": None})
    second = folders.run_path(results, "test-machine", "small", "20260102T000000Z")
    with open(second / folders.SAMPLES, "ab") as samples:  # lines an estimate leaves out
        samples.write(b'not json\n{"status": "ok", "scenario_id": "x", "wall_s": -1}\n'
                      b'{"status": "crashed", "scenario_id": "x", "wall_s": 9}\n')
    runs = select.newest_finished_times(results, "test-machine", "small")
    newest = next(runs)
    assert newest.repetitions == Repetitions(processes=3, warmup=1, iterations=2)
    assert "x" not in newest.walls_s
    assert all(walls == (0.01,) * 3 for walls in newest.walls_s.values())
    assert len(newest.walls_s) == 6  # every scenario of SMALL_SPEC
    assert len(list(runs)) == 1  # the oldest; the unfinished newest is left out
