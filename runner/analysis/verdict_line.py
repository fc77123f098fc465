"""A verdict in one console line, with the numbers that decide it, as hyperfine says "1.52 ±
0.03 times faster":

    does not hold: mmap-file 1.31× read-file [1.22–1.40] at size=4KiB; 1.02× [0.97–1.08] at
    size=256MiB — mmap reads a file faster than read()

Which pairs: those whose outcome makes the status (holds: the holding pairs; does not hold:
the contradicting ones; inconclusive: the undecided ones), the two at the ends of their range
of ratios; holds only: the clearest holding pair and the clearest contradicting one. The other
pairs are counted ("and 3 more: 1 hold, 2 undecided"). Each pair gives its ratio candidate /
reference with the interval, or the difference in the metric's unit where the reference is
zero, or for an exact check both sample ranges; its labels keep only what tells candidate and
reference apart, and where the pair lies follows "at". A pair naming the same two as the one
before it leaves the names out.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from runner.analysis.verdict import Comparison, Verdict
from runner.core.kinds import Value
from runner.core.metrics import format_value
from runner.core.parameters import BY_KEY

# The outcomes of the pairs that make each status, and how many pairs of each are shown.
_DECIDING: dict[str, tuple[str, ...]] = {
    "holds": ("holds",), "does not hold": ("contradicts",),
    "holds only": ("holds", "contradicts"), "inconclusive": ("undecided",)}
_COUNT_WORDS = (("holds", "hold"), ("contradicts", "contradict"), ("undecided", "undecided"))


def summary_line(verdict: Verdict) -> str:
    """"<status>: <the deciding pairs, with numbers>[; and N more (counts)] — <claim>"."""
    claim = verdict.check.claim
    comparisons = verdict.comparisons
    shown = decisive_pairs(verdict)
    if not shown:
        return f"{verdict.status}: no candidate/reference pair was measured — {claim}"
    selected = {_label_text(key, value) for key, value in verdict.check.candidate}
    parts, previous = [], ("", "")
    for index in shown:
        names = short_names(comparisons[index], selected)
        parts.append(pair_text(verdict.check.metric, comparisons[index],
                               None if names == previous else names))
        previous = names
    rest = [c for i, c in enumerate(comparisons) if i not in shown]
    if rest:
        parts.append(f"and {len(rest)} more ({_counts(rest)})")
    # Too few processes for any interval is fixed by the spec, not by waiting: say how.
    advice = f" ({verdict.note})" if verdict.note and verdict.status == "inconclusive" else ""
    return f"{verdict.status}: {'; '.join(parts)} — {claim}{advice}"


def decisive_pairs(verdict: Verdict) -> list[int]:
    """Indices (in plan order) of the pairs that decide the verdict's status (module docstring)."""
    outcomes = _DECIDING.get(verdict.status, ())
    chosen: set[int] = set()
    for outcome in outcomes:
        indices = [i for i, c in enumerate(verdict.comparisons) if c.outcome == outcome]
        if not indices:
            continue
        if len(outcomes) > 1:  # holds only: the clearest of each side
            chosen.add(max(indices, key=lambda i: _distance(verdict.comparisons[i])))
            continue
        by_ratio = sorted(indices, key=lambda i: _finite(verdict.comparisons[i].ratio))
        chosen.update((by_ratio[0], by_ratio[-1]))
    return sorted(chosen)


def short_names(c: Comparison, selected: Collection[str] = ()) -> tuple[str, str]:
    """(candidate, reference) as the words that tell them apart: "mmap-file", "read-file" of
    "mmap-file 4KiB" and "read-file 4KiB". Against a fixed value, the candidate's words the
    check selects it by (`selected`), else its label without the words that say where the
    pair lies (they follow "at")."""
    candidate, reference = c.candidate_label.split(), c.reference_label.split()
    if not c.reference_id:
        where = {_label_text(key, value) for key, value in c.point}
        chosen = ([w for w in candidate if w in selected]
                  or [w for w in candidate if w not in where])
        return " ".join(chosen) or c.candidate_label, c.reference_label
    only_candidate = [w for w in candidate if w not in reference]
    only_reference = [w for w in reference if w not in candidate]
    if not only_candidate or not only_reference:  # one label inside the other: say both
        return c.candidate_label, c.reference_label
    return " ".join(only_candidate), " ".join(only_reference)


def pair_text(metric: str, c: Comparison, names: tuple[str, str] | None) -> str:
    """One pair's numbers, e.g. "mmap-file 0.69× read-file [0.62–0.78] at size=256MiB";
    without `names`, "0.69× [0.62–0.78] at size=256MiB"; a ratio under SMALL_RATIO as a
    fraction, "malloc 1/221 of mmap-anon [1/266–1/175]"."""
    candidate, reference = names or ("", "")
    if names and not c.reference_id:  # a fixed value: said in the metric's unit
        reference = "" if c.method == "exact" else format_value(metric, c.reference_median)
    if c.method == "exact":
        ranges = (_span(metric, c.candidate_minimum, c.candidate_maximum),
                  _span(metric, c.reference_minimum, c.reference_maximum))
        words = [candidate, ranges[0], "vs", reference, ranges[1]]
    elif c.difference:
        words = [candidate, _signed(metric, c.ratio), *(("vs", reference) if names else ()),
                 _interval(c, [_signed(metric, c.ci_low), " to ", _signed(metric, c.ci_high)])]
    elif 0 < c.ratio < SMALL_RATIO:  # "1/221 of", not "0.00453×"
        words = [candidate, _fraction(c.ratio), "of" if names else "", reference,
                 _interval(c, [_fraction(c.ci_low), "–", _fraction(c.ci_high)]
                           if c.ci_low > 0 else [_ratio(c.ci_low), "–", _ratio(c.ci_high)])]
    else:
        words = [candidate, f"{_ratio(c.ratio)}×", reference,
                 _interval(c, [_ratio(c.ci_low), "–", _ratio(c.ci_high)])]
    text = " ".join(word for word in words if word)
    return text if c.where == "all" else f"{text} at {c.where}"


# Below this a ratio reads as a fraction: "1/221 of" is what "0.00453×" means.
SMALL_RATIO = 0.1


def _interval(c: Comparison, parts: Sequence[str]) -> str:
    return "[no interval]" if math.isnan(c.ci_low) else f"[{''.join(parts)}]"


def _ratio(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "–"


def _fraction(value: float) -> str:
    """1/221, 1/1020: a whole denominator from 100 up, where three digits say it."""
    denominator = 1 / value
    return f"1/{denominator:.0f}" if denominator >= 100 else f"1/{denominator:.3g}"


def _signed(metric: str, value: float) -> str:
    text = format_value(metric, value)
    return text if value < 0 or not math.isfinite(value) else f"+{text}"


def _span(metric: str, low: float, high: float) -> str:
    """A sample range in the metric's unit, one value where every sample agrees."""
    first, last = format_value(metric, low), format_value(metric, high)
    if first == last:
        return first
    return f"{first} to {last}" if low < 0 else f"{first}–{last}"  # not "-0.2–-0.1"


def _distance(c: Comparison) -> float:
    """How far a pair lies from no change: |log ratio|, or |difference|."""
    if c.difference:
        return abs(_finite(c.ratio))
    return abs(math.log(c.ratio)) if math.isfinite(c.ratio) and c.ratio > 0 else 0.0


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _label_text(key: str, value: Value) -> str:
    return BY_KEY[key].label_text(value)


def _counts(comparisons: Sequence[Comparison]) -> str:
    """"1 hold, 2 undecided": the outcomes of the pairs not shown, those there are."""
    return ", ".join(f"{n} {word}" for outcome, word in _COUNT_WORDS
                     if (n := sum(1 for c in comparisons if c.outcome == outcome)))
