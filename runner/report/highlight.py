"""Which cells of a run's summary table are highlighted: only noise that can change a conclusion.

Every cell shows its robust coefficient of variation in its tooltip. A cell is highlighted when
its spread can change a conclusion drawn from it, and only then:

  check       it is the candidate or the reference of a check pair, on the cell's metric,
              left undecided because the pair's interval straddles the edge of the band (not
              because the processes were too few for an interval at all): more processes would
              decide it, either way.
  ordering    its robust CV exceeds runner.analysis.stats.NOISY_CV (10%) and, on a chart of its
              metric, its quartile range overlaps that of the series drawn next to it (the
              nearest median above or below at the same x) while the two medians differ by
              more than ORDER_MARGIN: a reader would rank the two, and their spread cannot
              say which is larger.

Noise alone is not enough: a noisy cell far from every value it is compared with, or one of
two values that are equal anyway, leads to the same conclusion at any spread (runner.analysis.noise
still warns about run-wide variation). Pure: summaries, charts and verdicts in, reasons out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from runner.analysis.stats import Summary
from runner.analysis.verdict import Verdict
from runner.core.model import ChartSpec
from runner.core.parameters import BY_KEY

# Medians closer than this read as "about the same" (the checks' default band): their order is
# no conclusion, so an overlap between them changes none.
ORDER_MARGIN = 0.05

Cell = tuple[str, str]  # (scenario id, metric)


def _check_reasons(verdicts: Sequence[Verdict], ids: Mapping[str, str],
                   metrics: Sequence[str]) -> dict[Cell, str]:
    reasons: dict[Cell, str] = {}
    for result in verdicts:
        metric = result.check.metric
        if metric not in metrics:
            continue
        for pair in result.comparisons:
            if pair.outcome != "undecided" or pair.note:
                continue
            why = (f"the check \u201c{result.check.claim}\u201d is undecided at {pair.where}: "
                   "the interval straddles the band")
            for label in (pair.candidate_label, pair.reference_label):
                if label in ids:  # not a fixed reference value
                    reasons.setdefault((ids[label], metric), why)
    return reasons


def _overlap(lower: Summary, upper: Summary) -> bool:
    """Do the quartile ranges of two summaries, `lower` with the smaller median, overlap
    while their medians differ by more than ORDER_MARGIN?"""
    scale = max(abs(lower.median), abs(upper.median))
    apart = upper.median - lower.median > ORDER_MARGIN * scale
    return apart and lower.q3 >= upper.q1


def _chart_groups(chart: ChartSpec, scenarios: Sequence[Mapping[str, Any]]
                  ) -> list[list[Mapping[str, Any]]]:
    """The chart's scenarios by x value: those drawn at one x, side by side."""
    x_field = BY_KEY[chart.x].field
    groups: dict[object, list[Mapping[str, Any]]] = {}
    for scenario in scenarios:
        params = scenario["params"]
        if all(params[BY_KEY[key].field] == value for key, value in chart.where):
            groups.setdefault(params[x_field], []).append(scenario)
    return list(groups.values())


def _ordering_reasons(charts: Sequence[ChartSpec], scenarios: Sequence[Mapping[str, Any]],
                      summaries: Mapping[Cell, Summary]) -> dict[Cell, str]:
    reasons: dict[Cell, str] = {}
    for chart in charts:
        for group in _chart_groups(chart, scenarios):
            drawn = [(s, summaries[s["id"], chart.metric]) for s in group
                     if (s["id"], chart.metric) in summaries
                     and summaries[s["id"], chart.metric].n > 0]
            drawn.sort(key=lambda item: (item[1].median, item[0]["id"]))
            for (low, low_summary), (high, high_summary) in pairwise(drawn):
                if not _overlap(low_summary, high_summary):
                    continue
                for this, other, summary in ((low, high, low_summary),
                                             (high, low, high_summary)):
                    if summary.noisy:
                        reasons.setdefault((this["id"], chart.metric), (
                            f"its quartiles overlap those of {other['label']}, so which is "
                            "larger is unsure"))
    return reasons


def noisy_cells(summaries: Mapping[Cell, Summary], scenarios: Sequence[Mapping[str, Any]],
                charts: Sequence[ChartSpec], verdicts: Sequence[Verdict],
                metrics: Sequence[str]) -> dict[Cell, str]:
    """The cells to highlight, each with why (module docstring); `scenarios` are the
    manifest's (id, label, params by field), `metrics` the table's columns."""
    ids = {str(s["label"]): str(s["id"]) for s in scenarios}
    reasons = _ordering_reasons([c for c in charts if c.metric in metrics], scenarios,
                                summaries)
    reasons.update(_check_reasons(verdicts, ids, metrics))  # the check is the stronger reason
    return reasons


def cell_title(summary: Summary, reason: str | None) -> str:
    """A cell's tooltip: its robust CV always, and why it is highlighted when it is."""
    cv = f"robust CV {summary.cv:.0%}" if summary.n > 1 else "robust CV – (one sample)"
    if summary.n == 0:
        return "no samples"
    return f"{cv}: noise can change a conclusion here — {reason}" if reason else cv
