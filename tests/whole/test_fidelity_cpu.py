"""bench/fidelity.py: every process of a round runs on the round's CPU, the CPUs taking turns
so that each takes as many rounds of either order (freed pages go to a list per CPU, so the
memory a process gets depends on its CPU), and the bench gives its CPU affinity back."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from typing import Any

import pytest

from bench import fidelity
from bench.fidelity import FAMILIES, Family, Sample
from runner.core.model import Scenario
from tests.whole.test_fidelity import rounds, series

BY_NAME = {family.name: family for family in FAMILIES}


class AffinityRunner:
    """Stands in for fidelity.Runner: records the CPUs each call may run on (the mask the
    processes it would start inherit), and the CPU a process started there may use."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, set[int]]] = []
        self.child_masks: list[set[int]] = []

    def run(self, side: str, family: Family, scenario: Scenario) -> Sample:
        self.calls.append((side, os.sched_getaffinity(0)))
        if len(self.child_masks) < 2:  # a real process, as the warm-up and the sides are
            text = subprocess.run([sys.executable, "-c",
                                   "import os; print(*sorted(os.sched_getaffinity(0)))"],
                                  capture_output=True, text=True, check=True).stdout
            self.child_masks.append({int(cpu) for cpu in text.split()})
        return Sample(ns=1000, minor_faults=0)


@pytest.mark.parametrize("cpus", [[0], [0, 1], [0, 2, 3]])
def test_each_cpu_takes_as_many_rounds_of_either_order(cpus: list[int]) -> None:
    per_turn = 2 * len(cpus)
    for turns in (1, 3):
        seen = collections.Counter((fidelity.round_cpu(index, cpus), index % 2)
                                   for index in range(per_turn * turns))
        assert set(seen) == {(cpu, order) for cpu in cpus for order in (0, 1)}
        assert set(seen.values()) == {turns}


def test_two_rounds_in_a_row_share_a_cpu_then_the_next_cpu_takes_over() -> None:
    assert [fidelity.round_cpu(index, [3, 5]) for index in range(6)] == [3, 3, 5, 5, 3, 3]


def test_every_process_of_a_round_runs_on_the_rounds_cpu_and_the_mask_comes_back() -> None:
    before = os.sched_getaffinity(0)
    cpus = sorted(before)
    entries = [series(BY_NAME["read-all"], []), series(BY_NAME["map-populate"], [])]
    runner = AffinityRunner()
    fidelity.measure(entries, runner, rounds=4, warmup_rounds=1)  # type: ignore[arg-type]
    assert os.sched_getaffinity(0) == before
    per_round = 2 * len(entries)
    for index in range(5):
        masks = [mask for _, mask in runner.calls[index * per_round:(index + 1) * per_round]]
        assert masks == [{fidelity.round_cpu(index, cpus)}] * per_round
    assert runner.child_masks == [{cpus[0]}, {cpus[0]}]
    for entry in entries:
        assert [r["cpu"] for r in entry.rounds] == [fidelity.round_cpu(index, cpus)
                                                   for index in range(1, 5)]


def test_without_pinning_the_processes_may_run_anywhere(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(fidelity, "PIN_ROUNDS", False)
    before = os.sched_getaffinity(0)
    entry = series(BY_NAME["read-all"], [])
    runner = AffinityRunner()
    fidelity.measure([entry], runner, rounds=2, warmup_rounds=0)  # type: ignore[arg-type]
    assert {frozenset(mask) for _, mask in runner.calls} == {frozenset(before)}
    assert [r["cpu"] for r in entry.rounds] == [None, None]


def test_the_mask_comes_back_when_a_sample_fails() -> None:
    before = os.sched_getaffinity(0)

    class Failing(AffinityRunner):
        def run(self, side: str, family: Family, scenario: Scenario) -> Sample:
            raise SystemExit("bench/fidelity.py: read-all: baseline exited 3")

    with pytest.raises(SystemExit):
        fidelity.measure([series(BY_NAME["read-all"], [])], Failing(),  # type: ignore[arg-type]
                         rounds=1, warmup_rounds=0)
    assert os.sched_getaffinity(0) == before


def test_the_summary_gives_the_ratio_of_each_cpus_rounds() -> None:
    data: list[dict[str, Any]] = rounds([(1100, 1000), (1100, 1000), (1000, 1000),
                                         (1000, 1000)])
    for index, entry in enumerate(data):
        entry["cpu"] = fidelity.round_cpu(index, [0, 1])
    summary = fidelity.summarize(series(BY_NAME["read-all"], data))
    assert summary["median_paired_ratio_by_cpu"] == {"0": pytest.approx(1.1), "1": 1.0}
    unpinned = fidelity.summarize(series(BY_NAME["read-all"], rounds([(1000, 1000)] * 2)))
    assert unpinned["median_paired_ratio_by_cpu"] == {}
