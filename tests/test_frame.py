"""Records -> DataFrame: one row per sample, per-op and per-page metrics derived correctly."""

from pathlib import Path

import pytest

from runner.frame import COLUMNS, build_frame, measured
from runner.store import load_run
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
    assert row["size_bytes"] == 65536 and row["ops"] == 2 and row["pages_per_op"] == 16
    # The fake probe spends 250 ns and one fault per page; process 1 has no jitter.
    assert row["first_touch_ns"] == 250 * 32
    assert row["first_touch_ns_per_op"] == 250 * 16
    assert row["first_touch_ns_per_page"] == 250
    assert row["first_touch_minor_faults_per_page"] == 1
    assert row["first_touch_rss_growth_bytes_per_op"] == 65536
    assert row["free_rss_growth_bytes_per_op"] == -65536
    assert row["total_ns_per_op"] == pytest.approx((10 + 250 + 20 + 40) * 16)
