"""Checks -> verdicts: does the data support each claim, where, and by how much.

A check names candidate and reference scenarios (or a fixed reference value), optionally
limited by a `where`. Each candidate pairs with the reference that agrees with it on every other
labelled parameter (size, say; runner.core.scope), and each pair is judged one of two ways.

Statistical (timings; the default for metrics not in runner.core.metrics.DETERMINISTIC), paired:
each fresh process counts once, by the median (or, with `statistic: minimum`, the minimum) of its
iterations, and the candidate's process of round k is paired with the reference's process of the
same round, run next to it (runner.measure.schedule). The ratio candidate / reference is the
Hodges–Lehmann estimate of the paired log ratios, exponentiated, with the interval that inverts the
signed-rank test; against a fixed value, the median of the candidate's processes and its sign-test
interval. A pair is looked at after the run's base rounds and after each batch of extra rounds the
run measured for it, at confidence 1 - 5%/K for K planned looks, and the first look that decides it
stops it (runner.analysis.sequential). Against the band [1 - tolerance, 1 + tolerance]:

  expect lower   holds when the whole interval lies below 1 - tolerance; contradicts when
                 the whole interval lies at or above it; otherwise undecided
  expect higher  the mirror image, around 1 + tolerance
  expect same    holds when the interval lies inside the band; contradicts when it lies
                 wholly outside; otherwise undecided
  expect no-higher  ("costs no more than": one-sided) holds when the whole interval lies at or
                 below 1 + tolerance; contradicts when the whole interval lies above it;
                 otherwise undecided
  expect no-lower   the mirror image, around 1 - tolerance

Samples too small for an interval at all leave the pair undecided, and the verdict says how
many processes would do. Where the reference's statistic is zero a ratio means nothing: the
difference is judged instead (Hodges–Lehmann estimate of the paired differences), the
tolerance then a band of ±tolerance in the metric's own unit around zero.

Exact (deterministic facts: faults counted, flags, addresses, sizes): every sample of every
process counts, with no interval. Bands as above around each reference sample (in the metric's
unit when a reference sample is zero or negative):

  expect lower   holds when the candidate's largest sample lies below the band of the
                 reference's smallest; contradicts when its smallest lies at or above the band
                 of the reference's largest; otherwise undecided (the ranges overlap)
  expect higher  the mirror image
  expect no-higher  holds when the candidate's largest sample lies at or below the band of
                 the reference's smallest; contradicts when its smallest lies above the band of
                 the reference's largest; otherwise undecided (no-lower: the mirror image)
  expect same    holds when every candidate sample lies in the band of every reference sample;
                 contradicts when one lies outside the band of them all (a fact that fails
                 once fails); otherwise undecided (the reference itself spreads wider)

The verdict over the pairs (counts in its text): holds (no pair contradicts and some hold; its
text says "where decided" when others are undecided), does not hold (no pair holds and some
contradict; likewise "does not hold where decided"), holds only for X (some hold, some
contradict: naming where each, and where it is undecided), inconclusive (no pair decided), no
data (no pair). Along an ordered
parameter (size, threads...), a single change from contradicted to holding names the crossover.
Pure: samples in, verdicts out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from runner.analysis.adaptive import check_looks, stored_looks
from runner.analysis.frame import with_outcomes
from runner.analysis.sequential import Decision, Outcome, decide, judge
from runner.analysis.stats import processes_needed
from runner.core.kinds import Value
from runner.core.metrics import method_of
from runner.core.model import CheckSpec, Looks, Method, Quantifier, one_look
from runner.core.parameters import BY_KEY
from runner.core.scope import pair_up

if TYPE_CHECKING:
    from runner.core.model import ExperimentSpec
    from runner.store.folders import StoredRun

# Re-exported: one rule for a look's interval (runner.analysis.sequential), one for the method, one
# for the looks of a check (runner.analysis.adaptive).
__all__ = ["check_looks", "judge", "method_of"]
# The verdict is one of four answers (or no data). Where some pairs stayed undecided and the
# decided ones agree, the answer is still holds or does not hold, and its text says "where
# decided" with the counts: which pairs the noise left open is a matter of degree, not a
# different answer, so two runs of one suite agree on the answer while the counts may move.
Status = Literal["holds", "does not hold", "holds only", "inconclusive", "no data"]
STATUSES: tuple[Status, ...] = ("holds", "holds only", "does not hold", "inconclusive",
                                "no data")
# parameters whose values have an order a crossover follows
ORDERED_KINDS = ("size", "whole", "share")
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Comparison:
    """One candidate scenario against its reference, at one point of the other parameters."""

    where: str
    candidate_label: str
    reference_label: str
    candidate_median: float
    reference_median: float
    ratio: float  # candidate / reference; with `difference`, candidate - reference
    ci_low: float  # NaN: no interval (too few processes)
    ci_high: float
    outcome: Outcome
    difference: bool = False  # the reference is zero, where a ratio means nothing
    candidate_minimum: float = math.nan
    reference_minimum: float = math.nan
    candidate_maximum: float = math.nan  # with the minima: the sample ranges of an exact pair
    reference_maximum: float = math.nan
    candidate_n: int = 0  # processes
    reference_n: int = 0
    method: Method = "statistical"
    coverage: float = math.nan  # of the interval (statistical), NaN for exact comparisons
    point: tuple[tuple[str, Value], ...] = ()  # the parameters that tell pairs apart
    note: str = ""  # why a pair is undecided when it is not the noise
    # How a statistical pair was judged (runner.analysis.sequential): paired rounds or one sample
    # against a value, how many rounds (processes) the deciding look used, which look of how
    # many planned, why judging stopped, and each look's confidence. Exact: "exact".
    design: str = "exact"
    candidate_id: str = ""  # the scenarios' ids
    reference_id: str = ""  # "" against a fixed value
    pairs: int = 0
    look: int = 0
    looks: int = 0
    stop: str = "exact"
    confidence: float = math.nan


@dataclass(frozen=True)
class Crossover:
    """Where a claim stops being contradicted and starts holding along an ordered parameter."""

    parameter: str
    group: str  # the other parameters that vary, "" when none does
    holds_above: bool  # holds from `after` up (True), or up to `before` (False)
    before: str  # the last decided value on one side
    after: str  # the first decided value on the other
    text: str


@dataclass(frozen=True)
class Verdict:
    check: CheckSpec
    status: Status
    text: str
    comparisons: tuple[Comparison, ...]
    method: Method = "statistical"
    crossovers: tuple[Crossover, ...] = ()
    noise_floor: float | None = None  # widest relative half-interval among the pairs
    note: str = ""

    def count(self, outcome: Outcome) -> int:
        return sum(1 for c in self.comparisons if c.outcome == outcome)


def judge_exact(expect: str, candidate: Floats, reference: Floats, tolerance: float) -> Outcome:
    """Decide one pair of deterministic samples, every sample counting (module docstring)."""
    difference = bool(np.any(reference <= 0))

    def low(r: float) -> float:
        return r - tolerance if difference else r * (1 - tolerance)

    def high(r: float) -> float:
        return r + tolerance if difference else r * (1 + tolerance)

    c_min, c_max = float(candidate.min()), float(candidate.max())
    r_min, r_max = float(reference.min()), float(reference.max())
    if expect == "lower":
        if c_max < low(r_min):
            return "holds"
        return "contradicts" if c_min >= low(r_max) else "undecided"
    if expect == "higher":
        if c_min > high(r_max):
            return "holds"
        return "contradicts" if c_max <= high(r_min) else "undecided"
    if expect == "no-higher":
        if c_max <= high(r_min):
            return "holds"
        return "contradicts" if c_min > high(r_max) else "undecided"
    if expect == "no-lower":
        if c_min >= low(r_max):
            return "holds"
        return "contradicts" if c_max < low(r_min) else "undecided"
    if c_min >= low(r_max) and c_max <= high(r_min):
        return "holds"
    return "contradicts" if c_max > high(r_max) or c_min < low(r_min) else "undecided"


def _counts(comparisons: Sequence[Comparison]) -> tuple[int, int, int]:
    outcomes = [c.outcome for c in comparisons]
    return (outcomes.count("holds"), outcomes.count("contradicts"),
            outcomes.count("undecided"))


def conclude(comparisons: Sequence[Comparison], crossovers: Sequence[Crossover] = (),
             quantifier: Quantifier = "all") -> tuple[Status, str]:
    """The verdict over every pair, in words, with its counts (`quantifier` some: an
    existence claim, which one pair showing it proves)."""
    if not comparisons:
        return "no data", "no data: no candidate/reference pair was measured"
    holds, contradicts, undecided = _counts(comparisons)
    total = len(comparisons)
    if quantifier == "some":
        return _conclude_some(comparisons, holds, contradicts, undecided)
    if holds == total:
        return "holds", f"holds ({total} of {total})"
    if contradicts == total:
        return "does not hold", f"does not hold ({total} of {total} contradict)"
    if holds == contradicts == 0:
        why = ("too few processes for an interval" if all(c.note for c in comparisons)
               else "the differences are within the noise")
        return "inconclusive", f"inconclusive: {total} of {total} undecided ({why})"
    if contradicts == 0:
        return "holds", f"holds where decided ({holds} hold, {undecided} undecided)"
    if holds == 0:
        return "does not hold", (f"does not hold where decided ({contradicts} contradict, "
                                 f"{undecided} undecided)")
    text = (f"holds only for {_where_list(comparisons, 'holds')} ({holds} of {total}; "
            f"contradicted at {_where_list(comparisons, 'contradicts')}")
    if undecided:
        text += f"; undecided at {_where_list(comparisons, 'undecided')}"
    text += ")"
    if crossovers:
        text += "; " + "; ".join(c.text for c in crossovers)
    return "holds only", text


def _conclude_some(comparisons: Sequence[Comparison], holds: int, contradicts: int,
                   undecided: int) -> tuple[Status, str]:
    """An existence claim: it holds where any pair shows it, whatever the others do (they
    are named: where it is not shown is part of the answer); it does not hold only when every
    pair contradicts it; otherwise no pair could tell."""
    total = len(comparisons)
    if holds:
        text = f"holds: shown at {_where_list(comparisons, 'holds')} ({holds} of {total}"
        if contradicts:
            text += f"; not at {_where_list(comparisons, 'contradicts')}"
        if undecided:
            text += f"; undecided at {_where_list(comparisons, 'undecided')}"
        return "holds", text + ")"
    if contradicts == total:
        return "does not hold", f"does not hold ({total} of {total} contradict)"
    return "inconclusive", (f"inconclusive: not shown at any of {total} ({contradicts} "
                            f"contradict, {undecided} undecided)")


def _where_list(comparisons: Sequence[Comparison], outcome: Outcome) -> str:
    """"size=4KiB, 16KiB, 64KiB": one axis is named once; long lists keep their ends."""
    wheres = [c.where for c in comparisons if c.outcome == outcome]
    keys = {w.split("=", 1)[0] for w in wheres}
    if len(keys) == 1 and all(w.count("=") == 1 for w in wheres):
        wheres = [wheres[0], *(w.split("=", 1)[1] for w in wheres[1:])]
    return ", ".join(wheres) if len(wheres) <= 10 else f"{wheres[0]} … {wheres[-1]}"


def find_crossovers(comparisons: Sequence[Comparison]) -> tuple[Crossover, ...]:
    """Along each ordered parameter that varies, per value of the other varying parameters:
    a single change between contradicted and holding (undecided pairs in between are passed
    over, and then widen the stretch where the change lies)."""
    if not comparisons:
        return ()
    keys = [key for key, _ in comparisons[0].point]
    found = []
    for key in keys:
        if BY_KEY[key].kind not in ORDERED_KINDS:
            continue
        groups: dict[tuple[tuple[str, Value], ...], list[Comparison]] = {}
        for c in comparisons:
            rest = tuple((k, v) for k, v in c.point if k != key)
            groups.setdefault(rest, []).append(c)
        for rest, members in groups.items():
            crossover = _crossover(key, rest, members)
            if crossover is not None:
                found.append(crossover)
    return tuple(found)


def _crossover(key: str, rest: tuple[tuple[str, Value], ...],
               members: list[Comparison]) -> Crossover | None:
    decided = sorted(((int(dict(c.point)[key]), c.outcome) for c in members
                      if c.outcome != "undecided"), key=lambda item: item[0])
    changes = [i for i in range(1, len(decided)) if decided[i][1] != decided[i - 1][1]]
    if len(changes) != 1:
        return None
    (before, first), (after, _) = decided[changes[0] - 1], decided[changes[0]]
    parameter = BY_KEY[key]
    group = " ".join(f"{k}={BY_KEY[k].format(v)}" for k, v in rest)
    holds_above = first == "contradicts"
    before_text, after_text = parameter.format(before), parameter.format(after)
    where = (f"from {key}={after_text} up" if holds_above
             else f"up to {key}={before_text}")
    text = (f"{group + ': ' if group else ''}holds {where} (the sign changes between "
            f"{before_text} and {after_text})")
    return Crossover(key, group, holds_above, before_text, after_text, text)


def noise_floor(comparisons: Sequence[Comparison]) -> float | None:
    """The widest relative half-interval among the ratio pairs with an interval: differences
    below ±this much cannot be told apart here (None: no such pair)."""
    widths = [math.sqrt(c.ci_high / c.ci_low) - 1 for c in comparisons
              if not c.difference and c.ci_low > 0 and math.isfinite(c.ci_high)]
    return max(widths) if widths else None


def _process_values(samples: pd.DataFrame, metric: str) -> dict[str, dict[int, Floats]]:
    """Per scenario, per process index (its round): the process's samples of `metric` (NaN
    dropped), scenarios in order of first appearance."""
    values: dict[str, dict[int, Floats]] = {}
    if "process_index" not in samples:  # every sample its own process, as they come
        samples = samples.assign(process_index=samples.groupby("scenario_id").cumcount())
    # Split one column by group number rather than build a frame per group (thousands of
    # processes): a stable sort keeps each group's rows in frame order.
    groups = samples.groupby(["scenario_id", "process_index"], sort=False)
    if not groups.ngroups:
        return values
    number = groups.ngroup().to_numpy()
    order = np.argsort(number, kind="stable")
    column = samples[metric].to_numpy(dtype=float)[order]
    bounds = np.cumsum(np.bincount(number, minlength=groups.ngroups))[:-1]
    for (sid, process), data in zip(groups.size().index, np.split(column, bounds), strict=True):
        data = data[~np.isnan(data)]
        if len(data):
            values.setdefault(str(sid), {})[int(process)] = data
    return values


def _exact(check: CheckSpec, candidate: Floats,
           reference: Floats) -> tuple[float, float, float, bool, Outcome]:
    """Point, range over every sample pair, difference or ratio, and the outcome."""
    difference = bool(np.any(reference <= 0))
    if difference:
        point = float(np.median(candidate) - np.median(reference))
        low = float(candidate.min() - reference.max())
        high = float(candidate.max() - reference.min())
    else:
        point = float(np.median(candidate) / np.median(reference))
        low = float(candidate.min() / reference.max())
        high = float(candidate.max() / reference.min())
    return point, low, high, difference, judge_exact(check.expect, candidate, reference,
                                                     check.tolerance)


def evaluate(check: CheckSpec, samples: pd.DataFrame, scenarios: Sequence[Mapping[str, Any]],
             label_keys: Sequence[str], looks: Looks | None = None) -> Verdict:
    """Judge one check against the measured samples of one run.

    `scenarios` are the manifest's entries (id, label, params by Scenario field), in plan order;
    `samples` has scenario_id, process_index and the metric's column. `looks`: when the run
    looked at its pairs (runner.analysis.sequential); None: once, after every round measured.
    """
    params = [{p.key: s["params"][p.field] for p in BY_KEY.values()} for s in scenarios]
    pairing = pair_up(check, params, label_keys)
    values = _process_values(samples, check.metric)
    measured = [(i, j) for i, j in pairing.pairs
                if scenarios[i]["id"] in values and (j is None or scenarios[j]["id"] in values)]
    # Name each pair by the parameters that tell pairs apart, not by those the same for all.
    varying = [k for k in pairing.shared if len({params[i][k] for i, _ in measured}) > 1]
    method = method_of(check)
    if looks is None:
        rounds = max((max(v) + 1 for v in values.values() if v), default=1)
        looks = one_look(rounds)
    comparisons = [_compare(check, method, scenarios, params, values, i, j, varying,
                            check_looks(check, looks)) for i, j in measured]
    crossovers = find_crossovers(comparisons)
    status, text = conclude(comparisons, crossovers, check.quantifier)
    return Verdict(check, status, text, tuple(comparisons), method, crossovers,
                   noise_floor(comparisons), _too_few_note(comparisons))


def _too_few_note(comparisons: Sequence[Comparison]) -> str:
    """One sentence for every pair too small for an interval: how small, and what would do."""
    short = [c for c in comparisons if c.note]
    if not short:
        return ""
    sizes = sorted({(c.pairs, c.design) for c in short}, reverse=True)
    shown = ", ".join(f"{n} paired rounds" if design == "paired" else f"{n} processes alone"
                      for n, design in sizes)
    widest = min(short, key=lambda c: c.confidence)
    needed = processes_needed(widest.confidence, one_sample=widest.design == "one-sample")
    return (f"{len(short)} of {len(comparisons)} pairs had too few processes for a "
            f"{percent(widest.confidence)} interval ({shown}): run at least {needed} per "
            "scenario")


def percent(confidence: float) -> str:
    """95%, 98.75%: a confidence as people write it."""
    return f"{confidence * 100:.4g}%"


def _statistic(check: CheckSpec, processes: Mapping[int, Floats]) -> dict[int, float]:
    """Each process's value: the median (or minimum) of its iterations, by round."""
    summarize = np.min if check.statistic == "minimum" else np.median
    return {r: float(summarize(v)) for r, v in processes.items()}


def _why_undecided(decision: Decision) -> str:
    """Why a pair has no interval at all (too few rounds), else ""."""
    if not math.isnan(decision.shift.low):
        return ""
    confidence = decision.looks.confidence
    one_sample = decision.design == "one-sample"
    needed = processes_needed(confidence, one_sample=one_sample)
    what = (f"{decision.pairs} processes" if one_sample
            else f"{decision.pairs} paired rounds")
    return (f"{what} cannot give a {percent(confidence)} interval: run at least {needed} per "
            "scenario")


def _compare(check: CheckSpec, method: Method, scenarios: Sequence[Mapping[str, Any]],
             params: Sequence[Mapping[str, Value]], values: Mapping[str, Mapping[int, Floats]],
             i: int, j: int | None, varying: Sequence[str], looks: Looks) -> Comparison:
    candidate = values[scenarios[i]["id"]]
    reference = None if j is None else values[scenarios[j]["id"]]
    a = np.concatenate(list(candidate.values()))
    b = (np.array([float(check.value or 0.0)]) if reference is None
         else np.concatenate(list(reference.values())))
    point = tuple((k, params[i][k]) for k in varying)
    where = " ".join(f"{k}={BY_KEY[k].format(v)}" for k, v in point) or "all"
    label = f"{check.value:g}" if j is None else scenarios[j]["label"]
    common: dict[str, Any] = {
        "where": where, "candidate_label": scenarios[i]["label"], "reference_label": label,
        "candidate_median": float(np.median(a)), "reference_median": float(np.median(b)),
        "candidate_minimum": float(a.min()), "reference_minimum": float(b.min()),
        "candidate_maximum": float(a.max()), "reference_maximum": float(b.max()),
        "candidate_n": len(candidate), "reference_n": 0 if reference is None else len(reference),
        "method": method, "point": point, "candidate_id": scenarios[i]["id"],
        "reference_id": "" if j is None else scenarios[j]["id"],
    }
    if method == "exact":
        estimate, low, high, difference, outcome = _exact(check, a, b)
        return Comparison(ratio=estimate, ci_low=low, ci_high=high, outcome=outcome,
                          difference=difference, pairs=len(a), **common)
    decision = decide(_statistic(check, candidate),
                      None if reference is None else _statistic(check, reference),
                      float(check.value or 0.0), check.expect, check.tolerance, looks)
    shift = decision.shift
    return Comparison(ratio=shift.estimate, ci_low=shift.low, ci_high=shift.high,
                      outcome=decision.outcome, difference=decision.difference,
                      coverage=shift.coverage, note=_why_undecided(decision),
                      design=decision.design, pairs=decision.pairs, look=decision.look,
                      looks=len(looks.rounds), stop=decision.stop,
                      confidence=looks.confidence, **common)


def run_verdicts(run: StoredRun, experiment: ExperimentSpec,
                 samples: pd.DataFrame) -> list[Verdict]:
    """Every check of the experiment judged on the run's measured samples (and how its
    processes ended: runner.analysis.frame.with_outcomes), with the looks the run took at its
    pairs."""
    looks: Looks | None = stored_looks(run.manifest)
    samples = with_outcomes(samples, run)
    return [evaluate(check, samples, run.manifest["scenarios"],
                             run.manifest["label_keys"], looks) for check in experiment.checks]
