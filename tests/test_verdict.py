"""Verdicts come from the data: feed different samples and the verdict changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runner.model import CheckSpec
from runner.parameters import PARAMETERS
from runner.verdict import Comparison, conclude, evaluate, judge

LABEL_KEYS = ("backing", "size")
SIZES = (4096, 1 << 20, 1 << 30)
SCENARIOS = [
    {"id": f"{backing}-{size}", "label": f"{backing} {size}",
     "params": {**{p.field: p.default for p in PARAMETERS}, "backing": backing,
                "size_bytes": size}}
    for backing in ("malloc", "mmap-anon") for size in SIZES
]
CHECK = CheckSpec(claim="mmap is cheaper than malloc", metric="total_ns_per_op",
                  expect="lower", candidate=(("backing", "mmap-anon"),),
                  reference=(("backing", "malloc"),))


def _samples(scale: dict[int, float]) -> pd.DataFrame:
    """malloc at 1000 ns, mmap-anon at 1000 * scale[size] ns, each with ±1% noise."""
    noise = np.random.default_rng(0).normal(1.0, 0.01, size=10)
    rows = [{"scenario_id": s["id"],
             "total_ns_per_op": 1000.0 * n * (scale[s["params"]["size_bytes"]]
                                              if s["params"]["backing"] == "mmap-anon" else 1)}
            for s in SCENARIOS for n in noise]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("expect", "low", "high", "outcome"), [
    ("lower", 0.80, 0.90, "holds"),
    ("lower", 0.97, 1.10, "contradicts"),  # within the 5% band or above: not lower
    ("lower", 0.90, 0.99, "inconclusive"),
    ("higher", 1.10, 1.20, "holds"),
    ("higher", 0.90, 1.04, "contradicts"),
    ("higher", 1.01, 1.20, "inconclusive"),
    ("same", 0.97, 1.03, "holds"),
    ("same", 1.10, 1.30, "contradicts"),
    ("same", 0.90, 1.01, "inconclusive"),
])
def test_judge_against_the_tolerance_band(expect: str, low: float, high: float,
                                          outcome: str) -> None:
    assert judge(expect, low, high, tolerance=0.05) == outcome


def test_verdict_holds_everywhere() -> None:
    verdict = evaluate(CHECK, _samples({4096: 0.5, 1 << 20: 0.5, 1 << 30: 0.5}), SCENARIOS,
                       LABEL_KEYS)
    assert verdict.status == "holds" and verdict.text == "holds"
    assert [c.where for c in verdict.comparisons] == ["size=4KiB", "size=1MiB", "size=1GiB"]
    assert all(c.ratio == pytest.approx(0.5, rel=0.02) for c in verdict.comparisons)
    assert all(c.ci_low < c.ratio < c.ci_high for c in verdict.comparisons)


def test_verdict_changes_with_the_data() -> None:
    only_large = evaluate(CHECK, _samples({4096: 2.0, 1 << 20: 1.0, 1 << 30: 0.5}), SCENARIOS,
                          LABEL_KEYS)
    assert only_large.status == "holds only"
    assert only_large.text == "holds only for size=1GiB (1 of 3)"
    never = evaluate(CHECK, _samples({4096: 2.0, 1 << 20: 1.5, 1 << 30: 1.2}), SCENARIOS,
                     LABEL_KEYS)
    assert (never.status, never.text) == ("does not hold", "does not hold")


def test_differences_within_the_noise_are_inconclusive() -> None:
    noisy = _samples({4096: 1.0, 1 << 20: 1.0, 1 << 30: 1.0})
    rng = np.random.default_rng(1)
    noisy["total_ns_per_op"] *= rng.uniform(0.5, 1.5, size=len(noisy))
    check = CheckSpec("x", "total_ns_per_op", "lower", (("backing", "mmap-anon"),),
                      (("backing", "malloc"),), tolerance=0.0)
    verdict = evaluate(check, noisy, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "inconclusive"


def test_same_within_tolerance_holds() -> None:
    check = CheckSpec("x", "total_ns_per_op", "same", (("backing", "mmap-anon"),),
                      (("backing", "malloc"),), tolerance=0.05)
    verdict = evaluate(check, _samples({4096: 1.01, 1 << 20: 0.99, 1 << 30: 1.0}), SCENARIOS,
                       LABEL_KEYS)
    assert verdict.status == "holds"


def test_zero_against_zero_is_no_difference() -> None:
    samples = _samples({4096: 1, 1 << 20: 1, 1 << 30: 1})
    samples["total_ns_per_op"] = 0.0
    check = CheckSpec("x", "total_ns_per_op", "same", (("backing", "mmap-anon"),),
                      (("backing", "malloc"),))
    assert evaluate(check, samples, SCENARIOS, LABEL_KEYS).status == "holds"


def test_missing_data_says_so() -> None:
    empty = _samples({4096: 1, 1 << 20: 1, 1 << 30: 1}).iloc[0:0]
    verdict = evaluate(CHECK, empty, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "no data" and verdict.comparisons == ()
    assert conclude([]) == ("no data", "no data: no candidate/reference pair was measured")


def test_mixed_inconclusive_and_contradicting() -> None:
    def comparison(outcome: str) -> Comparison:
        return Comparison("w", "c", "r", 1, 1, 1, 1, 1, outcome)  # type: ignore[arg-type]
    status, text = conclude([comparison("contradicts"), comparison("inconclusive")])
    assert status == "inconclusive" and "1 of 2 within the noise" in text


def test_a_fixed_value_stands_in_for_reference_scenarios() -> None:
    samples = _samples({4096: 1, 1 << 20: 1, 1 << 30: 1})
    at_1000 = CheckSpec("x", "total_ns_per_op", "same", (("backing", "malloc"),), value=1000.0)
    verdict = evaluate(at_1000, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds" and len(verdict.comparisons) == 3
    assert verdict.comparisons[0].reference_label == "1000"
    above = CheckSpec("x", "total_ns_per_op", "higher", (("backing", "malloc"),), value=500.0)
    assert evaluate(above, samples, SCENARIOS, LABEL_KEYS).status == "holds"


def test_against_a_zero_reference_the_difference_decides_in_the_metrics_unit() -> None:
    samples = _samples({4096: 1, 1 << 20: 1, 1 << 30: 1})
    samples["total_ns_per_op"] = np.where(samples["scenario_id"].str.startswith("malloc"),
                                          0.0, 0.01)
    near_zero = CheckSpec("x", "total_ns_per_op", "same", (("backing", "mmap-anon"),),
                          value=0.0, tolerance=0.05)
    verdict = evaluate(near_zero, samples, SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds"
    assert all(c.difference and c.ratio == pytest.approx(0.01) for c in verdict.comparisons)
    more = CheckSpec("x", "total_ns_per_op", "higher", (("backing", "mmap-anon"),),
                     (("backing", "malloc"),), tolerance=0.001)
    assert evaluate(more, samples, SCENARIOS, LABEL_KEYS).status == "holds"
    strict = CheckSpec("x", "total_ns_per_op", "same", (("backing", "mmap-anon"),),
                       value=0.0, tolerance=0.001)
    assert evaluate(strict, samples, SCENARIOS, LABEL_KEYS).status == "does not hold"


def test_intervals_with_infinite_ratios_stay_infinite_not_nan() -> None:
    from runner.stats import bootstrap_ratio_ci
    point, low, high = bootstrap_ratio_ci(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.0, 1.0]))
    assert point == float("inf") and high == float("inf") and not np.isnan(low)
