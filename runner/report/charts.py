"""Declared charts -> deterministic SVG: median line and interquartile band per series, and
each process's own value beside its median where a point has few.

runner.report.chart_data is the pure part (what is plotted, tested directly); `render_svg` only
draws it. Same data gives the same bytes: fixed SVG hash salt, no date. Text stays text
(selectable, searchable, read aloud), and each SVG also says what it shows in words, in a
<title> and a <desc> (`describe_chart`), and each mark its numbers in a <title> of its own
(runner.report.chart_hover). The y axis is named by the metric's short name; the long
description is the chart's caption (`chart_caption`). A linear y axis starts at 0 unless the
spec asks for the data's own range (`y_from: data`).

How a chart looks: the y axis is drawn in the metric's own unit with ticks in engineering units
(runner.report.ticks: `1 µs`, `1 MiB`, `1 k`); each series has a colour of the Okabe–Ito palette,
which colour-blind readers tell apart, and a marker and a line style too, so no series is known by
its colour alone; a series keeps its look on every chart of a page (`assign_looks`, by label in the
order the page first shows them); text is dark grey on white, 15:1.
"""

from __future__ import annotations

import html
import io
import math
import re
import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.text
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, LogLocator, NullLocator
from matplotlib.transforms import offset_copy

from runner.core.kinds import Value
from runner.core.metrics import BY_NAME, short_name
from runner.core.model import ChartSpec
from runner.core.parameters import BY_KEY
from runner.report import chart_hover, chart_layout, ticks
from runner.report.chart_data import NUMERIC_KINDS, ChartData, Point
from runner.report.chart_hover import Marks

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType


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
    processes: bool = True  # each process's own value beside the median, where few


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


def y_axis_label(metric: str, workloads: Collection[str] = ()) -> str:
    """One line: the metric's short name for the chart's `workloads`
    (runner.core.metrics.short_name), and its unit where neither the ticks (`1 µs`, `4 KiB`)
    nor the name (`minor faults per page`) say it."""
    short, unit = short_name(metric, workloads), BY_NAME[metric].unit
    if ticks.ticks_carry_unit(unit) or unit in short:
        return short
    return f"{short} ({unit})"


def chart_caption(chart: ChartSpec) -> str:
    """What the y axis measures, in full, shown under the chart (its short name is on the
    axis): the metric's description and unit, and how to read a mark's numbers."""
    metric = BY_NAME[chart.metric]
    return (f"{metric.short_name}: {metric.description} ({metric.unit}; metric "
            f"{metric.name}). Rest the pointer on a mark for its numbers.")


MAX_PROCESS_MARKS = 20  # processes at a point: more, and their marks would hide each other
PROCESS_OFFSET_PT = 5.0  # a process's mark sits this far right of its median's


def _process_marks(point: Point) -> bool:
    """Whether a point shows each process's value beside its median: few processes, so a
    reader sees two modes where the median and quartiles would hide them."""
    return 2 <= len(point.processes) <= MAX_PROCESS_MARKS


def _shown(value: float, log: bool) -> bool:
    """Whether a value can be drawn on its axis (a log axis has no place for 0)."""
    return math.isfinite(value) and (value > 0 or not log)


def _y_values(lines: Sequence[_Line]) -> list[float]:
    """Every value a chart draws on its y axis: medians, quartiles, processes' own values."""
    return [v for line in lines for p in line.points
            for v in (p.median, p.q1, p.q3,
                      *(q.median for q in p.processes if _process_marks(p)))
            if math.isfinite(v)]


def _set_y_axis(axes: Any, chart: ChartSpec, lines: Sequence[_Line]) -> None:
    """Scale, limits and ticks of the y axis, labelled in engineering units
    (runner.report.ticks)."""
    unit = BY_NAME[chart.metric].unit
    values = _y_values(lines)
    positive = [v for v in values if v > 0]
    if not chart.log_y or not positive:
        if chart.log_y:
            axes.set_yscale("log")
        elif chart.y_from == "zero" and values:
            axes.set_ylim(*_limits_with_zero(values))
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


def _limits_with_zero(values: Sequence[float]) -> tuple[float, float]:
    """A linear axis over the values and 0, with matplotlib's 5% margin on the side away from
    0: a line's height is then its value, and a 12% change looks like 12%, not like a cliff."""
    low, high = min(0.0, *values), max(0.0, *values)
    margin = 0.05 * (high - low) or 1.0  # all zero: 0 to 1
    return (low - margin if low < 0 else 0.0, high + margin if high > 0 or low == 0 else 0.0)


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


_Drawn = Sequence[tuple[float, Point]]  # a line's points as drawn, each at its x position


def _lay_out(figure: Figure, axes: Any, lines: Sequence[_Line], drawn: Sequence[_Drawn],
             legend_title: str | None, x_labels: Sequence[str], joined: bool) -> None:
    """Margins that fit the chart's texts, and its legend inside the plot where it covers the
    fewest points or in rows under it (_legend_rows): runner.report.chart_layout, without
    drawing."""
    layout = _legend_rows(lines) if len(lines) > 1 else None

    def margins() -> chart_layout.Margins:
        return chart_layout.compute_margins(
            axes, x_labels, axes.get_title(), axes.get_xlabel(), axes.get_ylabel(),
            _legend_height_in(lines, legend_title), chart_layout.measure)

    computed = margins()
    # The title is centred over the plot: a longer one is wrapped, then the margins redone.
    title = chart_layout.wrap_to_width(axes.get_title(), matplotlib.rcParams["axes.titlesize"],
                                       chart_layout.title_width_in(figure, computed),
                                       chart_layout.measure)
    if title != axes.get_title():
        axes.set_title(title, parse_math=False, y=1.0)
        computed = margins()
    chart_layout.apply_margins(axes, computed)
    if len(lines) > 1 and layout is None:
        paths = [[(x, p.median) for x, p in points] for points in drawn]
        if not joined:  # quartile bars are lines too
            paths += [[(x, p.q1), (x, p.q3)] for points in drawn for x, p in points]
        # Processes' marks, each a path of one point (never joined), at their median's x:
        # PROCESS_OFFSET_PT is less than the clearance legend_place keeps.
        paths += [[(x, q.median)] for line, points in zip(lines, drawn, strict=True)
                  if line.processes for x, p in points if _process_marks(p)
                  for q in p.processes]
        place = chart_layout.legend_place(axes, paths, joined,
                                          [_as_text(line.label) for line in lines],
                                          legend_title, chart_layout.measure)
        axes.legend(fontsize=8, title=legend_title, title_fontsize=8, handlelength=3, loc=place)
    elif layout is not None:
        figure.legend(*axes.get_legend_handles_labels(), loc="lower center", ncols=layout[0],
                      fontsize=8, title=legend_title, title_fontsize=8, handlelength=3,
                      frameon=False)


def _draw_svg(chart: ChartSpec, lines: Sequence[_Line], legend_title: str | None,
              height_in: float = 4.2, y_label: str | None = None) -> str:
    """Median lines (or, for a categorical x, points with quartile bars) as an <svg> element,
    each mark titled with its numbers; `y_label` by default the metric's (y_axis_label)."""
    y_label = y_label or y_axis_label(chart.metric)
    with matplotlib.rc_context(_RC), chart_layout.shared_text_to_path():
        figure, marks = _figure(chart, lines, legend_title, height_in, y_label)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    svg = re.sub(r"^.*?(<svg)", r"\1", buffer.getvalue(), count=1, flags=re.DOTALL)
    svg = chart_hover.add_titles(svg, marks)
    return _with_title_and_desc(svg, chart.title,
                                describe_chart(chart, lines, BY_NAME[chart.metric].unit,
                                               y_label))


def _x_text(chart: ChartSpec, x: Value) -> str:
    return f"{chart.x} {BY_KEY[chart.x].format(x)}"


def _drawn_points(chart: ChartSpec, line: _Line, categories: list[Value] | None,
                  offset: float) -> list[tuple[float, Point]]:
    """The points of a line that can be drawn (a log axis has no place for 0 or less), each
    at its x position (its value, or for `categories` its category's place plus `offset`):
    only these get marks, and so titles, in order."""
    return [(float(p.x) if categories is None else categories.index(p.x) + offset, p)
            for p in line.points if _shown(p.median, chart.log_y)
            and (categories is not None or _shown(float(p.x), chart.log_x))]


def _draw_processes(figure: Figure, axes: Any, chart: ChartSpec, index: int, line: _Line,
                    points: _Drawn) -> Marks | None:
    """Each process's own value as a small hollow mark just right of its median, for the
    points with few processes; None when no point has."""
    shown = [(x, p, [q for q in p.processes if _shown(q.median, chart.log_y)])
             for x, p in points if _process_marks(p)]
    dots = [(x, q) for x, _, processes in shown for q in processes]
    if not line.processes or not dots:
        return None
    look = line.look
    # Drawn at their median's x, then moved right: the axis limits come from the data.
    artist, = axes.plot([x for x, _ in dots], [q.median for _, q in dots],
                        linestyle="none", marker=look.marker, markersize=3,
                        markerfacecolor="none", markeredgewidth=0.7, color=look.colour,
                        alpha=0.8, label="_processes", zorder=1.9,  # under the medians
                        gid=chart_hover.mark_gid("processes", index))
    artist.set_transform(offset_copy(axes.transData, figure, x=PROCESS_OFFSET_PT, y=0,
                                     units="points"))
    return Marks("processes", index, tuple(
        chart_hover.processes_title(chart.metric, line.label, _x_text(chart, p.x), processes)
        for _, p, processes in shown), tuple(len(processes) for _, _, processes in shown))


def _figure(chart: ChartSpec, lines: Sequence[_Line], legend_title: str | None,
            height_in: float, y_label: str | None = None) -> tuple[Figure, list[Marks]]:
    """The chart as a laid-out figure, to be drawn within the same rc context, and the
    titles of its marks."""
    x_parameter = BY_KEY[chart.x]
    numeric_x = x_parameter.kind in NUMERIC_KINDS
    categories: list[Value] = []
    for line in lines:
        categories += [p.x for p in line.points if p.x not in categories]
    figure = Figure(figsize=(7.5, height_in + _legend_height_in(lines, legend_title)))
    FigureCanvasSVG(figure)
    axes = figure.add_subplot()
    drawn = []  # each line's drawn points
    marks = []
    for index, line in enumerate(lines):
        look = line.look
        label = _as_text(_legend_label(line.label))
        if numeric_x:
            points = _drawn_points(chart, line, None, 0.0)
            xs = [float(p.x) for p in line.points]
            # The line joins every point; markers, which carry the titles, only where drawn.
            shown = [i for i, p in enumerate(line.points) if any(p is q for _, q in points)]
            axes.plot(xs, [p.median for p in line.points], marker=look.marker, markersize=4,
                      markevery=shown, linestyle=look.linestyle, color=look.colour,
                      label=label, gid=chart_hover.mark_gid("points", index))
            if line.band:
                axes.fill_between(xs, [p.q1 for p in line.points],
                                  [p.q3 for p in line.points], color=look.colour,
                                  alpha=0.15, linewidth=0)
        else:
            # Categories are not a trend: points side by side with quartile bars, no lines.
            offset = (index - (len(lines) - 1) / 2) * min(0.6 / max(len(lines), 1), 0.15)
            points = _drawn_points(chart, line, categories, offset)
            errors = [[p.median - p.q1 for _, p in points], [p.q3 - p.median for _, p in points]]
            container = axes.errorbar([x for x, _ in points], [p.median for _, p in points],
                                      yerr=errors, fmt=look.marker, markersize=5, capsize=3,
                                      color=look.colour, label=label)
            container[0].set_gid(chart_hover.mark_gid("points", index))
            for bars in container[2]:  # the quartile bars (none where no point is drawn)
                bars.set_gid(chart_hover.mark_gid("bars", index))
        drawn.append(points)
        titles = tuple(chart_hover.point_title(chart.metric, line.label, _x_text(chart, p.x), p)
                       for _, p in points)
        marks += [Marks("points", index, titles), Marks("bars", index, titles)]
        processes = _draw_processes(figure, axes, chart, index, line, points)
        if processes is not None:
            marks.append(processes)
    if not categories:
        return _empty_figure(figure, axes, chart, y_label), []
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
    axes.set_ylabel(_as_text(y_label or y_axis_label(chart.metric)))
    # A spec's text, never TeX; y given, so matplotlib does not search for room above
    # tick labels that are never drawn above the plot.
    axes.set_title(chart.title, parse_math=False, y=1.0)
    axes.grid(True, which="major", alpha=0.3)
    _lay_out(figure, axes, lines, drawn, legend_title, x_labels, numeric_x)
    return figure, marks


def _empty_figure(figure: Figure, axes: Any, chart: ChartSpec, y_label: str | None) -> Figure:
    """A chart none of whose scenarios has a sample (a quick run leaves them out, or each of
    their processes failed; the page lists which and why): its frame says so, where an
    empty axis would look like a drawing error."""
    axes.text(0.5, 0.5, "no sample of this chart's scenarios in this run",
              ha="center", va="center", transform=axes.transAxes, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_xlabel(chart.x)
    axes.set_ylabel(_as_text(y_label or y_axis_label(chart.metric)))
    axes.set_title(chart.title, parse_math=False, y=1.0)
    _lay_out(figure, axes, [], [], None, [], True)
    return figure


def describe_chart(chart: ChartSpec, lines: Sequence[_Line], unit: str,
                   y_label: str | None = None) -> str:
    """What a chart shows, in words, for those who cannot see it (its SVG <desc>)."""
    x_scale = " (log scale)" if chart.log_x and BY_KEY[chart.x].kind in NUMERIC_KINDS else ""
    y_scale = (" (log scale)" if chart.log_y else
               ", from 0" if chart.y_from == "zero" else ", over the data's range")
    series = "; ".join(line.label for line in lines) or "none"
    spread = ("median line and interquartile band per series"
              if BY_KEY[chart.x].kind in NUMERIC_KINDS else
              "median point and interquartile bar per series")
    if any(line.processes and _process_marks(p) for line in lines for p in line.points):
        spread += (f"; beside a median of at most {MAX_PROCESS_MARKS} processes, each "
                   "process's own value (the median of its iterations)")
    metric = BY_NAME[chart.metric]
    return (f"Metric {chart.metric}: {metric.description} ({unit}). x axis: {chart.x}{x_scale}; "
            f"y axis: {y_label or y_axis_label(chart.metric)}{y_scale}; {spread}. Series "
            f"({len(lines)}): "
            f"{series}. Each mark's title gives its numbers.")


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
    return _draw_svg(data.chart, lines, data.legend_title,
                     y_label=y_axis_label(data.chart.metric, data.workloads))


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
                      linestyle=RUN_LINESTYLES[run_index % len(RUN_LINESTYLES)]), band=False,
              processes=False)
        for run_index, (run_label, data) in enumerate(runs) for series in data.series
    ]
    workloads = {w for _, data in runs for w in data.workloads}
    return _draw_svg(runs[0][1].chart, lines, None, height_in=4.6,
                     y_label=y_axis_label(runs[0][1].chart.metric, workloads))
