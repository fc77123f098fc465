"""Runs in and out of a machine as one .tar.gz: `alloclab export` and `alloclab import`.

An archive holds `alloclab-export.json` (format version and, per run, its path and data
checksum) and `runs/<machine>/<experiment>/<run-id>/{manifest.json,samples.jsonl}`. Export is
deterministic (sorted members, zero times and owners). Import reads members into memory —
nothing is extracted by tarfile — and accepts the archive only when every check passes:
member names are plain relative paths of that layout (no absolute path, no `..`, no links or
devices), each manifest is JSON of this result format naming the folder it sits in, every
samples line is a record the report can read, and each run's checksum matches. Runs already
present with the same data are left as they are; a different run under the same path is never
overwritten.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, get_args

from runner.errors import StoreError
from runner.frame import build_frame
from runner.model import ProcessRecord, Status
from runner.store import (
    FORMAT_VERSION,
    MANIFEST,
    SAMPLES,
    StoredRun,
    checksum_bytes,
    data_checksum,
    run_path,
)

INDEX = "alloclab-export.json"
ARCHIVE_VERSION = 1
RUNS_DIR = "runs"
MAX_MEMBER_BYTES = 1 << 30
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


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
            samples = run.path / SAMPLES
            tar.addfile(*_member(f"{RUNS_DIR}/{folder}/{MANIFEST}",
                                 (run.path / MANIFEST).read_bytes()))
            tar.addfile(*_member(f"{RUNS_DIR}/{folder}/{SAMPLES}",
                                 samples.read_bytes() if samples.exists() else b""))
    return [folder for folder, _ in folders]


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


def read_members(archive: Path) -> dict[str, bytes]:
    """Every member of the archive, checked for a safe name and kind, read into memory."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for info in tar.getmembers():
                path = _safe_name(info.name, archive)
                if info.isdir():
                    continue
                if not info.isfile():
                    raise StoreError(f"{archive}: member {info.name!r} is a link or device; "
                                     "refused")
                if info.size > MAX_MEMBER_BYTES:
                    raise StoreError(f"{archive}: member {info.name!r} is too large")
                handle = tar.extractfile(info)
                if handle is None:
                    raise StoreError(f"{archive}: member {info.name!r} cannot be read")
                if str(path) in members:
                    raise StoreError(f"{archive}: member {info.name!r} appears twice")
                members[str(path)] = handle.read()
    except (OSError, tarfile.TarError, EOFError) as error:
        raise StoreError(f"{archive}: not a readable .tar.gz archive ({error})") from error
    return members


def _json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StoreError(f"{where}: not valid JSON ({error})") from error


def _check_run(folder: str, manifest_bytes: bytes, samples_bytes: bytes, checksum: object,
               where: str) -> None:
    """Raise StoreError unless one archived run is readable, consistent and untampered."""
    manifest = _json(manifest_bytes, f"{where}/{MANIFEST}")
    if not isinstance(manifest, dict):
        raise StoreError(f"{where}/{MANIFEST}: not a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{where}/{MANIFEST}: result format {manifest.get('format_version')!r}"
                         f", this alloclab reads {FORMAT_VERSION}")
    named = f"{manifest.get('machine_label')}/{manifest.get('experiment')}/" \
            f"{manifest.get('run_id')}"
    if named != folder:
        raise StoreError(f"{where}/{MANIFEST}: names run {named}, but sits in {folder}")
    if checksum_bytes(manifest_bytes, samples_bytes) != checksum:
        raise StoreError(f"{where}: data checksum does not match the archive's index: the run "
                         "was changed after export; refused")
    scenario_ids = {s.get("id") for s in manifest.get("scenarios", [])}
    records = []
    for number, line in enumerate(samples_bytes.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        data = _json(line.encode(), f"{where}/{SAMPLES}:{number}")
        try:
            record = ProcessRecord(**data)
        except TypeError as error:
            raise StoreError(f"{where}/{SAMPLES}:{number}: not a process record") from error
        if record.scenario_id not in scenario_ids or record.status not in get_args(Status):
            raise StoreError(f"{where}/{SAMPLES}:{number}: unknown scenario or status")
        records.append(record)
    try:
        build_frame(StoredRun(Path(where), manifest, tuple(records)))
    except (KeyError, TypeError, ValueError) as error:
        raise StoreError(f"{where}/{SAMPLES}: samples do not parse ({error!r})") from error


def import_archive(archive: Path, results_dir: Path) -> list[ImportedRun]:
    """Check every run of the archive, then add the new ones under results_dir.

    Nothing is written unless the whole archive passes; a run already present with other data
    is refused rather than overwritten.
    """
    members = read_members(archive)
    if INDEX not in members:
        raise StoreError(f"{archive}: no {INDEX}: not an archive made by `alloclab export`")
    index = _json(members[INDEX], f"{archive}:{INDEX}")
    version = index.get("archive_version") if isinstance(index, dict) else None
    if version != ARCHIVE_VERSION:
        raise StoreError(f"{archive}: archive version {version!r}, this alloclab reads "
                         f"{ARCHIVE_VERSION}")
    listed = {str(entry.get("path")): entry.get("checksum") for entry in index.get("runs", [])}
    expected = {INDEX} | {f"{RUNS_DIR}/{folder}/{name}" for folder in listed
                          for name in (MANIFEST, SAMPLES)}
    unexpected = sorted(set(members) - expected)
    missing = sorted(expected - set(members))
    if unexpected or missing:
        raise StoreError(f"{archive}: members do not match its index (unexpected: "
                         f"{', '.join(unexpected) or 'none'}; missing: "
                         f"{', '.join(missing) or 'none'})")
    plan: list[tuple[Path, bytes | None, bytes | None]] = []
    for folder, checksum in sorted(listed.items()):
        parts = _safe_name(folder, archive).parts
        if len(parts) != 3:
            raise StoreError(f"{archive}: run path {folder!r} is not <machine>/<experiment>/<run>")
        manifest = members[f"{RUNS_DIR}/{folder}/{MANIFEST}"]
        samples = members[f"{RUNS_DIR}/{folder}/{SAMPLES}"]
        _check_run(folder, manifest, samples, checksum, f"{archive}:{folder}")
        target = run_path(results_dir, *parts)
        if (target / MANIFEST).exists():
            if data_checksum(target) != checksum:
                raise StoreError(f"{target}: a different run is already stored there; refused "
                                 "(remove it first if the archive's is the one to keep)")
            plan.append((target, None, None))
        else:
            plan.append((target, manifest, samples))
    imported = []
    for target, new_manifest, new_samples in plan:
        if new_manifest is None or new_samples is None:
            imported.append(ImportedRun(target, "already present"))
            continue
        _write_run(target, new_manifest, new_samples)
        imported.append(ImportedRun(target, "added"))
    return imported


def _write_run(target: Path, manifest: bytes, samples: bytes) -> None:
    """Write a run's two files into a hidden folder beside the target, then rename it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        (scratch / MANIFEST).write_bytes(manifest)
        (scratch / SAMPLES).write_bytes(samples)
        os.replace(scratch, target)
    except OSError as error:
        raise StoreError(f"{target}: cannot store the imported run ({error})") from error
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
