"""Declared charts -> deterministic SVG: median line and interquartile band per series.

`chart_data` is the pure part (what is plotted, tested directly); `render_svg` only draws it.
Same data gives the same bytes: fixed SVG hash salt, no date, text drawn as paths.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from runner.metrics import axis_label
from runner.model import ChartSpec
from runner.parameters import BY_KEY, Value
from runner.stats import summarize


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
    parts = []
    for key, value in zip(keys, values, strict=True):
        parameter = BY_KEY[key]
        text = parameter.format(value)
        parts.append(f"{key}={text}" if parameter.kind in ("bool", "count", "size") else text)
    return " ".join(parts) or "all"


def _plain(value: object) -> Value:
    """A pandas group key back as the Python value the spec used (numpy ints are not ints)."""
    native = value.item() if isinstance(value, np.generic) else value
    if isinstance(native, bool | int | str):
        return native
    raise TypeError(f"unexpected parameter value {value!r}")


def chart_data(samples: pd.DataFrame, chart: ChartSpec, label_keys: tuple[str, ...]) -> ChartData:
    """Group measured samples into series of (x, median, quartiles) in scenario order."""
    selected = samples
    for key, value in chart.where:
        selected = selected[selected[BY_KEY[key].field] == value]
    keys = _series_keys(chart, label_keys)
    fields = [BY_KEY[key].field for key in keys]
    x_field = BY_KEY[chart.x].field
    series = []
    groups = selected.groupby(fields, sort=False) if fields else [((), selected)]
    for values, group in groups:
        values_tuple = cast(tuple[Value, ...], values if isinstance(values, tuple) else (values,))
        points = []
        for x, at_x in group.groupby(x_field, sort=False):
            summary = summarize(at_x[chart.metric].to_numpy())
            points.append(Point(_plain(x), summary.median, summary.q1, summary.q3, summary.n))
        if BY_KEY[chart.x].kind == "size":
            points.sort(key=lambda p: int(p.x))
        series.append(Series(_series_label(keys, values_tuple), tuple(points)))
    return ChartData(chart, tuple(series), keys)


def render_svg(data: ChartData) -> str:
    """Draw the chart as an inline-ready <svg> element (no XML prolog)."""
    chart = data.chart
    x_parameter = BY_KEY[chart.x]
    numeric_x = x_parameter.kind in ("size", "count")
    categories: list[Value] = []
    for series in data.series:
        for point in series.points:
            if point.x not in categories:
                categories.append(point.x)
    with matplotlib.rc_context({"svg.hashsalt": "alloclab", "svg.fonttype": "path",
                                "font.size": 9}):
        figure = Figure(figsize=(7.5, 4.2))
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        for series in data.series:
            xs = [float(p.x) if numeric_x else categories.index(p.x) for p in series.points]
            line = axes.plot(xs, [p.median for p in series.points], marker="o", markersize=3,
                             label=series.label)[0]
            axes.fill_between(xs, [p.q1 for p in series.points], [p.q3 for p in series.points],
                              color=line.get_color(), alpha=0.18, linewidth=0)
        if chart.log_x and numeric_x:
            axes.set_xscale("log", base=2)
        if chart.log_y:
            axes.set_yscale("log")
        if numeric_x:
            ticks = sorted({float(c) for c in categories})
            axes.set_xticks(ticks, [x_parameter.format(int(t)) for t in ticks])
            axes.xaxis.set_minor_locator(NullLocator())  # size ticks are the measured sizes
        else:
            axes.set_xticks(range(len(categories)), [x_parameter.format(c) for c in categories])
        axes.set_xlabel(chart.x)
        axes.set_ylabel(axis_label(chart.metric))
        axes.set_title(chart.title)
        axes.grid(True, which="major", alpha=0.3)
        if len(data.series) > 1:
            axes.legend(fontsize=8, title=" ".join(data.series_keys) or None, title_fontsize=8)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = buffer.getvalue()
    return re.sub(r"^.*?(<svg)", r"\1", svg, count=1, flags=re.DOTALL)


RUN_LINESTYLES = ("-", "--", ":", "-.")


def render_overlay_svg(runs: Sequence[tuple[str, ChartData]]) -> str:
    """Draw one chart for several runs on the same axes (for `alloclab compare`).

    Each series keeps one colour in every run and each run has its own line style (the first,
    the baseline, solid); bands are left out so the lines stay readable. Same data, same bytes.
    """
    chart = runs[0][1].chart
    x_parameter = BY_KEY[chart.x]
    numeric_x = x_parameter.kind in ("size", "count")
    categories: list[Value] = []
    series_labels: list[str] = []
    for _, data in runs:
        for series in data.series:
            series_labels += [series.label] if series.label not in series_labels else []
            categories += [p.x for p in series.points if p.x not in categories]
    with matplotlib.rc_context({"svg.hashsalt": "alloclab", "svg.fonttype": "path",
                                "font.size": 9}):
        figure = Figure(figsize=(7.5, 4.6))
        FigureCanvasSVG(figure)
        axes = figure.add_subplot()
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        for run_index, (run_label, data) in enumerate(runs):
            style = RUN_LINESTYLES[run_index % len(RUN_LINESTYLES)]
            for series in data.series:
                colour = colours[series_labels.index(series.label) % len(colours)]
                xs = [float(p.x) if numeric_x else categories.index(p.x) for p in series.points]
                axes.plot(xs, [p.median for p in series.points], marker="o", markersize=3,
                          linestyle=style, color=colour,
                          label=f"{series.label} — {run_label}" if len(data.series) > 1 or
                          series.label != "all" else run_label)
        if chart.log_x and numeric_x:
            axes.set_xscale("log", base=2)
        if chart.log_y:
            axes.set_yscale("log")
        if numeric_x:
            ticks = sorted({float(c) for c in categories})
            axes.set_xticks(ticks, [x_parameter.format(int(t)) for t in ticks])
            axes.xaxis.set_minor_locator(NullLocator())
        else:
            axes.set_xticks(range(len(categories)), [x_parameter.format(c) for c in categories])
        axes.set_xlabel(chart.x)
        axes.set_ylabel(axis_label(chart.metric))
        axes.set_title(chart.title)
        axes.grid(True, which="major", alpha=0.3)
        axes.legend(fontsize=7)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return re.sub(r"^.*?(<svg)", r"\1", buffer.getvalue(), count=1, flags=re.DOTALL)
