"""`alloclab export --format csv|parquet|json`: the tidy frame the report is built from, re-read
by pandas as it was written; `--format tar.gz` (the default) stays the archive."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pandas as pd
import pytest

from runner.analysis.frame import COLUMNS, build_frame
from runner.analysis.tidy import build_export_frame, write_frame
from runner.cli.main import main
from runner.core.errors import UsageError
from runner.store.folders import load_run
from tests.synthetic import write_synthetic_run


@pytest.fixture
def two_runs(tmp_path: Path, small_spec: Path) -> list[Path]:
    results = tmp_path / "results"
    return [write_synthetic_run(results, small_spec, crash=("mmap-anon 1MiB", 2)),
            write_synthetic_run(results, small_spec, machine="other", scale=1.3, seed=1)]


def _expected(runs: list[Path]) -> pd.DataFrame:
    """The frames the report is built from (runner.analysis.frame.build_frame), one run after
    another."""
    return pd.concat([build_frame(load_run(run)) for run in runs], ignore_index=True)


def test_the_export_frame_is_every_sample_of_every_run_with_the_documented_columns(
        two_runs: list[Path]) -> None:
    frame = build_export_frame([load_run(run) for run in two_runs])
    assert list(frame.columns) == list(COLUMNS)
    # small: 6 scenarios x 3 processes x (1 warm-up + 2 iterations), one crashed process.
    assert len(frame) == (6 * 3 - 1) * 3 + 6 * 3 * 3
    assert list(frame["machine"].unique()) == ["test-machine", "other"]
    assert frame["warmup"].sum() == 6 * 3 - 1 + 6 * 3
    pd.testing.assert_frame_equal(frame, _expected(two_runs))


def test_csv_round_trips_through_pandas(two_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "samples.csv"
    assert main(["export", *map(str, two_runs), "--format", "csv", "-o", str(out)]) == 0
    expected = _expected(two_runs)
    # As docs/guide/comparing-runs.md says to read it back.
    again = pd.read_csv(out, keep_default_na=False, na_values=["NaN"])
    assert list(again.columns) == list(COLUMNS) and len(again) == len(expected)
    # CSV keeps values, not dtypes (an all-missing column reads back as float NaN).
    pd.testing.assert_frame_equal(again, expected, check_dtype=False, check_exact=True)


def test_json_round_trips_through_pandas(two_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "samples.json"
    assert main(["export", *map(str, two_runs), "--format", "json", "-o", str(out)]) == 0
    again = pd.read_json(out, orient="records", dtype=False)
    pd.testing.assert_frame_equal(again, _expected(two_runs), check_dtype=False, rtol=1e-12)


def test_parquet_round_trips_through_pandas_with_its_dtypes(
        two_runs: list[Path], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="the parquet extra is not installed (nox -s tests "
                        "leaves it out; pip install -e '.[test,parquet]' runs this)")
    out = tmp_path / "samples.parquet"
    assert main(["export", *map(str, two_runs), "--format", "parquet", "-o", str(out)]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(out), _expected(two_runs), check_exact=True)


def test_parquet_without_pyarrow_is_a_one_line_error_naming_the_extra(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"alloclab\[parquet\]"):
        write_frame(pd.DataFrame({"a": [1]}), tmp_path / "x.parquet", "parquet")


def test_an_experiment_folder_exports_the_run_its_report_shows_and_tar_gz_is_the_default(
        two_runs: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "samples.csv"
    experiment = two_runs[0].parent
    assert main(["export", str(experiment), "--format", "csv", "-o", str(out)]) == 0
    assert len(pd.read_csv(out)) == len(build_frame(load_run(two_runs[0])))
    archive = tmp_path / "runs.tar.gz"
    assert main(["export", str(experiment), "-o", str(archive)]) == 0
    with tarfile.open(archive) as packed:
        assert any(name.endswith("manifest.json") for name in packed.getnames())
