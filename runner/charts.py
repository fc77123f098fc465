"""Declared charts -> deterministic SVG: median line and interquartile band per series.

`chart_data` is the pure part (what is plotted, tested directly); `render_svg` only draws it.
Same data gives the same bytes: fixed SVG hash salt, no date, text drawn as paths — so each
SVG also says what it shows in words, in a <title> and a <desc> (`describe_chart`).
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import matplotlib
import matplotlib.text
import numpy as np
import pandas as pd
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.textpath import TextToPath
from matplotlib.ticker import NullLocator

from runner.metrics import BY_NAME, axis_label
from runner.model import ChartSpec
from runner.parameters import BY_KEY, Value
from runner.stats import Summary, summarize


@dataclass(frozen=True)
class Point:
    x: Value
    median: float
    q1: float
    q3: float
    n: int


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class ChartData:
    chart: ChartSpec
    series: tuple[Series, ...]
    series_keys: tuple[str, ...]


def _series_keys(chart: ChartSpec, label_keys: tuple[str, ...]) -> tuple[str, ...]:
    """The declared series, plus every other varying axis, so no points are silently pooled."""
    fixed = {chart.x, *chart.series, *(key for key, _ in chart.where)}
    return (*chart.series, *(key for key in label_keys if key not in fixed))


def _series_label(keys: tuple[str, ...], values: tuple[Value, ...]) -> str:
    return " ".join(BY_KEY[key].label_text(value)
                    for key, value in zip(keys, values, strict=True)) or "all"


def _plain(value: object) -> Value:
    """A pandas group key back as the Python value the spec used (numpy ints are not ints)."""
    native = value.item() if isinstance(value, np.generic) else value
    if isinstance(native, bool | int | str):
        return native
    raise TypeError(f"unexpected parameter value {value!r}")


def chart_data(samples: pd.DataFrame, chart: ChartSpec, label_keys: tuple[str, ...],
               summaries: Mapping[tuple[str, str], Summary] | None = None) -> ChartData:
    """Group measured samples into series of (x, median, quartiles) in scenario order.

    A point of one scenario takes its summary from `summaries` (by scenario id and metric)
    when given; a point pooling several scenarios is summarised here.
    """
    keys = _series_keys(chart, label_keys)
    fields = [BY_KEY[key].field for key in keys]
    x_field = BY_KEY[chart.x].field
    # Only the columns used: filtering and grouping the whole frame copies every column.
    selected = samples[list(dict.fromkeys([
        "scenario_id", chart.metric, x_field, *fields,
        *(BY_KEY[key].field for key, _ in chart.where)]))]
    for key, value in chart.where:
        selected = selected[selected[BY_KEY[key].field] == value]
    series = []
    groups = selected.groupby(fields, sort=False) if fields else [((), selected)]
    for values, group in groups:
        values_tuple = cast(tuple[Value, ...], values if isinstance(values, tuple) else (values,))
        points = []
        for x, at_x in group.groupby(x_field, sort=False):
            summary = _point_summary(at_x, chart.metric, summaries)
            points.append(Point(_plain(x), summary.median, summary.q1, summary.q3, summary.n))
        if BY_KEY[chart.x].kind in NUMERIC_KINDS:
            points.sort(key=lambda p: int(p.x))
        series.append(Series(_series_label(keys, values_tuple), tuple(points)))
    return ChartData(chart, tuple(series), keys)


def _point_summary(at_x: pd.DataFrame, metric: str,
                   summaries: Mapping[tuple[str, str], Summary] | None) -> Summary:
    ids = at_x["scenario_id"].unique()
    if summaries is not None and len(ids) == 1 and (str(ids[0]), metric) in summaries:
        return summaries[str(ids[0]), metric]
    return summarize(at_x[metric].to_numpy(), interval=False)  # a chart shows no CI


NUMERIC_KINDS = ("size", "count", "whole")  # parameters drawn on a numeric x axis


@dataclass(frozen=True)
class _Line:
    """One series as drawn: its points, legend text, colour slot and line style."""

    label: str
    points: tuple[Point, ...]
    colour: int
    style: str = "-"
    band: bool = True


# Units a time or byte axis is shown in, chosen from the largest median plotted.
_TIME_UNITS = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))
_BYTE_UNITS = (("GiB", float(1 << 30)), ("MiB", float(1 << 20)), ("KiB", 1024.0), ("B", 1.0))


def _y_scale(metric: str, lines: Sequence[_Line]) -> tuple[str, float]:
    """The unit to show `metric` in (ms rather than 1e8 ns) and the factor to divide by."""
    unit = BY_NAME[metric].unit
    choices = {"ns": _TIME_UNITS, "bytes": _BYTE_UNITS}.get(unit)
    largest = max((abs(p.median) for line in lines for p in line.points
                   if p.median == p.median), default=0.0)
    if choices is None:
        return unit, 1.0
    return next(((name, factor) for name, factor in choices if largest >= factor),
                choices[-1])


def _as_text(text: str) -> str:
    """Text shown as written: matplotlib reads $...$ in labels as mathematics (and fails on
    some of it), and a tunable's value may hold a dollar sign."""
    return text.replace("$", r"\$")


class _MeasuredTextToPath(TextToPath):
    """matplotlib's text-to-path converter, remembering the size of each text it measured."""

    def __init__(self) -> None:
        super().__init__()
        self._sizes: dict[tuple[str, Any, Any], tuple[float, float, float]] = {}

    def get_text_width_height_descent(self, s: str, prop: Any,
                                      ismath: Any) -> tuple[float, float, float]:
        # FontProperties are mutable: the key holds a copy (matplotlib's own cache does so).
        key = (s, prop.copy(), ismath)
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = super().get_text_width_height_descent(s, prop, ismath)
        return size


_TEXT_TO_PATH = _MeasuredTextToPath()


@contextlib.contextmanager
def _shared_text_to_path() -> Iterator[None]:
    """Every renderer made while drawing converts text with one converter, _TEXT_TO_PATH.

    matplotlib gives each renderer its own, so its own mathtext cache, and a chart makes
    several renderers (tight_layout's, savefig's, and one for each text measured without
    one): every tick label was measured, and each $10^{3}$ parsed, again in each. The same
    text gives the same sizes and paths, so the same bytes, with a quarter less drawing time.
    """
    original = matplotlib.text.TextToPath
    # RendererBase.__init__ looks the class up there; setattr, as mypy sees a class.
    setattr(matplotlib.text, "TextToPath", lambda: _TEXT_TO_PATH)  # noqa: B010
    try:
        yield
    finally:
        setattr(matplotlib.text, "TextToPath", original)  # noqa: B010


def _draw_svg(chart: ChartSpec, lines: Sequence[_Line], legend_title: str | None,
              height_in: float = 4.2) -> str:
    """Median lines (or, for a categorical x, points with quartile bars) as an <svg> element."""
    x_parameter = BY_KEY[chart.x]
    numeric_x = x_parameter.kind in NUMERIC_KINDS
    categories: list[Value] = []
    for line in lines:
        categories += [p.x for p in line.points if p.x not in categories]
    unit, factor = _y_scale(chart.metric, lines)
    with matplotlib.rc_context({"svg.hashsalt": "alloclab", "svg.fonttype": "path",
                                "font.size": 9}), _shared_text_to_path():
        figure = Figure(figsize=(7.5, height_in))
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        for index, line in enumerate(lines):
            colour = colours[line.colour % len(colours)]
            medians = [p.median / factor for p in line.points]
            q1 = [p.q1 / factor for p in line.points]
            q3 = [p.q3 / factor for p in line.points]
            if numeric_x:
                xs = [float(p.x) for p in line.points]
                axes.plot(xs, medians, marker="o", markersize=3, linestyle=line.style,
                          color=colour, label=_as_text(line.label))
                if line.band:
                    axes.fill_between(xs, q1, q3, color=colour, alpha=0.18, linewidth=0)
            else:
                # Categories are not a trend: points side by side with quartile bars, no lines.
                offset = (index - (len(lines) - 1) / 2) * min(0.6 / max(len(lines), 1), 0.15)
                xs = [categories.index(p.x) + offset for p in line.points]
                errors = [[m - lo for m, lo in zip(medians, q1, strict=True)],
                          [hi - m for m, hi in zip(medians, q3, strict=True)]]
                axes.errorbar(xs, medians, yerr=errors, fmt="o", markersize=4, capsize=3,
                              color=colour, label=_as_text(line.label))
        if chart.log_x and numeric_x:
            axes.set_xscale("log", base=2)
        if chart.log_y:
            axes.set_yscale("log")
            positive = [v / factor for line in lines for p in line.points
                        for v in (p.median, p.q1, p.q3) if v > 0]
            if positive:  # whole decades, so every point has a labelled power of ten around it
                low = 10 ** math.floor(math.log10(min(positive)))
                high = 10 ** math.ceil(math.log10(max(positive)))
                axes.set_ylim(low, max(high, low * 10))
        if numeric_x:
            ticks = sorted({float(c) for c in categories})
            axes.set_xticks(ticks, [x_parameter.format(int(t)) for t in ticks])
            axes.xaxis.set_minor_locator(NullLocator())  # size ticks are the measured sizes
        else:
            axes.set_xticks(range(len(categories)),
                            [_as_text(x_parameter.format(c)) for c in categories])
            axes.set_xlim(-0.5, len(categories) - 0.5)
        axes.set_xlabel(chart.x)
        axes.set_ylabel(textwrap.fill(axis_label(chart.metric, unit), 60))
        axes.set_title(chart.title, parse_math=False)  # a spec's text, never TeX
        axes.grid(True, which="major", alpha=0.3)
        if len(lines) > 1:
            axes.legend(fontsize=7 if legend_title is None else 8, title=legend_title,
                        title_fontsize=8)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = re.sub(r"^.*?(<svg)", r"\1", buffer.getvalue(), count=1, flags=re.DOTALL)
    return _with_title_and_desc(svg, chart.title, describe_chart(chart, lines, unit))


def describe_chart(chart: ChartSpec, lines: Sequence[_Line], unit: str) -> str:
    """What a chart shows, in words, for those who cannot see it (its SVG <desc>)."""
    x_scale = " (log scale)" if chart.log_x and BY_KEY[chart.x].kind in NUMERIC_KINDS else ""
    y_scale = " (log scale)" if chart.log_y else ""
    series = "; ".join(line.label for line in lines) or "none"
    spread = ("median line and interquartile band per series"
              if BY_KEY[chart.x].kind in NUMERIC_KINDS else
              "median point and interquartile bar per series")
    y_label = axis_label(chart.metric, unit)
    return (f"Metric {chart.metric}. x axis: {chart.x}{x_scale}; y axis: {y_label}{y_scale}; "
            f"{spread}. Series ({len(lines)}): {series}.")


def _with_title_and_desc(svg: str, title: str, desc: str) -> str:
    """The chart's title and description as the first children of <svg>, where screen
    readers look for them (matplotlib draws text as outlines, which say nothing)."""
    head = svg.index(">") + 1
    return (f'{svg[:head]}\n <title>{html.escape(title)}</title>'
            f"\n <desc>{html.escape(desc)}</desc>{svg[head:]}")


def render_svg(data: ChartData) -> str:
    """Draw one run's chart as an inline-ready <svg> element (no XML prolog)."""
    lines = [_Line(s.label, s.points, index) for index, s in enumerate(data.series)]
    return _draw_svg(data.chart, lines, " ".join(data.series_keys) or None)


RUN_LINESTYLES = ("-", "--", ":", "-.")


def render_overlay_svg(runs: Sequence[tuple[str, ChartData]]) -> str:
    """Draw one chart for several runs on the same axes (for `alloclab compare`).

    Each series keeps one colour in every run and each run has its own line style (the first,
    the baseline, solid); bands are left out so the lines stay readable. Same data, same bytes.
    """
    series_labels: list[str] = []
    for _, data in runs:
        series_labels += [s.label for s in data.series if s.label not in series_labels]
    lines = [
        _Line(f"{series.label} — {run_label}" if len(data.series) > 1 or series.label != "all"
              else run_label, series.points, series_labels.index(series.label),
              RUN_LINESTYLES[run_index % len(RUN_LINESTYLES)], band=False)
        for run_index, (run_label, data) in enumerate(runs) for series in data.series
    ]
    return _draw_svg(runs[0][1].chart, lines, None, height_in=4.6)
