"""The order of the stages: specs -> plans -> probe processes -> stored runs -> reports."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from runner import matrix, probe, report, schedule, spec, store
from runner.machine import read_fingerprint
from runner.model import Plan, ProcessRecord, Repetitions

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run: where results go, under which machine label, and overrides of the specs."""

    results_dir: Path
    machine: str
    command: str
    resume: bool = True
    seed: int | None = None
    processes: int | None = None


@dataclass(frozen=True)
class RunSummary:
    experiment: str
    run_dir: Path
    processes_run: int
    processes_failed: int


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_run_id(results_dir: Path, machine: str, experiment: str) -> str:
    base = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while store.run_path(results_dir, machine, experiment, run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def run_plan(plan: Plan, binary: probe.ProbeBinary, options: RunOptions, say: Say) -> RunSummary:
    """Run one experiment to completion, continuing an interrupted run of the same spec."""
    experiment = plan.spec
    repetitions = experiment.repetitions
    if options.processes is not None:
        repetitions = replace(repetitions, processes=options.processes)
    resumed = None
    if options.resume:
        resumed = store.find_resumable(options.results_dir, options.machine, experiment.name,
                                       experiment.hash, binary.source_hash)
    if resumed is not None:
        manifest = resumed.manifest
        run_dir = resumed.path
        repetitions = Repetitions(**manifest["repetitions"])
        done = {(r.scenario_id, r.process_index) for r in resumed.records}
        say(f"{experiment.name}: resuming {run_dir} ({len(done)} processes already stored)")
    else:
        seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
        run_id = _new_run_id(options.results_dir, options.machine, experiment.name)
        run_dir = store.run_path(options.results_dir, options.machine, experiment.name, run_id)
        manifest = store.build_manifest(
            plan, spec_text=Path(experiment.source).read_text(encoding="utf-8"),
            probe_info={"source_hash": binary.source_hash, "compiler": binary.compiler,
                        "flags": list(binary.flags)},
            fingerprint=read_fingerprint(), machine=options.machine, run_id=run_id,
            repetitions=repetitions, seed=seed, started_utc=_utc_now(), command=options.command)
        store.write_manifest(run_dir, manifest)
        done = set()
    for dropped in manifest["dropped"]:
        say(f"{experiment.name}: not measured: {dropped['label']}: {dropped['reason']}")
    jobs = schedule.order_jobs(plan.scenarios, repetitions.processes, int(manifest["seed"]))
    labels = {s["id"]: s["label"] for s in manifest["scenarios"]}
    counts = {"run": 0, "failed": 0}
    total = len(jobs) - len(done)

    def on_record(job: schedule.Job, record: ProcessRecord) -> None:
        counts["run"] += 1
        if record.status != "ok":
            counts["failed"] += 1
            detail = record.signal or f"exit {record.exit_code}"
            tail = record.stderr_tail.strip().splitlines()[-1:] or [""]
            say(f"{experiment.name}: {labels[job.scenario.id]} process {job.process_index}: "
                f"{record.status} ({detail}) {tail[0]}")
        if counts["run"] % max(1, total // 10) == 0 or counts["run"] == total:
            say(f"{experiment.name}: {counts['run']}/{total} processes")

    schedule.run_jobs(jobs, binary, repetitions, experiment.timeout_s, run_dir, done, on_record)
    store.write_manifest(run_dir, {**manifest, "finished_utc": _utc_now()})
    return RunSummary(experiment.name, run_dir, counts["run"], counts["failed"])


def load_plans(spec_paths: Sequence[Path]) -> list[Plan]:
    """Load, validate and expand every spec before anything runs, so errors come first."""
    return [matrix.expand(experiment) for experiment in spec.load_specs(spec_paths)]


def run_experiments(spec_paths: Sequence[Path], options: RunOptions, say: Say) -> list[RunSummary]:
    plans = load_plans(spec_paths)
    binary = probe.build_probe()
    say(f"probe {binary.source_hash} built with {binary.compiler}")
    return [run_plan(plan, binary, options, say) for plan in plans]


def render(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[Path]:
    return report.render_reports(results_dir, reports_dir, templates_dir)
