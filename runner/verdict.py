"""Checks -> verdicts: does the data support each claim, where, and by how much.

A check names candidate and reference scenarios (or a fixed reference value). Each candidate
pairs with the reference that agrees with it on every other axis (size, say), and each pair
is judged from the ratio of
medians and its bootstrap 95% confidence interval against the check's tolerance band:

  expect lower   holds when the whole interval lies below 1 - tolerance; does not hold when
                 the whole interval lies above it; otherwise inconclusive
  expect higher  the mirror image, around 1 + tolerance
  expect same    holds when the interval lies inside [1 - tolerance, 1 + tolerance]; does
                 not hold when it lies wholly outside; otherwise inconclusive

Against a reference whose median is zero (no faults, no non-zero bytes, value 0) a ratio
means nothing, so the pair is judged by the difference of medians and its interval, the
tolerance then being a band of ±tolerance in the metric's own unit around zero.

The verdict: "holds" when every pair holds, "does not hold" when every pair contradicts the
claim, "holds only for ..." naming the pairs where it holds when some do, and "inconclusive"
when the data cannot decide (differences within the noise). Pure: samples in, verdicts out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from runner.model import CheckSpec
from runner.parameters import BY_KEY, Value
from runner.stats import bootstrap_difference_ci, bootstrap_ratio_ci

Outcome = Literal["holds", "contradicts", "inconclusive"]
Status = Literal["holds", "does not hold", "holds only", "inconclusive", "no data"]


@dataclass(frozen=True)
class Comparison:
    """One candidate scenario against its reference, at one point of the other axes."""

    where: str
    candidate_label: str
    reference_label: str
    candidate_median: float
    reference_median: float
    ratio: float  # candidate / reference; with `difference`, candidate - reference
    ci_low: float
    ci_high: float
    outcome: Outcome
    difference: bool = False  # the reference median is zero, where a ratio means nothing


@dataclass(frozen=True)
class Verdict:
    check: CheckSpec
    status: Status
    text: str
    comparisons: tuple[Comparison, ...]


def judge(expect: str, ci_low: float, ci_high: float, tolerance: float,
          center: float = 1.0) -> Outcome:
    """Decide one pair from the confidence interval of candidate/reference (center 1) or of
    candidate - reference (center 0, the tolerance then in the metric's own unit)."""
    low_band, high_band = center - tolerance, center + tolerance
    if expect == "lower":
        if ci_high < low_band:
            return "holds"
        return "contradicts" if ci_low >= low_band else "inconclusive"
    if expect == "higher":
        if ci_low > high_band:
            return "holds"
        return "contradicts" if ci_high <= high_band else "inconclusive"
    if low_band <= ci_low and ci_high <= high_band:
        return "holds"
    return "contradicts" if ci_high < low_band or ci_low > high_band else "inconclusive"


def conclude(comparisons: Sequence[Comparison]) -> tuple[Status, str]:
    """The verdict over every pair, in words."""
    if not comparisons:
        return "no data", "no data: no candidate/reference pair was measured"
    outcomes = [c.outcome for c in comparisons]
    if all(o == "holds" for o in outcomes):
        return "holds", "holds"
    if all(o == "contradicts" for o in outcomes):
        return "does not hold", "does not hold"
    holding = [c.where for c in comparisons if c.outcome == "holds"]
    if holding:
        return "holds only", (f"holds only for {_where_list(holding)} "
                              f"({len(holding)} of {len(comparisons)})")
    undecided = outcomes.count("inconclusive")
    return "inconclusive", (f"inconclusive: {undecided} of {len(comparisons)} within the noise, "
                            "the rest contradict the claim" if undecided < len(outcomes)
                            else "inconclusive: the differences are within the noise")


def _where_list(wheres: list[str]) -> str:
    """"size=4KiB, 16KiB, 64KiB": one axis is named once; long lists keep their ends."""
    keys = {w.split("=", 1)[0] for w in wheres}
    if len(keys) == 1 and all(w.count("=") == 1 for w in wheres):
        wheres = [wheres[0], *(w.split("=", 1)[1] for w in wheres[1:])]
    return ", ".join(wheres) if len(wheres) <= 10 else f"{wheres[0]} … {wheres[-1]}"


def _matches(params: Mapping[str, Value], selector: tuple[tuple[str, Value], ...]) -> bool:
    return all(params[key] == value for key, value in selector)


def _where(params: Mapping[str, Value], keys: Sequence[str]) -> str:
    return " ".join(f"{key}={BY_KEY[key].format(params[key])}" for key in keys) or "all"


def evaluate(check: CheckSpec, samples: pd.DataFrame, scenarios: Sequence[Mapping[str, Any]],
             label_keys: Sequence[str]) -> Verdict:
    """Judge one check against the measured samples of one run.

    `scenarios` are the manifest's entries (id, label, params by Scenario field), in plan order.
    """
    selector_keys = {key for key, _ in (*check.candidate, *check.reference)}
    shared = [key for key in label_keys if key not in selector_keys]
    by_key = [({p.key: s["params"][p.field] for p in BY_KEY.values()}, s) for s in scenarios]
    references = {tuple(params[k] for k in shared): s for params, s in by_key
                  if _matches(params, check.reference)}
    values = {sid: group[check.metric].to_numpy(dtype=float)
              for sid, group in samples.groupby("scenario_id", sort=False)}
    if check.value is not None:  # every candidate against the same fixed value
        constant = {"id": "", "label": f"{check.value:g}"}
        values[""] = np.array([check.value])
    pairs = []
    for params, candidate in by_key:
        if not _matches(params, check.candidate):
            continue
        reference = (constant if check.value is not None
                     else references.get(tuple(params[k] for k in shared)))
        if reference is None or reference["id"] == candidate["id"]:
            continue
        a, b = values.get(candidate["id"]), values.get(reference["id"])
        if a is not None and b is not None and len(a) and len(b):
            pairs.append((params, candidate, reference, a, b))
    # Name each pair by the axes that tell pairs apart, not by those the same for all.
    varying = [k for k in shared if len({params[k] for params, *_ in pairs}) > 1]
    comparisons = []
    for params, candidate, reference, a, b in pairs:
        difference = bool(np.median(b) == 0)
        point, low, high = (bootstrap_difference_ci if difference else bootstrap_ratio_ci)(a, b)
        comparisons.append(Comparison(
            _where(params, varying), candidate["label"], reference["label"],
            float(np.median(a)), float(np.median(b)), point, low, high,
            judge(check.expect, low, high, check.tolerance, 0.0 if difference else 1.0),
            difference))
    status, text = conclude(comparisons)
    return Verdict(check, status, text, tuple(comparisons))
