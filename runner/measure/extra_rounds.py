"""Extra rounds after a run's base rounds: batch after batch of paired rounds for the statistical
check pairs still undecided (runner.analysis.adaptive plans them), until none needs more or
the run's time for extra rounds is spent. Each batch is planned from the rounds stored before it
alone, so a resumed run finishes a batch as the uninterrupted run would have."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runner.analysis import adaptive
from runner.core.metrics import method_of
from runner.core.model import Plan, Repetitions
from runner.measure import schedule
from runner.store import folders


def run_extra_rounds(plan: Plan, repetitions: Repetitions, run_dir: Path, seed: int,
                     neighbours: Sequence[Sequence[str]],
                     run: Callable[[list[schedule.Job], set[tuple[str, int]]], None],
                     say: Callable[[str], None],
                     announce: Callable[[Sequence[tuple[str, int]]], None]) -> dict[str, Any]:
    """Run the extra rounds of `plan`'s run in `run_dir` (`run` measures a batch of jobs,
    `announce` tells the progress display of a batch before it starts); how they ended, for
    the manifest.

    Each batch is planned from the rounds before it alone (`boundary`), so a run resumed in the
    middle of a batch plans that batch again, finishes it, and goes on as the uninterrupted run
    would have."""
    if not repetitions.adaptive:
        return adaptive.describe("off", 0.0, 0.0)
    by_id = {s.id: s for s in plan.scenarios}
    looks = adaptive.looks_of(repetitions)
    most = max([looks.most, *(adaptive.check_looks(c, looks).most for c in plan.spec.checks)])
    ending: adaptive.Ending = "done"
    boundary = repetitions.processes
    while boundary < most:
        stored = folders.load_run(run_dir)
        pending = _undecided(plan, stored, repetitions, boundary)
        if not pending:
            break
        done = {(r.scenario_id, r.process_index) for r in stored.records}
        batch = adaptive.batch_jobs(pending, neighbours, seed, done)
        if batch and not adaptive.within_time(repetitions, stored.records, batch):
            ending = "time"
            say(_out_of_time(plan.spec.name, len(pending), repetitions, stored, batch))
            break
        if batch:
            say(f"{plan.spec.name}: {len(pending)} check pairs undecided: "
                f"{len(batch)} more processes")
            announce(batch)
            run([schedule.Job(by_id[sid], number) for sid, number in batch], set())
        boundary = min(most, boundary + repetitions.processes)
    records = folders.load_run(run_dir).records
    base_s, extra_s = adaptive.time_spent_s(records, repetitions.processes)
    return adaptive.describe(ending, extra_s, repetitions.extra_time * base_s)


def _out_of_time(name: str, pending: int, repetitions: Repetitions,
                 stored: folders.StoredRun, batch: Sequence[tuple[str, int]]) -> str:
    """Why no further batch runs: the time for extra rounds spent, or the next batch too long
    for what is left of it (the first one too, when the spec allows less than its base)."""
    base_s, extra_s = adaptive.time_spent_s(stored.records, repetitions.processes)
    allowed_s = repetitions.extra_time * base_s
    share = f"{repetitions.extra_time:.0%} of its base rounds"
    if extra_s > 0:
        return (f"{name}: {pending} check pairs still undecided; the run's time for extra "
                f"rounds ({share}, {allowed_s:.3g} s) is spent")
    estimate_s = adaptive.batch_estimate_s(batch, stored.records)
    return (f"{name}: {pending} check pairs still undecided; their next look needs {len(batch)} "
            f"more processes (about {estimate_s:.3g} s), more than the run's time for extra "
            f"rounds ({share}, {allowed_s:.3g} s): raise repetitions.extra_time, or processes")


def _undecided(plan: Plan, stored: folders.StoredRun, repetitions: Repetitions,
               boundary: int) -> list[adaptive.Pending]:
    """The rounds from `boundary` that each statistical pair still undecided on the rounds
    before it needs for its next look, judged as the report judges them."""
    from runner.analysis import verdict
    from runner.analysis.frame import build_frame, measured

    looks = adaptive.looks_of(repetitions)
    samples = measured(build_frame(stored))
    samples = samples[samples["process_index"] < boundary]
    undecided = []
    for check in plan.spec.checks:
        if method_of(check) != "statistical":
            continue
        result = verdict.evaluate(check, samples, stored.manifest["scenarios"],
                                  stored.manifest["label_keys"], looks)
        for c in result.comparisons:
            if c.outcome == "undecided" and c.stop == "measured":
                ids = (c.candidate_id, c.reference_id) if c.reference_id else (c.candidate_id,)
                undecided.append((ids, adaptive.check_looks(check, looks), c.look))
    return adaptive.pending_rounds(undecided, boundary)
