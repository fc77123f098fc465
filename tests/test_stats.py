"""Summaries against samples whose answers are known."""

import math

import numpy as np
import pytest

from runner.stats import bootstrap_median_ci, summarize


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
