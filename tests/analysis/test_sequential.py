"""A pair judged look by look: the stop rule, its error rate under repeated looks, its power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runner.analysis.sequential import decide, judge
from runner.core.model import Looks

LOOKS = Looks(base=10, batch=10, most=40)  # the default design: ADAPTIVE_FACTOR 4


def _rounds(values: np.ndarray) -> dict[int, float]:
    return {k: float(v) for k, v in enumerate(values)}


def _stops_different(rng: np.random.Generator, sigma: float, df: int | None,
                     looks: Looks = LOOKS) -> bool:
    """One A/A pair judged `same` with no band, so it stops at the first look whose interval
    excludes a ratio of 1: whether it ever does (a difference that is not there)."""
    noise = (rng.standard_t(df, LOOKS.most) * math.sqrt((df - 2) / df) if df
             else rng.standard_normal(LOOKS.most))
    machine = rng.lognormal(0, 0.5, LOOKS.most)  # each round's state, shared by both sides
    candidate = machine * np.exp(sigma * noise / math.sqrt(2))
    reference = machine * np.exp(sigma * rng.standard_normal(LOOKS.most) / math.sqrt(2))
    decision = decide(_rounds(candidate), _rounds(reference), 0.0, "same", 0.0, looks)
    return decision.outcome == "contradicts"


class _PlainLooks(Looks):
    """The same looks, each at a plain 95%: what the Bonferroni split guards against."""

    @property
    def confidence(self) -> float:
        return 0.95


@pytest.mark.parametrize(("sigma", "df"), [(0.05, None), (0.2, None), (0.1, 4)])
def test_looking_four_times_keeps_an_a_a_pair_wrongly_different_under_five_percent(
        sigma: float, df: int | None) -> None:
    """Stopping at the first look that decides would push a plain 95% interval's misses above
    5%; at 1 - 5%/4 per look they stay below it, for normal and heavy-tailed noise."""
    rng = np.random.default_rng(11)
    trials = 600
    different = sum(_stops_different(rng, sigma, df) for _ in range(trials))
    assert different / trials <= 0.05
    plain = _PlainLooks(LOOKS.base, LOOKS.batch, LOOKS.most)
    assert sum(_stops_different(rng, sigma, df, plain) for _ in range(trials)) / trials > 0.07


def test_the_default_design_decides_a_pair_whose_noise_is_a_third_of_the_margin() -> None:
    """True ratio 0.85 against a band edge at 0.95 (a margin of about 0.11 in logs), paired
    noise 0.04 in logs: decided at the first look nearly always; at 0.1, by the last."""
    rng = np.random.default_rng(5)

    def decided(sigma: float) -> float:
        count = 0
        for _ in range(200):
            candidate = 0.85 * np.exp(sigma * rng.standard_normal(LOOKS.most))
            decision = decide(_rounds(candidate), _rounds(np.ones(LOOKS.most)), 0.0, "lower",
                              0.05, LOOKS)
            count += decision.outcome == "holds"
        return count / 200

    assert decided(0.04) >= 0.98
    assert decided(0.1) >= 0.9


def test_a_pair_stops_at_its_first_deciding_look_and_says_which() -> None:
    steady = np.full(40, 0.5)
    decision = decide(_rounds(steady), _rounds(np.ones(40)), 0.0, "lower", 0.05, LOOKS)
    assert (decision.outcome, decision.look, decision.pairs, decision.stop) == (
        "holds", 1, 10, "decided")
    assert decision.design == "paired" and decision.shift.estimate == pytest.approx(0.5)


def test_without_rounds_past_a_look_the_run_measured_no_more() -> None:
    edge = np.array([0.9, 1.0] * 5)
    decision = decide(_rounds(edge), _rounds(np.ones(10)), 0.0, "lower", 0.05, LOOKS)
    assert (decision.outcome, decision.look, decision.stop) == ("undecided", 1, "measured")
    nothing = decide({}, {}, 0.0, "lower", 0.05, LOOKS)
    assert (nothing.look, nothing.pairs, nothing.stop) == (0, 0, "measured")


def test_a_zero_reference_is_judged_on_differences_in_the_metric_s_unit() -> None:
    decision = decide(_rounds(np.full(10, 0.01)), _rounds(np.zeros(10)), 0.0, "higher", 0.001,
                      Looks(10, 10, 10))
    assert decision.difference and decision.outcome == "holds"
    assert decision.shift.estimate == pytest.approx(0.01)


def test_against_a_fixed_value_the_candidate_s_processes_alone() -> None:
    values = _rounds(np.array([1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0]))
    decision = decide(values, None, 1.0, "same", 0.05, Looks(8, 8, 8))
    assert (decision.design, decision.outcome, decision.pairs) == ("one-sample", "holds", 8)


@pytest.mark.parametrize(("expect", "low", "high", "outcome"), [
    ("lower", 0.80, 0.949, "holds"), ("lower", 0.95, 1.2, "contradicts"),
    ("no-higher", 0.9, 1.05, "holds"), ("no-lower", 0.95, 1.1, "holds"),
    ("same", 0.96, 1.04, "holds"), ("same", 1.06, 1.2, "contradicts"),
])
def test_the_band_edges(expect: str, low: float, high: float, outcome: str) -> None:
    assert judge(expect, low, high, 0.05) == outcome
