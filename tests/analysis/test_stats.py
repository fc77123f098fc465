"""Summaries against samples whose answers are known."""

import math
from dataclasses import replace

import numpy as np
import pytest

from runner.analysis.stats import (
    bh_adjust,
    bootstrap_median_ci,
    bootstrap_ratio_ci,
    mann_whitney_p,
    summarize,
)


def test_summary_of_known_sample() -> None:
    summary = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 100])
    assert summary.n == 10
    assert summary.median == 5.5
    assert summary.q1 == pytest.approx(3.25)
    assert summary.q3 == pytest.approx(7.75)
    assert (summary.minimum, summary.maximum) == (1, 100)
    assert summary.outliers == 1  # 100 lies beyond q3 + 1.5 IQR and is counted, not dropped
    assert summary.cv == pytest.approx(4.5 / 1.349 / 5.5)


def test_constant_sample_is_not_noisy_and_has_a_point_interval() -> None:
    summary = summarize([7.0] * 9)
    assert (summary.ci_low, summary.median, summary.ci_high) == (7.0, 7.0, 7.0)
    assert summary.cv == 0
    assert not summary.noisy


def test_spread_sample_is_noisy() -> None:
    assert summarize([50, 100, 150, 200, 250]).noisy


def test_empty_and_nan_samples() -> None:
    assert summarize([]).n == 0
    assert math.isnan(summarize([]).median)
    assert summarize([1.0, float("nan"), 3.0]).n == 2


def test_bootstrap_interval_covers_the_median_of_a_normal_sample() -> None:
    values = np.random.default_rng(1).normal(100, 10, size=400)
    low, high = bootstrap_median_ci(values)
    assert low < 100 < high
    # The median's standard error for a normal sample is about 1.25 sigma/sqrt(n) = 0.63,
    # so a 95% interval is about 2.5 wide; allow for bootstrap slack but not for nonsense.
    assert 1.5 < high - low < 4.0


def test_bootstrap_is_deterministic() -> None:
    values = np.arange(30, dtype=float) ** 1.5
    assert bootstrap_median_ci(values) == bootstrap_median_ci(values.copy())


def test_ratio_interval_of_an_exactly_scaled_sample_holds_the_scale() -> None:
    baseline = np.random.default_rng(2).normal(100, 5, size=60)
    ratio, low, high = bootstrap_ratio_ci(baseline * 1.2, baseline)
    assert ratio == pytest.approx(1.2)
    assert low < 1.2 < high
    # Independent resampling of two sides with a 5% spread: the interval is a few % wide.
    assert 0.01 < high - low < 0.12


def test_ratio_interval_of_two_draws_of_one_distribution_covers_one() -> None:
    rng = np.random.default_rng(3)
    first, second = rng.normal(100, 5, size=200), rng.normal(100, 5, size=200)
    ratio, low, high = bootstrap_ratio_ci(first, second)
    assert low < 1 < high and abs(ratio - 1) < 0.02
    assert bootstrap_ratio_ci(first, second) == (ratio, low, high)  # seeded


def test_mann_whitney_of_fully_separated_samples_is_the_exact_textbook_value() -> None:
    # U = 0: of the C(10, 5) = 252 equally likely rankings, only this one and its mirror are
    # as extreme, so the exact two-sided p-value is 2/252.
    assert mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) == pytest.approx(2 / 252)
    assert mann_whitney_p([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) == pytest.approx(2 / 252)


def test_mann_whitney_of_a_known_table_with_ties_matches_the_hand_computed_value() -> None:
    # Ranks of 1 2 2 3 3 4 5 6 6 7: the first group's sum is 1+2.5+2.5+4.5+6 = 16.5, so
    # U = 16.5 - 15 = 1.5. Three pairs of ties: variance 25/12 * (11 - 18/90) = 22.5. With the
    # continuity correction z = (1.5 - 12.5 + 0.5) / sqrt(22.5) = -2.2136, p = 0.02686.
    p = mann_whitney_p([1, 2, 2, 3, 4], [3, 5, 6, 6, 7])
    z = (1.5 - 12.5 + 0.5) / math.sqrt(22.5)
    assert p == pytest.approx(math.erfc(-z / math.sqrt(2)), rel=1e-9)
    assert p == pytest.approx(0.02686, abs=1e-5)


def test_mann_whitney_edge_cases() -> None:
    assert mann_whitney_p([3, 3, 3], [3, 3]) == 1.0
    assert math.isnan(mann_whitney_p([], [1, 2]))


def test_benjamini_hochberg_of_known_lists() -> None:
    assert bh_adjust([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05] * 5)
    # The step-up: p_i * m / i, then the running minimum from the largest p down.
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205]
    assert bh_adjust(p) == pytest.approx(
        [0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.0845714, 0.205], rel=1e-5)
    # Order does not matter, NaN is neither counted nor changed.
    adjusted = bh_adjust([0.05, float("nan"), 0.01])
    assert adjusted[0] == pytest.approx(0.05) and adjusted[2] == pytest.approx(0.02)
    assert math.isnan(adjusted[1])


# The signed-rank interval and the sign-test interval against answers known independently.

def _enumerated_signed_rank_counts(n: int) -> list[int]:
    """T+ over every one of the 2^n sign patterns of the ranks 1..n."""
    import itertools
    counts = [0] * (n * (n + 1) // 2 + 1)
    for signs in itertools.product((0, 1), repeat=n):
        counts[sum(rank for rank, positive in zip(range(1, n + 1), signs, strict=True)
                   if positive)] += 1
    return counts


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 11])
def test_signed_rank_counts_match_enumeration(n: int) -> None:
    from runner.analysis.stats import signed_rank_counts
    assert signed_rank_counts(n).tolist() == _enumerated_signed_rank_counts(n)


# Two-sided 5% critical values of the Wilcoxon signed-rank T from published tables (T <=
# critical rejects): the interval's order index among the Walsh averages is critical + 1; "-"
# in the tables (no test possible) is k = 0.
@pytest.mark.parametrize(("n", "critical"), [
    (5, None), (6, 0), (7, 2), (8, 3), (9, 5), (10, 8), (12, 13), (15, 25), (20, 52),
    (25, 89), (30, 137)])
def test_signed_rank_order_matches_critical_value_tables(n: int,
                                                        critical: int | None) -> None:
    from runner.analysis.stats import signed_rank_order
    k, coverage = signed_rank_order(n)
    assert k == (0 if critical is None else critical + 1)
    assert (math.isnan(coverage) if critical is None else coverage >= 0.95)


def test_normal_approximation_agrees_with_the_exact_order_near_the_switch() -> None:
    from runner.analysis import stats
    exact = stats.signed_rank_order(60)
    limit, stats.EXACT_SIGNED_RANKS = stats.EXACT_SIGNED_RANKS, 0
    try:
        approximate = stats.signed_rank_order(60)
    finally:
        stats.EXACT_SIGNED_RANKS = limit
    assert abs(exact[0] - approximate[0]) <= 1
    assert approximate[1] == pytest.approx(0.95, abs=0.005)


def test_paired_interval_by_hand() -> None:
    from runner.analysis.stats import paired_interval
    # six differences 1..6: 21 Walsh averages from 1 to 6, median 3.5; six pairs give k = 1
    shift = paired_interval([3, 1, 6, 2, 5, 4])
    assert (shift.estimate, shift.low, shift.high) == (3.5, 1.0, 6.0)
    assert shift.coverage == pytest.approx(1 - 2 / 64)


def test_five_pairs_give_no_interval_and_processes_needed_says_six() -> None:
    from runner.analysis.stats import paired_interval, processes_needed
    shift = paired_interval([1, 2, 3, 4, 5])
    assert not shift.decided and shift.estimate == 3.0
    assert processes_needed() == 6 and processes_needed(one_sample=True) == 6
    # four looks at 98.75% each need eight pairs at the first look
    assert processes_needed(1 - 0.05 / 4) == 8


def test_sign_test_interval_of_the_median() -> None:
    from runner.analysis.stats import median_interval, sign_order
    assert sign_order(5)[0] == 0 and sign_order(6) == (1, pytest.approx(1 - 2 / 64))
    assert sign_order(10)[0] == 2  # P(B <= 1) = 11/1024 < 2.5% < P(B <= 2) = 56/1024
    interval = median_interval([5, 1, 4, 2, 3, 6, 9, 8, 7, 10])
    assert (interval.estimate, interval.low, interval.high) == (5.5, 2.0, 9.0)


def test_paired_interval_covers_the_true_ratio() -> None:
    """Coverage by simulation: rounds share a lognormal machine state, each process adds its
    own lognormal noise, true ratio 2, ten rounds."""
    from runner.analysis.stats import paired_interval
    rng = np.random.default_rng(7)
    trials, covered = 800, 0
    for _ in range(trials):
        machine = rng.lognormal(0, 0.5, 10)
        candidate = 2 * machine * rng.lognormal(0, 0.1, 10)
        reference = machine * rng.lognormal(0, 0.1, 10)
        shift = paired_interval(np.log(candidate) - np.log(reference))
        covered += shift.low <= math.log(2.0) <= shift.high
    assert covered / trials >= 0.94


def test_a_summary_without_interval_skips_only_the_bootstrap() -> None:
    values = np.random.default_rng(3).lognormal(size=301)
    full, quick = summarize(values), summarize(values, interval=False)
    assert math.isnan(quick.ci_low) and math.isnan(quick.ci_high)
    assert not math.isnan(full.ci_low) and full.ci_low <= full.median <= full.ci_high
    assert replace(quick, ci_low=full.ci_low, ci_high=full.ci_high) == full
