"""Choosing among stored runs: the run a report shows for each machine and experiment, the run
a new run continues (resume), the complete scenarios it may copy from an earlier run (reuse),
the run a command line names, and the wall times of past runs for duration estimates.

Listings read manifests first and parse the samples of the runs they pick only; a run that
cannot be read is left out with a SkippedRunWarning (runner.store.folders.warn_skipped), so
that one bad run does not keep every other from being reported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from runner.core.errors import StoreError
from runner.core.model import (
    ProcessRecord,
    Repetitions,
)
from runner.store.folders import (
    MANIFEST,
    SAMPLES,
    StoredRun,
    load_run,
    read_manifest,
    scenario_ids,
    warn_skipped,
)
from runner.store.untrusted import (
    MAX_MANIFEST_BYTES,
    MAX_SAMPLES_BYTES,
    open_regular,
    parse_records,
    samples_lines,
)


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
        records = parse_records(samples_lines(handle), str(run.path / SAMPLES),
                                scenario_ids(run.manifest))
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


def peek_manifest(run_dir: Path) -> dict[str, Any] | None:
    """A stored run's manifest as JSON, read lightly without checking it (None when it is not
    a JSON object), to choose among runs before reading any whole: nothing read so may be
    trusted beyond that choice."""
    try:
        with open_regular(run_dir / MANIFEST, MAX_MANIFEST_BYTES) as handle:
            data = orjson.loads(handle.read(MAX_MANIFEST_BYTES + 1))
    except (OSError, StoreError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def start_key(run_dir: Path) -> tuple[str, str] | None:
    """(started_utc, run_id) of a stored run, read lightly from its manifest without checking
    the rest (None when they are not there as text), to order runs before reading any whole."""
    data = peek_manifest(run_dir)
    if data is None:
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
        for line in samples_lines(handle):
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(data, dict) or data.get("status") not in ("ok", "oom"):
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
    0..N-1 ok, or ended by the OOM killer in its memory cgroup, the scenario's outcome (the
    extra rounds it took for undecided pairs, N and up, are not base records).

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
                r.status in ("ok", "oom") for r in records.values()):
            complete[scenario_id] = [records[i] for i in range(processes)]
    return complete
