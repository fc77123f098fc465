"""export/import: a round trip, the same bytes twice, and every way an archive is refused."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from runner.core.errors import StoreError
from runner.store import archive
from runner.store.folders import checksum_bytes, data_checksum, load_run
from tests.synthetic import write_synthetic_run


@pytest.fixture
def exported(tmp_path: Path, small_spec: Path) -> Path:
    run_dir = write_synthetic_run(tmp_path / "here", small_spec)
    target = tmp_path / "runs.tar.gz"
    assert archive.export_runs([load_run(run_dir)], target) == [
        "test-machine/small/20260101T000000Z"]
    return target


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _write(path: Path, members: dict[str, bytes], kinds: dict[str, bytes] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, kind in (kinds or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            tar.addfile(info)


def test_round_trip_keeps_every_byte(exported: Path, tmp_path: Path) -> None:
    [imported] = archive.import_archive(exported, tmp_path / "there")
    assert imported.action == "added"
    original = tmp_path / "here" / "test-machine" / "small" / "20260101T000000Z"
    assert data_checksum(imported.path) == data_checksum(original)
    assert load_run(imported.path).manifest == load_run(original).manifest


def test_export_is_deterministic(exported: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.tar.gz"
    runs = [load_run(p.parent) for p in (tmp_path / "here").glob("*/*/*/manifest.json")]
    archive.export_runs(runs, again)
    assert again.read_bytes() == exported.read_bytes()


def test_importing_twice_leaves_the_run_alone(exported: Path, tmp_path: Path) -> None:
    archive.import_archive(exported, tmp_path / "there")
    [again] = archive.import_archive(exported, tmp_path / "there")
    assert again.action == "already present"


def test_a_different_run_under_the_same_name_is_not_overwritten(exported: Path,
                                                                tmp_path: Path) -> None:
    [imported] = archive.import_archive(exported, tmp_path / "there")
    samples = imported.path / "samples.jsonl"
    samples.write_text(samples.read_text()[:-200] + "\n")
    with pytest.raises(StoreError, match="a different run is already stored there"):
        archive.import_archive(exported, tmp_path / "there")


def test_tampered_samples_are_refused(exported: Path, tmp_path: Path) -> None:
    members = _members(exported)
    name = "runs/test-machine/small/20260101T000000Z/samples.jsonl"
    members[name] = members[name].replace(b'"ns":', b'"ns":1', 1)  # a number made bigger
    tampered = tmp_path / "tampered.tar.gz"
    _write(tampered, members)
    with pytest.raises(StoreError, match="checksum does not match"):
        archive.import_archive(tampered, tmp_path / "there")
    assert not (tmp_path / "there").exists()


@pytest.mark.parametrize(("name", "message"), [
    ("/etc/cron.d/evil", "absolute path"),
    ("runs/../../evil", r"leaves the archive"),
    ("runs/a b/c", "unexpected name"),
])
def test_unsafe_member_names_are_refused(exported: Path, tmp_path: Path, name: str,
                                         message: str) -> None:
    members = {**_members(exported), name: b"x"}
    bad = tmp_path / "bad.tar.gz"
    _write(bad, members)
    with pytest.raises(StoreError, match=message):
        archive.import_archive(bad, tmp_path / "there")


def test_links_and_unlisted_members_are_refused(exported: Path, tmp_path: Path) -> None:
    bad = tmp_path / "link.tar.gz"
    _write(bad, _members(exported), kinds={"runs/link": tarfile.SYMTYPE})
    with pytest.raises(StoreError, match="link or device"):
        archive.import_archive(bad, tmp_path / "there")
    extra = tmp_path / "extra.tar.gz"
    _write(extra, {**_members(exported), "runs/m/e/r/manifest.json": b"{}"})
    with pytest.raises(StoreError, match="members do not match its index"):
        archive.import_archive(extra, tmp_path / "there")


def test_a_manifest_of_another_format_or_place_is_refused(exported: Path,
                                                          tmp_path: Path) -> None:
    members = _members(exported)
    folder = "test-machine/small/20260101T000000Z"
    manifest = json.loads(members[f"runs/{folder}/manifest.json"])
    index = json.loads(members["alloclab-export.json"])
    for change, message in ((("format_version", 99), "result format 99"),
                            (("run_id", "elsewhere"), "names run test-machine/small/elsewhere")):
        body = json.dumps({**manifest, change[0]: change[1]}).encode()
        index["runs"][0]["checksum"] = checksum_bytes(
            body, members[f"runs/{folder}/samples.jsonl"])  # a consistent forgery
        bad = tmp_path / "bad.tar.gz"
        _write(bad, {**members, f"runs/{folder}/manifest.json": body,
                     "alloclab-export.json": json.dumps(index).encode()})
        with pytest.raises(StoreError, match=message):
            archive.import_archive(bad, tmp_path / "there")


def test_samples_that_do_not_parse_are_refused(exported: Path, tmp_path: Path) -> None:
    members = _members(exported)
    folder = "test-machine/small/20260101T000000Z"
    samples = members[f"runs/{folder}/samples.jsonl"] + b'{"scenario_id": "x"}\n'
    index = json.loads(members["alloclab-export.json"])
    index["runs"][0]["checksum"] = checksum_bytes(
        members[f"runs/{folder}/manifest.json"], samples)
    bad = tmp_path / "bad.tar.gz"
    _write(bad, {**members, f"runs/{folder}/samples.jsonl": samples,
                 "alloclab-export.json": json.dumps(index).encode()})
    with pytest.raises(StoreError, match="not a process record"):
        archive.import_archive(bad, tmp_path / "there")


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(b"not a tar file at all" * 40))
    with pytest.raises(StoreError, match=r"not a readable \.tar\.gz archive"):
        archive.import_archive(junk, tmp_path / "there")
    with pytest.raises(StoreError, match="not a readable"):
        archive.import_archive(tmp_path / "missing.tar.gz", tmp_path / "there")
