"""Checks and charts edited after a run: the spec a stored run is judged with.

A run keeps the spec it was measured with (manifest.json, never rewritten). When a spec's
checks, charts or words change and what it measures does not (ExperimentSpec.measurement_hash),
`alloclab report` (and `alloclab run`, which then has nothing to measure) stores the new text
beside the run as judged-with.json; pages, verdicts and compare read the run through it
(runner.store.folders.experiment_of), so reports stay a function of results/ alone and the spec
as run stays on record. The file is read as untrusted, like the rest of a run: bounded, its spec
validated, and refused when it would change what was measured.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.core.errors import SpecError, StoreError
from runner.core.model import PRESENTATION_KEYS, ExperimentSpec
from runner.spec import load
from runner.store.untrusted import open_regular

JUDGED_WITH = "judged-with.json"
MAX_JUDGED_WITH_BYTES = 1 << 20  # a spec file's own limit is smaller


@dataclass(frozen=True)
class JudgedWith:
    """The spec text a run is judged with, the file it came from, and when it was recorded."""

    spec_text: str
    spec_source: str
    recorded_utc: str


def read(run_dir: Path) -> JudgedWith | None:
    """The run's judged-with record, checked as data (not yet as a spec); None when absent."""
    path = run_dir / JUDGED_WITH
    try:
        with open_regular(path, MAX_JUDGED_WITH_BYTES) as handle:
            data = handle.read(MAX_JUDGED_WITH_BYTES + 1)
    except FileNotFoundError:
        return None
    try:
        stored = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise StoreError(f"{path}: not JSON ({error})") from None
    fields = ("spec_text", "spec_source", "recorded_utc")
    if not isinstance(stored, dict) or not all(isinstance(stored.get(f), str) for f in fields):
        raise StoreError(f"{path}: expected an object with the strings {', '.join(fields)}")
    return JudgedWith(*(str(stored[f]) for f in fields))


def judged_spec(run_dir: Path, as_run: ExperimentSpec) -> ExperimentSpec:
    """The spec the run is judged with: its judged-with text where there is one, else the spec
    as run. StoreError when that text is not a valid spec or measures something else."""
    judged = read(run_dir)
    if judged is None:
        return as_run
    where = f"{run_dir / JUDGED_WITH}#spec_text"
    try:
        spec = load.parse_spec(judged.spec_text, where)
    except SpecError as error:
        raise StoreError(f"judged-with spec invalid: {error}") from None
    if spec.measurement_hash != as_run.measurement_hash:
        changed = ", ".join(measured_changes(as_run, spec)) or "its content"
        raise StoreError(f"{where}: changes what the run measured ({changed}), not only its "
                         "checks, charts or words; delete the file to judge the run as run")
    return spec


Outcome = Literal["as run", "unchanged", "judged again", "measures more"]


@dataclass(frozen=True)
class Judging:
    """What a spec file means for a stored run: judged as run (the file is the spec as run),
    unchanged (already judged with it), judged again (its presentation is now stored), or it
    measures more than the run did (the keys that differ; nothing is stored)."""

    outcome: Outcome
    keys: tuple[str, ...] = ()


def decide(run_dir: Path, as_run: ExperimentSpec, spec: ExperimentSpec) -> Judging:
    """What storing `spec` as what the run at run_dir is judged with would do (nothing written)."""
    if spec.measurement_hash != as_run.measurement_hash:
        return Judging("measures more", measured_changes(as_run, spec))
    current = judged_spec_or(run_dir, as_run)
    if spec.hash == as_run.hash:
        if (run_dir / JUDGED_WITH).exists():
            return Judging("judged again", presentation_changes(current, spec))
        return Judging("as run")
    if current.hash == spec.hash:
        return Judging("unchanged")
    return Judging("judged again", presentation_changes(current, spec))


def judge_with(run_dir: Path, as_run: ExperimentSpec, spec: ExperimentSpec, spec_text: str,
               now_utc: str) -> Judging:
    """Store `spec` (read from `spec_text`) as what the run at run_dir is judged with when it
    measures what the run measured (decide); a spec that is the spec as run again removes the
    record."""
    judging = decide(run_dir, as_run, spec)
    if judging.outcome != "judged again":
        return judging
    path = run_dir / JUDGED_WITH
    if spec.hash == as_run.hash:
        path.unlink()
        return judging
    record = {"spec_text": spec_text, "spec_source": spec.source, "recorded_utc": now_utc}
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return judging


def judged_spec_or(run_dir: Path, as_run: ExperimentSpec) -> ExperimentSpec:
    """judged_spec, or the spec as run where the stored record is unreadable (it is replaced)."""
    try:
        return judged_spec(run_dir, as_run)
    except StoreError:
        return as_run


def measured_changes(before: ExperimentSpec, after: ExperimentSpec) -> tuple[str, ...]:
    """The top-level keys whose values differ and that decide what is measured."""
    return tuple(key for key in _changed_keys(before.raw, after.raw)
                 if key not in PRESENTATION_KEYS)


def presentation_changes(before: ExperimentSpec, after: ExperimentSpec) -> tuple[str, ...]:
    """The checks, charts and words that differ."""
    return tuple(key for key in _changed_keys(before.raw, after.raw) if key in PRESENTATION_KEYS)


def _changed_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(key for key in {*before, *after} if before.get(key) != after.get(key))


def inputs_checksum(run_dir: Path, data_checksum: str) -> str:
    """What a run's page depends on: its data's checksum, and the judged-with record if any
    (runner.report.render_cache keys pages by it)."""
    try:
        with open_regular(run_dir / JUDGED_WITH, MAX_JUDGED_WITH_BYTES) as handle:
            record = handle.read(MAX_JUDGED_WITH_BYTES + 1)
    except FileNotFoundError:
        return data_checksum
    return hashlib.sha256(data_checksum.encode() + record).hexdigest()
