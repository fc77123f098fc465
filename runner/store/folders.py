"""Versioned results on disk: results/<machine>/<experiment>/<run-id>/{manifest.json,samples.jsonl}.

The run folder's layout, writing a run and reading one back. The manifest says what was run
and where (spec, probe, machine fingerprint); samples.jsonl gets one line per probe process,
appended as soon as the process ends (synced to disk once a round: RecordWriter), so an
interrupted run loses at most the process in flight and can be resumed. Both files are
sorted-key JSON text so results diff well when committed. Reading (read_manifest, load_run)
goes through runner.store.untrusted, which bounds every read and checks every value, since a
stored run may come from elsewhere. This module also checksums a run's data: sha256 of
manifest.json followed by samples.jsonl. Which run is shown, resumed or reused is
runner.store.select's.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import runner
from runner.core import names
from runner.core.errors import StoreError
from runner.core.model import (
    ExperimentSpec,
    Plan,
    ProcessRecord,
    Repetitions,
    Scenario,
)
from runner.core.parameters import PARAMETERS
from runner.spec import load
from runner.store import judged_with
from runner.store.untrusted import (
    FORMAT_VERSION,
    MAX_MANIFEST_BYTES,
    MAX_SAMPLES_BYTES,
    load_manifest,
    open_regular,
    parse_records,
    samples_lines,
)

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"


class SkippedRunWarning(UserWarning):
    """A stored run that cannot be read was left out of a listing (the message says why)."""


@dataclass(frozen=True)
class StoredRun:
    """One run read back from disk."""

    path: Path
    manifest: dict[str, Any]
    records: tuple[ProcessRecord, ...]

    @property
    def labels(self) -> dict[str, str]:
        """Each scenario's readable label, by scenario id."""
        return {s["id"]: s["label"] for s in self.manifest["scenarios"]}

    @property
    def machine(self) -> str:
        # The folder, not the label recorded at run time: copying results/<machine>/ under a
        # new name is how a user keeps two machines with the same host name apart.
        return self.path.parent.parent.name

    @property
    def experiment(self) -> str:
        return str(self.manifest["experiment"])

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def reduced(self) -> bool:
        """Measured with fewer repetitions than the spec asks for (--quick, --processes)."""
        return self.manifest.get("profile") == "reduced"

    @property
    def finished(self) -> bool:
        return self.manifest.get("finished_utc") is not None

    def first_probe_output(self) -> dict[str, Any] | None:
        """The probe's output of the first process that finished (it names the libc), if any."""
        return next((r.probe for r in self.records if r.status == "ok" and r.probe), None)


def experiment_of(run: StoredRun) -> ExperimentSpec:
    """The experiment as the run is judged: as it was run (the spec text stored with it), with
    the checks, charts and words of a spec edited since where one is stored beside it
    (runner.store.judged_with)."""
    return judged_with.judged_spec(run.path, spec_as_run(run))


def spec_as_run(run: StoredRun) -> ExperimentSpec:
    """The experiment exactly as it was run, re-read from the spec text stored with the run."""
    return load.parse_spec(run.manifest["spec_text"], f"{run.path}/manifest.json#spec")


def run_path(results_dir: Path, machine: str, experiment: str, run_id: str) -> Path:
    return results_dir / machine / experiment / run_id


def build_manifest(plan: Plan, *, spec_text: str, probe_info: dict[str, Any],
                   fingerprint: dict[str, Any], machine: str, run_id: str,
                   repetitions: Repetitions, seed: int, started_utc: str,
                   command: str) -> dict[str, Any]:
    """Everything a run records about itself before the first process starts.

    The spec's text is kept whole so a report can be rebuilt from results/ alone, and each
    scenario is listed with its parameters so samples.jsonl needs only scenario ids.
    """
    experiment = plan.spec
    return {
        "experiment": experiment.name,
        "run_id": run_id,
        "machine_label": machine,
        "spec_source": experiment.source,
        "spec_text": spec_text,
        "spec_hash": experiment.hash,
        "measurement_hash": experiment.measurement_hash,
        "alloclab_version": runner.__version__,
        "probe": probe_info,
        "fingerprint": fingerprint,
        "repetitions": asdict(repetitions),
        "timeout_s": experiment.timeout_s,
        "seed": seed,
        "label_keys": list(plan.label_keys),
        "scenarios": [{"id": s.id, "label": s.label(plan.label_keys),
                       "params": {p.field: getattr(s, p.field) for p in PARAMETERS}}
                      for s in plan.scenarios],
        "dropped": [{"label": Scenario.from_params(dict(d.params)).label(plan.label_keys),
                     "reason": d.reason} for d in plan.dropped],
        "started_utc": started_utc,
        "finished_utc": None,
        "command": command,
    }


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest atomically (a crash leaves the old one or the new one, never half)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"format_version": FORMAT_VERSION, **manifest}, sort_keys=True, indent=1)
    tmp = run_dir / (MANIFEST + ".tmp")
    tmp.write_text(body + "\n")
    os.replace(tmp, run_dir / MANIFEST)


def append_record(run_dir: Path, record: ProcessRecord) -> None:
    """Append one process's record and push it to disk before the next process starts."""
    append_records(run_dir, [record])


def record_line(record: ProcessRecord) -> bytes:
    """One line of samples.jsonl."""
    return (json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode()


class RecordWriter:
    """samples.jsonl held open while a run's processes append to it.

    Each record is written to the kernel as soon as its process ends, so a killed runner
    loses nothing it was told; `sync` pushes them to the disk, which the runner does once a
    round rather than once a process (an fsync costs ~1 ms). Only a crash of the machine can
    lose the records written since the last sync, and leave a torn last line, which the
    readers drop and a resumed run measures again.
    """

    def __init__(self, run_dir: Path) -> None:
        self._path = run_dir / SAMPLES
        self._out: BinaryIO | None = None  # opened by the first append: no record, no file
        self._unsynced = False

    def append(self, record: ProcessRecord) -> None:
        if self._out is None:
            out = open(self._path, "a+b", buffering=0)  # noqa: SIM115 (closed by close)
            try:
                _drop_torn_tail(out)
            except BaseException:
                out.close()
                raise
            self._out = out
        line = record_line(record)
        while line:  # an unbuffered write may take less than all of it
            line = line[self._out.write(line) or 0:]
        self._unsynced = True

    def sync(self) -> None:
        if self._out is not None and self._unsynced:
            os.fsync(self._out.fileno())
            self._unsynced = False

    def close(self) -> None:
        try:
            self.sync()
        finally:
            if self._out is not None:
                self._out.close()
                self._out = None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _drop_torn_tail(out: BinaryIO) -> None:
    """Cut a last line left half-written by a killed run, so the next record starts clean."""
    end = out.seek(0, os.SEEK_END)
    if end == 0:
        return
    out.seek(max(0, end - 65536))
    tail = out.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    out.truncate(end - len(tail) + cut + 1 if cut >= 0 else max(0, end - len(tail)))


def _read_records(path: Path, scenario_ids: frozenset[str],
                  columns: bool = False) -> Iterator[ProcessRecord]:
    try:
        handle = open_regular(path, MAX_SAMPLES_BYTES)
    except FileNotFoundError:
        return
    with handle:
        yield from parse_records(samples_lines(handle), str(path), scenario_ids, columns)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """A stored run's checked manifest, its folder names checked as the names they stand for
    (machine label, experiment, run id) and agreeing with it: they become page names and
    links. StoreError naming the file when it is not a run this version reads."""
    manifest_path = run_dir / MANIFEST
    try:
        with open_regular(manifest_path, MAX_MANIFEST_BYTES) as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError as error:
        raise StoreError(f"{manifest_path}: missing (not an alloclab run folder)") from error
    manifest = load_manifest(data, str(manifest_path))
    machine, experiment, run_id = run_dir.parent.parent.name, run_dir.parent.name, run_dir.name
    if not names.is_label(machine):
        raise StoreError(f"{run_dir}: the machine folder {machine!r} is not a machine label "
                         f"({names.LABEL_HINT})")
    if (experiment, run_id) != (manifest["experiment"], manifest["run_id"]):
        raise StoreError(f"{manifest_path}: names run {manifest['experiment']}/"
                         f"{manifest['run_id']}, but sits in {experiment}/{run_id}")
    return manifest


def scenario_ids(manifest: Mapping[str, Any]) -> frozenset[str]:
    """The ids of a manifest's scenarios: the only ones its records may name."""
    return frozenset(s["id"] for s in manifest["scenarios"])


def load_run(run_dir: Path, *, columns: bool = False) -> StoredRun:
    """Read one run; raise StoreError naming the file when it is not a run this version reads
    (read_manifest, then every record checked).

    `columns`: each finished record's probe["iterations"] becomes a
    runner.store.iterations.IterationColumns as the record is read, so a run's samples are never
    all held as parsed JSON (for runner.analysis.frame, which reads either; a record whose values
    pass the checks only as Python numbers keeps its list). Such a run is for reading, not for
    storing again.
    """
    manifest = read_manifest(run_dir)
    return StoredRun(run_dir, manifest,
                     tuple(_read_records(run_dir / SAMPLES, scenario_ids(manifest), columns)))


def warn_skipped(run_dir: Path, error: Exception, stacklevel: int = 2) -> None:
    """Say that a run was left out of a listing, and why (a SkippedRunWarning)."""
    warnings.warn(f"skipped {run_dir}: {error}", SkippedRunWarning, stacklevel=stacklevel + 1)


def checksum_bytes(manifest: bytes, samples: bytes) -> str:
    """sha256 of a run's manifest.json bytes followed by its samples.jsonl bytes.

    The same as `cat manifest.json samples.jsonl | sha256sum`, so anyone can check it.
    """
    return hashlib.sha256(manifest + samples).hexdigest()


def data_checksum(run_dir: Path) -> str:
    """The checksum of a stored run's data (an absent samples.jsonl counts as empty), read a
    chunk at a time."""
    digest = hashlib.sha256()
    for path in (run_dir / MANIFEST, run_dir / SAMPLES):
        if path.name == SAMPLES and not path.exists():
            continue
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def append_records(run_dir: Path, records: Iterable[ProcessRecord]) -> None:
    """Append several records at once (copied from an earlier run) in one write."""
    lines = b"".join(record_line(r) for r in records)
    if not lines:
        return
    with open(run_dir / SAMPLES, "a+b") as out:
        _drop_torn_tail(out)
        out.write(lines)
        out.flush()
        os.fsync(out.fileno())


def rewrite_records(run_dir: Path, records: Iterable[ProcessRecord]) -> None:
    """Replace a run's samples with `records` atomically (a resumed run dropping the records
    of processes it measures again, so none is stored twice)."""
    lines = "".join(json.dumps(r.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
                    for r in records)
    tmp = run_dir / (SAMPLES + ".tmp")
    with open(tmp, "wb") as out:
        out.write(lines.encode())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, run_dir / SAMPLES)
