"""Charts: the plotted data is tested directly; the SVG only for determinism and shape."""

from dataclasses import replace
from pathlib import Path

import pytest

from runner.analysis.frame import build_frame, measured
from runner.analysis.noise import scenario_summaries
from runner.core.model import ChartSpec
from runner.report.chart_data import chart_data
from runner.report.charts import render_svg
from runner.store.folders import load_run
from tests.synthetic import write_synthetic_run

LABEL_KEYS = ("backing", "size")


@pytest.fixture
def samples(tmp_path: Path, small_spec: Path):  # type: ignore[no-untyped-def]
    return measured(build_frame(load_run(write_synthetic_run(tmp_path, small_spec))))


def test_series_hold_medians_and_quartiles_sorted_by_size(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("t", "first_touch_ns_per_page", "size", ("backing",), log_x=True)
    data = chart_data(samples, chart, LABEL_KEYS)
    assert [s.label for s in data.series] == ["malloc", "mmap-anon"]
    points = data.series[0].points
    assert [p.x for p in points] == [4096, 65536, 1 << 20]
    # Jitter is -2%, 0, +2% across the three processes: the median is the unjittered value.
    assert [p.median for p in points] == [250, 250, 250]
    assert all(p.q1 < 250 < p.q3 and p.n == 6 for p in points)


def test_axes_not_declared_become_series_so_nothing_is_pooled(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("t", "first_touch_ns_per_op", "backing")
    data = chart_data(samples, chart, LABEL_KEYS)
    assert data.series_keys == ("size",)
    assert [s.label for s in data.series] == ["4KiB", "64KiB", "1MiB"]  # legend title: size


def test_where_filters(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("t", "first_touch_ns_per_op", "size", where=(("backing", "malloc"),))
    data = chart_data(samples, chart, LABEL_KEYS)
    assert [s.label for s in data.series] == ["all"]
    assert len(data.series[0].points) == 3


def test_svg_is_deterministic_and_inline_ready(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("Touch", "first_touch_ns_per_page", "size", ("backing",), log_x=True,
                      log_y=True)
    first = render_svg(chart_data(samples, chart, LABEL_KEYS))
    second = render_svg(chart_data(samples, chart, LABEL_KEYS))
    assert first == second
    assert first.startswith("<svg") and first.rstrip().endswith("</svg>")
    assert "<dc:date>" not in first


def test_whole_number_parameters_are_a_numeric_axis_and_keyed_in_legends() -> None:
    from runner.core.parameters import BY_KEY
    from runner.report.chart_data import NUMERIC_KINDS, _series_label
    assert BY_KEY["threads"].kind in NUMERIC_KINDS
    assert _series_label(("threads", "backing"), (2, "malloc")) == "threads=2 malloc"


def test_log_axes_span_whole_decades_even_for_one_value(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("t", "first_touch_minor_faults_per_page", "size", ("backing",),
                      log_x=True, log_y=True)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # identical limits would warn and draw nothing
        svg = render_svg(chart_data(samples, chart, LABEL_KEYS))  # every value is exactly 1
    assert svg.startswith("<svg")


def test_points_reuse_the_summaries_of_their_scenario(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("t", "first_touch_ns_per_page", "size", ("backing",))
    summaries = scenario_summaries(samples, ["first_touch_ns_per_page"])
    assert chart_data(samples, chart, LABEL_KEYS, summaries) == chart_data(
        samples, chart, LABEL_KEYS)
    # A summary given for a scenario is the one plotted (it is not computed again).
    sid = str(samples["scenario_id"].iloc[0])
    marked = {**summaries, (sid, "first_touch_ns_per_page"): replace(
        summaries[sid, "first_touch_ns_per_page"], median=-1.0)}
    medians = [p.median for s in chart_data(samples, chart, LABEL_KEYS, marked).series
               for p in s.points]
    assert medians.count(-1.0) == 1


def test_titles_and_labels_are_plain_text_not_mathematics(samples) -> None:  # type: ignore[no-untyped-def]
    # Mathtext would fail on \frac without braces; as plain text it is drawn as written.
    chart = ChartSpec(r"Cost in $\frac$ and $$", "first_touch_ns_per_page", "size",
                      ("backing",), log_x=True)
    svg = render_svg(chart_data(samples, chart, LABEL_KEYS))
    assert svg.startswith("<svg")


def test_each_svg_says_what_it_shows_in_a_title_and_a_desc(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("Touch <fast> & slow", "first_touch_ns_per_page", "size", ("backing",),
                      log_x=True, log_y=True)
    svg = render_svg(chart_data(samples, chart, LABEL_KEYS))
    head = svg.split("\n")
    # The first children of <svg>, where screen readers look; text escaped as XML.
    assert head[1] == " <title>Touch &lt;fast&gt; &amp; slow</title>"
    assert head[2] == (
        " <desc>Metric first_touch_ns_per_page: time of the first touch phase per page of a "
        "block (ns). x axis: size (log scale); y axis: first touch time per page (log scale); "
        "median line and interquartile band per series; beside a median of at most 20 "
        "processes, each process&#x27;s own value (the median of its iterations). Series (2): "
        "malloc; mmap-anon. Each mark&#x27;s title gives its numbers.</desc>")
    categorical = render_svg(chart_data(samples, ChartSpec("By backing",
                                                           "first_touch_ns_per_op", "backing"),
                                        LABEL_KEYS))
    desc = categorical.split("\n")[2]
    assert desc.startswith(" <desc>Metric first_touch_ns_per_op: time of the first touch "
                           "phase per block (ns). x axis: backing")
    assert desc.endswith("; y axis: first touch time per block, from 0; median point and "
                         "interquartile bar per series; beside a median of at most 20 "
                         "processes, each process&#x27;s own value (the median of its "
                         "iterations). Series (3): 4KiB; 64KiB; 1MiB. Each mark&#x27;s title "
                         "gives its numbers.</desc>")


def test_overlaid_runs_are_described_series_by_run(samples) -> None:  # type: ignore[no-untyped-def]
    from runner.report.charts import render_overlay_svg

    chart = ChartSpec("Touch", "first_touch_ns_per_page", "size", ("backing",), log_x=True)
    data = chart_data(samples, chart, LABEL_KEYS)
    svg = render_overlay_svg([("base", data), ("new", data)])
    assert "Series (4): malloc — base; mmap-anon — base; malloc — new; mmap-anon — new." in svg


def test_a_series_looks_the_same_on_every_chart_of_a_page() -> None:
    from runner.report.charts import LINESTYLES, MARKERS, PALETTE, assign_looks, series_look
    looks = assign_looks(["mmap-anon", "malloc", "mmap-anon", "memfd"])
    assert list(looks) == ["mmap-anon", "malloc", "memfd"]  # first appearance, once each
    assert looks == assign_looks(["mmap-anon", "malloc", "memfd"])
    assert looks["mmap-anon"] == series_look(0)
    # Colour, marker and line style each tell series apart, for 56 of them in a row.
    firsts = [series_look(i) for i in range(56)]
    assert len(set(firsts)) == 56
    for i in range(len(LINESTYLES)):
        assert len({firsts[i].colour, firsts[i + 1].colour}) == 2
        assert firsts[i].marker != firsts[i + 1].marker
        assert firsts[i].linestyle != firsts[i + 1].linestyle
    assert "#F0E442" not in PALETTE and len(MARKERS) >= len(PALETTE)  # no pale yellow


def test_charts_draw_each_series_in_the_look_the_page_gave_it(samples) -> None:  # type: ignore[no-untyped-def]
    from runner.report.charts import assign_looks
    chart = ChartSpec("t", "first_touch_ns_per_page", "size", ("backing",), log_x=True)
    data = chart_data(samples, chart, LABEL_KEYS)
    own = render_svg(data)
    page = assign_looks(["memfd", "mmap-anon", "malloc"])  # another chart came first
    shared = render_svg(data, page)
    for svg, looks in ((own, assign_looks(["malloc", "mmap-anon"])), (shared, page)):
        for label in ("malloc", "mmap-anon"):
            assert f"stroke: {looks[label].colour.lower()}" in svg
    assert "stroke: #009e73" not in own and "stroke: #0072b2" not in shared
    assert shared == render_svg(data, page)


def test_text_stays_text_with_engineering_ticks(samples) -> None:  # type: ignore[no-untyped-def]
    import re

    from runner.report.charts import TEXT_COLOUR
    chart = ChartSpec("Touch", "first_touch_ns_per_page", "size", ("backing",), log_x=True,
                      log_y=True)
    svg = render_svg(chart_data(samples, chart, LABEL_KEYS))
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    # Medians of 250 ns: the axis spans the decade 100 ns to 1 µs, labelled in words, and
    # as it is one decade only, its 2x and 5x minor ticks too.
    assert {"100 ns", "200 ns", "500 ns", "1 µs", "4KiB", "size", "Touch", "malloc"} <= set(
        texts)
    assert "300 ns" not in texts
    # The y axis says the metric's short name in one line, its unit in the ticks, not
    # repeated in the axis label (the long description is the caption); no glyph outlines.
    assert "first touch time per page" in texts
    assert "time of the first touch phase per page of a block" not in texts
    assert "DejaVuSans-" not in svg
    fills = set(re.findall(r"<text [^>]*fill: (#[0-9a-f]{6})", svg))
    assert fills == {TEXT_COLOUR} and svg.count("<text ") == len(texts)


def test_legends_with_many_or_long_entries_go_under_the_plot() -> None:
    from runner.report.charts import _legend_height_in, _legend_rows, _Line, series_look
    def lines(*labels: str) -> list[_Line]:
        return [_Line(label, (), series_look(i)) for i, label in enumerate(labels)]
    assert _legend_rows(lines("malloc", "mmap-anon")) is None  # inside, where data is least
    assert _legend_height_in(lines("malloc", "mmap-anon"), "backing") == 0.0
    assert _legend_rows(lines(*"abcdefg")) == (2, 4)
    assert _legend_rows(lines("x" * 50, "y")) == (1, 2)
    # The figure grows by the rows it adds (and the title's), the plot keeps its height.
    assert _legend_height_in(lines(*"abcdefg"), "backing") > _legend_height_in(
        lines(*"abcdefg"), None) > 0


def _laid_out(chart: ChartSpec, series: dict[str, list[tuple[object, float]]],
              legend_title: str | None = "backing"):  # type: ignore[no-untyped-def]
    """The chart's figure as render_svg lays it out, and the SVG renderer that measures it
    (texts measured as the SVG backend measures them)."""
    import matplotlib

    from runner.report.chart_data import Point
    from runner.report.charts import _RC, _figure, _Line, series_look
    lines = [_Line(label, tuple(Point(x, y, y * 0.9, y * 1.1, 5) for x, y in points),  # type: ignore[arg-type]
                   series_look(i)) for i, (label, points) in enumerate(series.items())]
    context = matplotlib.rc_context(_RC)
    context.__enter__()
    figure, _ = _figure(chart, lines, legend_title, 4.2)
    renderer = figure._get_renderer()  # type: ignore[attr-defined]
    figure.draw(renderer)
    return figure, renderer, context


LAYOUT_CASES = {
    "log sizes, times": (ChartSpec("First write", "first_touch_ns_per_page", "size",
                                   ("backing",), log_x=True, log_y=True),
                         {"malloc": [(4096, 35.0), (1 << 30, 2e3)],
                          "mmap-anon": [(4096, 2e3), (1 << 30, 2.1e3)]}),
    "linear, long wrapped y label": (ChartSpec("Resident " * 12, "free_returned_fraction",
                                               "size", ("backing",), log_x=True),
                                     {"malloc": [(4096, 0.25), (65536, 1.0)]}),
    "categories, many series": (ChartSpec("Usable bytes", "usable_bytes_per_op", "backing",
                                          ("size",)),
                                {f"{n} KiB": [("malloc", n * 1024.0),
                                              ("mmap-anon-shared-with-a-long-name", 4e9)]
                                 for n in (1, 2, 4, 8, 16, 32, 64)}),
}


def figure_lines(series: dict[str, list[tuple[object, float]]]) -> list[object]:
    from runner.report.charts import _Line, series_look
    return [_Line(label, (), series_look(i)) for i, label in enumerate(series)]


@pytest.mark.parametrize("case", LAYOUT_CASES)
def test_computed_margins_fit_every_text_as_tight_layout_would(case: str) -> None:
    """No text leaves the figure or runs into the plot, and the plot is as large as
    matplotlib's own tight_layout makes it (within 3 points a side)."""
    from runner.report.charts import _legend_height_in
    chart, series = LAYOUT_CASES[case]
    figure, renderer, context = _laid_out(chart, series)
    try:
        axes = figure.axes[0]
        plot = axes.get_window_extent(renderer)
        box = figure.bbox
        slack_px = 1.5 * figure.dpi / 72
        # Ticks past the view are kept but not drawn: the drawn ones are _update_ticks'.
        tick_labels = [tick.label1 for axis in (axes.xaxis, axes.yaxis)
                       for tick in axis._update_ticks() if tick.label1.get_text()]
        legend = figure.legends[0] if figure.legends else axes.get_legend()
        texts = [axes.title, axes.xaxis.label, axes.yaxis.label, *tick_labels,
                 *(legend.get_texts() if legend else [])]
        for text in texts:
            extent = text.get_window_extent(renderer)
            assert extent.x0 >= box.x0 - slack_px and extent.x1 <= box.x1 + slack_px, \
                (case, text.get_text())
            assert extent.y0 >= box.y0 - slack_px and extent.y1 <= box.y1 + slack_px, \
                (case, text.get_text())
        for label in tick_labels:
            assert not label.get_window_extent(renderer).fully_overlaps(plot), case
        computed = [plot.x0, plot.x1, plot.y0, plot.y1]
        legend_in = _legend_height_in(figure_lines(series), "backing")
        figure.tight_layout(rect=(0, legend_in / figure.get_figheight(), 1, 1))
        figure.draw(renderer)
        tight = axes.get_window_extent(renderer)
        for ours, theirs in zip(computed, [tight.x0, tight.x1, tight.y0, tight.y1], strict=True):
            assert abs(ours - theirs) <= 3 * figure.dpi / 72, (case, computed, tight.bounds)
    finally:
        context.__exit__(None, None, None)


def test_legend_goes_where_it_covers_no_point() -> None:
    """matplotlib's "best", reckoned from the data: the first free place of its order."""
    from runner.report.chart_layout import legend_place
    from runner.report.chart_layout import measure as _measure
    chart = ChartSpec("t", "first_touch_ns_per_page", "size", ("backing",), log_x=True,
                      log_y=True)
    # Lines along the top: the upper places are taken, the lower right is free first.
    high = [(1 << k, 1000.0) for k in range(12, 31, 2)]
    figure, _, context = _laid_out(chart, {"a": high, "b": [(x, y * 0.9) for x, y in high],
                                        "c": [(4096, 10.0), (8192, 900.0)]})
    try:
        axes = figure.axes[0]
        lines = [[(x, y) for x, y in line.get_xydata()] for line in axes.get_lines()]
        assert axes.get_legend()._loc == 4  # matplotlib's code for "lower right"
        assert legend_place(axes, lines, True, ["a", "b", "c"], "backing",
                            _measure) == "lower right"
        # Nothing plotted: the first of the order.
        assert legend_place(axes, [], True, ["a"], None, _measure) == "upper right"
        # Points alone (no lines between them) in the four corners leave the middle free.
        to_data = (axes.transScale + axes.transLimits).inverted()
        corners = [tuple(to_data.transform((fx, fy))) for fx in (0.01, 0.99)
                   for fy in (0.01, 0.99)]
        assert legend_place(axes, [corners], False, ["a"], None, _measure) == "center right"
        assert legend_place(axes, [corners], True, ["a"], None, _measure) != "center right"
    finally:
        context.__exit__(None, None, None)


def test_a_legend_label_too_long_for_the_figure_is_wrapped_and_its_lines_counted() -> None:
    """A comparison's series name their run after the scenario (120 characters and more):
    under the plot, in one column, such a label is wrapped to fit the figure's width, and the
    legend's rows count its lines, so the figure grows to hold them."""
    from runner.report.charts import LEGEND_LABEL_LINE_MAX, _legend_label, _legend_rows

    long = ("mmap-anon populate=map-populate thp=default touch_share=100% cycle — "
            "vm-glibc-malloc-hugetlb/first-touch/20261207T050436Z")
    wrapped = _legend_label(long)
    assert wrapped.replace("\n", " ") == long
    assert all(len(part) <= LEGEND_LABEL_LINE_MAX for part in wrapped.split("\n"))
    assert _legend_label("malloc 4KiB") == "malloc 4KiB"

    class Line:
        def __init__(self, label: str) -> None:
            self.label = label

    assert _legend_rows([Line(long), Line("short"), Line(long)]) == (  # type: ignore[list-item]
        1, 2 * (wrapped.count("\n") + 1) + 1)


@pytest.mark.parametrize("x", ["backing", "size"])
def test_a_chart_without_samples_says_so_without_a_warning(samples, x) -> None:  # type: ignore[no-untyped-def]
    """A quick run leaves every scenario of some charts out: the chart's frame says there is
    no sample, rather than an empty axis (and matplotlib's warning on the terminal)."""
    import warnings

    chart = ChartSpec("Nothing", "first_touch_ns_per_page", x,
                      where=(("backing", "hugetlb"),))
    data = chart_data(samples, chart, LABEL_KEYS)
    assert all(not s.points for s in data.series)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        svg = render_svg(data)
    assert "no sample of this chart" in svg


# What a reader can interrogate: every mark's numbers in its <title>, each process's value
# beside its median, short axis labels, linear axes from 0, legends without constant keys.

def _titled_marks(svg: str) -> dict[str, list[str]]:
    """The titles of the marks of each kind (points, bars, processes), in drawing order; a
    mark outside a titled g.point counts as an empty title."""
    import xml.etree.ElementTree as ET
    svg_ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(svg)
    parents = {child: parent for parent in root.iter() for child in parent}
    found: dict[str, list[str]] = {}
    for group in root.iter(f"{svg_ns}g"):
        kind = group.get("class")
        if kind not in ("points", "bars", "processes"):
            continue
        element = "path" if kind == "bars" else "use"
        for mark in group.iter(f"{svg_ns}{element}"):
            point = parents[mark]
            title = point.find(f"{svg_ns}title") if point.get("class") == "point" else None
            found.setdefault(kind, []).append("" if title is None else title.text or "")
    return found


@pytest.mark.parametrize("x", ["size", "backing"])
def test_every_plotted_point_has_its_numbers_in_a_title(samples, x) -> None:  # type: ignore[no-untyped-def]
    other = "backing" if x == "size" else "size"
    chart = ChartSpec("t", "first_touch_ns_per_page", x, (other,), log_x=x == "size")
    data = chart_data(samples, chart, LABEL_KEYS)
    svg = render_svg(data)
    marks = _titled_marks(svg)
    points = [(s.label, p) for s in data.series for p in s.points]
    assert len(marks["points"]) == len(points) == 6
    for title, (label, point) in zip(marks["points"], points, strict=True):
        assert title.startswith(f"{label}, {x} ")
        assert f"median {point.median:.3g} ns, quartiles {point.q1:.3g} ns – " in title
        assert title.endswith(", 3 processes (6 samples)")
    assert 'id="alloclab-' not in svg  # the gids became classes: a page holds many charts
    if x == "backing":  # quartile bars carry their point's title too
        assert marks["bars"] == marks["points"]


def test_each_process_shows_beside_its_median_where_there_are_few(samples) -> None:  # type: ignore[no-untyped-def]
    from runner.report.chart_data import ProcessValue
    from runner.report.charts import MAX_PROCESS_MARKS

    chart = ChartSpec("t", "first_touch_ns_per_page", "size", ("backing",), log_x=True)
    data = chart_data(samples, chart, LABEL_KEYS)
    point = data.series[0].points[0]
    # Three processes jittered -2%, 0, +2%: each one's median of its two iterations.
    assert [round(p.median) for p in point.processes] == [245, 250, 255]
    assert {p.iterations for p in point.processes} == {2}
    titles = _titled_marks(render_svg(data))["processes"]
    assert len(titles) == 6 * 3  # a mark per process, titled together per point
    assert titles[:3] == ["malloc, size 4KiB, each of 3 processes (median of its 2 "
                          "iterations): 245 ns, 250 ns, 255 ns"] * 3
    # Two modes the median hides: the processes' marks, and their values, show both.
    bimodal = tuple(ProcessValue(v, 2) for v in [900.0, 100.0] * 3 + [100.0])
    few = replace(data, series=(replace(data.series[0], points=(
        replace(point, processes=bimodal),)),))
    svg = render_svg(few)
    assert _titled_marks(svg)["processes"] == [
        "malloc, size 4KiB, each of 7 processes (median of its 2 iterations): "
        + ", ".join(["100 ns"] * 4 + ["900 ns"] * 3)] * 7
    import xml.etree.ElementTree as ET
    svg_ns = "{http://www.w3.org/2000/svg}"
    group = next(g for g in ET.fromstring(svg).iter(f"{svg_ns}g")
                 if g.get("class") == "processes")
    assert len({use.get("y") for use in group.iter(f"{svg_ns}use")}) == 2  # a row per mode
    many = replace(few, series=(replace(few.series[0], points=(replace(
        point, processes=(ProcessValue(250.0, 2),) * (MAX_PROCESS_MARKS + 1)),)),))
    svg = render_svg(many)
    assert "processes" not in _titled_marks(svg)
    assert _titled_marks(svg)["points"][0].endswith(f"{MAX_PROCESS_MARKS + 1} processes "
                                                    "(6 samples)")


def _y_limits(chart: ChartSpec, values: list[float]) -> tuple[float, float]:
    figure, _, context = _laid_out(chart, {"a": list(enumerate(values, 1))}, None)
    try:
        low, high = figure.axes[0].get_ylim()
        return float(low), float(high)
    finally:
        context.__exit__(None, None, None)


def test_a_linear_y_axis_starts_at_zero_unless_the_chart_asks_for_the_data_range() -> None:
    chart = ChartSpec("t", "first_touch_ns_per_page", "threads")
    # A 12% difference far from 0: from 0 it looks like 12%.
    low, high = _y_limits(chart, [900.0, 1008.0])
    assert low == 0 and 1008 * 1.1 < high < 1008 * 1.2  # the quartiles reach 10% above
    low, high = _y_limits(replace(chart, y_from="data"), [900.0, 1008.0])
    assert 700 < low < 900
    # Values below 0 keep 0 in view from the other side; all zero still draws an axis.
    low, high = _y_limits(chart, [-5.0, -1.0])
    assert low < -5 and high == 0
    assert _y_limits(chart, [0.0, 0.0]) == (0.0, 1.0)
    # A log axis spans the data's decades, as before.
    low, _ = _y_limits(replace(chart, log_y=True), [900.0, 1008.0])
    assert low == 100


def test_the_y_axis_says_the_short_name_and_the_caption_the_description(samples) -> None:  # type: ignore[no-untyped-def]
    import re

    from runner.report.charts import chart_caption, y_axis_label
    assert y_axis_label("first_touch_ns_per_page") == "first touch time per page"  # ticks: ns
    assert y_axis_label("first_touch_minor_faults_per_page") == (
        "first touch minor faults per page")  # the name says faults
    assert y_axis_label("free_returned_fraction") == "share free gave back (fraction)"
    chart = ChartSpec("Touch", "resident_fraction_before", "size", ("backing",), log_x=True)
    svg = render_svg(chart_data(samples, chart, LABEL_KEYS))
    texts = re.findall(r"<text [^>]*>([^<]*)</text>", svg)
    assert "share of the file cached before (fraction)" in texts  # one line
    caption = chart_caption(chart)
    assert caption.startswith("share of the file cached before: share of the data file's "
                              "pages in the page cache before the iteration")
    assert "(fraction; metric resident_fraction_before)" in caption


def test_legends_leave_out_keys_constant_in_the_chart_or_not_applying() -> None:
    from runner.report.chart_data import label_series
    keys = ("backing", "read_buffer", "populate")
    values = [("read-file", 4096, "none"), ("read-file", 1 << 20, "none"),
              ("mmap-file", 1 << 20, "none")]
    applying = [(True, True, True), (True, True, True), (True, False, True)]
    shown, labels = label_series(keys, values, applying)
    assert shown == ("backing", "read_buffer")  # populate is none on every line
    assert labels == ["read-file read_buffer=4KiB", "read-file read_buffer=1MiB", "mmap-file"]
    # read_buffer has one value among the lines it applies to: it tells nothing apart.
    shown, labels = label_series(keys, values[1:], applying[1:])
    assert (shown, labels) == (("backing",), ["read-file", "mmap-file"])
    # Lines told apart only by a value that does not apply keep it, rather than look alike.
    shown, labels = label_series(keys, [("mmap-file", 4096, "none"),
                                        ("mmap-file", 1 << 20, "none")], applying[2:] * 2)
    assert (shown, labels) == (("read_buffer",), ["read_buffer=4KiB", "read_buffer=1MiB"])


def test_a_parameter_constant_within_a_chart_is_not_in_its_legend(samples) -> None:  # type: ignore[no-untyped-def]
    chart = ChartSpec("t", "first_touch_ns_per_page", "size", log_x=True)
    # access is a label key of the run but write-page in every scenario.
    data = chart_data(samples, chart, ("backing", "size", "access"))
    assert data.series_keys == ("backing",) and data.legend_title == "backing"
    assert [s.label for s in data.series] == ["malloc", "mmap-anon"]
    assert "access" not in render_svg(data)


def test_titles_and_process_marks_keep_the_svg_deterministic(samples) -> None:  # type: ignore[no-untyped-def]
    for x, other in (("size", "backing"), ("backing", "size")):
        chart = ChartSpec("t", "first_touch_ns_per_page", x, (other,), log_x=x == "size")
        first = render_svg(chart_data(samples, chart, LABEL_KEYS))
        assert first == render_svg(chart_data(samples, chart, LABEL_KEYS))
        # Per point: the median, its processes, and on a categorical axis its quartile bar.
        assert first.count('<g class="point"') == 6 * (2 + (x == "backing"))
