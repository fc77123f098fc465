"""More rounds for the check pairs a run's base processes leave undecided.

A run first measures `processes` rounds of every scenario (runner.measure.schedule): process k of
each scenario in round k, the two scenarios of a check pair side by side. Then each statistical
check pair is judged as the report will judge it (runner.analysis.verdict,
runner.analysis.sequential): a pair still undecided at a look before its last gets the next batch of
rounds, `processes` more, of just its two scenarios (process index = round number, so the pairs stay
paired), and is looked at again. The run stops adding batches when every pair is decided or at the
most rounds its check allows, or when the extra rounds have taken `extra_time` times what the base
rounds took (the estimate of the next batch counted before it starts).

Everything here is a function of the stored records, so a run resumed after an interruption
plans the same batches, and the report's verdicts are the decisions the run acted on.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from runner.core.metrics import method_of
from runner.core.model import CheckSpec, Looks, ProcessRecord, Repetitions, Scenario, one_look
from runner.core.scope import pair_up

# How a run's extra rounds ended (manifest "adaptive"): every pair decided or at its most
# rounds; the extra time spent; extra rounds off (--quick, max_processes = processes).
Ending = Literal["done", "time", "off"]


def looks_of(repetitions: Repetitions) -> Looks:
    """When the run looks at its pairs: after the base rounds, then after each batch of as
    many more, up to the most processes; one look when extra rounds are off."""
    if not repetitions.adaptive:
        return one_look(repetitions.processes)
    return Looks(repetitions.processes, repetitions.processes, repetitions.most_processes)


def stored_looks(manifest: Mapping[str, Any]) -> Looks | None:
    """The looks of a stored run, None for runs made before pairs were looked at in rounds
    (their verdicts take one look at every round)."""
    stored = manifest["repetitions"]
    if "max_processes" not in stored:
        return None
    return looks_of(Repetitions(**stored))


def check_looks(check: CheckSpec, run_looks: Looks) -> Looks:
    """The looks a check's pairs get: the run's, up to the check's own most processes (when
    the run takes extra rounds at all)."""
    if check.max_processes is None or run_looks.most <= run_looks.base:
        return run_looks
    return Looks(run_looks.base, run_looks.batch, max(run_looks.base, check.max_processes))


def check_pairs(checks: Sequence[CheckSpec], scenarios: Sequence[Scenario],
                label_keys: Sequence[str]) -> list[tuple[int, str, str | None]]:
    """(check index, candidate id, reference id or None) of every pair of every check."""
    params = [s.params() for s in scenarios]
    found = []
    for index, check in enumerate(checks):
        for i, j in pair_up(check, params, label_keys).pairs:
            found.append((index, scenarios[i].id, None if j is None else scenarios[j].id))
    return found


def neighbours(scenarios: Sequence[Scenario], checks: Sequence[CheckSpec],
               label_keys: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The scenarios that run side by side in every round: those linked by some check's
    pairs (connected components), each in plan order, the groups in order of their first
    scenario; a scenario no check compares is a group of its own."""
    parent = {s.id: s.id for s in scenarios}

    def root(sid: str) -> str:
        while parent[sid] != sid:
            parent[sid] = parent[parent[sid]]
            sid = parent[sid]
        return sid

    for _, candidate, reference in check_pairs(checks, scenarios, label_keys):
        if reference is not None:
            parent[root(candidate)] = root(reference)
    groups: dict[str, list[str]] = {}
    for s in scenarios:
        groups.setdefault(root(s.id), []).append(s.id)
    return tuple(tuple(members) for members in groups.values())


def round_order(groups: Iterable[Sequence[str]], rng: random.Random) -> list[str]:
    """One round's scenarios: the groups in a shuffled order, each group's scenarios next to
    each other in a shuffled order (so no scenario is always first of its pair)."""
    shuffled = [list(group) for group in groups]
    rng.shuffle(shuffled)
    order: list[str] = []
    for group in shuffled:
        rng.shuffle(group)
        order.extend(group)
    return order


@dataclass(frozen=True)
class Pending:
    """The rounds an undecided pair needs before its next look."""

    scenarios: tuple[str, ...]  # the pair's scenario ids (one against a fixed value)
    rounds: range


def pending_rounds(undecided: Iterable[tuple[Sequence[str], Looks, int]],
                   boundary: int) -> list[Pending]:
    """For each pair undecided on the rounds before `boundary` (its scenario ids, its looks,
    the last look made), the rounds from `boundary` up to its next look; none for a pair
    at its last look."""
    pending = []
    for scenario_ids, looks, look in undecided:
        counts = looks.rounds
        if 1 <= look < len(counts) and counts[look] > boundary:
            start = max(boundary, counts[look - 1])
            pending.append(Pending(tuple(scenario_ids), range(start, counts[look])))
    return pending


def batch_jobs(pending: Sequence[Pending], groups: Sequence[Sequence[str]], seed: int,
               done: set[tuple[str, int]]) -> list[tuple[str, int]]:
    """(scenario id, round) of every process the pending pairs need and the run lacks, round
    by round; within a round the groups side by side in an order drawn from the run's seed
    and the round, so a resumed run draws the same."""
    wanted: dict[int, set[str]] = {}
    for item in pending:
        for number in item.rounds:
            wanted.setdefault(number, set()).update(item.scenarios)
    jobs: list[tuple[str, int]] = []
    for number in sorted(wanted):
        present = [[sid for sid in group if sid in wanted[number]] for group in groups]
        order = round_order([g for g in present if g], random.Random(f"{seed}:{number}"))
        jobs.extend((sid, number) for sid in order if (sid, number) not in done)
    return jobs


def time_spent_s(records: Iterable[ProcessRecord], base: int) -> tuple[float, float]:
    """Wall time of the base rounds' processes and of the extra rounds' processes so far."""
    base_s = extra_s = 0.0
    for record in records:
        if record.process_index < base:
            base_s += record.wall_s
        else:
            extra_s += record.wall_s
    return base_s, extra_s


def batch_estimate_s(jobs: Iterable[tuple[str, int]],
                     records: Iterable[ProcessRecord]) -> float:
    """What a batch should take: each job at the mean wall time of its scenario so far. The
    mean, not the median: the budget is a share of the base rounds' summed time, so a batch
    repeating the base rounds is estimated at exactly their time (a median above the mean
    refused a first batch that was within its 100%)."""
    walls: dict[str, list[float]] = {}
    for record in records:
        walls.setdefault(record.scenario_id, []).append(record.wall_s)
    total = 0.0
    for sid, _ in jobs:
        times = walls.get(sid, [0.0])
        total += sum(times) / len(times)
    return total


def within_time(repetitions: Repetitions, records: Sequence[ProcessRecord],
                jobs: Sequence[tuple[str, int]]) -> bool:
    """Whether the next batch fits in the run's time for extra rounds."""
    base_s, extra_s = time_spent_s(records, repetitions.processes)
    # The relative slack absorbs rounding: a batch the size of the base rounds fits 100%.
    allowed_s = repetitions.extra_time * base_s * (1 + 1e-9)
    return extra_s + batch_estimate_s(jobs, records) <= allowed_s


def describe(ending: Ending, extra_s: float, allowed_s: float) -> dict[str, Any]:
    """The manifest's record of how the extra rounds went."""
    return {"ending": ending, "extra_s": round(extra_s, 3), "allowed_s": round(allowed_s, 3)}


@dataclass(frozen=True)
class Bound:
    """What extra rounds may add to a run at most, for `alloclab plan`."""

    pairs: int  # statistical check pairs that may get extra rounds
    most_processes: int  # the most processes a scenario of such a pair may take
    processes: int  # extra processes if every pair stayed undecided to its last look
    seconds: float  # the run's time for extra rounds: extra_time x its base rounds' estimate

    def describe(self) -> str:
        if not self.pairs:
            return "no statistical check pair: no extra rounds"
        if not self.processes:
            return f"{self.pairs} statistical check pairs; extra rounds off"
        return (f"{self.pairs} statistical check pairs; an undecided one gets more rounds, "
                f"up to {self.most_processes} processes per scenario: at most "
                f"{self.processes} more processes, within {self.seconds:.0f} s")


def bound(checks: Sequence[CheckSpec], scenarios: Sequence[Scenario],
          label_keys: Sequence[str], repetitions: Repetitions, base_s: float) -> Bound:
    """The most extra rounds can add to a run of these scenarios (`base_s`: the base rounds'
    estimated time): the statistical checks' pairs, each up to its check's most processes."""
    judged = [check for check in checks if method_of(check) == "statistical"]
    pairs = check_pairs(judged, scenarios, label_keys)
    run_looks = looks_of(repetitions)
    most: dict[str, int] = {}
    for index, candidate, reference in pairs:
        limit = check_looks(judged[index], run_looks).most
        for sid in (candidate, reference):
            if sid is not None:
                most[sid] = max(most.get(sid, 0), limit)
    extra = sum(limit - repetitions.processes for limit in most.values())
    return Bound(len(pairs), max(most.values(), default=repetitions.processes), extra,
                 repetitions.extra_time * base_s if extra else 0.0)
