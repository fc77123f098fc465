"""Charts: the plotted data is tested directly; the SVG only for determinism and shape."""

from dataclasses import replace
from pathlib import Path

import pytest

from runner.charts import chart_data, render_svg
from runner.frame import build_frame, measured
from runner.metrics import axis_label
from runner.model import ChartSpec
from runner.noise import scenario_summaries
from runner.store import load_run
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
    from runner.charts import NUMERIC_KINDS, _series_label
    from runner.parameters import BY_KEY
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
        " <desc>Metric first_touch_ns_per_page. x axis: size (log scale); y axis: "
        f"{axis_label('first_touch_ns_per_page', 'ns')} (log scale); median line and "
        "interquartile band per series. Series (2): malloc; mmap-anon.</desc>")
    categorical = render_svg(chart_data(samples, ChartSpec("By backing",
                                                           "first_touch_ns_per_op", "backing"),
                                        LABEL_KEYS))
    desc = categorical.split("\n")[2]
    assert desc.startswith(" <desc>Metric first_touch_ns_per_op. x axis: backing; y axis: ")
    assert desc.endswith("; median point and interquartile bar per series. "
                         "Series (3): 4KiB; 64KiB; 1MiB.</desc>")


def test_overlaid_runs_are_described_series_by_run(samples) -> None:  # type: ignore[no-untyped-def]
    from runner.charts import render_overlay_svg

    chart = ChartSpec("Touch", "first_touch_ns_per_page", "size", ("backing",), log_x=True)
    data = chart_data(samples, chart, LABEL_KEYS)
    svg = render_overlay_svg([("base", data), ("new", data)])
    assert "Series (4): malloc — base; mmap-anon — base; malloc — new; mmap-anon — new." in svg
