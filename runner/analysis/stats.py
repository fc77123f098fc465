"""Robust summaries and comparisons of samples (pure functions of numbers; no I/O, no plotting).

Verdicts rest on distribution-free intervals that are exact at the few processes a run has:
for paired samples (a candidate and a reference process measured in the same round) the
Hodges–Lehmann estimate of the paired differences with the interval that inverts the Wilcoxon
signed-rank test (Tukey's Walsh averages); for one sample against a fixed value the median with
the interval that inverts the sign test. Both are deterministic (no resampling) and need a
minimum sample (6 pairs, 6 alone, for 95%) below which they give no interval at all rather than
a wrong one. The sign interval covers at least the confidence asked for whatever the
distribution; the signed-rank interval needs the paired differences to be symmetric about
their centre, which holds when the two sides' noise has one shape (and for an A/A pair by
construction), and is the price of its efficiency: 95% of the t interval's, where the sign
test has 64%. The percentile bootstrap stays for summaries, where a coarse interval harms
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from runner.core.model import CONFIDENCE

# The bootstrap is seeded so the same samples always give the same interval (and report bytes).
BOOTSTRAP_SEED = 20261126
BOOTSTRAP_RESAMPLES = 2000
NOISY_CV = 0.10
# Up to this many paired differences the signed-rank statistic's null distribution is counted
# exactly (2^n sign patterns, by their rank sums); beyond it the normal approximation.
EXACT_SIGNED_RANKS = 200


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


def summarize(values: npt.ArrayLike, *, interval: bool = True) -> Summary:
    """Median, quartiles, bootstrap 95% CI of the median, robust CV and outlier count.

    `interval=False` leaves the CI NaN: the bootstrap resamples every value 2000 times, most of
    the cost of a summary of many samples, and tables, charts and noise checks show no CI.
    """
    data = np.sort(np.asarray(values, dtype=np.float64))
    data = data[~np.isnan(data)]
    if len(data) == 0:
        nan = float("nan")
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, 0)
    q1, median, q3 = (float(v) for v in np.percentile(data, [25, 50, 75]))
    iqr = q3 - q1
    ci_low, ci_high = bootstrap_median_ci(data) if interval else (math.nan, math.nan)
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


@dataclass(frozen=True)
class Shift:
    """How far a candidate sample lies from a reference, with a distribution-free interval.

    `estimate` is the Hodges–Lehmann estimate of paired differences (the median of their Walsh
    averages), or for one sample the median. `low` and `high` bound it with probability
    `coverage` (at least the confidence asked for); both are NaN when the samples are too small
    for that confidence, and the pair cannot be decided.
    """

    estimate: float
    low: float
    high: float
    coverage: float

    @property
    def decided(self) -> bool:
        return not math.isnan(self.low)


def sign_order(n: int, confidence: float = CONFIDENCE) -> tuple[int, float]:
    """The order index k of the median's interval [x_(k), x_(n+1-k)] from the sign test
    (Binomial(n, 1/2)), and its coverage; k = 0 when n is too small (5 or fewer for 95%)."""
    tail = (1 - confidence) / 2
    cdf = np.cumsum([math.comb(n, b) for b in range(n + 1)]) / 2.0 ** n
    k = int(np.sum(cdf[: (n + 1) // 2] <= tail + 1e-12))
    return k, (1 - 2 * float(cdf[k - 1])) if k else float("nan")


def processes_needed(confidence: float = CONFIDENCE, one_sample: bool = False) -> int:
    """The fewest processes per scenario (paired rounds, or processes alone against a value)
    whose samples can reach `confidence` at all."""
    n = 1
    while (sign_order(n, confidence) if one_sample else signed_rank_order(n, confidence))[0] < 1:
        n += 1
    return n


def median_interval(values: npt.ArrayLike, confidence: float = CONFIDENCE) -> Shift:
    """The median of one sample and its sign-test interval (order statistics)."""
    data = np.sort(np.asarray(values, dtype=np.float64))
    k, coverage = sign_order(len(data), confidence)
    if k < 1:
        return Shift(float(np.median(data)), math.nan, math.nan, math.nan)
    return Shift(float(np.median(data)), float(data[k - 1]), float(data[-k]), coverage)


def signed_rank_counts(n: int) -> npt.NDArray[np.float64]:
    """How many of the 2^n sign patterns of n ranked differences give each signed-rank sum T+
    (the sum of the ranks of the positive ones), 0 to n(n+1)/2: the subsets of {1..n} by
    their sums, counted rank by rank."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return counts


def signed_rank_order(n: int, confidence: float = CONFIDENCE) -> tuple[int, float]:
    """The order index k of the interval [w_(k), w_(M+1-k)] of the M = n(n+1)/2 sorted Walsh
    averages, and its coverage; k = 0 when no interval reaches `confidence` (5 or fewer
    pairs for 95%)."""
    tail = (1 - confidence) / 2
    total = n * (n + 1) // 2
    if n <= EXACT_SIGNED_RANKS:
        cdf = np.cumsum(signed_rank_counts(n)) / 2.0 ** n
        k = int(np.sum(cdf <= tail + 1e-12))
        k = min(k, (total + 1) // 2)
        return k, (1 - 2 * float(cdf[k - 1])) if k else float("nan")
    mean, sd = total / 2, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    z = NormalDist().inv_cdf(1 - tail)
    k = max(0, math.floor(mean - z * sd + 0.5))
    return k, (1 - 2 * NormalDist(mean, sd).cdf(k - 0.5)) if k else float("nan")


def paired_interval(differences: npt.ArrayLike, confidence: float = CONFIDENCE) -> Shift:
    """The Hodges–Lehmann estimate of paired differences (the median of the Walsh averages,
    (d_i + d_j) / 2 for i <= j) and the interval that inverts the signed-rank test."""
    d = np.asarray(differences, dtype=np.float64)
    if len(d) == 0:
        return Shift(math.nan, math.nan, math.nan, math.nan)
    upper = np.triu_indices(len(d))
    walsh = np.sort((d[upper[0]] + d[upper[1]]) / 2)
    estimate = float(np.median(walsh))
    k, coverage = signed_rank_order(len(d), confidence)
    if k < 1:
        return Shift(estimate, math.nan, math.nan, math.nan)
    return Shift(estimate, float(walsh[k - 1]), float(walsh[-k]), coverage)
