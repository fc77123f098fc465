"""Runs in and out of a machine as one .tar.gz: `alloclab export` and `alloclab import`.

An archive holds `alloclab-export.json` (format version and, per run, its path and data
checksum) and `runs/<machine>/<experiment>/<run-id>/{manifest.json,samples.jsonl}`. Export is
deterministic (sorted members, zero times and owners) and the index comes first. An archive
comes from elsewhere, so import trusts nothing in it: the index is read and checked first
(runs named by valid machine labels, experiment names and run ids, at most MAX_RUNS), then
members are streamed one at a time into a hidden scratch folder inside the results folder —
never into memory whole, never extracted by tarfile — each a regular file the index calls for,
once, within its size cap, and the whole within MAX_TOTAL_BYTES. Each run must then match its
checksum, its manifest and records must pass runner.store.untrusted's checks (the stored spec
validated as `alloclab validate` does). Only when every run passes are the new ones moved into
place; runs already present with the same data are left as they are, and a different run under the
same path is never overwritten.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from runner.core import names
from runner.core.errors import StoreError
from runner.store import untrusted
from runner.store.folders import MANIFEST, SAMPLES, StoredRun, data_checksum, run_path
from runner.store.untrusted import FORMAT_VERSION

INDEX = "alloclab-export.json"
ARCHIVE_VERSION = 1
RUNS_DIR = "runs"
# Bounds on what an archive may make import do (it comes from elsewhere): the runs it lists
# (and so its members: two per run), its index, the bytes it decompresses to, any single read.
MAX_RUNS = 10_000
MAX_INDEX_BYTES = 4 << 20
MAX_ARCHIVE_BYTES = 4 << 30
MAX_TOTAL_BYTES = 8 << 30
MAX_READ_BYTES = 4 << 20
CHUNK_BYTES = 1 << 20
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_CHECKSUM = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ImportedRun:
    """One run of an archive and what import did with it."""

    path: Path
    action: str  # "added" or "already present"


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def _run_folder(run: StoredRun) -> str:
    return f"{run.machine}/{run.experiment}/{run.run_id}"


def export_runs(runs: Sequence[StoredRun], archive: Path) -> list[str]:
    """Write the runs to a .tar.gz; return their folders as stored in it."""
    folders = sorted({_run_folder(run): run for run in runs}.items())
    index = {"archive_version": ARCHIVE_VERSION, "format_version": FORMAT_VERSION,
             "runs": [{"path": folder, "checksum": data_checksum(run.path)}
                      for folder, run in folders]}
    archive.parent.mkdir(parents=True, exist_ok=True)
    with open(archive, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(*_member(INDEX, (json.dumps(index, indent=1, sort_keys=True) + "\n")
                             .encode()))
        for folder, run in folders:
            for name in (MANIFEST, SAMPLES):
                _add_file(tar, f"{RUNS_DIR}/{folder}/{name}", run.path / name)
    return [folder for folder, _ in folders]


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> None:
    """Stream one file into the archive (an absent samples.jsonl as an empty member)."""
    if not path.exists():
        tar.addfile(*_member(name, b""))
        return
    with open(path, "rb") as handle:
        info, _ = _member(name, b"")
        info.size = os.fstat(handle.fileno()).st_size
        tar.addfile(info, handle)


def _safe_name(name: str, where: Path) -> PurePosixPath:
    """A member name as a relative path of plain components, or StoreError saying why not."""
    path = PurePosixPath(name)
    if name.startswith("/") or path.is_absolute():
        raise StoreError(f"{where}: member {name!r} is an absolute path; refused")
    if any(part in ("..", ".", "") for part in name.split("/")) or "\\" in name:
        raise StoreError(f"{where}: member {name!r} leaves the archive (..); refused")
    if not all(_NAME.match(part) for part in path.parts):
        raise StoreError(f"{where}: member {name!r} has an unexpected name; refused")
    return path


class _Bounded(io.RawIOBase):
    """The decompressed stream, refusing any single read above MAX_READ_BYTES and more than
    MAX_TOTAL_BYTES in all: tarfile reads a pax or long-name header whole, whatever size it
    declares, and a gzip bomb decompresses without end."""

    def __init__(self, stream: gzip.GzipFile, where: Path) -> None:
        super().__init__()
        self._stream, self._where, self._total = stream, where, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._stream.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = offset if whence == io.SEEK_SET else self._stream.tell() + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target - self._total > MAX_READ_BYTES \
                or target > MAX_TOTAL_BYTES:
            raise StoreError(f"{self._where}: a member larger than this archive may hold; "
                             "refused")
        self._total = max(self._total, target)
        return self._stream.seek(target)

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > MAX_READ_BYTES:
            raise StoreError(f"{self._where}: a header or member larger than "
                             f"{MAX_READ_BYTES} bytes at once; refused")
        data = self._stream.read(size)
        self._total += len(data)
        if self._total > MAX_TOTAL_BYTES:
            raise StoreError(f"{self._where}: more than {MAX_TOTAL_BYTES} bytes uncompressed; "
                             "refused")
        return data


@dataclass(frozen=True)
class _Listed:
    """One run the index lists: where it goes and the checksum of its data."""

    parts: tuple[str, str, str]  # machine, experiment, run id
    checksum: str

    @property
    def folder(self) -> str:
        return "/".join(self.parts)


def _read_index(data: bytes, where: Path) -> dict[str, _Listed]:
    """The index's runs by member folder, each path made of valid names; else StoreError."""
    index = _json(data, f"{where}:{INDEX}")
    version = index.get("archive_version") if isinstance(index, dict) else None
    if version != ARCHIVE_VERSION:
        raise StoreError(f"{where}: archive version {version!r}, this alloclab reads "
                         f"{ARCHIVE_VERSION}")
    runs = index.get("runs")
    if not isinstance(runs, list) or not 0 < len(runs) <= MAX_RUNS:
        raise StoreError(f"{where}:{INDEX}: runs: expected a list of 1 to {MAX_RUNS} runs")
    listed: dict[str, _Listed] = {}
    for number, entry in enumerate(runs):
        path = entry.get("path") if isinstance(entry, dict) else None
        checksum = entry.get("checksum") if isinstance(entry, dict) else None
        parts = tuple(path.split("/")) if isinstance(path, str) else ()
        if not (len(parts) == 3 and names.is_label(parts[0])
                and names.is_experiment_name(parts[1]) and names.is_label(parts[2])):
            raise StoreError(f"{where}:{INDEX}: runs[{number}].path: {str(path)[:100]!r} is "
                             "not <machine>/<experiment>/<run>")
        if not (isinstance(checksum, str) and _CHECKSUM.fullmatch(checksum)):
            raise StoreError(f"{where}:{INDEX}: runs[{number}].checksum: not a sha256")
        if path in listed:
            raise StoreError(f"{where}:{INDEX}: run {path} is listed twice")
        listed[str(path)] = _Listed((parts[0], parts[1], parts[2]), checksum)
    return listed


def _open_archive(archive: Path) -> BinaryIO:
    try:
        return untrusted.open_regular(archive, MAX_ARCHIVE_BYTES)
    except FileNotFoundError:
        raise StoreError(f"{archive}: not a readable .tar.gz archive (no such file)") from None


def _unpack(archive: Path, scratch: Path) -> dict[str, _Listed]:
    """Stream the archive's members into scratch/<machine>/<experiment>/<run>/, the index
    first and checked before anything else is read; every member must be a regular file the
    index calls for, once, within its size cap."""
    with _open_archive(archive) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as zipped, \
            tarfile.open(fileobj=_Bounded(zipped, archive), mode="r:") as tar:
        first = tar.next()
        if first is None or first.name != INDEX or not first.isfile() \
                or first.size > MAX_INDEX_BYTES:
            raise StoreError(f"{archive}: no {INDEX} first: not an archive made by "
                             "`alloclab export`")
        listed = _read_index(_read_member(tar, first, archive), archive)
        expected = {f"{RUNS_DIR}/{folder}/{name}": (run, name) for folder, run in listed.items()
                    for name in (MANIFEST, SAMPLES)}
        seen: set[str] = set()
        while (info := tar.next()) is not None:
            name = str(_safe_name(info.name, archive))
            if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                raise StoreError(f"{archive}: member {info.name!r} is a link or device; refused")
            if name not in expected or name in seen:
                again = "appears twice" if name in seen else "is not listed"
                raise StoreError(f"{archive}: members do not match its index: {name!r} {again}")
            run, file_name = expected[name]
            limit = (untrusted.MAX_MANIFEST_BYTES if file_name == MANIFEST
                     else untrusted.MAX_SAMPLES_BYTES)
            if info.size > limit:
                raise StoreError(f"{archive}: member {name!r} declares {info.size} bytes, more "
                                 f"than the {limit} a run's {file_name} may have; refused")
            seen.add(name)
            target = scratch.joinpath(*run.parts, file_name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as out:
                _copy_member(tar, info, out, archive)
    missing = sorted(set(expected) - seen)
    if missing:
        raise StoreError(f"{archive}: members do not match its index: missing "
                         f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return listed


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo, archive: Path) -> bytes:
    out = io.BytesIO()
    _copy_member(tar, info, out, archive)
    return out.getvalue()


def _copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, out: BinaryIO,
                 archive: Path) -> None:
    handle = tar.extractfile(info)
    if handle is None:
        raise StoreError(f"{archive}: member {info.name!r} cannot be read")
    while chunk := handle.read(CHUNK_BYTES):
        out.write(chunk)


def _check_run(run_dir: Path, listed: _Listed, where: str) -> None:
    """Raise StoreError unless one unpacked run is untampered, readable and consistent: the
    checksum first, then the manifest as runner.store.untrusted checks it (its stored spec
    validated as `alloclab validate` does), then every record, one at a time."""
    if data_checksum(run_dir) != listed.checksum:
        raise StoreError(f"{where}: data checksum does not match the archive's index: the run "
                         "was changed after export; refused")
    with untrusted.open_regular(run_dir / MANIFEST, untrusted.MAX_MANIFEST_BYTES) as handle:
        manifest = untrusted.load_manifest(handle.read(), f"{where}/{MANIFEST}")
    named = f"{manifest['machine_label']}/{manifest['experiment']}/{manifest['run_id']}"
    if named != listed.folder:
        raise StoreError(f"{where}/{MANIFEST}: names run {named}, but sits in {listed.folder}")
    ids = frozenset(s["id"] for s in manifest["scenarios"])
    most = len(ids) * manifest["repetitions"]["processes"]
    with untrusted.open_regular(run_dir / SAMPLES, untrusted.MAX_SAMPLES_BYTES) as handle:
        lines = iter(lambda: handle.readline(untrusted.MAX_RECORD_BYTES + 1), b"")
        for count, _ in enumerate(untrusted.parse_records(lines, f"{where}/{SAMPLES}", ids), 1):
            if count > most:
                raise StoreError(f"{where}/{SAMPLES}: more records than the run's {len(ids)} "
                                 f"scenarios x {manifest['repetitions']['processes']} "
                                 "processes")


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise StoreError(f"{where}: not valid JSON ({error})") from error


def import_archive(archive: Path, results_dir: Path) -> list[ImportedRun]:
    """Check every run of the archive, then add the new ones under results_dir.

    Members are streamed into a hidden scratch folder inside results_dir (never into
    memory whole) and checked there; nothing reaches its place unless the whole archive
    passes, and a run already present with other data is refused rather than overwritten.
    """
    created = not results_dir.exists()
    results_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".import-", dir=results_dir))
    try:
        try:
            listed = _unpack(archive, scratch)
        except (OSError, tarfile.TarError, EOFError, zlib.error) as error:
            raise StoreError(f"{archive}: not a readable .tar.gz archive ({error})") from error
        plan: list[tuple[Path, Path | None]] = []
        for folder, run in sorted(listed.items()):
            unpacked = scratch.joinpath(*run.parts)
            _check_run(unpacked, run, f"{archive}:{folder}")
            target = run_path(results_dir, *run.parts)
            if (target / MANIFEST).exists():
                if data_checksum(target) != run.checksum:
                    raise StoreError(f"{target}: a different run is already stored there; "
                                     "refused (remove it first if the archive's is the one "
                                     "to keep)")
                plan.append((target, None))
            else:
                plan.append((target, unpacked))
        imported = []
        for target, source in plan:
            if source is None:
                imported.append(ImportedRun(target, "already present"))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            imported.append(ImportedRun(target, "added"))
        return imported
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                results_dir.rmdir()  # only if the archive was refused, leaving it empty
