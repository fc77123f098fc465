"""Verdicts come from the data: feed different samples and the verdict changes."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from runner.analysis.verdict import (
    Comparison,
    check_looks,
    conclude,
    evaluate,
    judge,
    judge_exact,
    method_of,
)
from runner.core.model import CheckSpec, Looks, Span
from runner.core.parameters import PARAMETERS

LABEL_KEYS = ("backing", "size")
SIZES = (4096, 1 << 17, 1 << 18, 1 << 20, 1 << 30)
SCENARIOS = [
    {"id": f"{backing}-{size}", "label": f"{backing} {size}",
     "params": {**{p.field: p.default for p in PARAMETERS}, "backing": backing,
                "size_bytes": size}}
    for backing in ("malloc", "mmap-anon") for size in SIZES
]
CHECK = CheckSpec(claim="mmap is cheaper than malloc", metric="total_ns_per_op",
                  expect="lower", candidate=(("backing", "mmap-anon"),),
                  reference=(("backing", "malloc"),))
NOISE = (0.99, 1.0, 1.01, 0.995, 1.005, 0.998, 1.003, 0.993)  # eight processes, ±1%


def _samples(scale: dict[int, float], processes: int = 8, iterations: int = 1,
             metric: str = "total_ns_per_op") -> pd.DataFrame:
    """malloc at 1000 ns, mmap-anon at 1000 * scale[size] ns, each process ±1%."""
    rows = [{"scenario_id": s["id"], "process_index": p, "iteration": it,
             metric: 1000.0 * NOISE[p % len(NOISE)] * (1 + 0.001 * it)
             * (scale[s["params"]["size_bytes"]] if s["params"]["backing"] == "mmap-anon" else 1)}
            for s in SCENARIOS for p in range(processes) for it in range(iterations)]
    return pd.DataFrame(rows)


def _all(factor: float) -> dict[int, float]:
    return dict.fromkeys(SIZES, factor)


def _comparison(outcome: str, where: str = "w") -> Comparison:
    return Comparison(where, "c", "r", 1, 1, 1, 1, 1, outcome)  # type: ignore[arg-type]


@pytest.mark.parametrize(("expect", "low", "high", "outcome"), [
    ("lower", 0.80, 0.90, "holds"),
    ("lower", 0.97, 1.10, "contradicts"),  # within the 5% band or above: not lower
    ("lower", 0.90, 0.99, "undecided"),
    ("higher", 1.10, 1.20, "holds"),
    ("higher", 0.90, 1.04, "contradicts"),
    ("higher", 1.01, 1.20, "undecided"),
    ("same", 0.97, 1.03, "holds"),
    ("same", 1.10, 1.30, "contradicts"),
    ("same", 0.90, 1.01, "undecided"),
    # "costs no more than": one-sided, so an interval reaching far below the band still holds
    ("no-higher", 0.80, 1.05, "holds"),
    ("no-higher", 1.06, 1.20, "contradicts"),
    ("no-higher", 0.95, 1.08, "undecided"),
    ("no-lower", 0.95, 1.30, "holds"),
    ("no-lower", 0.80, 0.94, "contradicts"),
    ("no-lower", 0.90, 1.02, "undecided"),
])
def test_judge_against_the_tolerance_band(expect: str, low: float, high: float,
                                          outcome: str) -> None:
    assert judge(expect, low, high, tolerance=0.05) == outcome


def test_verdict_holds_everywhere() -> None:
    verdict = evaluate(CHECK, _samples(_all(0.5)), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds" and verdict.text == "holds (5 of 5)"
    assert [c.where for c in verdict.comparisons] == [
        "size=4KiB", "size=128KiB", "size=256KiB", "size=1MiB", "size=1GiB"]
    assert all(c.ratio == pytest.approx(0.5, rel=0.02) for c in verdict.comparisons)
    # both sides of a round share its noise: paired, the ratio is exact
    assert all(c.ci_low == pytest.approx(c.ratio) == pytest.approx(c.ci_high)
               for c in verdict.comparisons)
    assert all(c.candidate_n == c.reference_n == 8 for c in verdict.comparisons)
    first = verdict.comparisons[0]
    # eight paired rounds, one look: the signed-rank interval's exact coverage
    assert (first.design, first.pairs, first.look, first.looks, first.stop) == (
        "paired", 8, 1, 1, "decided")
    assert first.coverage == pytest.approx(1 - 2 * 5 / 256)
    assert verdict.crossovers == ()


def test_does_not_hold_anywhere() -> None:
    never = evaluate(CHECK, _samples(_all(1.5)), SCENARIOS, LABEL_KEYS)
    assert (never.status, never.text) == ("does not hold", "does not hold (5 of 5 contradict)")


def test_holds_only_for_part_names_contradicted_and_undecided_and_the_crossover() -> None:
    scale = {4096: 2.0, 1 << 17: 1.5, 1 << 18: 0.5, 1 << 20: 0.5, 1 << 30: 0.5}
    verdict = evaluate(CHECK, _samples(scale), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds only"
    assert verdict.text == (
        "holds only for size=256KiB, 1MiB, 1GiB (3 of 5; contradicted at size=4KiB, 128KiB); "
        "holds from size=256KiB up (the sign changes between 128KiB and 256KiB)")
    [crossover] = verdict.crossovers
    assert (crossover.parameter, crossover.holds_above, crossover.before, crossover.after) == (
        "size", True, "128KiB", "256KiB")


def test_a_crossover_downwards_and_undecided_pairs_in_between() -> None:
    scale = {4096: 0.5, 1 << 17: 0.5, 1 << 18: 0.5, 1 << 20: 1.0, 1 << 30: 2.0}
    samples = _samples(scale)
    # size 1MiB: the candidate's processes straddle the band: undecided
    at_1mib = samples["scenario_id"] == "mmap-anon-1048576"
    samples.loc[at_1mib, "total_ns_per_op"] = [800.0, 900.0, 1000.0, 1100.0, 1200.0, 850.0,
                                               1150.0, 1000.0]
    verdict = evaluate(CHECK, samples, SCENARIOS, LABEL_KEYS)
    assert [c.outcome for c in verdict.comparisons] == [
        "holds", "holds", "holds", "undecided", "contradicts"]
    assert verdict.text == (
        "holds only for size=4KiB, 128KiB, 256KiB (3 of 5; contradicted at size=1GiB; "
        "undecided at size=1MiB); holds up to size=256KiB (the sign changes between 256KiB "
        "and 1GiB)")
    assert not verdict.crossovers[0].holds_above


def test_holds_where_decided() -> None:
    samples = _samples(_all(0.5))
    samples.loc[samples["scenario_id"] == "mmap-anon-4096", "total_ns_per_op"] = [
        800.0, 900.0, 1000.0, 1100.0, 1200.0, 850.0, 1150.0, 1000.0]
    verdict = evaluate(CHECK, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    assert verdict.text == "holds where decided (4 hold, 1 undecided)"


def test_does_not_hold_where_decided() -> None:
    samples = _samples(_all(1.5))
    samples.loc[samples["scenario_id"] == "mmap-anon-4096", "total_ns_per_op"] = [
        800.0, 900.0, 1000.0, 1100.0, 1200.0, 850.0, 1150.0, 1000.0]
    verdict = evaluate(CHECK, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "does not hold"
    assert verdict.text == "does not hold where decided (4 contradict, 1 undecided)"
    assert (verdict.count("holds"), verdict.count("contradicts"),
            verdict.count("undecided")) == (0, 4, 1)


def test_differences_within_the_noise_are_inconclusive() -> None:
    noisy = _samples(_all(1.0))
    noisy["total_ns_per_op"] *= np.random.default_rng(1).uniform(0.5, 1.5, size=len(noisy))
    check = replace(CHECK, tolerance=0.0)
    verdict = evaluate(check, noisy, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "inconclusive"
    assert verdict.text == "inconclusive: 5 of 5 undecided (the differences are within the noise)"
    assert verdict.noise_floor is not None and verdict.noise_floor > 0.1


def test_five_paired_rounds_cannot_decide_and_say_how_many_would() -> None:
    verdict = evaluate(CHECK, _samples(_all(0.5), processes=5), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "inconclusive"
    assert "too few processes" in verdict.text
    assert verdict.note == ("5 of 5 pairs had too few processes for a 95% interval "
                            "(5 paired rounds): run at least 6 per scenario")
    assert verdict.comparisons[0].note == ("5 paired rounds cannot give a 95% interval: "
                                           "run at least 6 per scenario")
    assert all(math.isnan(c.ci_low) for c in verdict.comparisons)
    assert evaluate(CHECK, _samples(_all(0.5), processes=6), SCENARIOS,
                    LABEL_KEYS).status == "holds"


def test_pairs_are_rounds_so_the_machines_spells_cancel() -> None:
    """Round k's processes run side by side: a machine 3x slower in some rounds slows both.
    Paired by round the ratio is steady; the same values unpaired would spread by 3x."""
    samples = _samples(_all(0.8), processes=10)
    spell = samples["process_index"].isin([1, 4, 7])
    samples.loc[spell, "total_ns_per_op"] *= 3
    verdict = evaluate(CHECK, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    assert all(c.ci_high < 0.82 for c in verdict.comparisons)
    # A round one side lacks (a crashed process) is left out of the pairs.
    lost = ~((samples["scenario_id"] == "mmap-anon-4096") & (samples["process_index"] == 2))
    first = evaluate(CHECK, samples[lost], SCENARIOS, LABEL_KEYS).comparisons[0]
    assert (first.pairs, first.candidate_n, first.reference_n) == (9, 9, 10)


def _rounds(ratios: list[float]) -> pd.DataFrame:
    """malloc 4KiB at 1000 ns and mmap-anon 4KiB at 1000 * ratios[k] ns in round k."""
    rows = [{"scenario_id": sid, "process_index": k, "iteration": 0,
             "total_ns_per_op": 1000.0 * (r if sid.startswith("mmap") else 1.0)}
            for k, r in enumerate(ratios) for sid in ("malloc-4096", "mmap-anon-4096")]
    return pd.DataFrame(rows)


def test_a_pair_undecided_at_its_first_look_is_decided_at_a_later_one() -> None:
    """Looks after 10, 20, 30 and 40 rounds, each at 1 - 5%/4: the first look's ten rounds
    straddle the band, twenty decide it, and the verdict says at which look it stopped."""
    looks = Looks(base=10, batch=10, most=40)
    assert looks.rounds == (10, 20, 30, 40) and looks.confidence == pytest.approx(0.9875)
    wide = [0.5, 1.2, 0.6, 1.1, 0.55, 1.15, 0.5, 1.2, 0.6, 0.7]
    steady = [0.6, 0.62, 0.58, 0.6, 0.61, 0.59, 0.6, 0.6, 0.62, 0.58]
    check = replace(CHECK, where=(("size", 4096),))
    after_ten = evaluate(check, _rounds(wide), SCENARIOS, LABEL_KEYS, looks).comparisons[0]
    assert (after_ten.outcome, after_ten.look, after_ten.stop) == ("undecided", 1, "measured")
    after_twenty = evaluate(check, _rounds(wide + steady), SCENARIOS, LABEL_KEYS,
                            looks).comparisons[0]
    assert (after_twenty.outcome, after_twenty.look, after_twenty.pairs) == ("holds", 2, 20)
    assert after_twenty.stop == "decided"
    # Rounds measured after the look that decided change nothing: judging stopped there.
    later = evaluate(check, _rounds(wide + steady + [2.0] * 20), SCENARIOS, LABEL_KEYS,
                     looks).comparisons[0]
    assert (later.outcome, later.look, later.ratio) == ("holds", 2, after_twenty.ratio)


def test_a_pair_undecided_at_its_last_look_stops_there() -> None:
    looks = Looks(base=10, batch=10, most=20)
    edge = [0.9, 1.0] * 15  # a ratio right at the band's edge: never decided
    check = replace(CHECK, where=(("size", 4096),))
    result = evaluate(check, _rounds(edge), SCENARIOS, LABEL_KEYS, looks).comparisons[0]
    assert (result.outcome, result.look, result.looks, result.pairs, result.stop) == (
        "undecided", 2, 2, 20, "most")


def test_a_check_may_take_more_rounds_than_the_run_but_not_when_it_takes_none() -> None:
    run = Looks(base=10, batch=10, most=40)
    more = replace(CHECK, max_processes=80)
    assert check_looks(more, run) == Looks(10, 10, 80)
    assert check_looks(CHECK, run) == run
    assert check_looks(more, Looks(10, 10, 10)) == Looks(10, 10, 10)  # extra rounds off


def test_same_within_tolerance_holds() -> None:
    check = replace(CHECK, expect="same")
    scale = {4096: 1.01, 1 << 17: 0.99, 1 << 18: 1.0, 1 << 20: 1.0, 1 << 30: 1.0}
    verdict = evaluate(check, _samples(scale), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    assert verdict.noise_floor is not None and 0 < verdict.noise_floor < 0.03


def test_zero_against_zero_is_no_difference() -> None:
    samples = _samples(_all(1))
    samples["total_ns_per_op"] = 0.0
    check = replace(CHECK, expect="same")
    verdict = evaluate(check, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds" and all(c.difference for c in verdict.comparisons)


def test_missing_data_says_so() -> None:
    empty = _samples(_all(1)).iloc[0:0]
    verdict = evaluate(CHECK, empty, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "no data" and verdict.comparisons == ()
    assert conclude([]) == ("no data", "no data: no candidate/reference pair was measured")


def test_conclude_separates_contradicted_from_undecided() -> None:
    assert conclude([_comparison("contradicts"), _comparison("undecided")]) == (
        "does not hold", "does not hold where decided (1 contradict, 1 undecided)")
    assert conclude([_comparison("holds", "a"), _comparison("contradicts", "b"),
                     _comparison("undecided", "c")]) == (
        "holds only", "holds only for a (1 of 3; contradicted at b; undecided at c)")


def test_where_limits_candidates_and_references() -> None:
    large = replace(CHECK, where=(("size", Span(low=1 << 18)),))
    scale = {4096: 2.0, 1 << 17: 1.5, 1 << 18: 0.5, 1 << 20: 0.5, 1 << 30: 0.5}
    verdict = evaluate(large, _samples(scale), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    assert [c.where for c in verdict.comparisons] == ["size=256KiB", "size=1MiB", "size=1GiB"]
    small = replace(CHECK, where=(("size", Span(high=1 << 17)),))
    assert evaluate(small, _samples(scale), SCENARIOS, LABEL_KEYS).status == "does not hold"
    listed = replace(CHECK, where=(("size", (4096, 1 << 30)),))
    assert [c.where for c in evaluate(listed, _samples(scale), SCENARIOS,
                                      LABEL_KEYS).comparisons] == ["size=4KiB", "size=1GiB"]


def test_a_fixed_value_stands_in_for_reference_scenarios() -> None:
    samples = _samples(_all(1), processes=6)
    at_1000 = CheckSpec("x", "total_ns_per_op", "same", (("backing", "malloc"),), value=1000.0)
    verdict = evaluate(at_1000, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds" and len(verdict.comparisons) == 5
    assert verdict.comparisons[0].reference_label == "1000"
    above = CheckSpec("x", "total_ns_per_op", "higher", (("backing", "malloc"),), value=500.0)
    assert evaluate(above, samples, SCENARIOS, LABEL_KEYS).status == "holds"
    # the sign test needs six processes for a 95% interval of the median
    five = evaluate(above, _samples(_all(1), processes=5), SCENARIOS, LABEL_KEYS)
    assert five.status == "inconclusive"
    assert five.note == ("5 of 5 pairs had too few processes for a 95% interval (5 processes "
                         "alone): run at least 6 per scenario")


def test_against_a_zero_reference_the_difference_decides_in_the_metrics_unit() -> None:
    samples = _samples(_all(1))
    samples["total_ns_per_op"] = np.where(samples["scenario_id"].str.startswith("malloc"),
                                          0.0, 0.01)
    more = CheckSpec("x", "total_ns_per_op", "higher", (("backing", "mmap-anon"),),
                     (("backing", "malloc"),), tolerance=0.001)
    verdict = evaluate(more, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    assert all(c.difference and c.ratio == pytest.approx(0.01) for c in verdict.comparisons)
    assert verdict.noise_floor is None  # differences have no relative width


@pytest.mark.parametrize(("expect", "candidate", "reference", "outcome"), [
    ("lower", [1, 1], [2, 2], "holds"),
    ("lower", [1, 3], [2, 2], "undecided"),  # the ranges overlap
    ("lower", [2, 3], [2, 2], "contradicts"),
    ("higher", [3, 3], [1, 2], "holds"),
    ("higher", [1, 2], [2, 2], "contradicts"),
    ("same", [1, 1, 1], [1], "holds"),
    ("same", [1, 1, 1.2], [1], "contradicts"),  # a fact that fails once fails
    ("same", [1, 1], [1, 1.5], "undecided"),  # the reference spreads wider than the band
    ("same", [0, 0], [0], "holds"),  # zero: the band is ±tolerance in the unit
    ("same", [0, 1], [0], "contradicts"),
    ("no-higher", [1, 2], [2, 2], "holds"),  # at or below: lower counts too
    ("no-higher", [3, 3], [2, 2], "contradicts"),
    ("no-higher", [2, 3], [2, 2], "undecided"),
    ("no-lower", [2, 3], [2, 2], "holds"),
    ("no-lower", [1, 1], [2, 2], "contradicts"),
    ("no-lower", [1, 2], [2, 2], "undecided"),
])
def test_exact_judgement_counts_every_sample(expect: str, candidate: list[float],
                                             reference: list[float], outcome: str) -> None:
    assert judge_exact(expect, np.array(candidate, dtype=float), np.array(reference, dtype=float),
                       0.05) == outcome


def test_deterministic_metrics_are_judged_exactly_on_every_sample() -> None:
    metric = "first_touch_minor_faults_per_page"
    check = CheckSpec("one fault per page", metric, "same", (("backing", "mmap-anon"),),
                      value=1.0)
    assert method_of(check) == "exact"
    samples = _samples(_all(1), processes=3, iterations=2, metric=metric)
    samples[metric] = 1.0
    verdict = evaluate(check, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds" and verdict.method == "exact"  # 3 processes suffice
    samples.loc[samples.index[-1], metric] = 2.0  # one sample of mmap-anon 1GiB
    once = evaluate(check, samples, SCENARIOS, LABEL_KEYS)
    assert [c.outcome for c in once.comparisons][-1] == "contradicts"
    assert once.status == "holds only"
    statistical = evaluate(replace(check, method="statistical"), samples, SCENARIOS, LABEL_KEYS)
    assert statistical.method == "statistical" and statistical.status == "inconclusive"


def test_statistic_minimum_compares_each_process_by_its_fastest_iteration() -> None:
    samples = _samples(_all(0.8), iterations=2)
    # mmap-anon's second iterations are 3x slower (a bimodal machine): medians cannot decide
    slow = samples["scenario_id"].str.startswith("mmap") & (samples["iteration"] == 1)
    samples.loc[slow, "total_ns_per_op"] *= 3
    by_median = evaluate(CHECK, samples, SCENARIOS, LABEL_KEYS)
    by_minimum = evaluate(replace(CHECK, statistic="minimum"), samples, SCENARIOS, LABEL_KEYS)
    assert by_median.status == "does not hold"
    assert by_minimum.status == "holds"
    first = by_minimum.comparisons[0]
    assert first.candidate_minimum == pytest.approx(800 * 0.99)
    assert first.reference_minimum == pytest.approx(1000 * 0.99)


def test_zero_candidates_against_a_positive_reference_still_give_a_ratio() -> None:
    samples = _samples(_all(1))
    samples.loc[samples["scenario_id"].str.startswith("mmap"), "total_ns_per_op"] = [
        0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 1.0, 0.0] * len(SIZES)
    verdict = evaluate(CHECK, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    first = verdict.comparisons[0]
    assert not first.difference and first.ratio == pytest.approx(0.0, abs=0.002)
    assert first.ci_high < 0.95


def test_per_process_values_keep_row_order_whatever_order_processes_come_in() -> None:
    from runner.analysis.verdict import _process_values

    samples = pd.DataFrame({
        "scenario_id": ["b", "a", "b", "a", "b", "a"],
        "process_index": [1, 0, 0, 0, 1, 1],
        "m": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0],
    })
    values = _process_values(samples, "m")
    assert list(values) == ["b", "a"]  # scenarios in order of first appearance
    assert {k: v.tolist() for k, v in values["b"].items()} == {1: [1.0, 5.0], 0: [3.0]}
    assert {k: v.tolist() for k, v in values["a"].items()} == {0: [2.0], 1: [6.0]}  # NaN
    assert _process_values(samples.iloc[:0], "m") == {}


def test_an_existence_claim_holds_where_one_pair_shows_it() -> None:
    """"malloc does not zero memory": one recycled block holding old bytes proves it; fresh
    blocks reading zero do not refute it, and the verdict names where it was not shown."""
    scale = {4096: 2.0, 1 << 17: 0.5, 1 << 18: 0.5, 1 << 20: 0.5, 1 << 30: 0.5}
    some = replace(CHECK, quantifier="some")
    verdict = evaluate(some, _samples(scale), SCENARIOS, LABEL_KEYS)
    assert (verdict.status, verdict.text) == (
        "holds", "holds: shown at size=128KiB, 256KiB, 1MiB, 1GiB (4 of 5; not at size=4KiB)")
    never = evaluate(some, _samples(_all(2.0)), SCENARIOS, LABEL_KEYS)
    assert (never.status, never.text) == ("does not hold", "does not hold (5 of 5 contradict)")
    samples = _samples(_all(2.0))
    samples.loc[samples["scenario_id"] == "mmap-anon-4096", "total_ns_per_op"] = [
        800.0, 900.0, 1000.0, 1100.0, 1200.0, 850.0, 1150.0, 1000.0]
    open_question = evaluate(some, samples, SCENARIOS, LABEL_KEYS)
    assert (open_question.status, open_question.text) == (
        "inconclusive", "inconclusive: not shown at any of 5 (4 contradict, 1 undecided)")
