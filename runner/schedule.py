"""The order in which probe processes run, and running them with nothing lost.

Processes go in rounds: round k runs process k of every scenario, in an order shuffled with a
recorded seed. Slow drift of the machine (thermal, balloon, neighbours) then spreads over all
scenarios instead of landing on whichever came last, and the same seed gives the same order,
which is what lets an interrupted run resume exactly where it stopped.

A scenario this machine cannot measure (runner.preconditions) is not started: each of its jobs
is stored as a "skipped" record carrying the reason, like a probe that exits EXIT_SKIPPED.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner import execute, interrupt, preconditions, probe, store
from runner.model import ProcessRecord, Repetitions, Scenario


@dataclass(frozen=True)
class Job:
    scenario: Scenario
    process_index: int


def order_jobs(scenarios: Iterable[Scenario], processes: int, seed: int) -> list[Job]:
    """Every (scenario, process) pair, round by round, each round shuffled by `seed`."""
    rng = random.Random(seed)
    scenario_list = list(scenarios)
    jobs: list[Job] = []
    for process_index in range(processes):
        round_order = scenario_list[:]
        rng.shuffle(round_order)
        jobs.extend(Job(s, process_index) for s in round_order)
    return jobs


def run_jobs(jobs: list[Job], binary: probe.ProbeBinary, repetitions: Repetitions,
             timeout_s: float, run_dir: Path, done: set[tuple[str, int]],
             on_record: Callable[[Job, ProcessRecord], None],
             facts: preconditions.MachineFacts | None = None,
             extra_env: Mapping[str, str] | None = None) -> None:
    """Run each job not yet `done` in a fresh probe process, storing its record at once.

    Jobs whose scenario this machine cannot measure (`facts`, read here when not given) are
    stored as skipped without starting the probe. `extra_env` is added to every probe's
    environment (the allocator variables, runner.machine.allocator_env), with the scenario's
    own tunables on top (runner.probe.probe_env).
    """
    unmet = preconditions.find_unmet({job.scenario for job in jobs},
                                     facts or preconditions.read_facts())
    for job in jobs:
        if (job.scenario.id, job.process_index) in done:
            continue
        interrupt.check()
        reason = unmet.get(job.scenario.id)
        if reason is not None:
            record = skipped_record(job, reason)
        else:
            argv = probe.probe_argv(binary, job.scenario, repetitions.warmup,
                                    repetitions.iterations)
            record = execute.run_process(argv, scenario_id=job.scenario.id,
                                         process_index=job.process_index, timeout_s=timeout_s,
                                         extra_env=probe.probe_env(job.scenario, extra_env))
        store.append_record(run_dir, record)
        on_record(job, record)


def skipped_record(job: Job, reason: str) -> ProcessRecord:
    """The record of a job not started because the machine lacks what its scenario needs."""
    return ProcessRecord(scenario_id=job.scenario.id, process_index=job.process_index,
                         status="skipped", exit_code=None, signal=None, wall_s=0.0,
                         stderr_tail=f"alloclab: skipped: {reason}\n", probe=None)
