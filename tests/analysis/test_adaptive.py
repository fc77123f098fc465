"""Extra rounds for undecided check pairs: which rounds, in which order, how a run adds them."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from runner.analysis import adaptive, verdict
from runner.analysis.frame import build_frame, measured
from runner.core.model import Looks, ProcessRecord, Repetitions, Scenario
from runner.measure import pipeline
from runner.probe import execute, native
from runner.report import verdicts
from runner.store.folders import load_run
from tests.synthetic import fake_probe_output

SPEC = """\
name: pairs
title: Pairs
question: Is mmap cheaper to touch than malloc, and is calloc?
matrix:
  backing: [malloc, mmap-anon, calloc]
  size: [4KiB, 64KiB]
fixed:
  access: write-page
  ops: 2
repetitions:
  processes: 10
  max_processes: 30
checks:
  - claim: mmap is cheaper to touch than malloc
    metric: first_touch_ns_per_page
    expect: lower
    candidate: {backing: mmap-anon}
    reference: {backing: malloc}
"""
BINARY = native.ProbeBinary(Path("/bin/true"), "feedfacefeedface", "cc (Test) 1.0", ("-O2",))


def test_looks_come_after_the_base_rounds_and_each_batch_up_to_the_most() -> None:
    reps = Repetitions(processes=10)
    assert adaptive.looks_of(reps) == Looks(10, 10, 40)
    assert Looks(10, 10, 40).rounds == (10, 20, 30, 40)
    assert Looks(10, 10, 25).rounds == (10, 20, 25)  # a shorter last batch
    assert adaptive.looks_of(replace(reps, max_processes=10)).rounds == (10,)  # off
    assert adaptive.looks_of(replace(reps, extra_time=0.0)).rounds == (10,)
    assert adaptive.looks_of(replace(reps, max_processes=10)).confidence == pytest.approx(0.95)
    assert Looks(10, 10, 40).confidence == pytest.approx(0.9875)


def test_runs_stored_before_extra_rounds_take_one_look_at_everything() -> None:
    assert adaptive.stored_looks(
        {"repetitions": {"processes": 10, "warmup": 0, "iterations": 1}}) is None
    assert adaptive.stored_looks({"repetitions": {
        "processes": 10, "warmup": 0, "iterations": 1, "max_processes": 20,
        "extra_time": 1.0}}) == Looks(10, 10, 20)


def test_scenarios_a_check_compares_are_neighbours() -> None:
    [plan] = pipeline.load_plans([_write(SPEC)])
    ids = {s.label(plan.label_keys): s.id for s in plan.scenarios}
    groups = adaptive.neighbours(plan.scenarios, plan.spec.checks, plan.label_keys)
    assert sorted(map(sorted, groups)) == sorted([
        sorted([ids["malloc 4KiB"], ids["mmap-anon 4KiB"]]),
        sorted([ids["malloc 64KiB"], ids["mmap-anon 64KiB"]]),
        [ids["calloc 4KiB"]], [ids["calloc 64KiB"]]])


def test_a_round_keeps_each_group_together_and_shuffles_within() -> None:
    groups = [("a", "b"), ("c",), ("d", "e", "f")]
    firsts = set()
    for seed in range(40):
        order = adaptive.round_order(groups, random.Random(seed))
        assert sorted(order) == list("abcdef")
        for group in groups:  # adjacent, in some order
            positions = sorted(order.index(sid) for sid in group)
            assert positions == list(range(positions[0], positions[0] + len(group)))
        firsts.add(order[order.index("a") if order.index("a") < order.index("b")
                         else order.index("b")])
    assert firsts == {"a", "b"}  # neither side of a pair is always first


def test_pending_rounds_run_to_the_next_look() -> None:
    looks = Looks(10, 10, 30)
    undecided = [(("c", "r"), looks, 1), (("x",), looks, 2), (("y", "z"), looks, 3),
                 (("n", "m"), looks, 0)]
    assert adaptive.pending_rounds(undecided, 10) == [
        adaptive.Pending(("c", "r"), range(10, 20)), adaptive.Pending(("x",), range(20, 30))]
    # From a later boundary: only the rounds from it (a pair left behind by failed rounds).
    assert adaptive.pending_rounds(undecided, 20) == [
        adaptive.Pending(("x",), range(20, 30))]


def test_a_batch_runs_round_by_round_what_is_not_done_the_same_way_every_time() -> None:
    pending = [adaptive.Pending(("c", "r"), range(10, 12)),
               adaptive.Pending(("c2", "r"), range(10, 12))]
    groups = [("c", "c2", "r"), ("other",)]
    jobs = adaptive.batch_jobs(pending, groups, seed=3, done=set())
    assert [number for _, number in jobs] == [10, 10, 10, 11, 11, 11]
    assert {sid for sid, _ in jobs} == {"c", "c2", "r"}
    assert adaptive.batch_jobs(pending, groups, seed=3, done=set()) == jobs
    assert adaptive.batch_jobs(pending, groups, seed=3, done={("r", 10)}) == [
        job for job in jobs if job != ("r", 10)]


def _record(sid: str, index: int, wall_s: float) -> ProcessRecord:
    return ProcessRecord(sid, index, "ok", 0, None, wall_s, "", None)


def test_extra_rounds_stop_where_the_next_batch_would_pass_the_run_s_extra_time() -> None:
    reps = Repetitions(processes=2, extra_time=1.0)
    records = [_record("a", 0, 1.0), _record("a", 1, 1.0), _record("b", 0, 1.0),
               _record("b", 1, 1.0), _record("a", 2, 1.0)]
    assert adaptive.time_spent_s(records, 2) == (4.0, 1.0)
    assert adaptive.within_time(reps, records, [("a", 3), ("b", 2), ("b", 3)])  # 1 + 3 <= 4
    assert not adaptive.within_time(reps, records, [("a", 3), ("b", 2), ("b", 3), ("a", 4)])


def test_a_first_batch_as_large_as_the_base_rounds_fits_a_100_percent_budget() -> None:
    """The estimate is each scenario's mean, so repeating the base rounds costs exactly their
    time; a median (here 1.0 s against a mean of 0.7 s) would refuse the batch."""
    reps = Repetitions(processes=3, extra_time=1.0)
    records = [_record(sid, i, wall) for sid in "ab"
               for i, wall in enumerate((0.1, 1.0, 1.0))]
    batch = [(sid, i) for sid in "ab" for i in (3, 4, 5)]
    assert adaptive.batch_estimate_s(batch, records) == pytest.approx(4.2)
    assert adaptive.within_time(reps, records, batch)
    assert not adaptive.within_time(reps, records, [*batch, ("a", 6)])


# --- a run that adds rounds ------------------------------------------------------------------


@dataclass
class RoundProbe:
    """execute.run_process's stand-in: mmap-anon's first touch is malloc's times ratio(round),
    each round's machine state (a factor both sides share) drawn from the round."""

    spec: Path
    ratio: Callable[[int], float]
    calls: list[tuple[str, int]] = field(default_factory=list)
    scenarios: dict[str, Scenario] = field(default_factory=dict)

    def __call__(self, argv: list[str], *, scenario_id: str, process_index: int,
                 timeout_s: float, extra_env: Mapping[str, str] | None = None) -> ProcessRecord:
        if not self.scenarios:
            [plan] = pipeline.load_plans([self.spec])
            self.scenarios.update((s.id, s) for s in plan.scenarios)
        scenario = self.scenarios[scenario_id]
        self.calls.append((scenario_id, process_index))
        machine_state = random.Random(process_index).uniform(0.5, 2.0)
        scale = machine_state * (self.ratio(process_index)
                                 if scenario.backing == "mmap-anon" else 1.0)
        return ProcessRecord(scenario_id, process_index, "ok", 0, None, 0.01, "",
                             fake_probe_output(scenario, 0, scale=scale))


def _write(text: str) -> Path:
    import tempfile
    folder = Path(tempfile.mkdtemp())
    path = folder / "pairs.yaml"
    path.write_text(text)
    return path


def _run(spec: Path, tmp_path: Path, fake: RoundProbe, monkeypatch: pytest.MonkeyPatch,
         **options: object) -> pipeline.RunSummary:
    monkeypatch.setattr(execute, "run_process", fake)
    [plan] = pipeline.load_plans([spec])
    run_options = pipeline.RunOptions(results_dir=tmp_path / "results", machine="m",
                                      command="alloclab run", seed=1, **options)  # type: ignore[arg-type]
    return pipeline.run_plan(plan, BINARY, run_options, lambda _: None)


def _wide_then_steady(index: int) -> float:
    """Ten rounds that straddle the band, then a steady 0.6: undecided at the first look,
    decided at the second."""
    if index < 10:
        return (0.5, 1.2, 0.6, 1.1, 0.55, 1.15, 0.5, 1.2, 0.6, 0.7)[index]
    return 0.6


def test_a_run_adds_rounds_for_its_undecided_pairs_alone_until_they_are_decided(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "pairs.yaml"
    spec.write_text(SPEC.replace("size: [4KiB, 64KiB]", "size: [4KiB]"))
    fake = RoundProbe(spec, _wide_then_steady)
    summary = _run(spec, tmp_path, fake, monkeypatch)
    [plan] = pipeline.load_plans([spec])
    ids = {s.backing: s.id for s in plan.scenarios}
    extra = sorted(call for call in fake.calls if call[1] >= 10)
    # Only the pair's two scenarios, rounds 10 to 19, each process index once.
    assert extra == sorted((ids[backing], k) for backing in ("malloc", "mmap-anon")
                           for k in range(10, 20))
    run = load_run(summary.run_dir)
    assert run.manifest["adaptive"]["ending"] == "done"
    [result] = verdict.run_verdicts(run, plan.spec, measured(build_frame(run)))
    [pair] = result.comparisons
    assert (pair.outcome, pair.look, pair.looks, pair.pairs, pair.stop) == (
        "holds", 2, 3, 20, "decided")
    assert pair.confidence == pytest.approx(1 - 0.05 / 3)
    assert summary.processes_run == 3 * 10 + 2 * 10


def test_a_run_stops_adding_rounds_when_its_extra_time_is_spent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "pairs.yaml"
    spec.write_text(SPEC.replace("size: [4KiB, 64KiB]", "size: [4KiB]").replace(
        "max_processes: 30", "max_processes: 30\n  extra_time: 10%"))
    fake = RoundProbe(spec, _wide_then_steady)
    summary = _run(spec, tmp_path, fake, monkeypatch)
    assert all(index < 10 for _, index in fake.calls)
    run = load_run(summary.run_dir)
    assert run.manifest["adaptive"]["ending"] == "time"
    html_record = verdicts.verdict_record(run, verdict.run_verdicts(
        run, pipeline.load_plans([spec])[0].spec, measured(build_frame(run)))[0])
    [pair] = html_record["pairs"]
    assert pair["stop"] == {"reason": "time", "text": (
        "undecided after 10 paired rounds (look 1 of 3): the run's time for extra rounds was "
        "spent")}


def test_the_quick_profile_takes_no_extra_rounds(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "pairs.yaml"
    spec.write_text(SPEC)
    fake = RoundProbe(spec, _wide_then_steady)
    summary = _run(spec, tmp_path, fake, monkeypatch, quick=True)
    assert max(index for _, index in fake.calls) == 1
    assert load_run(summary.run_dir).manifest["adaptive"]["ending"] == "off"


def test_a_run_with_processes_overridden_takes_no_extra_rounds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--processes 4 asks for four processes a scenario: the pairs still undecided after them
    stay so (a smoke run would otherwise take rounds one at a time, up to the spec's 30)."""
    spec = tmp_path / "pairs.yaml"
    spec.write_text(SPEC)
    fake = RoundProbe(spec, _wide_then_steady)
    summary = _run(spec, tmp_path, fake, monkeypatch, processes=4)
    assert max(index for _, index in fake.calls) == 3
    assert load_run(summary.run_dir).manifest["adaptive"]["ending"] == "off"


def test_a_resumed_run_plans_the_same_extra_rounds(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted in the middle of its extra rounds, a run resumed measures exactly the
    processes the uninterrupted run measured, no more."""
    spec = tmp_path / "pairs.yaml"
    spec.write_text(SPEC)
    whole = RoundProbe(spec, _wide_then_steady)
    _run(spec, tmp_path / "whole", whole, monkeypatch)

    class Interrupt(Exception):
        pass

    calls: list[tuple[str, int]] = []
    first = RoundProbe(spec, _wide_then_steady)

    def stop_at_first_extra_round(*args: object, **kwargs: object) -> ProcessRecord:
        if len(calls) == 3 * 2 * 10 + 5:  # five processes into the first batch
            raise Interrupt
        calls.append((str(kwargs["scenario_id"]), int(kwargs["process_index"])))  # type: ignore[call-overload]
        return first(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(Interrupt):
        _run(spec, tmp_path / "split", stop_at_first_extra_round, monkeypatch)  # type: ignore[arg-type]
    rest = RoundProbe(spec, _wide_then_steady)
    _run(spec, tmp_path / "split", rest, monkeypatch)
    assert sorted(calls + rest.calls) == sorted(whole.calls)


def test_plan_bounds_what_extra_rounds_may_add(capsys: pytest.CaptureFixture[str]) -> None:
    from runner.cli.main import main

    spec = _write(SPEC)
    [plan] = pipeline.load_plans([spec])
    extra = adaptive.bound(plan.spec.checks, plan.scenarios, plan.label_keys,
                           plan.spec.repetitions, base_s=12.0)
    # two pairs (4 KiB, 64 KiB), four scenarios, each up to 30 processes: 20 more each
    assert (extra.pairs, extra.most_processes, extra.processes, extra.seconds) == (
        2, 30, 80, 12.0)
    exact = [replace(check, method="exact") for check in plan.spec.checks]
    assert adaptive.bound(exact, plan.scenarios, plan.label_keys, plan.spec.repetitions,
                          12.0).describe() == "no statistical check pair: no extra rounds"
    assert main(["plan", str(spec)]) == 0
    assert ("extra rounds: 2 statistical check pairs; an undecided one gets more rounds, up to "
            "30 processes per scenario: at most 80 more processes, within") in (
        capsys.readouterr().out)
