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
as not recorded, unflagged: unknown is not the same as different. And the conditions recorded
around each run (runner.analysis.noise.run_load): a candidate whose other work differs from the
baseline's by more than LOAD_DIFFERENCE_CPUS, or whose steal by more than STEAL_DIFFERENCE, was
measured under different load. Its rows keep their statistical verdict, but each carries the
load difference (`load_difference`), which every place that shows a "different" row or a
regression names beside it: a busy machine can make the same code slower, and in an A/A pair it
is the likelier cause. A regression under different load still counts for --fail-above (see
MetricComparison.regression).

Geometric mean: per candidate and metric, exp(mean(log ratio)) over the rows with a positive
finite ratio, as pyperf's compare_to gives: one number for "how much, overall".
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
from runner.analysis.noise import OTHER_BUSY_CPUS, STEAL_FRACTION, RunLoad, run_load
from runner.analysis.stats import bh_adjust, bootstrap_ratio_ci, mann_whitney_p
from runner.core.metrics import BY_NAME
from runner.machine import system
from runner.store.folders import StoredRun

Verdict = Literal["same", "different", "inconclusive", "no ratio"]
LoadCondition = Literal["other work", "steal"]
VERDICTS: tuple[Verdict, ...] = ("different", "inconclusive", "same", "no ratio")
ALPHA = 0.05
DEFAULT_EQUIVALENCE = 0.05
WORSE_WHEN_HIGHER_UNITS = ("ns", "faults")
# A pair of runs whose other work differs by more CPUs than this, or whose steal by a larger
# share of CPU time, ran under different load: the thresholds of the runs' own noise warnings.
LOAD_DIFFERENCE_CPUS = OTHER_BUSY_CPUS
STEAL_DIFFERENCE = STEAL_FRACTION


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
    # Significant and above the --fail-above bound on a worse-when-higher metric, whatever
    # the load: a gate that passed whenever the machine was busy would let real slowdowns
    # through exactly when they are hardest to see. The load difference is named instead.
    regression: bool
    load_difference: str = ""  # LoadDifference.text of its candidate; "": the same load


@dataclass(frozen=True)
class LoadDifference:
    """A condition of a run that differs between the baseline and a candidate enough to matter."""

    what: LoadCondition
    baseline: float
    candidate: float

    @property
    def text(self) -> str:
        """'1.07 vs 0.02 CPUs of other work', 'steal 12% vs 0%' (baseline first)."""
        if self.what == "steal":
            return f"steal {self.baseline:.0%} vs {self.candidate:.0%}"
        return f"{self.baseline:.2f} vs {self.candidate:.2f} CPUs of other work"


def load_differences(baseline: RunLoad, candidate: RunLoad) -> tuple[LoadDifference, ...]:
    """The load conditions in which two runs differ beyond the thresholds; none where either
    did not record them (unknown is not different)."""
    conditions: tuple[tuple[LoadCondition, float, float | None, float | None], ...] = (
        ("other work", LOAD_DIFFERENCE_CPUS, baseline.other_work_cpus,
         candidate.other_work_cpus),
        ("steal", STEAL_DIFFERENCE, baseline.steal_fraction, candidate.steal_fraction))
    return tuple(LoadDifference(what, first, second)
                 for what, limit, first, second in conditions
                 if first is not None and second is not None and abs(first - second) > limit)


@dataclass(frozen=True)
class GeometricMean:
    """One metric's ratios of a candidate, summarised: exp(mean(log ratio)) over `count` rows."""

    metric: str
    ratio: float
    count: int


@dataclass(frozen=True)
class CandidateComparison:
    """One candidate run against the baseline: every matched scenario × metric."""

    run: RunRef
    rows: tuple[MetricComparison, ...]
    only_in_baseline: tuple[str, ...]  # scenario labels
    only_in_candidate: tuple[str, ...]
    load: tuple[LoadDifference, ...] = ()

    def count(self, verdict: Verdict) -> int:
        return sum(1 for row in self.rows if row.verdict == verdict)

    @property
    def load_text(self) -> str:
        """'1.07 vs 0.02 CPUs of other work'; "" when the runs' load was alike."""
        return "; ".join(difference.text for difference in self.load)

    def geometric_means(self) -> tuple[GeometricMean, ...]:
        """Per metric, in the comparison's order, over the rows with a positive finite ratio."""
        logs: dict[str, list[float]] = {}
        for row in self.rows:
            logs.setdefault(row.metric, [])
            if row.ratio > 0 and math.isfinite(row.ratio):
                logs[row.metric].append(math.log(row.ratio))
        return tuple(GeometricMean(metric, math.exp(sum(values) / len(values)), len(values))
                     for metric, values in logs.items() if values)


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
    base_load = run_load(baseline.manifest.get("load", []))
    loads = [load_differences(base_load, run_load(run.manifest.get("load", [])))
             for run in candidates]
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
            row.p_value, float(p_adjusted), verdict, regression,
            "; ".join(difference.text for difference in loads[row.candidate])))
    return Comparison(
        baseline=RunRef.of(baseline),
        candidates=tuple(CandidateComparison(RunRef.of(run), tuple(rows), *only_lists, load)
                         for run, rows, only_lists, load in zip(candidates, finished, only,
                                                                loads, strict=True)),
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
