"""Summaries against samples whose answers are known."""

import math
from dataclasses import replace

import numpy as np
import pytest

from runner.stats import (
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


# The rank-sum interval and the sign-test interval against answers known independently.

def _enumerated_counts(n: int, m: int) -> list[int]:
    """Mann–Whitney U over every way of choosing which of n+m ranks are the first sample's."""
    import itertools
    counts = [0] * (n * m + 1)
    for ranks in itertools.combinations(range(n + m), n):
        chosen = set(ranks)
        u = sum(1 for r in ranks for s in range(n + m) if s not in chosen and s < r)
        counts[u] += 1
    return counts


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 3), (3, 3), (4, 5), (5, 5), (3, 7)])
def test_rank_sum_counts_match_enumeration(n: int, m: int) -> None:
    from runner.stats import rank_sum_counts
    assert rank_sum_counts(n, m).tolist() == _enumerated_counts(n, m)


# Two-sided 5% critical values of U from published tables (U <= critical rejects): the
# interval's order index is critical + 1; "-" in the tables (no test possible) is k = 0.
@pytest.mark.parametrize(("n", "m", "critical"), [
    (3, 3, None), (3, 4, None), (4, 4, 0), (3, 5, 0), (4, 5, 1), (5, 5, 2), (6, 6, 5),
    (7, 7, 8), (8, 8, 13), (10, 10, 23), (20, 20, 127)])
def test_rank_sum_order_matches_critical_value_tables(n: int, m: int,
                                                      critical: int | None) -> None:
    from runner.stats import rank_sum_order
    k, coverage = rank_sum_order(n, m)
    assert k == (0 if critical is None else critical + 1)
    assert (math.isnan(coverage) if critical is None else coverage >= 0.95)


def test_normal_approximation_agrees_with_the_exact_order_near_the_switch() -> None:
    from runner import stats
    exact = stats.rank_sum_order(40, 40)
    limit, stats.EXACT_PAIRS = stats.EXACT_PAIRS, 0
    try:
        approximate = stats.rank_sum_order(40, 40)
    finally:
        stats.EXACT_PAIRS = limit
    assert abs(exact[0] - approximate[0]) <= 1
    assert approximate[1] == pytest.approx(0.95, abs=0.005)


def test_shift_interval_by_hand() -> None:
    from runner.stats import shift_interval
    # differences x - y for x = 5..8, y = 1..4 run from 1 to 7, median 4; 4 vs 4 gives k = 1
    shift = shift_interval([5, 6, 7, 8], [1, 2, 3, 4])
    assert (shift.estimate, shift.low, shift.high) == (4.0, 1.0, 7.0)
    assert shift.coverage == pytest.approx(1 - 2 / 70)
    # 5 vs 5: k = 3, the third smallest and third largest of the 25 differences
    shift = shift_interval([10, 11, 12, 13, 14], [0, 1, 2, 3, 4])
    assert (shift.estimate, shift.low, shift.high) == (10.0, 7.0, 13.0)


def test_ratio_interval_is_the_shift_of_logarithms() -> None:
    from runner.stats import ratio_interval
    ratio = ratio_interval([2, 4, 8, 16], [1, 2, 4, 8])
    assert ratio.estimate == pytest.approx(2.0)
    assert (ratio.low, ratio.high) == (pytest.approx(2 / 8), pytest.approx(16))


def test_three_against_three_gives_no_interval() -> None:
    from runner.stats import processes_needed, shift_interval
    shift = shift_interval([1, 2, 3], [10, 11, 12])
    assert not shift.decided and shift.estimate == -9.0
    assert processes_needed() == 4 and processes_needed(one_sample=True) == 6


def test_sign_test_interval_of_the_median() -> None:
    from runner.stats import median_interval, sign_order
    assert sign_order(5)[0] == 0 and sign_order(6) == (1, pytest.approx(1 - 2 / 64))
    assert sign_order(10)[0] == 2  # P(B <= 1) = 11/1024 < 2.5% < P(B <= 2) = 56/1024
    interval = median_interval([5, 1, 4, 2, 3, 6, 9, 8, 7, 10])
    assert (interval.estimate, interval.low, interval.high) == (5.5, 2.0, 9.0)


def test_rank_sum_ratio_interval_covers_the_true_ratio() -> None:
    """Coverage by simulation: lognormal processes, 5 against 5, true ratio 2."""
    from runner.stats import ratio_interval
    rng = np.random.default_rng(7)
    trials = 400
    covered = sum(
        ratio.low <= 2.0 <= ratio.high
        for ratio in (ratio_interval(2 * rng.lognormal(0, 0.3, 5), rng.lognormal(0, 0.3, 5))
                      for _ in range(trials)))
    assert covered / trials >= 0.94


def test_a_summary_without_interval_skips_only_the_bootstrap() -> None:
    values = np.random.default_rng(3).lognormal(size=301)
    full, quick = summarize(values), summarize(values, interval=False)
    assert math.isnan(quick.ci_low) and math.isnan(quick.ci_high)
    assert not math.isnan(full.ci_low) and full.ci_low <= full.median <= full.ci_high
    assert replace(quick, ci_low=full.ci_low, ci_high=full.ci_high) == full
