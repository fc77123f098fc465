"""The order in which probe processes run, and running them with nothing lost.

Processes go in rounds: round k runs process k of every scenario, in an order shuffled with a
recorded seed. Slow drift of the machine (thermal, balloon, neighbours) then spreads over all
scenarios instead of landing on whichever came last, and the same seed gives the same order,
which is what lets an interrupted run resume exactly where it stopped. The scenarios a check
compares run side by side in every round (runner.analysis.adaptive.neighbours), in a shuffled order,
so the candidate's process of a round and the reference's meet the machine in the same state: a
paired verdict (runner.analysis.sequential) compares them round by round.

A scenario this machine cannot measure (runner.machine.preconditions) is not started: each of its
jobs is stored as a "skipped" record carrying the reason, like a probe that exits EXIT_SKIPPED.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.analysis import adaptive
from runner.core.model import ProcessRecord, Repetitions, Scenario
from runner.machine import hugetlb_pool, memcg, preconditions
from runner.measure import datafiles, interrupt
from runner.probe import execute, native
from runner.store import folders

# execute.run_process, or a remote executor's method with the same contract (runner.remote.ssh).
RunProcess = Callable[..., ProcessRecord]


@dataclass(frozen=True)
class Job:
    scenario: Scenario
    process_index: int


def order_jobs(scenarios: Iterable[Scenario], processes: int, seed: int,
               neighbours: Sequence[Sequence[str]] = ()) -> list[Job]:
    """Every (scenario, process) pair, round by round, each round's order drawn from `seed`
    and the round: the groups of `neighbours` (scenario ids) side by side, any scenario in no
    group on its own."""
    by_id = {s.id: s for s in scenarios}
    grouped = {sid for group in neighbours for sid in group}
    groups = [*([sid for sid in group if sid in by_id] for group in neighbours),
              *([sid] for sid in by_id if sid not in grouped)]
    jobs: list[Job] = []
    for process_index in range(processes):
        order = adaptive.round_order([g for g in groups if g],
                                     random.Random(f"{seed}:{process_index}"))
        jobs.extend(Job(by_id[sid], process_index) for sid in order)
    return jobs


def run_jobs(jobs: list[Job], binary: native.ProbeBinary, repetitions: Repetitions,
             timeout_s: float, run_dir: Path, done: set[tuple[str, int]],
             on_record: Callable[[Job, ProcessRecord], None],
             facts: preconditions.MachineFacts | None = None,
             extra_env: Mapping[str, str] | None = None,
             run_process: RunProcess | None = None) -> None:
    """Run each job not yet `done` in a fresh probe process, storing its record at once
    (written at once, synced to disk at the end of each round and of the run). File-backed
    scenarios run here share one data file between their processes (runner.measure.datafiles).

    Jobs whose scenario this machine cannot measure (`facts`, read here when not given) are
    stored as skipped without starting the probe. `extra_env` is added to every probe's
    environment (the allocator variables, runner.machine.system.allocator_env), with the
    scenario's own tunables and allocator library on top (runner.probe.native.probe_env).
    `run_process` starts the process on another machine (runner.remote.ssh.RemoteExecutor);
    None: here (execute.run_process).
    """
    facts = facts or preconditions.read_facts()
    unmet = preconditions.find_unmet({job.scenario for job in jobs}, facts)
    round_size = len({job.scenario.id for job in jobs})
    to_run = [job for job in jobs if (job.scenario.id, job.process_index) not in done]
    # Each file-backed scenario's data file is made by its first process and removed after its
    # last (runner.measure.datafiles), and in any case when the run ends, however it ends. On
    # another machine (run_process given) every process makes its own, as this runner cannot remove
    # files there.
    shared: dict[str, Path] = {}
    if run_process is None:
        datafiles.remove_leftovers(run_dir, {job.scenario.file_dir for job in to_run
                                             if datafiles.can_share(job.scenario)})
        shared = datafiles.name_files((job.scenario for job in to_run
                                       if job.scenario.id not in unmet), run_dir)
    hierarchy = memcg.read_hierarchy() if run_process is None else None
    if hierarchy is not None and any(job.scenario.memory_limit_bytes for job in to_run):
        memcg.sweep(hierarchy)  # the cgroups of a runner killed before it could remove them
    last = {job.scenario.id: job.process_index for job in to_run}
    try:
        with folders.RecordWriter(run_dir) as writer:
            for number, job in enumerate(jobs, start=1):
                if (job.scenario.id, job.process_index) in done:
                    continue
                interrupt.check()
                record = _run_job(job, binary, repetitions, timeout_s,
                                  unmet.get(job.scenario.id),
                                  native.probe_env(job.scenario, extra_env,
                                                   preconditions.allocator_library(
                                                       job.scenario, facts)),
                                  shared.get(job.scenario.id), run_process, hierarchy)
                writer.append(record)
                if number % round_size == 0:
                    writer.sync()  # once a round, i.e. once per scenario's worth of records
                if job.scenario.id in shared and last[job.scenario.id] == job.process_index:
                    datafiles.remove(shared.pop(job.scenario.id))
                on_record(job, record)
    finally:
        for path in shared.values():
            datafiles.remove(path)


def _run_job(job: Job, binary: native.ProbeBinary, repetitions: Repetitions, timeout_s: float,
             unmet: str | None, env: dict[str, str], data_file: Path | None,
             run_process: RunProcess | None,
             hierarchy: memcg.Hierarchy | None = None) -> ProcessRecord:
    """One job's record: a skip when the machine cannot measure it, else its probe's (in a
    memory cgroup of its own for a memory_limit: preconditions skipped it where there is
    none, and remotely)."""
    if unmet is not None:
        return skipped_record(job, unmet)
    argv = native.probe_argv(binary, job.scenario, repetitions.warmup, repetitions.iterations)
    if data_file is not None:
        env = {**env, datafiles.VARIABLE: str(data_file)}
    if job.scenario.hugetlb_pool and run_process is None:
        return run_in_pool(job, argv, hierarchy, timeout_s=timeout_s, extra_env=env)
    return _start(run_process or execute.run_process, job, argv, hierarchy,
                  timeout_s=timeout_s, extra_env=env)


def _start(start: RunProcess, job: Job, argv: list[str], hierarchy: memcg.Hierarchy | None, *,
           timeout_s: float, extra_env: Mapping[str, str]) -> ProcessRecord:
    """The job's probe process, in a memory cgroup of its own for a memory_limit."""
    if job.scenario.memory_limit_bytes and hierarchy is not None:
        return run_limited(start, argv, job.scenario.memory_limit_bytes, hierarchy,
                           scenario_id=job.scenario.id, process_index=job.process_index,
                           timeout_s=timeout_s, extra_env=extra_env)
    return start(argv, scenario_id=job.scenario.id, process_index=job.process_index,
                 timeout_s=timeout_s, extra_env=extra_env)


def run_in_pool(job: Job, argv: list[str], hierarchy: memcg.Hierarchy | None, *,
                timeout_s: float, extra_env: Mapping[str, str]) -> ProcessRecord:
    """One probe process here with a hugetlb pool of exactly the scenario's hugetlb_pool free
    pages (runner.machine.hugetlb_pool: set before it starts, given back after it ends, however
    it ends); a pool that cannot be set is a "failed" record saying why."""
    pages = job.scenario.hugetlb_pool
    env = {**extra_env, hugetlb_pool.POOL_VARIABLE: str(pages)}
    try:
        with hugetlb_pool.reserved(pages):
            return _start(execute.run_process, job, argv, hierarchy, timeout_s=timeout_s,
                          extra_env=env)
    except hugetlb_pool.PoolError as error:
        return ProcessRecord(scenario_id=job.scenario.id, process_index=job.process_index,
                             status="failed", exit_code=None, signal=None, wall_s=0.0,
                             stderr_tail=f"alloclab: hugetlb_pool {pages}: {error}\n",
                             probe=None)


def run_limited(start: RunProcess, argv: list[str], limit_bytes: int,
                hierarchy: memcg.Hierarchy, *, scenario_id: str, process_index: int,
                timeout_s: float, extra_env: Mapping[str, str]) -> ProcessRecord:
    """One probe process in a memory cgroup of its own (made before it starts, removed after
    it ends, however it ends). A process the OOM killer ended is recorded as "oom", the
    scenario's outcome; one the cgroup could not be made for as "failed", saying why."""
    try:
        group = memcg.create(hierarchy, limit_bytes)
    except OSError as error:
        return ProcessRecord(scenario_id=scenario_id, process_index=process_index,
                             status="failed", exit_code=None, signal=None, wall_s=0.0,
                             stderr_tail=f"alloclab: cannot make a memory cgroup in "
                                         f"{hierarchy.parent}: {error}\n", probe=None)
    try:
        record = start(argv, scenario_id=scenario_id, process_index=process_index,
                       timeout_s=timeout_s,
                       extra_env={**extra_env, memcg.JOIN_VARIABLE: str(group.path)})
        kills = group.oom_kills()
    finally:
        memcg.remove(group)
    if record.status == "crashed" and record.signal == "SIGKILL" and kills:
        tail = execute.keep_stderr_tail(record.stderr_tail, memcg.oom_note(group, kills))
        return dataclasses.replace(record, status="oom", stderr_tail=tail)
    return record


def skipped_record(job: Job, reason: str) -> ProcessRecord:
    """The record of a job not started because the machine lacks what its scenario needs."""
    return ProcessRecord(scenario_id=job.scenario.id, process_index=job.process_index,
                         status="skipped", exit_code=None, signal=None, wall_s=0.0,
                         stderr_tail=f"alloclab: skipped: {reason}\n", probe=None)
