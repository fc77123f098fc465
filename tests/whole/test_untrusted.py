"""Stored results are untrusted input: a corpus of damaged and hostile runs, each refused with
a StoreError naming the file (nothing else raised), and skipped by listings so that one bad
run never keeps another experiment from its report."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.cli.main import main
from runner.core.errors import StoreError
from runner.store import folders, select, untrusted
from tests.synthetic import SMALL_SPEC, write_synthetic_run

ROOT = Path(__file__).parents[2]
Mutation = Callable[[Path], None]


def _edit_manifest(change: Callable[[dict[str, Any]], object]) -> Mutation:
    def mutate(run_dir: Path) -> None:
        manifest = json.loads((run_dir / folders.MANIFEST).read_text())
        change(manifest)
        (run_dir / folders.MANIFEST).write_text(json.dumps(manifest))
    return mutate


def _set(key: str, value: object) -> Mutation:
    return _edit_manifest(lambda m: m.__setitem__(key, value))


def _scenario(key: str, value: object) -> Mutation:
    return _edit_manifest(lambda m: m["scenarios"][0].__setitem__(key, value))


def _param(key: str, value: object) -> Mutation:
    return _edit_manifest(lambda m: m["scenarios"][0]["params"].__setitem__(key, value))


def _manifest_bytes(data: bytes) -> Mutation:
    return lambda run_dir: (run_dir / folders.MANIFEST).write_bytes(data)


def _edit_record(change: Callable[[dict[str, Any]], object], line: int = 0) -> Mutation:
    def mutate(run_dir: Path) -> None:
        lines = (run_dir / folders.SAMPLES).read_text().splitlines()
        record = json.loads(lines[line])
        change(record)
        lines[line] = json.dumps(record)
        (run_dir / folders.SAMPLES).write_text("\n".join(lines) + "\n")
    return mutate


def _record(key: str, value: object) -> Mutation:
    return _edit_record(lambda r: r.__setitem__(key, value))


def _probe(change: Callable[[dict[str, Any]], object]) -> Mutation:
    return _edit_record(lambda r: change(r["probe"]))


def _samples_bytes(data: bytes) -> Mutation:
    def mutate(run_dir: Path) -> None:
        with open(run_dir / folders.SAMPLES, "ab") as out:
            out.write(data)
    return mutate


def _replace_with_link(run_dir: Path) -> None:
    target = run_dir.parent / "elsewhere.json"
    (run_dir / folders.MANIFEST).rename(target)
    (run_dir / folders.MANIFEST).symlink_to(target)


def _replace_with_fifo(run_dir: Path) -> None:
    (run_dir / folders.MANIFEST).unlink()
    os.mkfifo(run_dir / folders.MANIFEST)


def _sparse(name: str, size: int) -> Mutation:
    def mutate(run_dir: Path) -> None:
        with open(run_dir / name, "r+b") as out:
            out.truncate(size)
    return mutate


CORPUS: dict[str, Mutation] = {
    "experiment traversal": _set("experiment", "../../../x"),
    "experiment absolute": _set("experiment", "/tmp/x"),
    "experiment link": _set("experiment", "javascript:alert(7)"),
    "experiment newline": _set("experiment", "small\n"),
    "run id traversal": _set("run_id", "../r"),
    "machine label empty": _set("machine_label", ""),
    "format version": _set("format_version", 2),
    "no scenarios": _edit_manifest(lambda m: m.pop("scenarios")),
    "scenarios not a list": _set("scenarios", {"a": 1}),
    "scenario id not text": _scenario("id", 7),
    "scenario params not an object": _scenario("params", [1]),
    "scenario backing unknown": _param("backing", "nope"),
    "scenario size not a number": _param("size_bytes", "big"),
    "scenario ops zero": _param("ops", 0),
    "label keys unknown": _set("label_keys", ["nope"]),
    "repetitions text": _set("repetitions", {"processes": "3", "warmup": 0, "iterations": 1}),
    "timeout not finite": _manifest_bytes(b'{"format_version": 1, "timeout_s": NaN}'),
    "finished not text": _set("finished_utc", 5),
    "fingerprint a list": _set("fingerprint", [1, 2]),
    "fingerprint nested deeply": _set("fingerprint", {"a": json.loads("[" * 500 + "]" * 500)}),
    "dropped malformed": _set("dropped", [{"label": 1}]),
    "reused_from malformed": _set("reused_from", {"a": 1}),
    "stored spec invalid": _set("spec_text", "name: ["),
    "stored spec of another experiment": _set(
        "spec_text", SMALL_SPEC.replace("name: small", "name: other")),
    "manifest a list": _manifest_bytes(b"[1, 2]"),
    "manifest not UTF-8": _manifest_bytes(b'{"a": "\xff"}'),
    "manifest not JSON": _manifest_bytes(b"{"),
    "manifest nested deeply": _manifest_bytes(b"[" * 100_000 + b"]" * 100_000),
    "manifest a link": _replace_with_link,
    "manifest a FIFO": _replace_with_fifo,
    "manifest too large": _sparse(folders.MANIFEST, untrusted.MAX_MANIFEST_BYTES + 1),
    "samples too large": _sparse(folders.SAMPLES, untrusted.MAX_SAMPLES_BYTES + 1),
    "record middle line torn": _samples_bytes(b'{"torn\n{}\n'),
    "record not an object": _samples_bytes(b"[1]\n"),
    "record extra key": _record("extra", 1),
    "record missing key": _edit_record(lambda r: r.pop("wall_s")),
    "record status unknown": _record("status", "weird"),
    "record scenario unknown": _record("scenario_id", "nope"),
    "record process index negative": _record("process_index", -1),
    "record process index bool": _record("process_index", True),
    "record wall time text": _record("wall_s", "1"),
    "record ok without output": _record("probe", None),
    "probe iterations empty": _probe(lambda p: p.__setitem__("iterations", [])),
    "probe page size zero": _probe(lambda p: p.__setitem__("page_size_bytes", 0)),
    "probe phase missing": _probe(lambda p: p["iterations"][0]["phases"].pop("free")),
    "probe ns negative": _probe(
        lambda p: p["iterations"][0]["phases"]["free"].__setitem__("ns", -1)),
    "probe ns text": _probe(
        lambda p: p["iterations"][0]["phases"]["free"].__setitem__("ns", "1")),
    "probe rss before bool": _probe(
        lambda p: p["iterations"][-1].__setitem__("rss_before_bytes", True)),
    "probe warmup a number": _probe(lambda p: p["iterations"][-1].__setitem__("warmup", 0)),
    "probe observation negative": _probe(
        lambda p: p["iterations"][-1].__setitem__("observations", {"mappings": -1})),
    "probe observation text": _probe(
        lambda p: p["iterations"][0].__setitem__("observations", {"mappings": "x"})),
    "probe libc malformed": _probe(lambda p: p.__setitem__("libc", "glibc")),
    "record line too long": _samples_bytes(b'{"a": "' + b"x" * (untrusted.MAX_RECORD_BYTES + 8)
                                           + b'"}\n{}\n'),
}


@pytest.fixture
def good_run(tmp_path: Path) -> Path:
    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    return write_synthetic_run(tmp_path / "results", spec_path, machine="m")


def test_the_unmodified_run_reads(good_run: Path) -> None:
    assert len(folders.load_run(good_run).records) == 18


@pytest.mark.parametrize("mutation", list(CORPUS), ids=list(CORPUS))
def test_each_damaged_run_is_a_store_error_naming_where(mutation: str, good_run: Path) -> None:
    CORPUS[mutation](good_run)
    with pytest.raises(StoreError) as caught:
        folders.load_run(good_run)
    message = str(caught.value)
    assert str(good_run) in message or "stored spec invalid" in message
    assert "\n" not in message and len(message) < 1000
    with pytest.warns(folders.SkippedRunWarning):
        assert select.list_runs(good_run.parent.parent.parent) == []


@pytest.mark.parametrize("mutation", list(CORPUS), ids=list(CORPUS))
def test_read_as_columns_each_damaged_run_is_the_same_store_error(mutation: str,
                                                                  good_run: Path) -> None:
    CORPUS[mutation](good_run)
    with pytest.raises(StoreError) as as_records:
        folders.load_run(good_run)
    with pytest.raises(StoreError) as as_columns:
        folders.load_run(good_run, columns=True)  # as the report reads it
    assert str(as_columns.value) == str(as_records.value)


@pytest.mark.parametrize("folder", ["bad name", "-x"])
def test_a_machine_folder_that_is_not_a_label_is_refused(folder: str, good_run: Path) -> None:
    machine_dir = good_run.parent.parent
    moved = machine_dir.rename(machine_dir.parent / folder)
    with pytest.raises(StoreError, match="is not a machine label"):
        folders.load_run(moved / good_run.parent.name / good_run.name)


def test_a_run_folder_other_than_its_manifest_says_is_refused(good_run: Path) -> None:
    moved = good_run.rename(good_run.parent / "20990101T000000Z")
    with pytest.raises(StoreError, match="names run small/20260101T000000Z, but sits in"):
        folders.load_run(moved)


def test_one_bad_run_is_reported_and_skipped_and_the_others_render(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results, reports = tmp_path / "results", tmp_path / "reports"
    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    write_synthetic_run(results, spec_path, machine="m")
    other = tmp_path / "other.yaml"
    other.write_text(SMALL_SPEC.replace("name: small", "name: other"))
    bad = write_synthetic_run(results, other, machine="m")
    CORPUS["experiment traversal"](bad)
    hostile = write_synthetic_run(results, other, machine="n")
    CORPUS["probe ns text"](hostile)
    assert main(["report", "--results", str(results), "--reports", str(reports),
                 "--templates", str(ROOT / "templates")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning: skipped") == 2
    assert sorted(p.relative_to(reports).as_posix() for p in reports.rglob("*")
                  if p.is_file()) == [".render-cache.json", "data/small/m.csv", "index.html",
                                      "small.html", "verdicts.json"]
    assert not list(tmp_path.glob("*.html")) and not (tmp_path / "x.html").exists()


def test_compare_naming_a_bad_run_is_one_line(good_run: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    CORPUS["record status unknown"](good_run)
    assert main(["compare", str(good_run), str(good_run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "status: 'weird'" in err


def test_a_shown_run_bad_past_its_first_record_is_left_off_its_page_each_time(
        good_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _edit_record(lambda r: r.__setitem__("status", "weird"), line=2)(good_run)
    reports = tmp_path / "reports"
    for _ in range(2):  # not kept by the render cache: the warning is repeated
        assert main(["report", "--results", str(good_run.parent.parent.parent), "--reports",
                     str(reports), "--templates", str(ROOT / "templates")]) == 0
        err = capsys.readouterr().err
        assert err.count("warning: skipped") == 1 and "status: 'weird'" in err
        assert "20260101T000000Z" not in (reports / "small.html").read_text()
