"""A check pair judged round by round: paired processes, looks after each batch, a stop rule.

A run measures process k of every scenario in round k, a candidate and its reference next to
each other (runner.measure.schedule). The two processes of one round are a pair: the log of their
ratio (the difference, where the reference is zero) is one paired observation, in which the
machine's slow and fast spells cancel. Judged on those: the Hodges–Lehmann estimate with the
signed-rank interval (runner.analysis.stats.paired_interval); a check against a fixed value takes
the candidate's processes alone, with the median's sign-test interval.

A pair is looked at after the run's base rounds and, while it is undecided, after each further
batch of rounds the run measures for it (runner.analysis.adaptive), up to the most rounds its check
allows: looks at `base`, `base + batch`, ... `most` rounds. The first look that decides stops
it. Looking several times and stopping at the first decision would make a 95% interval miss
more often than 5%; every look is therefore made at confidence 1 - 5%/K for K planned looks
(Bonferroni), so the chance that any look's interval misses the true ratio is at most 5%
whatever the data, however the looks are used. A group-sequential boundary (Pocock,
O'Brien–Fleming) would be sharper but rests on the joint normality of the looks' statistics,
which rank statistics of a dozen processes do not have; an anytime-valid confidence sequence
allows unlimited looks but is wider than Bonferroni at the three to five looks used here.

Pure: values in, decisions out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from runner.analysis.stats import Shift, median_interval, paired_interval
from runner.core.model import Looks

Outcome = Literal["holds", "contradicts", "undecided"]
# Why a pair's judging ended: a look decided it; it was still undecided at the most rounds its
# check allows; or the run measured no more rounds for it (the run's extra time was spent,
# extra rounds were off, or the run is not finished).
Stop = Literal["decided", "most", "measured"]
Design = Literal["paired", "one-sample"]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Decision:
    """How a pair's judging ended, with the interval of the look that ended it."""

    outcome: Outcome
    shift: Shift  # ratio (or difference) with its interval at that look; NaN: no interval
    difference: bool  # judged on differences (the reference is zero), not ratios
    pairs: int  # paired rounds (one-sample: processes) that look used
    look: int  # 1-based; 0 when no look had data
    looks: Looks
    stop: Stop
    design: Design

    @property
    def decided(self) -> bool:
        return self.outcome != "undecided"


def judge(expect: str, ci_low: float, ci_high: float, tolerance: float,
          center: float = 1.0) -> Outcome:
    """Decide one look from the interval of candidate/reference (center 1) or of
    candidate - reference (center 0, the tolerance then in the metric's own unit)."""
    low_band, high_band = center - tolerance, center + tolerance
    if expect == "lower":
        if ci_high < low_band:
            return "holds"
        return "contradicts" if ci_low >= low_band else "undecided"
    if expect == "higher":
        if ci_low > high_band:
            return "holds"
        return "contradicts" if ci_high <= high_band else "undecided"
    if expect == "no-higher":
        if ci_high <= high_band:
            return "holds"
        return "contradicts" if ci_low > high_band else "undecided"
    if expect == "no-lower":
        if ci_low >= low_band:
            return "holds"
        return "contradicts" if ci_high < low_band else "undecided"
    if low_band <= ci_low and ci_high <= high_band:
        return "holds"
    return "contradicts" if ci_high < low_band or ci_low > high_band else "undecided"


def paired_shift(candidate: Floats, reference: Floats, confidence: float) -> tuple[Shift, bool]:
    """The interval of one look's paired rounds: of the ratio (exp of the log differences), or
    of the raw differences when the reference's median is zero (a ratio means nothing there:
    the tolerance is then in the metric's unit), or relative to the reference's median when
    some value is zero or negative. Second value: judged on differences."""
    center = float(np.median(reference))
    if center == 0:
        return paired_interval(candidate - reference, confidence), True
    if np.all(candidate > 0) and np.all(reference > 0):
        logs = paired_interval(np.log(candidate) - np.log(reference), confidence)
        return Shift(math.exp(logs.estimate), math.exp(logs.low), math.exp(logs.high),
                     logs.coverage), False
    raw = paired_interval(candidate - reference, confidence)
    scale = abs(center)
    return Shift(1 + raw.estimate / scale, 1 + raw.low / scale, 1 + raw.high / scale,
                 raw.coverage), False


def value_shift(candidate: Floats, value: float, confidence: float) -> tuple[Shift, bool]:
    """The interval of one look's candidate processes against a fixed value: the median's
    sign-test interval, as a ratio to the value (a difference from it when it is zero)."""
    median = median_interval(candidate, confidence)
    if value == 0:
        return median, True
    low, high = sorted((median.low / value, median.high / value))
    return Shift(median.estimate / value, low, high, median.coverage), False


def decide(candidate: Mapping[int, float], reference: Mapping[int, float] | None,
           value: float, expect: str, tolerance: float, looks: Looks) -> Decision:
    """Judge a pair look by look: `candidate` and `reference` map round -> the process's value
    (a round one side lacks, say a crashed process, is left out); reference None: the
    candidate against the fixed `value`."""
    design: Design = "one-sample" if reference is None else "paired"
    confidence = looks.confidence
    paired = sorted(r for r in candidate if reference is None or r in reference)
    last: Decision | None = None
    previous = 0
    for look, count in enumerate(looks.rounds, start=1):
        if look > 1 and not any(r >= previous for r in paired):
            break  # the run measured no round past the last look
        previous = count
        rounds = [r for r in paired if r < count]
        if not rounds:
            continue
        a = np.array([candidate[r] for r in rounds], dtype=np.float64)
        if reference is None:
            shift, difference = value_shift(a, value, confidence)
        else:
            b = np.array([reference[r] for r in rounds], dtype=np.float64)
            shift, difference = paired_shift(a, b, confidence)
        outcome: Outcome = "undecided"
        if not math.isnan(shift.low):
            outcome = judge(expect, shift.low, shift.high, tolerance,
                            0.0 if difference else 1.0)
        last = Decision(outcome, shift, difference, len(rounds), look, looks,
                        "decided" if outcome != "undecided" else "most", design)
        if outcome != "undecided":
            return last
    if last is None:
        nan = math.nan
        return Decision("undecided", Shift(nan, nan, nan, nan), False, 0, 0, looks,
                        "measured", design)
    if last.look < len(looks.rounds):
        return Decision(last.outcome, last.shift, last.difference, last.pairs, last.look,
                        looks, "measured", design)
    return last
