"""Comparisons of synthetic runs whose differences are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runner.analysis.compare import compare_runs, decide, load_differences, process_values
from runner.analysis.noise import RunLoad, run_load
from runner.store.folders import StoredRun, load_run
from tests.synthetic import COMPARE_SPEC, FINGERPRINT, load_session, write_synthetic_run

METRIC = "first_touch_ns_per_page"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "cmp.yaml"
    path.write_text(COMPARE_SPEC)
    return path


def _run(tmp_path: Path, spec: Path, run_id: str, **options: object) -> StoredRun:
    return load_run(write_synthetic_run(tmp_path / "results", spec, run_id=run_id,
                                        **options))  # type: ignore[arg-type]


def test_decide_by_interval_band_and_significance() -> None:
    assert decide(0.98, 1.03, 0.9, 0.05) == "same"  # inside the band, whatever p says
    assert decide(1.01, 1.04, 0.0001, 0.05) == "same"  # real but smaller than the band
    assert decide(1.15, 1.25, 0.001, 0.05) == "different"
    assert decide(0.70, 0.80, 0.001, 0.05) == "different"
    assert decide(1.15, 1.25, 0.2, 0.05) == "inconclusive"  # not significant
    assert decide(1.02, 1.25, 0.001, 0.05) == "inconclusive"  # straddles the band's edge


def test_a_20_percent_slowdown_is_different_and_a_regression(tmp_path: Path, spec: Path) -> None:
    baseline = _run(tmp_path, spec, "r1", noise=0.02, seed=1)
    slower = _run(tmp_path, spec, "r2", noise=0.02, seed=2, scale=1.2)
    comparison = compare_runs(baseline, [slower], metrics=[METRIC], fail_above=0.10)
    [candidate] = comparison.candidates
    assert len(candidate.rows) == 8
    for row in candidate.rows:
        assert row.verdict == "different", row
        assert row.ratio == pytest.approx(1.2, rel=0.03)
        assert row.ci_low < 1.2 < row.ci_high or row.ratio == pytest.approx(1.2, rel=0.01)
        assert row.p_adjusted < 0.001 and row.regression
    assert len(comparison.regressions) == 8


def test_a_threshold_above_the_change_is_not_a_regression(tmp_path: Path, spec: Path) -> None:
    baseline = _run(tmp_path, spec, "r1", noise=0.02, seed=1)
    slower = _run(tmp_path, spec, "r2", noise=0.02, seed=2, scale=1.2)
    assert compare_runs(baseline, [slower], metrics=[METRIC], fail_above=0.25).regressions == []
    faster = _run(tmp_path, spec, "r3", noise=0.02, seed=3, scale=0.8)
    comparison = compare_runs(baseline, [faster], metrics=[METRIC], fail_above=0.10)
    assert comparison.regressions == []  # faster is not worse
    assert {row.verdict for row in comparison.candidates[0].rows} == {"different"}


def test_a_and_a_marks_few_scenarios_different(tmp_path: Path, spec: Path) -> None:
    runs = [_run(tmp_path, spec, f"r{seed}", noise=0.05, seed=seed) for seed in range(1, 6)]
    comparison = compare_runs(runs[0], runs[1:], metrics=[METRIC, "total_ns_per_op"],
                              fail_above=0.10)
    rows = [row for c in comparison.candidates for row in c.rows]
    assert len(rows) == 4 * 8 * 2
    assert sum(row.verdict == "different" for row in rows) <= 0.05 * len(rows)
    assert comparison.regressions == []
    assert all(0.85 < row.ratio < 1.15 for row in rows)


def test_exact_copies_are_the_same(tmp_path: Path, spec: Path) -> None:
    first, second = _run(tmp_path, spec, "r1"), _run(tmp_path, spec, "r2")
    comparison = compare_runs(first, [second],
                              metrics=[METRIC, "first_touch_minor_faults_per_page"])
    for row in comparison.candidates[0].rows:
        assert (row.ratio, row.p_value, row.verdict) == (1.0, 1.0, "same")
        if row.metric != METRIC:  # one page fault per page, always: a point interval
            assert (row.ci_low, row.ci_high) == (1.0, 1.0)
        else:  # ±2% jitter, each side resampled on its own
            assert 0.95 < row.ci_low < 1 < row.ci_high < 1.05


def test_comparability_flags_tunables_and_thp_as_confounders(tmp_path: Path,
                                                             spec: Path) -> None:
    baseline = _run(tmp_path, spec, "r1", fingerprint={**FINGERPRINT, "allocator_env": {},
                                                       "python": "3.11.7"})
    changed = _run(tmp_path, spec, "r2", fingerprint={
        **FINGERPRINT, "thp_enabled": "always", "python": "3.12.1",
        "allocator_env": {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"}})
    comparison = compare_runs(baseline, [changed], metrics=[METRIC])
    by_key = {d.key: d for d in comparison.differences}
    assert set(by_key) == {"thp_enabled", "allocator_env", "python"}
    assert by_key["thp_enabled"].confounds and by_key["thp_enabled"].values == ("madvise",
                                                                                "always")
    assert by_key["allocator_env"].confounds
    assert by_key["allocator_env"].values[1] == "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4096"
    assert not by_key["python"].confounds
    assert [d.key for d in comparison.confounders] == ["thp_enabled", "allocator_env"]


def test_a_fact_only_one_run_recorded_is_listed_but_not_flagged(tmp_path: Path,
                                                                spec: Path) -> None:
    old = _run(tmp_path, spec, "r1")
    new = _run(tmp_path, spec, "r2", fingerprint={**FINGERPRINT, "thp_defrag": "madvise"})
    [difference] = compare_runs(old, [new], metrics=[METRIC]).differences
    assert difference.key == "thp_defrag" and not difference.confounds
    assert difference.values == ("not recorded", "madvise")


def test_scenarios_are_matched_by_id_and_the_rest_listed(tmp_path: Path, spec: Path) -> None:
    baseline = _run(tmp_path, spec, "r1")
    other_spec = tmp_path / "other.yaml"
    other_spec.write_text(COMPARE_SPEC.replace("[4KiB, 64KiB, 1MiB, 16MiB]",
                                               "[64KiB, 1MiB, 16MiB, 32MiB]"))
    candidate = _run(tmp_path, other_spec, "r2")
    [result] = compare_runs(baseline, [candidate], metrics=[METRIC]).candidates
    assert len(result.rows) == 6
    assert result.only_in_baseline == ("malloc 4KiB", "mmap-anon 4KiB")
    assert result.only_in_candidate == ("malloc 32MiB", "mmap-anon 32MiB")


def test_each_process_counts_once_at_the_median_of_its_iterations() -> None:
    samples = pd.DataFrame({"scenario_id": ["a"] * 6, "process_index": [0, 0, 0, 1, 1, 1],
                            METRIC: [1.0, 2.0, 9.0, 4.0, 5.0, 6.0]})
    values = process_values(samples, METRIC)
    assert list(values) == ["a"]
    np.testing.assert_array_equal(values["a"], [2.0, 5.0])


def test_negative_values_have_no_ratio(tmp_path: Path, spec: Path) -> None:
    first, second = _run(tmp_path, spec, "r1"), _run(tmp_path, spec, "r2")
    comparison = compare_runs(first, [second], metrics=["free_rss_growth_bytes_per_op"],
                              fail_above=0.1)
    assert {row.verdict for row in comparison.candidates[0].rows} == {"no ratio"}
    assert comparison.regressions == []


def test_values_a_process_did_not_report_are_left_out() -> None:
    samples = pd.DataFrame({"scenario_id": ["a", "a", "b"], "process_index": [0, 1, 0],
                            METRIC: [1.0, float("nan"), float("nan")]})
    values = process_values(samples, METRIC)
    assert list(values) == ["a"]
    np.testing.assert_array_equal(values["a"], [1.0])


def test_a_run_s_load_is_read_from_its_sessions_weighted_by_length() -> None:
    assert run_load([load_session(1.07)]) == RunLoad(pytest.approx(1.07), 0.0)
    # 10 s at 1 CPU of other work and 30 s at none: 0.25 over the run
    both = run_load([load_session(1.0), load_session(0.0, seconds=30)])
    assert both.other_work_cpus == pytest.approx(0.25)
    assert run_load([]) == RunLoad(None, None)


def test_runs_differ_in_load_beyond_half_a_cpu_or_two_percent_of_steal() -> None:
    quiet, busy = RunLoad(0.02, 0.0), RunLoad(1.07, 0.0)
    (found,) = load_differences(busy, quiet)
    assert found.text == "1.07 vs 0.02 CPUs of other work"
    assert load_differences(RunLoad(0.02, 0.0), RunLoad(0.5, 0.01)) == ()
    assert [d.text for d in load_differences(quiet, RunLoad(0.02, 0.12))] == ["steal 0% vs 12%"]
    assert load_differences(quiet, RunLoad(None, None)) == ()  # unknown is not different


def test_a_candidate_under_other_load_names_it_on_every_row(tmp_path: Path, spec: Path) -> None:
    baseline = _run(tmp_path, spec, "r1", noise=0.02, seed=1,
                    manifest_extra={"load": [load_session(1.07)]})
    candidate = _run(tmp_path, spec, "r2", noise=0.02, seed=2, scale=1.3,
                     manifest_extra={"load": [load_session(0.02)]})
    comparison = compare_runs(baseline, [candidate], metrics=[METRIC], fail_above=0.1)
    (result,) = comparison.candidates
    assert result.load_text == "1.07 vs 0.02 CPUs of other work"
    assert {row.load_difference for row in result.rows} == {result.load_text}
    assert comparison.regressions  # still a regression for the gate, named with its load
    (mean,) = result.geometric_means()
    assert mean.metric == METRIC and mean.count == 8 and mean.ratio == pytest.approx(1.3, 0.03)
