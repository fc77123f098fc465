"""Records -> DataFrame: one row per sample, per-op and per-page metrics derived correctly."""

import json
import math
import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from runner.analysis.frame import COLUMNS, build_frame, measured
from runner.core.observations import OBSERVATIONS
from runner.store.folders import StoredRun, load_run
from tests.rowwise_frame import build_frame_by_rows
from tests.synthetic import write_synthetic_run


def test_one_row_per_iteration_of_each_successful_process(tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec, crash=("malloc 4KiB", 1)))
    frame = build_frame(run)
    assert list(frame.columns) == list(COLUMNS)
    # 6 scenarios x 3 processes x (1 warm-up + 2 measured), less the crashed process's 3.
    assert len(frame) == 6 * 3 * 3 - 3
    assert len(measured(frame)) == 6 * 3 * 2 - 2
    assert not measured(frame)["warmup"].any()
    crashed = frame[(frame["label"] == "malloc 4KiB")]
    assert sorted(set(crashed["process_index"])) == [0, 2]


def test_metrics_are_per_block_and_per_page(tmp_path: Path, small_spec: Path) -> None:
    frame = measured(build_frame(load_run(write_synthetic_run(tmp_path, small_spec))))
    row = frame[(frame["label"] == "mmap-anon 64KiB") & (frame["process_index"] == 1)].iloc[0]
    assert row["size_bytes"] == 65536 and row["ops"] == 8 and row["pages_per_op"] == 16
    # The fake probe spends 250 ns and one fault per page; process 1 has no jitter.
    assert row["first_touch_ns"] == 250 * 16 * 8
    assert row["first_touch_ns_per_op"] == 250 * 16
    assert row["first_touch_ns_per_page"] == 250
    assert row["first_touch_minor_faults_per_page"] == 1
    assert row["first_touch_major_faults_per_page"] == 0
    assert row["first_touch_rss_growth_bytes_per_op"] == 65536
    assert row["free_rss_growth_bytes_per_op"] == -65536
    assert row["total_ns_per_op"] == pytest.approx((10 + 250 + 20 + 40) * 16)
    # one use of the memory: the second pass left out
    assert row["single_pass_ns_per_op"] == pytest.approx((10 + 250 + 40) * 16)
    # allocate + first touch as one window: faulting the memory in, wherever it happens
    assert row["fault_in_ns_per_op"] == pytest.approx((10 + 250) * 16)
    assert row["fault_in_ns_per_page"] == pytest.approx(10 + 250)
    assert row["fault_in_minor_faults_per_page"] == 1


def _with_observations(run: StoredRun, observations: dict[str, int]) -> StoredRun:
    records = tuple(
        replace(r, probe={**r.probe, "iterations": [
            {**it, "observations": observations} for it in r.probe["iterations"]]})
        if r.probe is not None else r
        for r in run.records)
    return replace(run, records=records)


def test_observations_are_metric_columns_per_op_where_declared(tmp_path: Path,
                                                               small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    observed = {"alignment_bytes": 4096, "protection_enforced": 1, "mprotect_ns": 600,
                "first_touch_syscalls": 16, "read_buffer_page_offset_bytes": 0}
    frame = measured(build_frame(_with_observations(run, observed)))
    row = frame[frame["label"] == "mmap-anon 64KiB"].iloc[0]  # ops 8
    assert row["alignment_bytes"] == 4096
    assert row["first_touch_syscalls_per_op"] == 2
    assert row["read_buffer_page_offset_bytes"] == 0
    assert row["protection_enforced"] == 1
    assert row["mprotect_ns_per_op"] == 75
    assert math.isnan(row["anon_huge_bytes_per_op"])  # not reported: no value, not zero
    assert {o.metric.name for o in OBSERVATIONS} <= set(frame.columns)


def test_runs_stored_before_the_vocabulary_grew_still_load(tmp_path: Path,
                                                           small_spec: Path) -> None:
    """Probe version 1 runs: populate true/false, no thp or release, no observations."""
    run_dir = write_synthetic_run(tmp_path, small_spec)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for scenario in manifest["scenarios"]:
        params = scenario["params"]
        del params["thp"], params["release"]
        params["populate"] = False
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    frame = measured(build_frame(load_run(run_dir)))
    assert set(frame["populate"]) == {"none"}
    assert set(frame["thp"]) == {"default"} and set(frame["release"]) == {"auto"}
    assert frame["alignment_bytes"].isna().all()


def test_returned_fraction_is_what_free_gave_back_of_what_became_resident(
        tmp_path: Path, small_spec: Path) -> None:
    frame = measured(build_frame(load_run(write_synthetic_run(tmp_path, small_spec))))
    # The fake probe makes every touched page resident and free returns all of them.
    assert (frame["free_returned_fraction"] == 1.0).all()


def test_parts_per_million_become_a_fraction_and_counts_a_share_of_blocks(
        tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    observed = {"resident_ppm_before": 250_000, "blocks_in_heap": 4, "data_survived": 1}
    frame = measured(build_frame(_with_observations(run, observed)))
    row = frame[frame["label"] == "mmap-anon 64KiB"].iloc[0]  # ops 8
    assert row["resident_fraction_before"] == 0.25
    assert row["blocks_in_heap_per_op"] == 0.5
    assert row["data_survived"] == 1


def test_growth_per_requested_byte(tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    observed = {"brk_growth_bytes": 8 * 65536 * 2, "vm_size_growth_bytes": 8 * 65536}
    frame = measured(build_frame(_with_observations(run, observed)))
    row = frame[frame["label"] == "mmap-anon 64KiB"].iloc[0]  # ops 8
    assert row["resident_per_requested_byte"] == 1.0  # every touched page became resident
    assert row["brk_growth_per_requested_byte"] == 2.0
    assert row["vm_size_growth_per_requested_byte"] == 1.0


def test_usable_size_per_requested_byte(tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    observed = {"usable_bytes": 8 * (65536 + 8), "brk_moves": 2, "nonzero_blocks": 8}
    frame = measured(build_frame(_with_observations(run, observed)))
    row = frame[frame["label"] == "mmap-anon 64KiB"].iloc[0]  # ops 8
    assert row["usable_per_requested_byte"] == pytest.approx((65536 + 8) / 65536)
    assert row["brk_moves_per_op"] == 0.25  # a share of the calls
    assert row["nonzero_blocks_per_op"] == 1.0  # a share of the blocks


def test_break_step_per_requested_byte(tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    frame = measured(build_frame(_with_observations(run, {"brk_step_median_bytes": 132 << 10})))
    row = frame[frame["label"] == "mmap-anon 64KiB"].iloc[0]
    assert row["brk_step_per_requested_byte"] == pytest.approx((132 << 10) / 65536)
    assert measured(build_frame(run))["brk_step_per_requested_byte"].isna().all()


def test_retained_memory_is_what_an_iteration_left_resident(tmp_path: Path,
                                                            small_spec: Path) -> None:
    frame = measured(build_frame(load_run(write_synthetic_run(tmp_path, small_spec))))
    # The fake probe's free phase returns every page it made resident: nothing is left.
    assert (frame["retained_per_requested_byte"] == 0.0).all()


def test_limits_phases_are_per_mapping_made_not_per_ops(tmp_path: Path,
                                                        small_spec: Path) -> None:
    """Workload limits maps until refused: its per-op metrics count the blocks it mapped."""
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    frame = measured(build_frame(_with_observations(run, {"mappings_until_refused": 4})))
    row = frame[(frame["label"] == "mmap-anon 64KiB") & (frame["process_index"] == 1)].iloc[0]
    assert row["first_touch_ns_per_op"] == 250 * 16 * 8 / 4  # ops 8, 4 blocks really mapped
    assert row["mappings_until_refused"] == 4  # a count, not a share
    refused_at_once = measured(build_frame(_with_observations(run, {"mappings_until_refused": 0})))
    assert (refused_at_once["allocate_ns_per_op"] == refused_at_once["allocate_ns"]).all()


def test_rows_follow_the_plan_whatever_order_records_were_stored_in(
        tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    shuffled = replace(run, records=tuple(reversed(run.records)))
    frame, expected = build_frame(shuffled), build_frame(run)
    assert frame.equals(expected)
    keys = list(zip(frame["scenario_index"], frame["process_index"], frame["iteration"],
                    strict=True))
    assert keys == sorted(keys) and frame.index.equals(pd.RangeIndex(len(frame)))
    assert frame["size_bytes"].dtype == "int64" and frame["warmup"].dtype == bool
    assert frame["first_touch_ns_per_op"].dtype == float


def test_an_observation_reported_by_some_iterations_only_is_nan_elsewhere(
        tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    first, *rest = run.records
    assert first.probe is not None
    iterations = [{**it, "observations": {"mappings": 7}} if i == 0 else it
                  for i, it in enumerate(first.probe["iterations"])]
    run = replace(run, records=(replace(first, probe={**first.probe, "iterations": iterations}),
                                *rest))
    frame = build_frame(run)
    seen = frame["mappings"].notna()
    assert frame.loc[seen, "mappings"].tolist() == [7.0]
    assert (frame.loc[seen, "process_index"].tolist(), frame.loc[seen, "iteration"].tolist()) == (
        [first.process_index], [0])


def test_a_run_without_samples_gives_an_empty_frame_with_every_column(
        tmp_path: Path, small_spec: Path) -> None:
    run = replace(load_run(write_synthetic_run(tmp_path, small_spec)), records=())
    frame = build_frame(run)
    assert frame.empty and list(frame.columns) == list(COLUMNS)


def test_single_pass_system_calls_leave_the_second_pass_out(tmp_path: Path,
                                                            small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    observed = {"allocate_syscalls": 8, "first_touch_syscalls": 16, "second_pass_syscalls": 16,
                "free_syscalls": 8}
    frame = measured(build_frame(_with_observations(run, observed)))
    row = frame[frame["label"] == "mmap-anon 64KiB"].iloc[0]  # ops 8
    assert row["single_pass_syscalls_per_op"] == 4
    assert measured(build_frame(run))["single_pass_syscalls_per_op"].isna().all()


def _varied_observations(run: StoredRun, seed: int) -> StoredRun:
    """Each iteration reports a random subset of every observation, with random values (zero
    included, and mappings_until_refused of 0: per-op metrics then divide by one)."""
    rng = random.Random(seed)
    records = []
    for record in run.records:
        if record.probe is None:
            records.append(record)
            continue
        iterations = []
        for it in record.probe["iterations"]:
            observed = {o.name: rng.choice((0, 1, 3, 4096, 250_000, 1 << 40))
                        for o in OBSERVATIONS if rng.random() < 0.5}
            phases = {name: {**values, "major_faults": rng.randrange(3)}
                      for name, values in it["phases"].items()}
            iterations.append({**it, "phases": phases, "observations": observed})
        records.append(replace(record, probe={**record.probe, "iterations": iterations}))
    return replace(run, records=tuple(records))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_column_wise_frame_has_the_values_of_the_per_sample_definitions(
        tmp_path: Path, small_spec: Path, seed: int) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec, crash=("malloc 4KiB", 1)))
    run = _varied_observations(run, seed)
    frame, expected = build_frame(run), build_frame_by_rows(run)
    assert list(frame.columns) == list(expected.columns) == list(COLUMNS)
    # Same values, NaN where NaN (dtypes may differ where a column is all NaN).
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False, check_exact=True)


def test_a_categorical_frame_holds_the_same_values_with_text_as_codes(
        tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec, crash=("malloc 4KiB", 1)))
    plain, coded = build_frame(run), build_frame(run, categorical=True)
    assert list(coded.columns) == list(plain.columns)
    text = [c for c in coded.columns if isinstance(coded[c].dtype, pd.CategoricalDtype)]
    assert {"scenario_id", "label", "backing"} <= set(text)
    assert all(pd.api.types.is_numeric_dtype(coded[c]) for c in ("size_bytes", "ops"))
    # Categories in plan order, as the scenarios come.
    assert list(coded["backing"].cat.categories) == list(dict.fromkeys(plain["backing"]))
    pd.testing.assert_frame_equal(coded.astype({c: plain[c].dtype for c in text}), plain,
                                  check_exact=True)


def test_reuse_time_is_the_release_and_the_write_after_it(tmp_path: Path) -> None:
    """Workload reuse times its second pass after the free phase: reuse_ns_per_op adds the
    two; other workloads have none."""
    spec = tmp_path / "reuse.yaml"
    spec.write_text("name: reuse\ntitle: T\nquestion: Q?\nmatrix:\n  workload: [cycle, reuse]\n"
                    "fixed:\n  backing: mmap-anon\n  release: madv-free\n  ops: 4\n"
                    "  size: 64KiB\nrepetitions:\n  processes: 2\n")
    frame = measured(build_frame(load_run(write_synthetic_run(tmp_path / "results", spec))))
    reuse = frame[frame["workload"] == "reuse"]
    assert (reuse["reuse_ns_per_op"]
            == (reuse["free_ns"] + reuse["second_pass_ns"]) / reuse["ops"]).all()
    assert frame[frame["workload"] == "cycle"]["reuse_ns_per_op"].isna().all()


def test_churn_threads_count_every_threads_pairs_and_the_slowest_its_own(
        tmp_path: Path) -> None:
    """churn's threads each run ops pairs: per op is per pair of all threads (ops x threads),
    while slowest_thread_ns is one thread's loop over its own ops pairs."""
    spec = tmp_path / "churn.yaml"
    spec.write_text("name: churn-threads\ntitle: t\nquestion: q\n"
                    "matrix: {threads: [1, 2]}\n"
                    "fixed: {workload: churn, size: 4KiB, ops: 8}\n"
                    "charts: [{title: c, metric: allocate_ns_per_op, x: threads}]\n")
    run = load_run(write_synthetic_run(tmp_path, spec))
    frame = measured(build_frame(_with_observations(run, {"slowest_thread_ns": 800})))
    for threads in (1, 2):
        row = frame[frame["threads"] == threads].iloc[0]
        assert row["allocate_ns_per_op"] == row["allocate_ns"] / (8 * threads)
        assert row["first_touch_minor_faults_per_op"] == row["first_touch_minor_faults"] / (
            8 * threads)
        assert row["slowest_thread_ns_per_op"] == 100
