"""The compare page and the Markdown summary: what they say, and the same bytes every time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.compare import compare_runs
from runner.compare_report import build_compare_context, render_compare_html, render_markdown
from runner.store import StoredRun, load_run
from tests.synthetic import COMPARE_SPEC, FINGERPRINT, write_synthetic_run

TEMPLATES = Path(__file__).parent.parent / "runner" / "templates"
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
    assert "8 scenario × metric pairs: 8 different." in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 8 and all("**regression** different" in r for r in table[1:])


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
    assert context["candidates"][0]["summary"] == "8 different"
