"""Versioned results on disk: results/<machine>/<experiment>/<run-id>/{manifest.json,samples.jsonl}.

The manifest says what was run and where (spec, probe, machine fingerprint); samples.jsonl
gets one line per probe process, appended and flushed as soon as the process ends, so an
interrupted run loses at most the process in flight and can be resumed. Both files are
sorted-key JSON text so results diff well when committed. Beside reading and writing, this
module finds the runs a new run continues (resume) or copies complete scenarios from (reuse),
and checksums a run's data: sha256 of manifest.json followed by samples.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

import runner
from runner.errors import StoreError
from runner.model import Plan, ProcessRecord, Repetitions, Scenario
from runner.parameters import PARAMETERS, upgrade_params

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"


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


def _parse_line(line: str) -> Any:
    """One samples.jsonl line: by orjson, several times faster over a million samples, else
    by json, which also reads what orjson refuses (NaN); a line neither reads raises."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)


def _read_records(path: Path) -> Iterator[ProcessRecord]:
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = _parse_line(line)
        except json.JSONDecodeError as error:
            if number == len(lines):
                return  # a write cut short by a crash: that process is simply run again
            raise StoreError(f"{path}:{number}: not a JSON record ({error.msg})") from error
        yield ProcessRecord(**data)


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """Read one run's manifest; raise StoreError naming the file when this version cannot."""
    manifest_path = run_dir / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise StoreError(f"{manifest_path}: missing (not an alloclab run folder)") from error
    except json.JSONDecodeError as error:
        raise StoreError(f"{manifest_path}:{error.lineno}: not valid JSON ({error.msg})") from error
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(
            f"{manifest_path}: result format {version!r}, this alloclab reads {FORMAT_VERSION}"
        )
    # Readers see every scenario in today's vocabulary, whatever version stored it.
    for scenario in manifest.get("scenarios", []):
        scenario["params"] = upgrade_params(scenario["params"])
    return dict(manifest)


def load_run(run_dir: Path) -> StoredRun:
    """Read one run; raise StoreError naming the file when it is not a run this version reads."""
    return StoredRun(run_dir, load_manifest(run_dir), tuple(_read_records(run_dir / SAMPLES)))


def list_runs(results_dir: Path) -> list[StoredRun]:
    """Every run under results_dir, ordered by machine, experiment and run id (time order)."""
    return [load_run(p.parent) for p in sorted(results_dir.glob(f"*/*/*/{MANIFEST}"))]


def latest_runs(results_dir: Path) -> list[StoredRun]:
    """The run of each (machine, experiment) a report shows (_shown_rank)."""
    return [load_run(path) for path in shown_run_dirs(results_dir)]


def shown_run_dirs(results_dir: Path) -> list[Path]:
    """The folders of latest_runs, ordered by machine and experiment, reading only manifests
    and the samples of the runs it picks: the other runs' samples are never parsed."""
    candidates: dict[tuple[str, str], list[StoredRun]] = {}
    for path in sorted(results_dir.glob(f"*/*/*/{MANIFEST}")):
        run = StoredRun(path.parent, load_manifest(path.parent), ())
        candidates.setdefault((run.machine, run.experiment), []).append(run)
    chosen = []
    for key in sorted(candidates):
        # Best rank first; of equal ranks the later folder, as a scan keeping the last would.
        ranked = sorted(enumerate(candidates[key]), key=lambda item: (_shown_rank(item[1]),
                                                                      item[0]), reverse=True)
        shown = next((run.path for _, run in ranked if _has_records(run.path / SAMPLES)), None)
        if shown is not None:
            chosen.append(shown)
    return chosen


def _has_records(path: Path) -> bool:
    """Whether samples.jsonl holds a record, reading only up to its first complete one."""
    if not path.exists():
        return False
    with open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                try:
                    json.loads(line)
                    return True
                except json.JSONDecodeError:
                    break
    return any(True for _ in _read_records(path))  # a torn or bad line: read as load_run does


def _shown_rank(run: StoredRun) -> tuple[bool, bool, str]:
    """Which run of an experiment stands for it: finished before unfinished, full before quick
    or smoke runs, then the newest."""
    return run.finished, not run.reduced, run.run_id


def _runs_in(folder: Path) -> list[StoredRun]:
    """The runs of one results/<machine>/<experiment> folder, oldest first."""
    return [load_run(p.parent) for p in sorted(folder.glob(f"*/{MANIFEST}"))]


def find_resumable(results_dir: Path, machine: str, experiment: str, measurement_hash: str,
                   probe_hash: str, repetitions: Repetitions) -> StoredRun | None:
    """The newest unfinished run measuring the same thing the same way, which a run continues.

    Same scenarios (the spec's measurement hash), same probe and same repetitions: a smoke run
    with `--processes 1` that was interrupted is not finished by a full run, nor the reverse.
    """
    for run in reversed(_runs_in(results_dir / machine / experiment)):
        if run.finished:
            return None  # a finished run after it means the unfinished one was abandoned
        manifest = run.manifest
        if (manifest.get("measurement_hash") == measurement_hash
                and manifest.get("probe", {}).get("source_hash") == probe_hash
                and manifest.get("repetitions") == asdict(repetitions)):
            return run
    return None


def checksum_bytes(manifest: bytes, samples: bytes) -> str:
    """sha256 of a run's manifest.json bytes followed by its samples.jsonl bytes.

    The same as `cat manifest.json samples.jsonl | sha256sum`, so anyone can check it.
    """
    return hashlib.sha256(manifest + samples).hexdigest()


def data_checksum(run_dir: Path) -> str:
    """The checksum of a stored run's data (an absent samples.jsonl counts as empty)."""
    samples = run_dir / SAMPLES
    return checksum_bytes((run_dir / MANIFEST).read_bytes(),
                          samples.read_bytes() if samples.exists() else b"")


def resolve_run(path: Path) -> StoredRun:
    """A run named on the command line: its folder, or results/<machine>/<experiment> for the
    run a report shows for it (_shown_rank)."""
    if (path / MANIFEST).exists():
        return load_run(path)
    runs = [run for run in _runs_in(path) if run.records]
    if not runs:
        raise StoreError(f"{path}: not a run folder (with {MANIFEST}) nor an experiment folder "
                         "results/<machine>/<experiment> holding a run with records")
    return max(runs, key=_shown_rank)


def finished_runs(results_dir: Path, machine: str, experiment: str) -> list[StoredRun]:
    """The finished runs of one experiment on one machine, newest first."""
    return [run for run in reversed(_runs_in(results_dir / machine / experiment))
            if run.finished]


def complete_scenarios(run: StoredRun, scenario_ids: Iterable[str],
                       processes: int) -> dict[str, list[ProcessRecord]]:
    """The records of each scenario that `run` measured completely: every process 0..N-1 ok.

    A scenario with any process missing, failed, crashed or timed out is left out, so reusing
    records never carries a failure over from a run made under other limits.
    """
    by_scenario: dict[str, dict[int, ProcessRecord]] = {}
    for record in run.records:
        by_scenario.setdefault(record.scenario_id, {})[record.process_index] = record
    complete = {}
    for scenario_id in scenario_ids:
        records = by_scenario.get(scenario_id, {})
        if sorted(records) == list(range(processes)) and all(
                r.status == "ok" for r in records.values()):
            complete[scenario_id] = [records[i] for i in range(processes)]
    return complete


def append_records(run_dir: Path, records: Iterable[ProcessRecord]) -> None:
    """Append several records at once (copied from an earlier run) in one write."""
    lines = "".join(json.dumps(r.to_json(), sort_keys=True, separators=(",", ":")) + "\n"
                    for r in records)
    if not lines:
        return
    with open(run_dir / SAMPLES, "a+b") as out:
        _drop_torn_tail(out)
        out.write(lines.encode())
        out.flush()
        os.fsync(out.fileno())
