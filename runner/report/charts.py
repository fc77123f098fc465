"""Declared charts -> deterministic SVG: median line and interquartile band per series.

`chart_data` is the pure part (what is plotted, tested directly); `render_svg` only draws it.
Same data gives the same bytes: fixed SVG hash salt, no date. Text stays text (selectable,
searchable, read aloud), and each SVG also says what it shows in words, in a <title> and a
<desc> (`describe_chart`).

How a chart looks: the y axis is drawn in the metric's own unit with ticks in engineering units
(runner.report.ticks: `1 µs`, `1 MiB`, `1 k`); each series has a colour of the Okabe–Ito palette,
which colour-blind readers tell apart, and a marker and a line style too, so no series is known by
its colour alone; a series keeps its look on every chart of a page (`assign_looks`, by label in the
order the page first shows them); text is dark grey on white, 15:1.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import re
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import matplotlib
import matplotlib.text
import numpy as np
import pandas as pd
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.textpath import TextToPath
from matplotlib.ticker import FixedLocator, LogLocator, NullLocator

from runner.analysis.stats import Summary, summarize
from runner.core.kinds import Value
from runner.core.metrics import BY_NAME, axis_label
from runner.core.model import ChartSpec
from runner.core.parameters import BY_KEY
from runner.report import chart_layout, ticks

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType


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


NUMERIC_KINDS = ("size", "count", "whole", "share")  # parameters drawn on a numeric x axis


# Okabe & Ito's colour-blind-safe palette (2008), in their order but for yellow, which is too
# light to see against white (1.5:1); blue and vermillion first, the pair most readers tell apart.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
TEXT_COLOUR = "#222222"  # every text of a chart, as the page's body text (templates/base.html)
BACKGROUND = "#ffffff"


@dataclass(frozen=True)
class Look:
    """How one series is drawn: colour, marker and line style, each telling it apart."""

    colour: str
    marker: str
    linestyle: str


def series_look(index: int) -> Look:
    """The look of the `index`th series of a page: colour, marker and line style each cycle on
    their own, so the first 56 (7 x 8 x 4 in lockstep) are all different combinations."""
    return Look(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)],
                LINESTYLES[index % len(LINESTYLES)])


def assign_looks(labels: Iterable[str]) -> dict[str, Look]:
    """A look per series label, in the order the labels first appear: give it every chart's
    labels of a page, and a series looks the same on each of its charts."""
    order = list(dict.fromkeys(labels))
    return {label: series_look(index) for index, label in enumerate(order)}


@dataclass(frozen=True)
class _Line:
    """One series as drawn: its points, legend text and look."""

    label: str
    points: tuple[Point, ...]
    look: Look
    band: bool = True


def _as_text(text: str) -> str:
    """Text shown as written: matplotlib reads $...$ in labels as mathematics (and fails on
    some of it), and a tunable's value may hold a dollar sign."""
    return text.replace("$", r"\$")


# Every text colour of a chart is TEXT_COLOUR; text stays <text> in the SVG ("none").
_RC: dict[RcKeyType, Any] = {"svg.hashsalt": "alloclab", "svg.fonttype": "none", "font.size": 9,
       "font.family": "sans-serif",
       "font.sans-serif": ["DejaVu Sans", "Bitstream Vera Sans", "Verdana", "Arial"],
       "text.color": TEXT_COLOUR, "axes.labelcolor": TEXT_COLOUR,
       "xtick.color": TEXT_COLOUR, "ytick.color": TEXT_COLOUR, "axes.titlecolor": TEXT_COLOUR,
       "legend.labelcolor": TEXT_COLOUR, "figure.facecolor": BACKGROUND,
       "axes.facecolor": BACKGROUND, "legend.facecolor": BACKGROUND,
       "legend.framealpha": 1.0}


def _y_axis_label(metric: str) -> str:
    """The metric's description; its unit too where the ticks do not name it (faults...)."""
    unit = BY_NAME[metric].unit
    if ticks.ticks_carry_unit(unit):
        return BY_NAME[metric].description
    return axis_label(metric)


def _set_y_axis(axes: Any, chart: ChartSpec, lines: Sequence[_Line]) -> None:
    """Scale, limits and ticks of the y axis, labelled in engineering units
    (runner.report.ticks)."""
    unit = BY_NAME[chart.metric].unit
    positive = [v for line in lines for p in line.points for v in (p.median, p.q1, p.q3)
                if v > 0]
    if not chart.log_y or not positive:
        if chart.log_y:
            axes.set_yscale("log")
        axes.yaxis.set_major_locator(ticks.UnitLocator(unit))
        axes.yaxis.set_major_formatter(ticks.UnitFormatter(unit, log=False))
        return
    if unit == "bytes":  # powers of two, so ticks fall on 1 KiB, 1 MiB, 1 GiB
        axes.set_yscale("log", base=2)
        low = 2.0 ** math.floor(math.log2(min(positive)))
        high = 2.0 ** math.ceil(math.log2(max(positive)))
        axes.set_ylim(low, max(high, low * 4))
        axes.yaxis.set_major_locator(FixedLocator(ticks.binary_log_ticks(low, max(high,
                                                                                 low * 4))))
        axes.yaxis.set_minor_locator(NullLocator())
    else:  # whole decades, so every point has a labelled power of ten around it
        axes.set_yscale("log")
        low = 10 ** math.floor(math.log10(min(positive)))
        high = 10 ** math.ceil(math.log10(max(positive)))
        axes.set_ylim(low, max(high, low * 10))
        if max(high, low * 10) / low <= 10:  # one decade: two labels; 2x and 5x say more
            axes.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            axes.yaxis.set_minor_formatter(ticks.UnitFormatter(unit, log=True))
        else:  # decades labelled and gridded; minor ticks would add ~25% to every chart's
            # drawing (each one is an artist laid out twice) and say nothing the grid does not
            axes.yaxis.set_minor_locator(NullLocator())
    axes.yaxis.set_major_formatter(ticks.UnitFormatter(unit, log=True))


LEGEND_INSIDE_MAX = 4  # series; more, or long labels, go in rows under the plot
LEGEND_LABEL_INSIDE_MAX = 40  # characters
# A label of a one-column legend under the plot is wrapped at this many characters: at 8 pt
# about 95 fit beside the handle across the 7.5 in figure (a comparison's label names its run
# after the scenario, 120 characters and more).
LEGEND_LABEL_LINE_MAX = 90
_LEGEND_ROW_IN = 0.17  # height of a legend row at 8 pt, inches


def _legend_rows(lines: Sequence[_Line]) -> tuple[int, int] | None:
    """(columns, rows) of a legend under the plot, or None for one inside it: a legend with
    many or long entries would cover the lines it names. One column's rows count the lines
    its wrapped labels take (_legend_label)."""
    longest = max((len(line.label) for line in lines), default=0)
    if len(lines) <= LEGEND_INSIDE_MAX and longest <= LEGEND_LABEL_INSIDE_MAX:
        return None
    if longest <= 45:
        return 2, math.ceil(len(lines) / 2)
    return 1, sum(_legend_label(line.label).count("\n") + 1 for line in lines)


def _legend_label(label: str) -> str:
    """A series' legend text: as it is, or wrapped when too long for one line of the figure."""
    if len(label) <= LEGEND_LABEL_LINE_MAX:
        return label
    return textwrap.fill(label, LEGEND_LABEL_LINE_MAX, break_on_hyphens=False)


def _legend_height_in(lines: Sequence[_Line], legend_title: str | None) -> float:
    """The height the figure grows by for a legend under the plot (0 for one inside)."""
    if len(lines) <= 1 or (layout := _legend_rows(lines)) is None:
        return 0.0
    return (layout[1] + (legend_title is not None)) * _LEGEND_ROW_IN + 0.15


def _lay_out(figure: Figure, axes: Any, lines: Sequence[_Line],
             positions: Sequence[Sequence[float]], legend_title: str | None,
             x_labels: Sequence[str], joined: bool) -> None:
    """Margins that fit the chart's texts, and its legend inside the plot where it covers the
    fewest points or in rows under it (_legend_rows): runner.report.chart_layout, without
    drawing."""
    layout = _legend_rows(lines) if len(lines) > 1 else None

    def margins() -> chart_layout.Margins:
        return chart_layout.compute_margins(
            axes, x_labels, axes.get_title(), axes.get_xlabel(), axes.get_ylabel(),
            _legend_height_in(lines, legend_title), _measure)

    computed = margins()
    # The title is centred over the plot: a longer one is wrapped, then the margins redone.
    title = chart_layout.wrap_to_width(axes.get_title(), matplotlib.rcParams["axes.titlesize"],
                                       chart_layout.title_width_in(figure, computed), _measure)
    if title != axes.get_title():
        axes.set_title(title, parse_math=False, y=1.0)
        computed = margins()
    chart_layout.apply_margins(axes, computed)
    if len(lines) > 1 and layout is None:
        paths = [[(x, p.median) for x, p in zip(xs, line.points, strict=True)]
                 for xs, line in zip(positions, lines, strict=True)]
        if not joined:  # quartile bars are lines too
            paths += [[(x, p.q1), (x, p.q3)] for xs, line in zip(positions, lines, strict=True)
                      for x, p in zip(xs, line.points, strict=True)]
        place = chart_layout.legend_place(axes, paths, joined,
                                          [_as_text(line.label) for line in lines],
                                          legend_title, _measure)
        axes.legend(fontsize=8, title=legend_title, title_fontsize=8, handlelength=3, loc=place)
    elif layout is not None:
        figure.legend(*axes.get_legend_handles_labels(), loc="lower center", ncols=layout[0],
                      fontsize=8, title=legend_title, title_fontsize=8, handlelength=3,
                      frameon=False)


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


def _measure(text: str, font: Any) -> tuple[float, float, float]:
    """A text's (width, height, descent) in points, as the SVG backend measures it."""
    return _TEXT_TO_PATH.get_text_width_height_descent(text, font, False)


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
    with matplotlib.rc_context(_RC), _shared_text_to_path():
        figure = _figure(chart, lines, legend_title, height_in)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = re.sub(r"^.*?(<svg)", r"\1", buffer.getvalue(), count=1, flags=re.DOTALL)
    return _with_title_and_desc(svg, chart.title,
                                describe_chart(chart, lines, BY_NAME[chart.metric].unit))


def _figure(chart: ChartSpec, lines: Sequence[_Line], legend_title: str | None,
            height_in: float) -> Figure:
    """The chart as a laid-out figure, to be drawn within the same rc context."""
    x_parameter = BY_KEY[chart.x]
    numeric_x = x_parameter.kind in NUMERIC_KINDS
    categories: list[Value] = []
    for line in lines:
        categories += [p.x for p in line.points if p.x not in categories]
    figure = Figure(figsize=(7.5, height_in + _legend_height_in(lines, legend_title)))
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    positions = []  # each line's x positions
    for index, line in enumerate(lines):
        look = line.look
        medians = [p.median for p in line.points]
        if numeric_x:
            xs = [float(p.x) for p in line.points]
            positions.append(xs)
            axes.plot(xs, medians, marker=look.marker, markersize=4,
                      linestyle=look.linestyle, color=look.colour,
                      label=_as_text(_legend_label(line.label)))
            if line.band:
                axes.fill_between(xs, [p.q1 for p in line.points],
                                  [p.q3 for p in line.points], color=look.colour,
                                  alpha=0.15, linewidth=0)
        else:
            # Categories are not a trend: points side by side with quartile bars, no lines.
            offset = (index - (len(lines) - 1) / 2) * min(0.6 / max(len(lines), 1), 0.15)
            xs = [categories.index(p.x) + offset for p in line.points]
            positions.append(xs)
            errors = [[m - p.q1 for m, p in zip(medians, line.points, strict=True)],
                      [p.q3 - m for m, p in zip(medians, line.points, strict=True)]]
            axes.errorbar(xs, medians, yerr=errors, fmt=look.marker, markersize=5,
                          capsize=3, color=look.colour,
                          label=_as_text(_legend_label(line.label)))
    if not categories:
        return _empty_figure(figure, axes, chart)
    if chart.log_x and numeric_x:
        axes.set_xscale("log", base=2)
    _set_y_axis(axes, chart, lines)
    if numeric_x:
        x_ticks = sorted({float(c) for c in categories})
        x_labels = [x_parameter.format(int(t)) for t in x_ticks]
        axes.set_xticks(x_ticks, x_labels)
        axes.xaxis.set_minor_locator(NullLocator())  # size ticks are the measured sizes
    else:
        x_labels = [_as_text(x_parameter.format(c)) for c in categories]
        axes.set_xticks(range(len(categories)), x_labels)
        axes.set_xlim(-0.5, len(categories) - 0.5)
    axes.set_xlabel(chart.x)
    # Wrapped to fit beside the plot: a rotated label longer than the figure is cut off.
    axes.set_ylabel(textwrap.fill(_as_text(_y_axis_label(chart.metric)),
                                  int(height_in * 72 / (9 * 0.6)) - 6))
    # A spec's text, never TeX; y given, so matplotlib does not search for room above
    # tick labels that are never drawn above the plot.
    axes.set_title(chart.title, parse_math=False, y=1.0)
    axes.grid(True, which="major", alpha=0.3)
    _lay_out(figure, axes, lines, positions, legend_title, x_labels, numeric_x)
    return figure


def _empty_figure(figure: Figure, axes: Any, chart: ChartSpec) -> Figure:
    """A chart none of whose scenarios has a sample (a quick run leaves them out, or each of
    their processes failed; the page lists which and why): its frame says so, where an
    empty axis would look like a drawing error."""
    axes.text(0.5, 0.5, "no sample of this chart's scenarios in this run",
              ha="center", va="center", transform=axes.transAxes, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(chart.x)
    axes.set_ylabel(textwrap.fill(_as_text(_y_axis_label(chart.metric)), 40))
    axes.set_title(chart.title, parse_math=False, y=1.0)
    _lay_out(figure, axes, [], [], None, [], True)
    return figure


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
    readers look for them (the tick and legend texts alone do not say what is plotted)."""
    head = svg.index(">") + 1
    return (f'{svg[:head]}\n <title>{html.escape(title)}</title>'
            f"\n <desc>{html.escape(desc)}</desc>{svg[head:]}")


def render_svg(data: ChartData, looks: Mapping[str, Look] | None = None) -> str:
    """Draw one run's chart as an inline-ready <svg> element (no XML prolog).

    `looks`: each series' look by label, shared by the charts of a page (`assign_looks`);
    by default the chart's own series in order.
    """
    if looks is None or any(s.label not in looks for s in data.series):
        looks = assign_looks(s.label for s in data.series)
    lines = [_Line(s.label, s.points, looks[s.label]) for s in data.series]
    return _draw_svg(data.chart, lines, " ".join(data.series_keys) or None)


RUN_LINESTYLES = ("-", "--", ":", "-.")


def render_overlay_svg(runs: Sequence[tuple[str, ChartData]]) -> str:
    """Draw one chart for several runs on the same axes (for `alloclab compare`).

    Each series keeps its colour and marker in every run and each run has its own line style
    (the first, the baseline, solid); bands are left out so the lines stay readable. Same
    data, same bytes.
    """
    looks = assign_looks(s.label for _, data in runs for s in data.series)
    lines = [
        _Line(f"{series.label} — {run_label}" if len(data.series) > 1 or series.label != "all"
              else run_label, series.points,
              replace(looks[series.label],
                      linestyle=RUN_LINESTYLES[run_index % len(RUN_LINESTYLES)]), band=False)
        for run_index, (run_label, data) in enumerate(runs) for series in data.series
    ]
    return _draw_svg(runs[0][1].chart, lines, None, height_in=4.6)
