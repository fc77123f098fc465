"""The compare page and the Markdown summary: what they say, and the same bytes every time."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from runner.analysis.compare import MetricComparison, RunRef, Verdict, by_effect, compare_runs
from runner.report.compare_page import (
    build_compare_context,
    change_cell,
    change_text,
    legend_names,
    render_compare_html,
    render_markdown,
)
from runner.report.site import render_reports
from runner.store.folders import StoredRun, load_run
from tests.synthetic import COMPARE_SPEC, FINGERPRINT, load_session, write_synthetic_run

TEMPLATES = Path(__file__).parents[2] / "templates"
METRIC = "first_touch_ns_per_page"


@pytest.fixture
def runs(tmp_path: Path) -> list[StoredRun]:
    spec = tmp_path / "cmp.yaml"
    spec.write_text(COMPARE_SPEC)
    results = tmp_path / "results"
    return [load_run(write_synthetic_run(results, spec, run_id="r1", noise=0.02, seed=1)),
            load_run(write_synthetic_run(results, spec, run_id="r2", noise=0.02, seed=2,
                                         scale=1.2, fingerprint={**FINGERPRINT,
                                                                 "thp_enabled": "always"}))]


def test_markdown_names_confounders_regressions_and_changed_rows(runs: list[StoredRun]) -> None:
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC], fail_above=0.1)
    markdown = render_markdown(comparison)
    assert markdown.startswith("## alloclab compare: cmp\n")
    assert "⚠️ 1 confounding difference(s): `thp_enabled` (madvise → always)" in markdown
    assert "❌ **8 regression(s) above +10%:**" in markdown
    assert "8 scenario × metric pairs: 8 different (8 slower)." in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 8 and all("**regression** different" in r for r in table[1:])
    assert all(re.search(r"\| [12]\d% slower \| 1\.\d+× ", r) for r in table[1:])


def test_markdown_of_no_change_says_so(runs: list[StoredRun]) -> None:
    comparison = compare_runs(runs[0], [runs[0]], metrics=[METRIC], fail_above=0.1)
    markdown = render_markdown(comparison)
    assert "✅ No regression above +10%." in markdown
    assert "no confounding fingerprint difference" in markdown
    assert "Every pair is the same within ±5%." in markdown


def test_html_has_comparability_verdicts_charts_and_is_deterministic(
        runs: list[StoredRun], tmp_path: Path) -> None:
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC], fail_above=0.1)
    first = render_compare_html(comparison, runs, "alloclab compare a b", tmp_path / "one",
                                TEMPLATES).read_bytes()
    second = render_compare_html(comparison, runs, "alloclab compare a b", tmp_path / "two",
                                 TEMPLATES).read_bytes()
    assert first == second
    html = first.decode()
    assert html.count("<svg") == 1
    assert 'class="confounds"' in html and "thp_enabled" in html
    assert html.count('<tr class="regression">') == 8 + 8  # the regression list and the table
    assert "regression: different" in html
    assert "alloclab compare a b" in html
    assert len(re.findall(r"[0-9a-f]{64}", html)) == 2  # each run's data checksum


def test_context_lists_both_runs_with_their_provenance(runs: list[StoredRun]) -> None:
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC])
    context = build_compare_context(comparison, runs, "cmd")
    assert [r["role"] for r in context["runs"]] == ["baseline", "candidate"]
    assert context["runs"][1]["name"] == "test-machine/cmp/r2"
    assert context["fail_above"] is None and context["equivalence"] == "±5%"
    assert context["candidates"][0]["summary"] == "8 different (8 slower)"


def _row(metric: str, ratio: float, index: int = 0,
         verdict: Verdict = "different") -> MetricComparison:
    return MetricComparison(f"s{index}", f"scenario {index}", metric, 100.0, 100.0 * ratio, 5, 5,
                            ratio, ratio * 0.9, ratio * 1.1, 0.01, 0.01, verdict, False)


@pytest.mark.parametrize(("metric", "ratio", "text"), [
    (METRIC, 1.2, "20% slower"),
    (METRIC, 0.8, "20% faster"),
    (METRIC, 3.0, "3× slower"),
    (METRIC, 0.25, "4× faster"),
    (METRIC, 1.0, "no change"),
    (METRIC, float("nan"), "–"),
    ("first_touch_minor_faults_per_page", 0.5, "2× fewer"),
    ("first_touch_minor_faults_per_page", 0.0, "100% fewer"),
    ("first_touch_minor_faults_per_page", float("inf"), "more (from 0)"),
    ("first_touch_rss_growth_bytes_per_op", 1.05, "5% more"),
    ("free_returned_fraction", 0.9, "10% lower"),
    ("single_pass_syscalls_per_op", 1.5, "50% more"),
])
def test_each_change_is_worded_by_the_metric_s_direction(metric: str, ratio: float,
                                                         text: str) -> None:
    assert change_text(_row(metric, ratio)) == text


def test_a_change_the_verdict_does_not_back_is_qualified() -> None:
    assert change_cell(_row(METRIC, 1.6)) == "60% slower"
    assert change_cell(_row(METRIC, 1.6, verdict="inconclusive")) == "60% slower (unsure)"
    assert change_cell(_row(METRIC, 0.98, verdict="same")) == "2% faster (within the band)"
    assert change_cell(_row(METRIC, 1.0, verdict="same")) == "no change"


def test_rows_go_largest_change_first_either_way_ties_in_their_order() -> None:
    rows = [_row(METRIC, r, i) for i, r in enumerate([1.1, 0.5, 2.0, float("nan"), 0.0, 0.9])]
    ordered = [row.scenario_id for row in by_effect(rows)]
    # 0 (from 100 to nothing) first; 0.5 and 2.0 weigh the same and keep their order; 1.1 and
    # 0.9 nearly so (|log| 0.095 and 0.105); no ratio last.
    assert ordered == ["s4", "s1", "s2", "s5", "s0", "s3"]


def test_different_rows_are_counted_by_which_way_they_went(runs: list[StoredRun]) -> None:
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC])
    mixed = replace(comparison.candidates[0], rows=(
        _row(METRIC, 1.5, 0), _row(METRIC, 0.5, 1), _row(METRIC, 2.0, 2),
        _row("first_touch_minor_faults_per_page", 0.5, 3), _row(METRIC, 1.01, 4, "same")))
    context = build_compare_context(replace(comparison, candidates=(mixed,)), runs, "cmd")
    assert context["candidates"][0]["summary"] == (
        "4 different (2 slower, 1 faster, 1 fewer faults), 1 same within ±5%")
    # the different rows shown, largest change first; the same one folded away
    assert [r["id"] for r in context["candidates"][0]["rows"]] == ["s1", "s2", "s3", "s0"]
    assert [r["id"] for r in context["candidates"][0]["folded"]] == ["s4"]


def test_counts_and_regressions_come_before_comparability_and_charts(
        runs: list[StoredRun], tmp_path: Path) -> None:
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC], fail_above=0.1)
    html = render_compare_html(comparison, runs, "cmd", tmp_path, TEMPLATES).read_text()
    positions = [html.index(marker) for marker in (
        "<h2>Verdicts</h2>", "8 different (8 slower)", "<h2>Regressions above +10%</h2>",
        '<h2 id="comparability">Comparability</h2>', "<svg",
        '<h2 id="candidate-test-machine-r2">')]
    assert positions == sorted(positions)
    assert html.count("% slower</td>") == 8 + 8  # the regression list and the table


LOAD = "1.07 vs 0.02 CPUs of other work"


def test_an_a_a_pair_under_different_load_calls_nothing_a_regression_without_the_load(
        tmp_path: Path) -> None:
    # One spec, one machine; the manifests differ only in the load recorded around the runs,
    # and the candidate came out slower, as a changed load can make it.
    spec = tmp_path / "cmp.yaml"
    spec.write_text(COMPARE_SPEC)
    results = tmp_path / "results"
    runs = [load_run(write_synthetic_run(results, spec, run_id="r1", noise=0.02, seed=1,
                                         manifest_extra={"load": [load_session(1.07)]})),
            load_run(write_synthetic_run(results, spec, run_id="r2", noise=0.02, seed=2,
                                         scale=1.3,
                                         manifest_extra={"load": [load_session(0.02)]}))]
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC], fail_above=0.1)
    html = render_compare_html(comparison, runs, "cmd", tmp_path / "out", TEMPLATES).read_text()
    verdicts = re.findall(r'<td class="verdict different">(.*?)</td>', html)
    assert len(verdicts) == 8
    assert all(v == f"regression: different, under different load ({LOAD})" for v in verdicts)
    assert html.count(f"under different load ({LOAD})</span>") == 8  # the regression list
    assert "Every recorded fingerprint field is the same in all runs." in html
    assert f"was measured under different load than the baseline: {LOAD}" in html
    assert re.search(r'<td class="confounds">yes</td>\s*<td>1.07 CPUs</td><td>0.02 CPUs</td>',
                     html)
    markdown = render_markdown(comparison)
    assert f"measured under different load than the baseline ({LOAD})" in markdown
    for line in markdown.splitlines():
        if "regression" in line or "different" in line.replace("different load", ""):
            assert LOAD in line or line.startswith(("8 scenario", "Baseline")), line


def test_the_page_links_the_index_and_the_experiment_page_when_in_a_report(
        runs: list[StoredRun], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    render_reports(runs[0].path.parents[2], reports, TEMPLATES)
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC])
    html = render_compare_html(comparison, runs, "cmd", reports / "compare" / "pair",
                               TEMPLATES).read_text()
    assert '<nav><a href="../../index.html">alloclab</a><a href="../../cmp.html">cmp</a>' in html
    assert 'href="../../cmp.html#m-test-machine"' in html
    elsewhere = render_compare_html(comparison, runs, "cmd", tmp_path / "alone",
                                    TEMPLATES).read_text()
    assert "index.html" not in elsewhere and "cmp.html" not in elsewhere
    # the index lists the compare page once it is rendered again
    render_reports(runs[0].path.parents[2], reports, TEMPLATES)
    assert '<a href="compare/pair/compare.html">Compare cmp</a>' in (
        reports / "index.html").read_text()


def test_a_chart_legend_names_a_run_by_what_tells_it_apart() -> None:
    def ref(machine: str, run_id: str) -> RunRef:
        return RunRef(machine, "first-touch", run_id, f"results/{machine}/first-touch/{run_id}")

    same_machine = [ref("vm", "20261207T045307Z"), ref("vm", "20261207T050005Z")]
    assert legend_names(same_machine) == ["20261207T045307Z", "20261207T050005Z"]
    two_machines = [ref("a", "20261207T045307Z"), ref("b", "20261207T045307Z")]
    assert legend_names(two_machines) == ["a", "b"]
    mixed = [ref("a", "1"), ref("b", "2"), ref("b", "3")]
    assert legend_names(mixed) == ["a 1", "b 2", "b 3"]
