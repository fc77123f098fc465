"""Measuring, in the order of its stages: specs -> plans -> probe processes -> a stored run,
with its noise findings and verdicts for the console. A run resumes an interrupted one of the
same spec and reuses the processes of an unchanged one.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

# pandas, numpy, matplotlib and jinja2 come in with the modules that summarise, compare and
# render: each stage imports them when it starts, so `alloclab validate`, `plan`, `schema` and
# `--version` start in a fraction of a second (tests/cli/test_main.py checks).
from runner.analysis import adaptive
from runner.core import names
from runner.core.choices import FILE_BACKINGS
from runner.core.errors import SpecError, UsageError
from runner.core.model import ExperimentSpec, Plan, ProcessRecord, Repetitions
from runner.machine import guard, hugetlb_pool, preconditions, system
from runner.machine.system import read_fingerprint
from runner.measure import extra_rounds, progress, quick, reuse, schedule, shm_names
from runner.probe import native
from runner.spec import coverage, keys, load, matrix
from runner.store import folders, identity, lock, select

if TYPE_CHECKING:
    pass

Say = Callable[[str], None]


class RunListener(Protocol):
    """What follows a run besides `say` (runner.measure.progress.ConsoleListener): counts for a bar,
    and messages sorted by who should hear them. Without one, every message goes to `say`."""

    def plan(self, experiments: Sequence[tuple[str, int, float]]) -> None: ...
    def experiment(self, name: str, processes: int) -> None: ...
    def more(self, processes: int, estimate_s: float) -> None: ...
    def process(self, estimate_s: float) -> None: ...
    def experiment_done(self, name: str, processes: int) -> None: ...
    def detail(self, message: str) -> None: ...
    def problem(self, message: str) -> None: ...


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
    quick: bool = False  # runner.measure.quick: its processes per scenario, one iteration each
    force: bool = False  # run scenarios that need more memory or file space than is free
    # False: `machine` is the host-name default, so a machine that differs from the runs
    # already under that label gets a label of its own (runner.store.identity); explicit: as given.
    machine_explicit: bool = True
    strict: bool = False  # a spec that measures less than it asks for stops the run (coverage)


@dataclass(frozen=True)
class Target:
    """Another machine the probe processes run on (runner.remote.fleet builds it); None: this
    one."""

    read_fingerprint: Callable[[Path, set[str]], dict[str, Any]]  # spec path, file dirs
    run_process: schedule.RunProcess
    facts: preconditions.MachineFacts
    probe_env: dict[str, str]  # the allocator variables of every probe there
    probe_info: dict[str, Any]  # added to the manifest's "probe": how it got there
    connection_failures: Callable[[], int]  # processes the connection failed so far
    read_load: Callable[[], dict[str, Any]]  # system.read_load's snapshot, of the target


@dataclass(frozen=True)
class RunSummary:
    experiment: str
    run_dir: Path
    processes_run: int
    processes_failed: int
    warnings: tuple[str, ...] = ()  # runner.analysis.noise findings about the finished run
    reused: int = 0  # scenarios copied from an earlier run instead of measured
    verdicts: tuple[str, ...] = ()  # one per check (runner.analysis.verdict_line)
    processes_skipped: int = 0  # of processes_run: not started, this machine cannot measure

    def describe(self) -> str:
        """"zeroing: 72 processes run, 6 skipped, 1 did not finish -> results/...", and
        what the run already held when nothing was run."""
        done = f"{self.processes_run - self.processes_skipped} processes run"
        if self.processes_skipped:
            done += f", {self.processes_skipped} skipped (not measurable here)"
        if self.processes_failed:
            done += f", {self.processes_failed} did not finish"
        if not self.processes_run and self.reused:
            done = f"nothing run, all {self.reused} scenarios already measured"
        return f"{self.experiment}: {done} -> {self.run_dir}"


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_run_id(results_dir: Path, machine: str, experiment: str) -> str:
    base = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, n = base, 1
    while folders.run_path(results_dir, machine, experiment, run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def run_plan(plan: Plan, binary: native.ProbeBinary, options: RunOptions, say: Say,
             target: Target | None = None, listener: RunListener | None = None) -> RunSummary:
    """Run one experiment to completion, continuing an interrupted run of the same spec.

    A new run first copies the scenarios an earlier run measured under the same conditions
    (runner.measure.reuse), and is not made at all when that run holds every scenario of the
    same spec (reuse.holds_all_of); load and steal are snapshotted around the processes, and the
    noise checks' findings come back in the summary. With a `target` the processes run there; a run
    whose connection failed some of them stays unfinished, so running again resumes it.
    """
    experiment = plan.spec
    repetitions = _repetitions(experiment, options)
    file_dirs = {s.file_dir for s in plan.scenarios if s.backing in FILE_BACKINGS}
    fingerprint = (target.read_fingerprint(Path(experiment.source), file_dirs) if target
                   else read_fingerprint(spec_path=Path(experiment.source), file_dirs=file_dirs,
                                         allocators={s.allocator for s in plan.scenarios}))
    with lock.hold_run_lock(options.results_dir / options.machine / experiment.name,
                            experiment.name, options.command):
        return _run_locked(plan, binary, options, repetitions, fingerprint, say, target,
                           listener)


def _run_locked(plan: Plan, binary: native.ProbeBinary, options: RunOptions,
                repetitions: Repetitions, fingerprint: dict[str, Any], say: Say,
                target: Target | None, listener: RunListener | None = None) -> RunSummary:
    """run_plan's work, with the experiment folder's run lock held."""
    experiment = plan.spec
    opened = _resume(plan, binary, options, repetitions, fingerprint, say)
    if opened is None:
        source = (reuse.reuse_source(plan, options.results_dir, options.machine, repetitions,
                                     fingerprint, binary.source_hash)
                  if options.reuse else None)
        if source is not None and reuse.holds_all_of(source, plan, repetitions):
            # A copy of it would be the same data under another run's conditions, time and
            # commit, and the report would show that copy as what measured it.
            say(reuse.nothing_to_measure(experiment.name, source))
            if listener:
                listener.experiment(experiment.name, 0)
                listener.experiment_done(experiment.name, 0)
            return _measured_before(plan, source)
        opened = _start(plan, binary, options, repetitions, fingerprint, say, target, source)
    run_dir, manifest, done = opened
    probe_env = target.probe_env if target else system.allocator_env(os.environ)
    if probe_env:
        say(f"{experiment.name}: probes run with "
            + " ".join(f"{k}={v}" for k, v in probe_env.items()))
    for dropped in manifest["dropped"]:
        if not dropped["reason"].startswith(quick.QUICK_LEFT_OUT):  # said before the run, together
            say(f"{experiment.name}: not measured: {dropped['label']}: {dropped['reason']}")
    neighbours = adaptive.neighbours(plan.scenarios, experiment.checks, plan.label_keys)
    jobs = schedule.order_jobs(plan.scenarios, repetitions.processes, int(manifest["seed"]),
                               neighbours)
    watch = _Progress(experiment.name, {s["id"]: s["label"] for s in manifest["scenarios"]},
                      len(jobs) - len(done), experiment.timeout_s, say, listener,
                      duration_estimate(plan, options).per_process_s if listener else {})
    if listener:
        listener.experiment(experiment.name, watch.total)
    read_load = target.read_load if target else system.read_load
    load_before = read_load()
    lost_before = target.connection_failures() if target else 0

    def run(batch: list[schedule.Job], already: set[tuple[str, int]]) -> None:
        schedule.run_jobs(batch, binary, repetitions, experiment.timeout_s, run_dir, already,
                          watch.on_record, extra_env=probe_env,
                          facts=target.facts if target else None,
                          run_process=target.run_process if target else None)

    run(jobs, done)
    extra = extra_rounds.run_extra_rounds(plan, repetitions, run_dir, int(manifest["seed"]),
                                          neighbours, run, say, watch.extend)
    load = [*manifest.get("load", []), {"before": load_before, "after": read_load()}]
    lost = target is not None and target.connection_failures() > lost_before
    folders.write_manifest(run_dir, {**manifest, "finished_utc": None if lost else _utc_now(),
                                   "load": load, "adaptive": extra})
    if listener:
        listener.experiment_done(experiment.name, watch.run)
    return replace(_summary(plan, run_dir, watch.run, watch.failed,
                            len(manifest.get("reused_from", {}))),
                   processes_skipped=watch.skipped)


def _measured_before(plan: Plan, source: folders.StoredRun) -> RunSummary:
    """The summary of an experiment whose run `source` already holds all it would measure."""
    return _summary(plan, source.path, 0, 0, len(source.manifest["scenarios"]))


def _summary(plan: Plan, run_dir: Path, processes_run: int, processes_failed: int,
             reused: int) -> RunSummary:
    """What the console says of a finished run: its noise findings and verdicts."""
    from runner.analysis import noise, verdict
    from runner.analysis.frame import build_frame, measured
    from runner.analysis.verdict_line import summary_line

    stored = folders.load_run(run_dir)
    samples = measured(build_frame(stored))
    warnings = noise.run_warnings(stored, noise.watched_metrics(plan.spec), samples)
    verdicts = verdict.run_verdicts(stored, plan.spec, samples)
    return RunSummary(plan.spec.name, run_dir, processes_run, processes_failed,
                      tuple(w.message for w in warnings), reused,
                      tuple(summary_line(v) for v in verdicts))


def _repetitions(experiment: ExperimentSpec, options: RunOptions) -> Repetitions:
    """The spec's repetitions, unless --quick or --processes asks for fewer. Either takes no
    extra rounds: the processes asked for are the run's (a smoke run of one process a
    scenario would otherwise look at its pairs after every round, up to the spec's most)."""
    repetitions = experiment.repetitions
    if options.quick:
        repetitions = replace(repetitions, processes=quick.QUICK_PROCESSES, iterations=1,
                              max_processes=quick.QUICK_PROCESSES)
    if options.processes is not None:
        repetitions = replace(repetitions, processes=options.processes,
                              max_processes=options.processes)
    return repetitions


Opened = tuple[Path, dict[str, Any], set[tuple[str, int]]]  # run folder, manifest, done pairs


def _resume(plan: Plan, binary: native.ProbeBinary, options: RunOptions,
            repetitions: Repetitions, fingerprint: dict[str, Any], say: Say) -> Opened | None:
    """Continue the unfinished run of the same scenarios, probe and repetitions, if any."""
    experiment = plan.spec
    if not options.resume:
        return None
    resumed = select.find_resumable(options.results_dir, options.machine, experiment.name,
                                    experiment.measurement_hash, binary.source_hash, repetitions)
    if resumed is None:
        return None
    changed = system.confounding_differences(resumed.manifest.get("fingerprint", {}),
                                              fingerprint)
    if changed:
        say(f"{experiment.name}: not resuming {resumed.path}: {', '.join(changed)} changed "
            "since it started; starting a new run")
        return None
    # Titles, charts or checks edited since: the run shows the spec as it is now.
    manifest = {**resumed.manifest, "spec_hash": experiment.hash,
                "spec_text": load.read_spec_text(Path(experiment.source))}
    folders.write_manifest(resumed.path, manifest)
    # Processes a lost connection failed are measured again, their records replaced.
    kept = [r for r in resumed.records if not r.lost_connection]
    if len(kept) < len(resumed.records):
        folders.rewrite_records(resumed.path, kept)
    done = {(r.scenario_id, r.process_index) for r in kept}
    say(f"{experiment.name}: resuming {resumed.path} ({len(done)} processes already stored)")
    return resumed.path, manifest, done


def _start(plan: Plan, binary: native.ProbeBinary, options: RunOptions,
           repetitions: Repetitions, fingerprint: dict[str, Any], say: Say,
           target: Target | None = None, source: folders.StoredRun | None = None) -> Opened:
    """A new run folder with its manifest and the records it copies from `source`, the
    earlier run it may reuse (runner.measure.reuse), if any."""
    experiment = plan.spec
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**32)
    run_id = _new_run_id(options.results_dir, options.machine, experiment.name)
    run_dir = folders.run_path(options.results_dir, options.machine, experiment.name, run_id)
    manifest = folders.build_manifest(
        plan, spec_text=load.read_spec_text(Path(experiment.source)),
        probe_info={"source_hash": binary.source_hash, "compiler": binary.compiler,
                    "flags": list(binary.flags), **(target.probe_info if target else {})},
        fingerprint=fingerprint, machine=options.machine, run_id=run_id,
        repetitions=repetitions, seed=seed, started_utc=_utc_now(), command=options.command)
    # A run with fewer repetitions than its spec asks for is shown only when no full one is.
    manifest["profile"] = "full" if repetitions == experiment.repetitions else "reduced"
    reused, records = (({}, []) if source is None
                       else reuse.reusable_records(plan, source, repetitions))
    manifest["reused_from"] = reused
    folders.write_manifest(run_dir, manifest)
    folders.append_records(run_dir, records)
    if reused:
        say(f"{experiment.name}: {len(reused)} of {len(plan.scenarios)} scenarios reused "
            f"from run {', '.join(sorted(set(reused.values())))} (same probe, repetitions "
            "and machine conditions; --fresh measures everything)")
    return run_dir, manifest, {(r.scenario_id, r.process_index) for r in records}


class _Progress:
    """What the console hears while processes run: failures at once, skips once, a count
    (with a listener: failures as problems, the count as detail, each process as a tick)."""

    def __init__(self, experiment: str, labels: dict[str, str], total: int, timeout_s: float,
                 say: Say, listener: RunListener | None = None,
                 estimates_s: Mapping[str, float] | None = None) -> None:
        self.experiment, self.labels, self.total = experiment, labels, total
        self.timeout_s, self.say, self.listener = timeout_s, say, listener
        self.estimates_s = estimates_s or {}
        self.run = self.failed = self.skipped = 0
        self.skips_said: set[str] = set()

    def extend(self, batch: Sequence[tuple[str, int]]) -> None:
        """Extra rounds join the run: more processes to count (and for the bar, to time)."""
        self.total += len(batch)
        if self.listener:
            self.listener.more(len(batch), sum(self.estimates_s.get(sid, 0.0)
                                               for sid, _ in batch))

    def on_record(self, job: schedule.Job, record: ProcessRecord) -> None:
        self.run += 1
        where = f"{self.experiment}: {self.labels[job.scenario.id]}"
        if record.status == "skipped":
            self.skipped += 1
            if job.scenario.id not in self.skips_said:  # once per scenario, not per process
                self.skips_said.add(job.scenario.id)
                self.say(f"{where}: skipped: {record.skip_reason}")
        elif record.status == "oom":  # the scenario's outcome, said once, not a failure
            if job.scenario.id not in self.skips_said:
                self.skips_said.add(job.scenario.id)
                self.say(f"{where}: OOM-killed in its memory cgroup (its outcome, recorded)")
        elif record.status != "ok":
            self.failed += 1
            (self.listener.problem if self.listener else self.say)(
                f"{where} process {job.process_index}: {record.describe(self.timeout_s)}")
        if self.run % max(1, self.total // 10) == 0 or self.run == self.total:
            (self.listener.detail if self.listener else self.say)(
                f"{self.experiment}: {self.run}/{self.total} processes")
        if self.listener:
            self.listener.process(self.estimates_s.get(job.scenario.id, 0.0))


def load_plans(spec_paths: Sequence[Path]) -> list[Plan]:
    """Load, validate and expand every spec before anything runs, so errors come first."""
    return [plan_of(experiment) for experiment in load.load_specs(spec_paths)]


def plan_of(experiment: ExperimentSpec) -> Plan:
    """A valid spec expanded into its scenarios; SpecError when it cannot run here."""
    plan = matrix.expand(experiment)
    _check_file_dirs(plan)
    return plan


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
        if runs > keys.MAX_PROBE_RUNS:
            raise UsageError(f"{plan.spec.source}: {len(plan.scenarios)} scenarios x "
                             f"{processes} processes = {runs} probe runs; at most "
                             f"{keys.MAX_PROBE_RUNS} are allowed")


def warn_about_coverage(plans: Sequence[Plan], options: RunOptions, say: Say) -> None:
    """One line per way a spec measures less than it asks for (runner.spec.coverage), before
    anything runs; with --strict a UsageError when there is any. Call it on the plans as
    expanded, before profile_plans, whose --quick drops are the profile's doing."""
    warnings = [warning for plan in plans for warning in coverage.find_warnings(plan)]
    for warning in warnings:
        say(str(warning))
    if options.strict and warnings:
        raise UsageError(f"--strict: the {len(warnings)} warning(s) above count as errors, so "
                         "nothing was run (fix the specs, or run without --strict)")


def profile_plans(plans: Sequence[Plan], options: RunOptions) -> list[Plan]:
    """The plans as the run's profile measures them: the quick profile leaves out every
    scenario needing more than quick.QUICK_MAX_BYTES per process (unless that is all of them)."""
    return [quick.quick_plan(plan) for plan in plans] if options.quick else list(plans)


def run_experiments(spec_paths: Sequence[Path], options: RunOptions, say: Say,
                    listener: RunListener | None = None) -> list[RunSummary]:
    loaded = load_plans(spec_paths)
    warn_about_coverage(loaded, options, listener.problem if listener else say)
    plans = profile_plans(loaded, options)
    if not names.is_label(options.machine):
        raise UsageError(f"machine label {options.machine!r} (--machine or $ALLOCLAB_MACHINE) "
                         f"is not a folder name alloclab accepts: use {names.LABEL_HINT}")
    label, notice = identity.choose_label(options.results_dir, options.machine,
                                          read_fingerprint(),
                                          explicit=options.machine_explicit)
    if notice:
        say(notice)
        options = replace(options, machine=label)
    _check_probe_runs(plans, options)
    if not options.force:
        guard.check_fit(plans)  # before any probe starts
    binary = native.build_probe()
    say(f"probe {binary.source_hash} built with {binary.compiler}")
    for name in shm_names.sweep():
        say(f"removed /dev/shm/{name}, left by a probe that was killed")
    _restore_hugetlb_pool(say)
    left_out = quick.quick_left_out(plans)
    if left_out:
        say(left_out[0])
        for line in left_out[1:]:
            (listener.detail if listener else say)(line)
    # Said before the plan, which then counts only what runs.
    before = [reuse.already_measured(plan, options.results_dir, options.machine,
                                     _repetitions(plan.spec, options), binary.source_hash,
                                     resume=options.resume) if options.reuse else None
              for plan in plans]
    for plan, source in zip(plans, before, strict=True):
        if source is not None:
            say(reuse.nothing_to_measure(plan.spec.name, source))
    to_run = [plan for plan, source in zip(plans, before, strict=True) if source is None]
    if listener and to_run:
        facts = preconditions.read_facts()
        listener.plan([(plan.spec.name, len(plan.scenarios) * _repetitions(plan.spec,
                                                                           options).processes,
                        duration_estimate(plan, options, preconditions.find_unmet(
                            plan.scenarios, facts)).seconds) for plan in to_run])
    return [run_plan(plan, binary, options, say, listener=listener) if source is None
            else _measured_before(plan, source) for plan, source in zip(plans, before,
                                                                      strict=True)]


def _restore_hugetlb_pool(say: Say) -> None:
    """Give back the hugetlb pool a killed run left changed (runner.machine.hugetlb_pool)."""
    try:
        done = hugetlb_pool.sweep()
    except (hugetlb_pool.PoolError, OSError) as error:
        done = f"could not restore the hugetlb pool a killed run changed: {error}"
    if done:
        say(done)


@dataclass(frozen=True)
class DurationEstimate:
    """How long a fresh run of one plan should take, and how much of that was measured."""

    seconds: float
    per_process_s: Mapping[str, float]  # by scenario id
    measured_scenarios: int  # timed by this machine's earlier runs; the others by the model
    scenarios: int

    def describe(self) -> str:
        if self.measured_scenarios == self.scenarios:
            return "as this machine measured every scenario last time"
        rough = ("rough: processes x a per-scenario cost from size, iterations and backing")
        if not self.measured_scenarios:
            return rough
        return (f"{self.measured_scenarios} of {self.scenarios} scenarios as this machine "
                f"measured them last time, the others {rough}")


def duration_estimate(plan: Plan, options: RunOptions,
                      skipped: Collection[str] = ()) -> DurationEstimate:
    """The duration of a fresh run of `plan` with these options: each scenario's process as
    this machine measured it last, else the model (runner.measure.progress); the `skipped` scenarios
    (ids this machine cannot measure: their processes are never started) take no time."""
    repetitions = _repetitions(plan.spec, options)
    iterations = repetitions.warmup + repetitions.iterations
    history = select.newest_finished_times(options.results_dir, options.machine, plan.spec.name)
    run_here = {s.id for s in plan.scenarios} - set(skipped)
    measured = progress.measured_process_s(history, run_here, iterations)
    estimates = {sid: (seconds if sid in run_here else 0.0) for sid, seconds in
                 progress.with_model(plan, iterations, measured).items()}
    return DurationEstimate(progress.estimate_plan_s(plan, repetitions, estimates), estimates,
                            len(measured), len(run_here))


def extra_rounds_bound(plan: Plan, options: RunOptions, base_s: float) -> adaptive.Bound:
    """The most extra rounds for undecided check pairs may add to a run of `plan` whose base
    rounds take `base_s`."""
    return adaptive.bound(plan.spec.checks, plan.scenarios, plan.label_keys,
                          _repetitions(plan.spec, options), base_s)
