"""The order of the stages: specs -> plans -> probe processes -> stored runs -> reports.

Besides: stored runs -> a comparison (compare_stored), runs <-> an archive (export_stored,
import_stored), and whether committed reports still match their results (check_render).
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from runner import (
    archive,
    compare,
    compare_report,
    guard,
    lock,
    machine,
    matrix,
    names,
    noise,
    probe,
    report,
    schedule,
    spec,
    store,
    verdict,
)
from runner.errors import SpecError, UsageError
from runner.frame import build_frame, measured
from runner.machine import read_fingerprint
from runner.metrics import BY_NAME
from runner.model import ExperimentSpec, Plan, ProcessRecord, Repetitions
from runner.parameters import FILE_BACKINGS

Say = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """How to run: where results go, under which machine label, and overrides of the specs."""

    results_dir: Path
    machine: str
    command: str
    resume: bool = True
    reuse: bool = True  # copy complete scenarios from an earlier run of the same conditions
    seed: int | None = None
    processes: int | None = None
    quick: bool = False  # QUICK_PROCESSES fresh processes per scenario, one iteration each
    force: bool = False  # run scenarios that need more memory or file space than is free


# The --quick profile: enough to see every scenario run and the shape of the charts in a
# couple of minutes, not enough for conclusions (the report says so).
QUICK_PROCESSES = 2


@dataclass(frozen=True)
class RunSummary:
    experiment: str
    run_dir: Path
    processes_run: int
    processes_failed: int
    warnings: tuple[str, ...] = ()  # runner.noise findings about the finished run
    reused: int = 0  # scenarios copied from an earlier run instead of measured
    verdicts: tuple[str, ...] = ()  # "status (counts): claim", one per check


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
    """Run one experiment to completion, continuing an interrupted run of the same spec.

    A new run first copies the scenarios an earlier run measured under the same conditions
    (_reusable_records); load and steal are snapshotted around the processes, and the noise
    checks' findings come back in the summary.
    """
    experiment = plan.spec
    repetitions = _repetitions(experiment, options)
    fingerprint = read_fingerprint(
        spec_path=Path(experiment.source),
        file_dirs={s.file_dir for s in plan.scenarios if s.backing in FILE_BACKINGS})
    with lock.hold_run_lock(options.results_dir / options.machine / experiment.name,
                            experiment.name, options.command):
        return _run_locked(plan, binary, options, repetitions, fingerprint, say)


def _run_locked(plan: Plan, binary: probe.ProbeBinary, options: RunOptions,
                repetitions: Repetitions, fingerprint: dict[str, Any], say: Say) -> RunSummary:
    """run_plan's work, with the experiment folder's run lock held."""
    experiment = plan.spec
    run_dir, manifest, done = (
        _resume(plan, binary, options, repetitions, fingerprint, say)
        or _start(plan, binary, options, repetitions, fingerprint, say))
    probe_env = machine.allocator_env(os.environ)
    if probe_env:
        say(f"{experiment.name}: probes run with "
            + " ".join(f"{k}={v}" for k, v in probe_env.items()))
    for dropped in manifest["dropped"]:
        say(f"{experiment.name}: not measured: {dropped['label']}: {dropped['reason']}")
    jobs = schedule.order_jobs(plan.scenarios, repetitions.processes, int(manifest["seed"]))
    progress = _Progress(experiment.name, {s["id"]: s["label"] for s in manifest["scenarios"]},
                         len(jobs) - len(done), experiment.timeout_s, say)
    load_before = machine.read_load()
    schedule.run_jobs(jobs, binary, repetitions, experiment.timeout_s, run_dir, done,
                      progress.on_record, extra_env=probe_env)
    load = [*manifest.get("load", []), {"before": load_before, "after": machine.read_load()}]
    store.write_manifest(run_dir, {**manifest, "finished_utc": _utc_now(), "load": load})
    stored = store.load_run(run_dir)
    samples = measured(build_frame(stored))
    warnings = noise.run_warnings(stored, noise.watched_metrics(experiment), samples)
    verdicts = report.run_verdicts(stored, experiment, samples)
    return RunSummary(experiment.name, run_dir, progress.run, progress.failed,
                      tuple(w.message for w in warnings), len(manifest.get("reused_from", {})),
                      tuple(verdict.summary_line(v) for v in verdicts))


def _repetitions(experiment: ExperimentSpec, options: RunOptions) -> Repetitions:
    """The spec's repetitions, unless --quick or --processes asks for fewer."""
    repetitions = experiment.repetitions
    if options.quick:
        repetitions = replace(repetitions, processes=QUICK_PROCESSES, iterations=1)
    if options.processes is not None:
        repetitions = replace(repetitions, processes=options.processes)
    return repetitions


Opened = tuple[Path, dict[str, Any], set[tuple[str, int]]]  # run folder, manifest, done pairs


def _resume(plan: Plan, binary: probe.ProbeBinary, options: RunOptions,
            repetitions: Repetitions, fingerprint: dict[str, Any], say: Say) -> Opened | None:
    """Continue the unfinished run of the same scenarios, probe and repetitions, if any."""
    experiment = plan.spec
    if not options.resume:
        return None
    resumed = store.find_resumable(options.results_dir, options.machine, experiment.name,
                                   experiment.measurement_hash, binary.source_hash, repetitions)
    if resumed is None:
        return None
    changed = machine.confounding_differences(resumed.manifest.get("fingerprint", {}),
                                              fingerprint)
    if changed:
        say(f"{experiment.name}: not resuming {resumed.path}: {', '.join(changed)} changed "
            "since it started; starting a new run")
        return None
    # Titles, charts or checks edited since: the run shows the spec as it is now.
    manifest = {**resumed.manifest, "spec_hash": experiment.hash,
                "spec_text": spec.read_spec_text(Path(experiment.source))}
    store.write_manifest(resumed.path, manifest)
    done = {(r.scenario_id, r.process_index) for r in resumed.records}
    say(f"{experiment.name}: resuming {resumed.path} ({len(done)} processes already stored)")
    return resumed.path, manifest, done


def _start(plan: Plan, binary: probe.ProbeBinary, options: RunOptions,
           repetitions: Repetitions, fingerprint: dict[str, Any], say: Say) -> Opened:
    """A new run folder with its manifest and the records it can reuse from an earlier run."""
    experiment = plan.spec
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    run_id = _new_run_id(options.results_dir, options.machine, experiment.name)
    run_dir = store.run_path(options.results_dir, options.machine, experiment.name, run_id)
    manifest = store.build_manifest(
        plan, spec_text=spec.read_spec_text(Path(experiment.source)),
        probe_info={"source_hash": binary.source_hash, "compiler": binary.compiler,
                    "flags": list(binary.flags)},
        fingerprint=fingerprint, machine=options.machine, run_id=run_id,
        repetitions=repetitions, seed=seed, started_utc=_utc_now(), command=options.command)
    # A run with fewer repetitions than its spec asks for is shown only when no full one is.
    manifest["profile"] = "full" if repetitions == experiment.repetitions else "reduced"
    reused, records = ({}, []) if not options.reuse else _reusable_records(
        plan, options, repetitions, fingerprint, binary.source_hash)
    manifest["reused_from"] = reused
    store.write_manifest(run_dir, manifest)
    store.append_records(run_dir, records)
    if reused:
        say(f"{experiment.name}: {len(reused)} of {len(plan.scenarios)} scenarios reused "
            f"from run {', '.join(sorted(set(reused.values())))} (same probe, repetitions "
            "and machine conditions; --fresh measures everything)")
    return run_dir, manifest, {(r.scenario_id, r.process_index) for r in records}


class _Progress:
    """What the console hears while processes run: failures at once, skips once, a count."""

    def __init__(self, experiment: str, labels: dict[str, str], total: int, timeout_s: float,
                 say: Say) -> None:
        self.experiment, self.labels, self.total = experiment, labels, total
        self.timeout_s, self.say = timeout_s, say
        self.run = self.failed = 0
        self.skips_said: set[str] = set()

    def on_record(self, job: schedule.Job, record: ProcessRecord) -> None:
        self.run += 1
        where = f"{self.experiment}: {self.labels[job.scenario.id]}"
        if record.status == "skipped":
            if job.scenario.id not in self.skips_said:  # once per scenario, not per process
                self.skips_said.add(job.scenario.id)
                self.say(f"{where}: skipped: {record.skip_reason}")
        elif record.status != "ok":
            self.failed += 1
            self.say(f"{where} process {job.process_index}: {record.describe(self.timeout_s)}")
        if self.run % max(1, self.total // 10) == 0 or self.run == self.total:
            self.say(f"{self.experiment}: {self.run}/{self.total} processes")


def _reusable_records(plan: Plan, options: RunOptions, repetitions: Repetitions,
                      fingerprint: dict[str, object], probe_hash: str
                      ) -> tuple[dict[str, str], list[ProcessRecord]]:
    """Records a new run can copy instead of measuring: {scenario id: origin run id}, records.

    They come from the newest finished run of the same experiment on this machine, in this
    boot, with the same probe, the same repetitions and no confounding fingerprint difference,
    for the scenarios it measured completely that are still in the plan: a spec change reruns
    only what it changed. Results from another boot (another copy of the machine, or a fresh
    one with the same host name) are never reused: there, `alloclab run` measures.
    """
    for earlier in store.finished_runs(options.results_dir, options.machine, plan.spec.name):
        manifest = earlier.manifest
        if (manifest.get("fingerprint", {}).get("boot_id") != fingerprint.get("boot_id")
                or fingerprint.get("boot_id") is None
                or manifest.get("probe", {}).get("source_hash") != probe_hash
                or manifest.get("repetitions") != asdict(repetitions)
                or machine.confounding_differences(manifest.get("fingerprint", {}),
                                                   fingerprint)):
            continue
        complete = store.complete_scenarios(earlier, [s.id for s in plan.scenarios],
                                            repetitions.processes)
        origins = manifest.get("reused_from", {})
        return ({sid: origins.get(sid, earlier.run_id) for sid in complete},
                [record for records in complete.values() for record in records])
    return {}, []


def load_plans(spec_paths: Sequence[Path]) -> list[Plan]:
    """Load, validate and expand every spec before anything runs, so errors come first."""
    plans = [matrix.expand(experiment) for experiment in spec.load_specs(spec_paths)]
    for plan in plans:
        _check_file_dirs(plan)
    return plans


def _check_file_dirs(plan: Plan) -> None:
    """A file_dir that does not exist here would fail every process of its scenarios."""
    for folder in sorted({s.file_dir for s in plan.scenarios if s.backing in FILE_BACKINGS}):
        if not os.path.isdir(folder):
            raise SpecError(plan.spec.source, None, "file_dir",
                            f"{folder} is not a directory on this machine (create it, or "
                            "choose another)")


def _check_probe_runs(plans: Sequence[Plan], options: RunOptions) -> None:
    """--processes may ask for more probe runs than a spec may: the same bound applies."""
    for plan in plans:
        processes = _repetitions(plan.spec, options).processes
        runs = len(plan.scenarios) * processes
        if runs > spec.MAX_PROBE_RUNS:
            raise UsageError(f"{plan.spec.source}: {len(plan.scenarios)} scenarios x "
                             f"{processes} processes = {runs} probe runs; at most "
                             f"{spec.MAX_PROBE_RUNS} are allowed")


def run_experiments(spec_paths: Sequence[Path], options: RunOptions, say: Say) -> list[RunSummary]:
    plans = load_plans(spec_paths)
    if not names.is_label(options.machine):
        raise UsageError(f"machine label {options.machine!r} (--machine or $ALLOCLAB_MACHINE) "
                         f"is not a folder name alloclab accepts: use {names.LABEL_HINT}")
    _check_probe_runs(plans, options)
    if not options.force:
        guard.check_fit(plans)  # before any probe starts
    binary = probe.build_probe()
    say(f"probe {binary.source_hash} built with {binary.compiler}")
    return [run_plan(plan, binary, options, say) for plan in plans]


def render(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[Path]:
    return report.render_reports(results_dir, reports_dir, templates_dir)


@dataclass(frozen=True)
class CompareOptions:
    """What `alloclab compare` was asked: which runs, which metrics, which thresholds, outputs."""

    runs: tuple[Path, ...]
    baseline: Path | None = None  # None: the first of `runs`
    metrics: tuple[str, ...] = ()  # empty: the metrics the baseline's charts show
    equivalence: float = compare.DEFAULT_EQUIVALENCE
    fail_above: float | None = None
    out_dir: Path | None = None
    markdown: Path | None = None
    templates_dir: Path = Path("templates")
    command: str = "alloclab compare"


@dataclass(frozen=True)
class CompareResult:
    comparison: compare.Comparison
    markdown: str
    html: Path | None


def _check_metrics(names: Sequence[str]) -> None:
    for name in names:
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1)
            hint = f" (did you mean {close[0]}?)" if close else " (see `alloclab schema`)"
            raise UsageError(f"--metric: unknown metric '{name}'{hint}")


def compare_stored(options: CompareOptions) -> CompareResult:
    """Load the runs, compare each with the baseline, write the HTML and Markdown asked for."""
    _check_metrics(options.metrics)
    named = [store.resolve_run(path) for path in options.runs]
    baseline = store.resolve_run(options.baseline) if options.baseline else named[0]
    candidates = [run for run in named if run.path != baseline.path]
    if not candidates:
        raise UsageError("compare: name at least one run besides the baseline")
    metrics = list(options.metrics) or noise.watched_metrics(report.experiment_of(baseline))
    comparison = compare.compare_runs(baseline, candidates, metrics=metrics,
                                      equivalence=options.equivalence,
                                      fail_above=options.fail_above)
    markdown = compare_report.render_markdown(comparison)
    if options.markdown is not None:
        options.markdown.parent.mkdir(parents=True, exist_ok=True)
        options.markdown.write_text(markdown)
    html = None
    if options.out_dir is not None:
        html = compare_report.render_compare_html(comparison, [baseline, *candidates],
                                                  options.command, options.out_dir,
                                                  options.templates_dir)
    return CompareResult(comparison, markdown, html)


def export_stored(run_paths: Sequence[Path], archive_path: Path) -> list[str]:
    """Pack the named runs (folders, or experiment folders for their latest run) into a .tar.gz."""
    return archive.export_runs([store.resolve_run(path) for path in run_paths], archive_path)


def import_stored(archive_path: Path, results_dir: Path) -> list[archive.ImportedRun]:
    return archive.import_archive(archive_path, results_dir)


def check_render(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[str]:
    return report.check_reports(results_dir, reports_dir, templates_dir)
