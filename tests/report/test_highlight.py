"""Highlighted cells: noise is marked only where it can change a conclusion."""

from __future__ import annotations

from typing import Any

from runner.analysis.stats import Summary, summarize
from runner.analysis.verdict import Comparison, Verdict
from runner.core.model import ChartSpec, CheckSpec
from runner.report.highlight import cell_title, noisy_cells

METRIC = "first_touch_ns_per_page"
CHART = ChartSpec("t", METRIC, "size", ("backing",), log_x=True)


def _scenario(sid: str, backing: str, size: int) -> dict[str, Any]:
    return {"id": sid, "label": f"{backing} {size}",
            "params": {"backing": backing, "size_bytes": size}}


def _spread(median: float, cv: float) -> Summary:
    """Samples around `median` whose robust CV is about `cv`."""
    half_iqr = cv * 1.349 * median / 2
    return summarize([median - 2 * half_iqr, median - half_iqr, median, median + half_iqr,
                      median + 2 * half_iqr])


SCENARIOS = [_scenario("m4", "malloc", 4096), _scenario("a4", "mmap-anon", 4096),
             _scenario("f4", "memfd", 4096), _scenario("m8", "malloc", 8192),
             _scenario("a8", "mmap-anon", 8192)]


def _cells(summaries: dict[str, Summary], verdicts: tuple[Verdict, ...] = (),
           charts: tuple[ChartSpec, ...] = (CHART,)) -> dict[tuple[str, str], str]:
    return noisy_cells({(sid, METRIC): s for sid, s in summaries.items()}, SCENARIOS, charts,
                       verdicts, [METRIC])


def test_noisy_cells_far_from_their_neighbours_are_not_highlighted() -> None:
    # 40% CV, but the series at the same x are 3x and 9x apart: the order is not in doubt.
    summaries = {"m4": _spread(100, 0.4), "a4": _spread(300, 0.4), "f4": _spread(900, 0.4),
                 "m8": _spread(100, 0.02), "a8": _spread(100, 0.02)}
    assert summaries["m4"].noisy
    assert _cells(summaries) == {}


def test_an_overlap_with_the_neighbour_highlights_the_noisy_side_only() -> None:
    summaries = {"m4": _spread(100, 0.3), "a4": _spread(120, 0.02), "f4": _spread(900, 0.02),
                 # equal medians: "the same" is the conclusion, whatever the spread
                 "m8": _spread(100, 0.4), "a8": _spread(102, 0.4)}
    cells = _cells(summaries)
    assert set(cells) == {("m4", METRIC)}
    assert "overlap those of mmap-anon 4096" in cells["m4", METRIC]


def test_only_series_drawn_side_by_side_are_compared() -> None:
    # m4 and m8 overlap, but they are at different x on the chart; a where filter leaves f4 out.
    summaries = {"m4": _spread(100, 0.3), "a4": _spread(200, 0.02), "f4": _spread(110, 0.02),
                 "m8": _spread(115, 0.3), "a8": _spread(400, 0.02)}
    only_two = ChartSpec("t", METRIC, "size", ("backing",),
                         where=(("backing", "malloc"),))
    assert _cells(summaries, charts=(only_two,)) == {}
    assert set(_cells(summaries)) == {("m4", METRIC)}  # with f4 beside it


def _verdict(outcome: str, note: str = "") -> Verdict:
    check = CheckSpec("mmap is faster", METRIC, "lower", (("backing", "mmap-anon"),),
                      (("backing", "malloc"),))
    pair = Comparison("size=4KiB", "mmap-anon 4096", "malloc 4096", 95.0, 100.0, 0.95, 0.9,
                      1.01, outcome, note=note)  # type: ignore[arg-type]
    return Verdict(check, "inconclusive", "", (pair,))


def test_both_sides_of_a_pair_the_noise_left_undecided_are_highlighted() -> None:
    quiet = {sid: _spread(100 * (i + 1), 0.02) for i, sid in enumerate(["m4", "a4", "f4",
                                                                          "m8", "a8"])}
    cells = _cells(quiet, (_verdict("undecided"),))
    assert set(cells) == {("m4", METRIC), ("a4", METRIC)}
    assert "“mmap is faster” is undecided at size=4KiB" in cells["a4", METRIC]
    # Too few processes is not noise, and a decided pair is a conclusion noise did not change.
    assert _cells(quiet, (_verdict("undecided", note="3 against 3 processes"),)) == {}
    assert _cells(quiet, (_verdict("holds"),)) == {}


def test_every_cell_keeps_its_cv_in_the_tooltip() -> None:
    summary = _spread(100, 0.3)
    assert cell_title(summary, None) == "robust CV 30%"
    assert cell_title(summary, "why").startswith("robust CV 30%: noise can change")
    assert cell_title(summarize([]), None) == "no samples"
