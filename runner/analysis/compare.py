"""Runs side by side (pure): per scenario and metric, the ratio to a baseline run, whether the
difference is real, and what else differs between the runs.

The unit of replication is the fresh probe process: each process contributes one value per
metric, the median of its measured iterations (iterations inside one process share its address
space and are not independent). For each scenario present in both runs, matched by id:

  ratio       median(candidate processes) / median(baseline processes), with a percentile
              bootstrap 95% interval that resamples processes (stats.bootstrap_ratio_ci, seeded)
  p           two-sided Mann–Whitney U on the process values, Benjamini–Hochberg adjusted over
              every scenario × metric × candidate of the comparison
  verdict     same          the interval lies inside the equivalence band [1 - e, 1 + e]
              different     adjusted p < ALPHA and the interval lies wholly outside the band
              inconclusive  anything else: the data cannot tell
              no ratio      a side has negative values (RSS given back): a ratio means nothing
  regression  on a metric where higher is worse (times, page faults): ratio > 1 + fail_above
              and adjusted p < ALPHA

Comparability: every fingerprint fact (runner.machine.system.FACTS) whose value differs between the
runs, the confounding ones flagged; a fact only some runs recorded (an older alloclab) is listed
as not recorded, unflagged: unknown is not the same as different.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from runner.analysis.frame import build_frame, measured
from runner.analysis.stats import bh_adjust, bootstrap_ratio_ci, mann_whitney_p
from runner.core.metrics import BY_NAME
from runner.machine import system
from runner.store.folders import StoredRun

Verdict = Literal["same", "different", "inconclusive", "no ratio"]
VERDICTS: tuple[Verdict, ...] = ("different", "inconclusive", "same", "no ratio")
ALPHA = 0.05
DEFAULT_EQUIVALENCE = 0.05
WORSE_WHEN_HIGHER_UNITS = ("ns", "faults")


@dataclass(frozen=True)
class RunRef:
    """Which run a column of the comparison is."""

    machine: str
    experiment: str
    run_id: str
    path: str

    @property
    def name(self) -> str:
        return f"{self.machine}/{self.experiment}/{self.run_id}"

    @classmethod
    def of(cls, run: StoredRun) -> RunRef:
        return cls(run.machine, run.experiment, run.run_id, str(run.path))


@dataclass(frozen=True)
class MetricComparison:
    """One scenario's metric in a candidate run against the baseline run."""

    scenario_id: str
    label: str
    metric: str
    baseline_median: float
    candidate_median: float
    baseline_processes: int
    candidate_processes: int
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    verdict: Verdict
    regression: bool


@dataclass(frozen=True)
class CandidateComparison:
    """One candidate run against the baseline: every matched scenario × metric."""

    run: RunRef
    rows: tuple[MetricComparison, ...]
    only_in_baseline: tuple[str, ...]  # scenario labels
    only_in_candidate: tuple[str, ...]

    def count(self, verdict: Verdict) -> int:
        return sum(1 for row in self.rows if row.verdict == verdict)


@dataclass(frozen=True)
class FactDifference:
    """A fingerprint fact whose value differs between the runs compared."""

    key: str
    description: str
    confounds: bool
    values: tuple[str, ...]  # the baseline's first, then each candidate's


@dataclass(frozen=True)
class Comparison:
    """Everything `alloclab compare` reports, as plain values."""

    baseline: RunRef
    candidates: tuple[CandidateComparison, ...]
    metrics: tuple[str, ...]
    equivalence: float
    fail_above: float | None
    differences: tuple[FactDifference, ...]

    @property
    def regressions(self) -> list[tuple[RunRef, MetricComparison]]:
        return [(c.run, row) for c in self.candidates for row in c.rows if row.regression]

    @property
    def gated(self) -> int:
        """How many rows a --fail-above gate judges: matched scenarios x metrics where higher
        is worse. None means the gate has nothing to pass."""
        return sum(1 for c in self.candidates for row in c.rows if worse_when_higher(row.metric))

    @property
    def confounders(self) -> list[FactDifference]:
        return [d for d in self.differences if d.confounds]


def worse_when_higher(metric: str) -> bool:
    """Times and page faults: a higher value is a regression. RSS growth has no direction."""
    return BY_NAME[metric].unit in WORSE_WHEN_HIGHER_UNITS


def effect_size(row: MetricComparison) -> float:
    """How large a change is: |log ratio|, so twice as slow and twice as fast weigh the same;
    infinite from or to zero; -1 without a ratio (it sorts last)."""
    if math.isnan(row.ratio):
        return -1.0
    if row.ratio <= 0 or math.isinf(row.ratio):
        return math.inf
    return abs(math.log(row.ratio))


def by_effect(rows: Sequence[MetricComparison]) -> list[MetricComparison]:
    """Rows by effect size, largest first; equal ones keep their order (metric, then plan)."""
    return sorted(rows, key=effect_size, reverse=True)


def process_values(samples: pd.DataFrame, metric: str) -> dict[str, npt.NDArray[np.float64]]:
    """Per scenario id, one value per process: the median of its measured iterations.

    A metric a process did not report (an observation an older probe lacks) is left out, and
    a scenario with no value at all is absent.
    """
    per_process = samples.groupby(["scenario_id", "process_index"], sort=False)[metric].median()
    values = {str(sid): group.dropna().to_numpy(dtype=np.float64)
              for sid, group in per_process.groupby(level=0, sort=False)}
    return {sid: array for sid, array in values.items() if len(array)}


def decide(ci_low: float, ci_high: float, p_adjusted: float, equivalence: float) -> Verdict:
    """same / different / inconclusive from the ratio's interval and the adjusted p-value."""
    low_band, high_band = 1 - equivalence, 1 + equivalence
    if low_band <= ci_low and ci_high <= high_band:
        return "same"
    if p_adjusted < ALPHA and (ci_low > high_band or ci_high < low_band):
        return "different"
    return "inconclusive"


@dataclass(frozen=True)
class _Pending:
    """A row before the Benjamini–Hochberg step, which needs every p-value of the comparison."""

    candidate: int
    scenario_id: str
    label: str
    metric: str
    baseline: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float


def _pending_rows(index: int, baseline: StoredRun, candidate: StoredRun,
                  metrics: Sequence[str]) -> tuple[list[_Pending], tuple[str, ...],
                                                   tuple[str, ...]]:
    labels = baseline.labels
    candidate_labels = candidate.labels
    base_samples = measured(build_frame(baseline))
    cand_samples = measured(build_frame(candidate))
    base_ids = list(dict.fromkeys(base_samples["scenario_id"]))
    cand_ids = set(cand_samples["scenario_id"])
    pending = []
    for metric in metrics:
        base_values = process_values(base_samples, metric)
        cand_values = process_values(cand_samples, metric)
        for scenario_id in base_ids:
            if scenario_id not in cand_values or scenario_id not in base_values:
                continue
            a, b = cand_values[scenario_id], base_values[scenario_id]
            if (a < 0).any() or (b < 0).any():
                ratio = low = high = p = float("nan")
            else:
                ratio, low, high = bootstrap_ratio_ci(a, b)
                p = mann_whitney_p(a, b)
            pending.append(_Pending(index, scenario_id, labels[scenario_id], metric, b, a,
                                    ratio, low, high, p))
    only_base = tuple(labels[s] for s in base_ids if s not in cand_ids)
    only_cand = tuple(candidate_labels.get(s, s) for s in dict.fromkeys(
        cand_samples["scenario_id"]) if s not in set(base_ids))
    return pending, only_base, only_cand


def compare_runs(baseline: StoredRun, candidates: Sequence[StoredRun], *,
                 metrics: Sequence[str], equivalence: float = DEFAULT_EQUIVALENCE,
                 fail_above: float | None = None) -> Comparison:
    """Compare each candidate run with the baseline on `metrics`, scenario by scenario."""
    pending: list[_Pending] = []
    only: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    for index, candidate in enumerate(candidates):
        rows, only_base, only_cand = _pending_rows(index, baseline, candidate, metrics)
        pending += rows
        only.append((only_base, only_cand))
    adjusted = bh_adjust([row.p_value for row in pending])
    finished: list[list[MetricComparison]] = [[] for _ in candidates]
    for row, p_adjusted in zip(pending, adjusted, strict=True):
        no_ratio = bool(np.isnan(row.ratio))
        verdict: Verdict = "no ratio" if no_ratio else decide(
            row.ci_low, row.ci_high, float(p_adjusted), equivalence)
        regression = (not no_ratio and fail_above is not None and worse_when_higher(row.metric)
                      and row.ratio > 1 + fail_above and float(p_adjusted) < ALPHA)
        finished[row.candidate].append(MetricComparison(
            row.scenario_id, row.label, row.metric,
            float(np.median(row.baseline)), float(np.median(row.values)),
            len(row.baseline), len(row.values), row.ratio, row.ci_low, row.ci_high,
            row.p_value, float(p_adjusted), verdict, regression))
    return Comparison(
        baseline=RunRef.of(baseline),
        candidates=tuple(CandidateComparison(RunRef.of(run), tuple(rows), *only_lists)
                         for run, rows, only_lists in zip(candidates, finished, only,
                                                          strict=True)),
        metrics=tuple(metrics), equivalence=equivalence, fail_above=fail_above,
        differences=fact_differences([baseline, *candidates]))


def fact_differences(runs: Sequence[StoredRun]) -> tuple[FactDifference, ...]:
    """The fingerprint facts whose values are not the same in every run, in FACTS order."""
    facts = [system.run_facts(run.manifest, run.first_probe_output()) for run in runs]
    keys = list(dict.fromkeys(key for fact in facts for key in fact))
    differences = []
    for key in keys:
        values = [fact.get(key) for fact in facts]
        if all(not system.fact_differs(key, values[0], value) for value in values[1:]):
            continue
        declared = system.BY_KEY.get(key)
        everywhere = all(key in fact for fact in facts)
        description = declared.description if declared else "not known to this alloclab"
        differences.append(FactDifference(
            key, description if everywhere else f"{description} (not recorded by every run)",
            bool(declared and declared.confounds and everywhere),
            tuple(system.format_fact(key, value) if key in fact else "not recorded"
                  for fact, value in zip(facts, values, strict=True))))
    return tuple(differences)
