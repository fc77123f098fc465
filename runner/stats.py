"""Robust summaries and comparisons of samples (pure functions of numbers; no I/O, no plotting)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The bootstrap is seeded so the same samples always give the same interval (and report bytes).
BOOTSTRAP_SEED = 20261126
BOOTSTRAP_RESAMPLES = 2000
NOISY_CV = 0.10


@dataclass(frozen=True)
class Summary:
    """Median and spread of one metric for one scenario."""

    n: int
    median: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    ci_low: float
    ci_high: float
    cv: float  # robust coefficient of variation: IQR / 1.349 / median (0 when the median is 0)
    outliers: int  # samples beyond 1.5 IQR from the quartiles, counted, never dropped

    @property
    def noisy(self) -> bool:
        return self.n >= 3 and self.cv > NOISY_CV


def bootstrap_median_ci(values: npt.NDArray[np.float64], confidence: float = 0.95
                        ) -> tuple[float, float]:
    """Percentile bootstrap interval of the median, deterministic for the same input."""
    if len(values) < 2:
        only = float(values[0]) if len(values) else float("nan")
        return only, only
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    medians = np.median(values[picks], axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ratio_ci(candidate: npt.NDArray[np.float64], reference: npt.NDArray[np.float64],
                       confidence: float = 0.95) -> tuple[float, float, float]:
    """Ratio of medians candidate/reference and its percentile bootstrap interval.

    Both samples are resampled independently (they come from different processes). A zero
    reference median gives an infinite ratio, or 1 when the candidate's is zero too: a
    metric like faults per page is often exactly zero, and zero against zero is no difference.
    """
    def ratio(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = np.divide(a, b)
        return np.where((a == 0) & (b == 0), 1.0, result)

    return _bootstrap_two_medians(candidate, reference, ratio, confidence)


def bootstrap_difference_ci(candidate: npt.NDArray[np.float64],
                            reference: npt.NDArray[np.float64],
                            confidence: float = 0.95) -> tuple[float, float, float]:
    """Difference of medians candidate - reference and its percentile bootstrap interval:
    the comparison that still means something when the reference is zero."""
    return _bootstrap_two_medians(candidate, reference, np.subtract, confidence)


def _bootstrap_two_medians(
        candidate: npt.NDArray[np.float64], reference: npt.NDArray[np.float64],
        combine: Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]],
                          npt.NDArray[np.float64]],
        confidence: float) -> tuple[float, float, float]:
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    point = float(combine(np.asarray(np.median(a)), np.asarray(np.median(b))))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    medians_a = np.median(a[rng.integers(0, len(a), size=(BOOTSTRAP_RESAMPLES, len(a)))], axis=1)
    medians_b = np.median(b[rng.integers(0, len(b), size=(BOOTSTRAP_RESAMPLES, len(b)))], axis=1)
    tail = (1 - confidence) / 2 * 100
    # Interpolating between two infinite ratios gives NaN; the largest float stands in.
    largest = np.finfo(np.float64).max
    combined = np.nan_to_num(combine(medians_a, medians_b), nan=1.0, posinf=largest)
    low, high = (float(v) if v < largest else float("inf")
                 for v in np.percentile(combined, [tail, 100 - tail]))
    return point, low, high


def summarize(values: npt.ArrayLike) -> Summary:
    """Median, quartiles, bootstrap 95% CI of the median, robust CV and outlier count."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    data = data[~np.isnan(data)]
    if len(data) == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, 0)
    q1, median, q3 = (float(v) for v in np.percentile(data, [25, 50, 75]))
    iqr = q3 - q1
    ci_low, ci_high = bootstrap_median_ci(data)
    cv = iqr / 1.349 / abs(median) if median else 0.0
    outliers = int(np.sum((data < q1 - 1.5 * iqr) | (data > q3 + 1.5 * iqr)))
    return Summary(len(data), median, q1, q3, float(data[0]), float(data[-1]), ci_low, ci_high,
                   cv, outliers)


def mann_whitney_p(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Two-sided Mann–Whitney U p-value: do the two samples come from one distribution?

    scipy chooses the exact distribution for small samples without ties and the normal
    approximation (tie-corrected) otherwise. Two samples of one repeated value are the same
    distribution (p = 1); an empty sample gives NaN.
    """
    import scipy.stats  # here, not at the top: it costs every alloclab command half a second

    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    if np.all(a == a[0]) and np.all(b == a[0]):
        return 1.0
    return float(scipy.stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def bh_adjust(p_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaN stays NaN, uncounted."""
    import scipy.stats  # see mann_whitney_p

    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    known = ~np.isnan(p)
    if known.any():
        adjusted[known] = scipy.stats.false_discovery_control(p[known], method="bh")
    return adjusted
