"""Judging the shown runs again with the spec files as they are now (`alloclab report`).

Each spec file's experiment is looked up among the runs a report shows (the newest of each
machine, runner.store.select.shown_run_dirs). Where the file measures what a run measured and
only its checks, charts or words changed, the run is judged with it from now on
(runner.store.judged_with stores it beside the run); where it measures something else, the page
keeps the spec as run and the console says what changed and that `alloclab run` measures it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.core.errors import SpecError, StoreError
from runner.spec import load
from runner.store import folders, judged_with
from runner.store.judged_with import Judging
from runner.store.select import shown_run_dirs


@dataclass(frozen=True)
class Finding:
    """What one spec file means for one shown run of its experiment."""

    spec_source: str
    experiment: str
    machine: str
    run_id: str
    judging: Judging


def rejudge(spec_paths: Sequence[Path], results_dir: Path, now_utc: str, *,
            write: bool) -> tuple[list[Finding], list[str]]:
    """Each valid spec file against the shown runs of its experiment, the judged-with records
    stored where `write` (else only decided, for report --check); and a line per spec file
    that could not be read (it is left out: the runs keep what they are judged with)."""
    specs, problems = [], []
    for loaded in load.check_specs(spec_paths):
        if isinstance(loaded, SpecError):
            problems.append(f"not judged with: {loaded}")
        else:
            specs.append(loaded)
    by_name = {spec.name: spec for spec in specs}
    findings = []
    with warnings.catch_warnings():
        # The runs a report cannot read are said once, when it renders.
        warnings.simplefilter("ignore", folders.SkippedRunWarning)
        shown = shown_run_dirs(results_dir)
    for run_dir in shown:
        spec = by_name.get(run_dir.parent.name)
        if spec is None:
            continue
        try:
            run = folders.StoredRun(run_dir, folders.read_manifest(run_dir), ())
            as_run = folders.spec_as_run(run)
        except (StoreError, OSError):
            continue  # the report says why when it reads the run
        if write:
            judging = judged_with.judge_with(run_dir, as_run, spec,
                                             load.read_spec_text(Path(spec.source)), now_utc)
        else:
            judging = judged_with.decide(run_dir, as_run, spec)
        findings.append(Finding(spec.source, spec.name, run.machine, run.run_id, judging))
    return findings, problems


def judged_lines(findings: Sequence[Finding], *, done: bool = True) -> list[str]:
    """One line per spec file whose runs it judges again: "small: judged again with the checks
    of experiments/small.yaml on vm, vm-2 (stored beside each run as judged-with.json)"; with
    `done` False, what `alloclab report` would judge again."""
    lines = []
    for source, mine in _by_source(findings):
        again = [f for f in mine if f.judging.outcome == "judged again"]
        if not again:
            continue
        keys = sorted({key for f in again for key in f.judging.keys}) or ["words"]
        where = ", ".join(f.machine for f in again)
        if done:
            lines.append(f"{mine[0].experiment}: judged again with the {', '.join(keys)} of "
                         f"{source} on {where} (stored beside each run as "
                         f"{judged_with.JUDGED_WITH})")
        else:
            lines.append(f"{source}: its {', '.join(keys)} differ from those the runs of "
                         f"{where} are judged with; `alloclab report` judges them again")
    return lines


def remeasure_lines(findings: Sequence[Finding]) -> list[str]:
    """One line per run whose spec file now measures something else: the page keeps the run
    as measured, and `alloclab run` measures the change."""
    return [f"{f.experiment}: {f.spec_source} measures something other than run "
            f"{f.machine}/{f.experiment}/{f.run_id} ({', '.join(f.judging.keys)} changed): its "
            f"page shows the run as measured; `alloclab run {f.spec_source}` measures the change"
            for f in findings if f.judging.outcome == "measures more"]


def _by_source(findings: Sequence[Finding]) -> list[tuple[str, list[Finding]]]:
    sources = dict.fromkeys(f.spec_source for f in findings)
    return [(source, [f for f in findings if f.spec_source == source]) for source in sources]
