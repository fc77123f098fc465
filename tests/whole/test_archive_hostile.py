"""Hostile archives: each is refused with one line and exit 2, nothing is written, and the
import's peak memory stays under 200 MB (measured in a child process that imports them all)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.core.errors import StoreError
from runner.store import archive
from runner.store.folders import checksum_bytes, load_run
from tests.synthetic import SMALL_SPEC, write_synthetic_run

ROOT = Path(__file__).parents[2]
FOLDER = "test-machine/small/20260101T000000Z"
MANIFEST = f"runs/{FOLDER}/manifest.json"
SAMPLES = f"runs/{FOLDER}/samples.jsonl"
PEAK_LIMIT_KIB = 200 * 1024
BOMB_BYTES = 96 << 20  # read whole (and joined to the manifest) it would pass 200 MB


def _header(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE,
            linkname: str = "") -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname = size, kind, linkname
    return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def _file(name: str, data: bytes) -> bytes:
    return _header(name, len(data)) + data + b"\0" * (-len(data) % 512)


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The members of a good export, the index first."""
    where = tmp_path_factory.mktemp("good")
    (where / "small.yaml").write_text(SMALL_SPEC)
    run_dir = write_synthetic_run(where / "results", where / "small.yaml")
    exported = where / "good.tar.gz"
    archive.export_runs([load_run(run_dir)], exported)
    with tarfile.open(exported, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def _good(members: dict[str, bytes]) -> bytes:
    return b"".join(_file(name, data) for name, data in members.items())


def _forged(members: dict[str, bytes], manifest_change: Callable[[dict[str, object]], None]
            ) -> bytes:
    """A run changed and its checksum recomputed: only the content checks can refuse it."""
    manifest = json.loads(members[MANIFEST])
    manifest_change(manifest)
    body = json.dumps(manifest).encode()
    index = json.loads(members[archive.INDEX])
    index["runs"][0]["checksum"] = checksum_bytes(body, members[SAMPLES])
    return _good({archive.INDEX: json.dumps(index).encode(), MANIFEST: body,
                  SAMPLES: members[SAMPLES]})


def _many_members(members: dict[str, bytes], path: Path, count: int) -> None:
    """The index, then `count` empty members: written as a stream, never held whole."""
    block = _header("runs/x/y/z/manifest.json") * 1000
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(_file(archive.INDEX, members[archive.INDEX]))
        for _ in range(count // 1000):
            out.write(block)


def _bomb(members: dict[str, bytes], path: Path) -> None:
    """A samples member of 96 MiB of zeros, 100 KiB compressed: within the size caps, so it is
    streamed to disk (not into memory) and refused by its checksum."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as out:
        out.write(_file(archive.INDEX, members[archive.INDEX]))
        out.write(_file(MANIFEST, members[MANIFEST]))
        out.write(_header(SAMPLES, BOMB_BYTES))
        zeros = b"\0" * (1 << 20)
        for _ in range(BOMB_BYTES >> 20):
            out.write(zeros)


def _hostile(members: dict[str, bytes], where: Path) -> dict[str, tuple[Path, str]]:
    """Each hostile archive and a part of the one line that refuses it."""
    cases: dict[str, tuple[bytes, str]] = {
        "path traversal": (_good(members) + _file("runs/../../evil", b"x"), "leaves the archive"),
        "absolute path": (_good(members) + _file("/etc/cron.d/evil", b"x"), "absolute path"),
        "symbolic link": (_good(members) + _header("runs/l", kind=tarfile.SYMTYPE,
                                                   linkname="/etc/passwd"), "link or device"),
        "hard link": (_good(members) + _header("runs/h", kind=tarfile.LNKTYPE,
                                               linkname=MANIFEST), "link or device"),
        "device node": (_good(members) + _header("runs/d", kind=tarfile.CHRTYPE),
                        "link or device"),
        "fifo": (_good(members) + _header("runs/f", kind=tarfile.FIFOTYPE), "link or device"),
        "member declaring 10 GB": (_file(archive.INDEX, members[archive.INDEX])
                                   + _file(MANIFEST, members[MANIFEST])
                                   + _header(SAMPLES, 10 * 10**9), "declares 10000000000"),
        "pax header declaring 10 GB": (_header("pax", 10 * 10**9, kind=tarfile.XHDTYPE),
                                       "at once; refused"),
        "long name declaring 1 GB": (_header("././@LongLink", 10**9, kind=tarfile.GNUTYPE_LONGNAME),
                                     "at once; refused"),
        "index not first": (_file(MANIFEST, members[MANIFEST]) + _good(members),
                            "no alloclab-export.json first"),
        "index listing a traversal": (_file(archive.INDEX, json.dumps(
            {"archive_version": 1, "runs": [{"path": "../../x", "checksum": "0" * 64}]})
            .encode()), "is not <machine>/<experiment>/<run>"),
        "index listing a link name": (_file(archive.INDEX, json.dumps(
            {"archive_version": 1, "runs": [{"path": "m/javascript:alert(7)/r",
                                              "checksum": "0" * 64}]}).encode()),
            "is not <machine>/<experiment>/<run>"),
        "index too large": (_header(archive.INDEX, 100 << 20), "no alloclab-export.json first"),
        "member twice": (_good(members) + _file(MANIFEST, b"{}"), "appears twice"),
        "invalid stored spec": (_forged(members, lambda m: m.__setitem__(
            "spec_text", "name: small\ntitle: t\nquestion: q\nmatrix:\n  size: 4 kb\n")),
            "stored spec invalid"),
        "experiment name traversal": (_forged(members, lambda m: m.__setitem__(
            "experiment", "../../x")), "experiment"),
        "not gzip": (b"plain text", "not a readable .tar.gz archive"),
    }
    paths = {}
    for name, (data, message) in cases.items():
        path = where / (name.replace(" ", "-") + ".tar.gz")
        path.write_bytes(data if name == "not gzip" else gzip.compress(data, 1))
        paths[name] = (path, message)
    _many_members(members, where / "million.tar.gz", 10**6)
    paths["10^6 members"] = (where / "million.tar.gz", "is not listed")
    _bomb(members, where / "bomb.tar.gz")
    paths["96 MiB of zeros"] = (where / "bomb.tar.gz", "checksum does not match")
    return paths


IMPORT_ALL = """
import contextlib, io, json, sys
from runner.cli.main import main
out = {}
for path, results in zip(sys.argv[1::2], sys.argv[2::2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        status = main(["import", path, "--results", results])
    out[path] = [status, err.getvalue()]
# VmHWM, the peak of this process's own memory since exec: ru_maxrss would also count the
# memory the test process had when it forked this one, which grows with the tests run before.
status = open("/proc/self/status").read()
out["peak_kib"] = int(status.split("VmHWM:")[1].split()[0])
print(json.dumps(out))
"""


def test_hostile_archives_are_refused_in_one_line_within_200_mb(
        members: dict[str, bytes], tmp_path: Path) -> None:
    cases = _hostile(members, tmp_path)
    results = tmp_path / "results"
    argv = [str(a) for path, _ in cases.values() for a in (path, results)]
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL, *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout)
    for name, (path, message) in cases.items():
        status, err = report[str(path)]
        assert status == 2, (name, err)
        assert err.count("\n") == 1 and message in err, (name, err)
        assert "Traceback" not in err
    assert not results.exists()  # nothing written, not even the results folder
    assert report["peak_kib"] < PEAK_LIMIT_KIB, f"peak {report['peak_kib'] / 1024:.0f} MiB"
    print(f"peak memory of importing {len(cases)} hostile archives: "
          f"{report['peak_kib'] / 1024:.0f} MiB")


def test_the_good_archive_still_imports(members: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "good.tar.gz"
    path.write_bytes(gzip.compress(_good(members)))
    [imported] = archive.import_archive(path, tmp_path / "results")
    assert imported.action == "added"
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["test-machine"]


def test_a_truncated_archive_is_refused(members: dict[str, bytes], tmp_path: Path) -> None:
    data = gzip.compress(_good(members))
    path = tmp_path / "cut.tar.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match=r"not a readable \.tar\.gz archive"):
        archive.import_archive(path, tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_zlib_errors_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.tar.gz"
    good = gzip.compress(b"x" * 100_000)
    path.write_bytes(good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:])
    with pytest.raises(StoreError, match="not a readable"):
        archive.import_archive(path, tmp_path / "results")
