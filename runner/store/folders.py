"""Versioned results on disk: results/<machine>/<experiment>/<run-id>/{manifest.json,samples.jsonl}.

The manifest says what was run and where (spec, probe, machine fingerprint); samples.jsonl
gets one line per probe process, appended as soon as the process ends (synced to disk once a
round: RecordWriter), so an interrupted run loses at most the process in flight and can be
resumed. Both files are sorted-key JSON text so results diff well when committed. Beside
reading and writing, this module finds the runs a new run continues (resume) or copies complete
scenarios from (reuse), and checksums a run's data: sha256 of manifest.json followed by
samples.jsonl.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import stat
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard, get_args

import orjson

import runner
from runner.core import names
from runner.core.errors import SpecError, StoreError
from runner.core.model import (
    PHASES,
    ExperimentSpec,
    Plan,
    ProcessRecord,
    Repetitions,
    Scenario,
    Status,
)
from runner.core.parameters import PARAMETERS, upgrade_params
from runner.spec import keys, load

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
# Stored results may come from elsewhere (a copied folder, an archive): every read is bounded
# and every value checked before any other module sees it (_check_manifest, _check_record).
MAX_MANIFEST_BYTES = 16 << 20
MAX_SAMPLES_BYTES = 1 << 30
MAX_RECORD_BYTES = 4 << 20
# Parsed JSON takes up to ~60 bytes per value however small its text ("[]," is three bytes):
# values are counted (an upper bound, from the text) before parsing.
MAX_JSON_VALUES = 500_000
MAX_PROCESS_INDEX = 1_000_000


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
    """The experiment exactly as it was run, re-read from the spec text stored with the run."""
    source = f"{run.path}/manifest.json#spec"
    return load.parse_spec(run.manifest["spec_text"], source)


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


def open_regular(path: Path, max_bytes: int) -> BinaryIO:
    """A stored file opened for reading: a regular file, not a link, of max_bytes at most."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise StoreError(f"{path}: cannot be read ({error.strerror}; a link is not read)") \
            from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else \
            f"{info.st_size} bytes, more than the {max_bytes} a run may have here"
        raise StoreError(f"{path}: {what}")
    return os.fdopen(fd, "rb")


def parse_records(lines: Iterable[bytes], where: str, scenario_ids: frozenset[str],
                  columns: bool = False) -> Iterator[ProcessRecord]:
    """Checked records from samples.jsonl lines; a torn last line (a killed run) is dropped.
    `columns`: as in load_run; a line runner.store.iterations.decode_record takes is read by it
    (the usual finished process), any other as below."""
    pending: tuple[int, str] | None = None  # a bad line is an error only if another follows
    if columns:
        # Imported here: numpy is not needed by the commands that do not read samples.
        from runner.store.iterations import decode_record
    for number, raw in enumerate(lines, start=1):
        if pending is not None:
            raise StoreError(f"{where}:{pending[0]}: {pending[1]}")
        if not raw.strip():
            continue
        if len(raw) > MAX_RECORD_BYTES:
            raise StoreError(f"{where}:{number}: a record of more than {MAX_RECORD_BYTES} bytes")
        if columns and not _too_many_values(raw) and (decoded := decode_record(raw)) is not None:
            yield check_record(decoded, f"{where}:{number}", scenario_ids, columns)
            continue
        try:
            data = parse_json(raw, f"{where}:{number}")
        except StoreError as error:
            pending = (number, f"not a JSON record ({str(error).split(': ', 1)[-1]})")
            continue
        yield check_record(data, f"{where}:{number}", scenario_ids, columns)


def _samples_lines(handle: BinaryIO) -> Iterator[bytes]:
    """samples.jsonl's lines, none read past MAX_RECORD_BYTES + 1 (parse_records refuses it)."""
    return iter(lambda: handle.readline(MAX_RECORD_BYTES + 1), b"")


def _read_records(path: Path, scenario_ids: frozenset[str],
                  columns: bool = False) -> Iterator[ProcessRecord]:
    try:
        handle = open_regular(path, MAX_SAMPLES_BYTES)
    except FileNotFoundError:
        return
    with handle:
        yield from parse_records(_samples_lines(handle), str(path), scenario_ids, columns)


def _too_many_values(data: bytes) -> bool:
    # Each value counted is one byte of the text: a shorter text cannot hold too many (and a
    # sample line, a few hundred KB, need not be scanned three times more).
    return len(data) > MAX_JSON_VALUES and (
        data.count(b",") + data.count(b"[") + data.count(b"{")) > MAX_JSON_VALUES


def parse_json(data: bytes, where: str) -> object:
    """Untrusted JSON bytes parsed, or StoreError: not UTF-8, not JSON, too many values (see
    MAX_JSON_VALUES), nested too deeply.

    orjson parses (several times faster over a million samples; it checks UTF-8 and stops at
    1024 levels itself); what it refuses is parsed again by json, which also reads NaN, lone
    surrogates and integers past 64 bits as before, and says what is wrong.
    """
    if _too_many_values(data):
        raise StoreError(f"{where}: more than {MAX_JSON_VALUES} JSON values")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise StoreError(f"{where}: not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise StoreError(f"{where}:{error.lineno}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise StoreError(f"{where}: nested too deeply") from None


def load_manifest(data: bytes, where: str) -> dict[str, Any]:
    """A manifest's bytes as a checked manifest, its scenarios in today's vocabulary."""
    return check_manifest(parse_json(data, where), where)


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


def _scenario_ids(manifest: Mapping[str, Any]) -> frozenset[str]:
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
                     tuple(_read_records(run_dir / SAMPLES, _scenario_ids(manifest), columns)))


def warn_skipped(run_dir: Path, error: Exception, stacklevel: int = 2) -> None:
    """Say that a run was left out of a listing, and why (a SkippedRunWarning)."""
    warnings.warn(f"skipped {run_dir}: {error}", SkippedRunWarning, stacklevel=stacklevel + 1)


def _load_or_warn(run_dir: Path) -> StoredRun | None:
    """A run of a listing, or None (with a SkippedRunWarning) when it cannot be read: one bad
    run must not keep every other from being reported."""
    try:
        return load_run(run_dir)
    except (StoreError, OSError) as error:
        warn_skipped(run_dir, error, stacklevel=3)
        return None


def _load_all(manifests: Iterable[Path]) -> list[StoredRun]:
    return [run for run in (_load_or_warn(p.parent) for p in sorted(manifests))
            if run is not None]


def list_runs(results_dir: Path) -> list[StoredRun]:
    """Every readable run under results_dir, ordered by machine, experiment and run id (time
    order); the others are left out with a SkippedRunWarning."""
    return _load_all(results_dir.glob(f"*/*/*/{MANIFEST}"))


def latest_runs(results_dir: Path) -> list[StoredRun]:
    """The run of each (machine, experiment) a report shows (_shown_rank): of its readable
    runs with records, the best ranked. Runs ranked below the one shown are never parsed."""
    shown = []
    for ranked in _ranked_candidates(results_dir):
        run = next((run for run in (_load_or_warn(c.path) for c in ranked)
                    if run is not None and run.records), None)
        if run is not None:
            shown.append(run)
    return shown


def shown_run_dirs(results_dir: Path) -> list[Path]:
    """The folders of latest_runs, ordered by machine and experiment, reading only manifests
    and the first record of the runs it picks: the other runs' samples are never parsed.

    A shown run whose samples turn out unreadable past their first record is found out only
    when it is read (load_run): runner.report.site then leaves it out with a SkippedRunWarning.
    """
    chosen = []
    for ranked in _ranked_candidates(results_dir):
        shown = next((run.path for run in ranked if _has_records_or_warn(run)), None)
        if shown is not None:
            chosen.append(shown)
    return chosen


def _ranked_candidates(results_dir: Path) -> list[list[StoredRun]]:
    """The runs of each (machine, experiment) with a readable manifest (the others skipped
    with a SkippedRunWarning), best shown first, without their records; by machine and
    experiment."""
    candidates: dict[tuple[str, str], list[StoredRun]] = {}
    for path in sorted(results_dir.glob(f"*/*/*/{MANIFEST}")):
        try:
            run = StoredRun(path.parent, read_manifest(path.parent), ())
        except (StoreError, OSError) as error:
            warn_skipped(path.parent, error, stacklevel=3)
            continue
        candidates.setdefault((run.machine, run.experiment), []).append(run)
    # Best rank first; of equal ranks the later folder, as a scan keeping the last would.
    return [[run for _, run in sorted(enumerate(candidates[key]),
                                      key=lambda item: (_shown_rank(item[1]), item[0]),
                                      reverse=True)]
            for key in sorted(candidates)]


def _has_records_or_warn(run: StoredRun) -> bool:
    """Whether the run's samples.jsonl holds a record, reading and checking it only up to its
    first one, as load_run would; False with a SkippedRunWarning when that part is bad."""
    try:
        handle = open_regular(run.path / SAMPLES, MAX_SAMPLES_BYTES)
    except FileNotFoundError:
        return False
    except (StoreError, OSError) as error:
        warn_skipped(run.path, error, stacklevel=4)
        return False
    with handle:
        records = parse_records(_samples_lines(handle), str(run.path / SAMPLES),
                                _scenario_ids(run.manifest))
        try:
            return next(records, None) is not None
        except (StoreError, OSError) as error:
            warn_skipped(run.path, error, stacklevel=4)
            return False


def _shown_rank(run: StoredRun) -> tuple[bool, bool, str]:
    """Which run of an experiment stands for it: finished before unfinished, full before quick
    or smoke runs, then the newest."""
    return run.finished, not run.reduced, run.run_id


def _runs_in(folder: Path) -> list[StoredRun]:
    """The readable runs of one results/<machine>/<experiment> folder, oldest first."""
    return _load_all(folder.glob(f"*/{MANIFEST}"))


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


def start_key(run_dir: Path) -> tuple[str, str] | None:
    """(started_utc, run_id) of a stored run, read lightly from its manifest without checking
    the rest (None when they are not there as text), to order runs before reading any whole."""
    try:
        with open_regular(run_dir / MANIFEST, MAX_MANIFEST_BYTES) as handle:
            data = orjson.loads(handle.read(MAX_MANIFEST_BYTES + 1))
    except (OSError, StoreError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    started, run_id = data.get("started_utc"), data.get("run_id")
    return (started, run_id) if isinstance(started, str) and isinstance(run_id, str) else None


@dataclass(frozen=True)
class RunTimes:
    """What a duration estimate needs of a stored run: its repetitions, and the wall time of
    each process that ran ok, by scenario id."""

    repetitions: Repetitions
    walls_s: Mapping[str, tuple[float, ...]]


def _walls(run_dir: Path) -> dict[str, tuple[float, ...]]:
    """Each scenario's wall times of ok processes, from samples.jsonl read lightly: only the
    three fields are looked at and checked, and a line that is not such a record is left out
    (an estimate can do without it; reading a run for real checks every field)."""
    walls: dict[str, list[float]] = {}
    try:
        handle = open_regular(run_dir / SAMPLES, MAX_SAMPLES_BYTES)
    except FileNotFoundError:
        return {}
    with handle:
        for line in _samples_lines(handle):
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict) or data.get("status") != "ok":
                continue
            scenario, wall_s = data.get("scenario_id"), data.get("wall_s")
            if (isinstance(scenario, str) and isinstance(wall_s, int | float)
                    and not isinstance(wall_s, bool) and 0 <= wall_s < math.inf):
                walls.setdefault(scenario, []).append(float(wall_s))
    return {scenario: tuple(values) for scenario, values in walls.items()}


def newest_finished_times(results_dir: Path, machine: str, experiment: str,
                          ) -> Iterator[RunTimes]:
    """The finished runs of one experiment on one machine, newest first, read lazily and
    lightly (_walls): a caller that needs only the newest reads only that one."""
    for manifest_path in sorted((results_dir / machine / experiment).glob(f"*/{MANIFEST}"),
                                reverse=True):
        try:
            manifest = read_manifest(manifest_path.parent)
            if manifest["finished_utc"] is None:
                continue
            yield RunTimes(Repetitions(**manifest["repetitions"]),
                           _walls(manifest_path.parent))
        except (StoreError, OSError) as error:
            warn_skipped(manifest_path.parent, error)


def complete_scenarios(run: StoredRun, scenario_ids: Iterable[str],
                       processes: int) -> dict[str, list[ProcessRecord]]:
    """The base records of each scenario that `run` measured completely: every process
    0..N-1 ok (the extra rounds it took for undecided pairs, N and up, are not base records).

    A scenario with any base process missing, failed, crashed or timed out is left out, so
    reusing records never carries a failure over from a run made under other limits.
    """
    by_scenario: dict[str, dict[int, ProcessRecord]] = {}
    for record in run.records:
        if record.process_index < processes:
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
    lines = b"".join(record_line(r) for r in records)
    if not lines:
        return
    with open(run_dir / SAMPLES, "a+b") as out:
        _drop_torn_tail(out)
        out.write(lines)
        out.flush()
        os.fsync(out.fileno())


# ---------------------------------------------------------------------------------------------
# Checking what was read: every value other modules use, with the type they use it as.

Check = Callable[[object], bool]


def _is_int(value: object, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _is_object(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def _is_shallow(levels: int) -> Check:
    """JSON nested at most `levels` deep below this value (the report formats such values
    recursively: a deep one would exhaust the stack)."""
    def check(value: object, depth: int = 0) -> bool:
        if isinstance(value, dict | list):
            items = value.values() if isinstance(value, dict) else value
            return depth < levels and all(check(item, depth + 1) for item in items)
        return True
    return check


def _is_list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(v) for v in value)


def _is_text_map(value: object) -> bool:
    return _is_object(value) and all(isinstance(v, str) for v in value.values())


# Repetitions as runs before extra rounds stored them; later runs store every field.
_FIRST_REPETITIONS = frozenset({"processes", "warmup", "iterations"})


def _is_repetitions(value: object) -> bool:
    if not _is_object(value) or set(value) not in (_FIRST_REPETITIONS,
                                                  {f.name for f in fields(Repetitions)}):
        return False
    most, extra = value.get("max_processes"), value.get("extra_time", 0)
    return (_is_int(value["processes"], 1) and _is_int(value["warmup"])
            and _is_int(value["iterations"], 1) and (most is None or _is_int(most, 1))
            and _is_number(extra) and extra >= 0)


def _is_dropped(value: object) -> bool:
    return _is_object(value) and _is_text(value.get("label")) and _is_text(value.get("reason"))


def _is_probe_info(value: object) -> bool:
    return (_is_object(value)
            and all(_is_optional_text(value.get(k)) for k in ("source_hash", "compiler"))
            and _is_list_of(_is_text)(value.get("flags", [])))


_PARAMETER_KEYS = frozenset(p.key for p in PARAMETERS)
# key -> (required, check): the manifest keys readers use. Others are kept as they are.
_MANIFEST_KEYS: dict[str, tuple[bool, Check]] = {
    "experiment": (True, names.is_experiment_name),
    "run_id": (True, names.is_label),
    "machine_label": (True, names.is_label),
    "spec_text": (True, _is_text),
    "scenarios": (True, lambda v: isinstance(v, list) and 0 < len(v) <= keys.MAX_SCENARIOS),
    "label_keys": (True, _is_list_of(lambda k: isinstance(k, str) and k in _PARAMETER_KEYS)),
    "repetitions": (True, _is_repetitions),
    "seed": (True, _is_int),
    "timeout_s": (True, lambda v: _is_number(v) and v > 0),  # type: ignore[operator]
    "started_utc": (True, _is_text),
    "finished_utc": (True, _is_optional_text),
    "profile": (False, lambda v: v in ("full", "reduced")),
    "reused_from": (False, _is_text_map),
    "dropped": (False, _is_list_of(_is_dropped)),
    "load": (False, lambda v: _is_list_of(_is_object)(v) and _is_shallow(4)(v)),
    "fingerprint": (False, lambda v: _is_object(v) and _is_shallow(3)(v)),
    "probe": (False, _is_probe_info),
    "command": (False, _is_optional_text),
    "spec_source": (False, _is_text),
    "spec_hash": (False, _is_text),
    "measurement_hash": (False, _is_text),
    "alloclab_version": (False, _is_text),
}


def check_manifest(manifest: object, where: str) -> dict[str, Any]:
    """The manifest if every key readers use has the expected type, its scenarios' parameters
    valid (upgraded to today's vocabulary) and its stored spec valid as `alloclab validate`
    would say; else StoreError naming the key."""
    if not _is_object(manifest):
        raise StoreError(f"{where}: not a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(f"{where}: result format {version!r}, this alloclab reads "
                         f"{FORMAT_VERSION}")
    for key, (required, check) in _MANIFEST_KEYS.items():
        if key not in manifest:
            if required:
                raise StoreError(f"{where}: {key}: missing")
            continue
        if not check(manifest[key]):
            raise StoreError(f"{where}: {key}: {_shown(manifest[key])} is not what this key "
                             "holds")
    manifest["scenarios"] = [_check_scenario(s, f"{where}: scenarios[{i}]")
                             for i, s in enumerate(manifest["scenarios"])]
    try:
        stored = load.parse_spec(manifest["spec_text"], f"{where}#spec")
    except SpecError as error:
        raise StoreError(f"stored spec invalid: {error}") from None
    if stored.name != manifest["experiment"]:
        raise StoreError(f"{where}: the stored spec is experiment {stored.name!r}, the run "
                         f"{manifest['experiment']!r}")
    return manifest


def _check_scenario(scenario: object, where: str) -> dict[str, Any]:
    if not (_is_object(scenario) and isinstance(scenario.get("id"), str)
            and isinstance(scenario.get("label"), str) and _is_object(scenario.get("params"))):
        raise StoreError(f"{where}: expected an object with id, label and params")
    try:
        params = upgrade_params(scenario["params"])
        for parameter in PARAMETERS:
            parameter.parse_stored(params[parameter.field])
    except (ValueError, TypeError, KeyError) as error:
        raise StoreError(f"{where}.params: {error}") from None
    if params["ops"] == 0 or len(scenario["id"]) > 64 or len(scenario["label"]) > 1000:
        raise StoreError(f"{where}: ops, id or label out of range")
    return {**scenario, "params": params}


_RECORD_CHECKS: dict[str, Check] = {
    "scenario_id": _is_text,
    "process_index": lambda v: _is_int(v) and v < MAX_PROCESS_INDEX,  # type: ignore[operator]
    "status": lambda v: v in get_args(Status),
    "exit_code": lambda v: v is None or _is_int(v, -(1 << 31)),
    "signal": _is_optional_text,
    "wall_s": lambda v: _is_number(v) and v >= 0,  # type: ignore[operator]
    "stderr_tail": _is_text,
    "probe": lambda v: v is None or _is_object(v),
}


def check_record(data: object, where: str, scenario_ids: frozenset[str],
                 columns: bool = False) -> ProcessRecord:
    """One samples line as a ProcessRecord, or StoreError naming the field that is off;
    `columns`: as in load_run."""
    if not _is_object(data) or set(data) != set(_RECORD_CHECKS):
        raise StoreError(f"{where}: not a process record (expected the keys "
                         f"{', '.join(_RECORD_CHECKS)})")
    for key, check in _RECORD_CHECKS.items():
        if not check(data[key]):
            raise StoreError(f"{where}: {key}: {_shown(data[key])} is not what this key holds")
    if data["scenario_id"] not in scenario_ids:
        raise StoreError(f"{where}: scenario {_shown(data['scenario_id'])} is not in the "
                         "manifest")
    if data["status"] == "ok":
        if data["probe"] is None:
            raise StoreError(f"{where}: probe: a finished process without its output")
        _check_probe_output(data["probe"], f"{where}: probe", columns)
    return ProcessRecord(**data)


def _check_probe_output(probe: dict[str, Any], where: str, columns: bool = False) -> None:
    """The parts of the probe's output readers use (runner.analysis.frame,
    runner.machine.system), typed; `columns`: the iterations replaced by their columns when
    they pass in bulk."""
    if not _is_int(probe.get("page_size_bytes"), 1):
        raise StoreError(f"{where}.page_size_bytes: expected a whole number >= 1")
    libc = probe.get("libc")
    if libc is not None and not (_is_object(libc) and _is_text(libc.get("name"))
                                 and _is_optional_text(libc.get("version"))):
        raise StoreError(f"{where}.libc: expected an object with a name")
    iterations = probe.get("iterations")
    if columns:
        # Imported here: numpy is not needed by the commands that do not read samples.
        from runner.store.iterations import IterationColumns, columns_of

        if isinstance(iterations, IterationColumns):
            return  # checked as runner.store.iterations.decode_record decoded them
    if not isinstance(iterations, list) or not iterations:
        raise StoreError(f"{where}.iterations: expected a non-empty list")
    if columns:
        converted = columns_of(iterations)
        if converted is not None:
            probe["iterations"] = converted
            return
    elif _iterations_pass(iterations):
        return
    for index, iteration in enumerate(iterations):
        at = f"{where}.iterations[{index}]"
        if not (_is_object(iteration) and isinstance(iteration.get("warmup"), bool)
                and _is_int(iteration.get("rss_before_bytes"))
                and _is_object(iteration.get("phases"))):
            raise StoreError(f"{at}: expected warmup, rss_before_bytes and phases")
        for phase in PHASES:
            values = iteration["phases"].get(phase)
            if not (_is_object(values) and all(
                    _is_int(values.get(k)) for k in ("ns", "minor_faults", "major_faults",
                                                     "rss_bytes"))):
                raise StoreError(f"{at}.phases.{phase}: expected whole numbers ns, "
                                 "minor_faults, major_faults and rss_bytes")
        observations = iteration.get("observations", {})
        if not (_is_object(observations) and all(_is_int(v) for v in observations.values())):
            raise StoreError(f"{at}.observations: expected whole numbers")


_PHASES_OF = operator.itemgetter(*PHASES)
_PHASE_VALUES_OF = operator.itemgetter("ns", "minor_faults", "major_faults", "rss_bytes")


def _iterations_pass(iterations: list[Any]) -> bool:
    """True only when every iteration passes the checks of _check_probe_output, found out in
    bulk (by exact types, which JSON gives), since one by one they cost seconds over a million
    samples; False leaves it to those checks, which name what is off."""
    if not all(type(iteration) is dict for iteration in iterations):
        return False
    objects: list[dict[Any, Any]] = list(iterations)
    flags, numbers = [], []
    try:
        for iteration in iterations:
            phases, observations = iteration["phases"], iteration.get("observations", {})
            if type(phases) is not dict or type(observations) is not dict:
                return False
            flags.append(iteration["warmup"])
            numbers.append(iteration["rss_before_bytes"])
            objects += (phases, observations)
            for values in _PHASES_OF(phases):
                if type(values) is not dict:
                    return False
                objects.append(values)
                numbers += _PHASE_VALUES_OF(values)
            numbers += observations.values()
    except KeyError:
        return False
    return ({type(flag) for flag in flags} == {bool}
            and {type(number) for number in numbers} == {int} and min(numbers) >= 0
            and {type(key) for values in objects for key in values} <= {str})


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
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
