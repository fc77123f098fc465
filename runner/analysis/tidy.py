"""The tidy frame written for a notebook: CSV, Parquet or JSON, one row per sample.

The rows and columns are runner.analysis.frame's (`build_frame`, the frame every report is built
from; its docstring and COLUMNS name them), warm-up iterations included and flagged in `warmup`, the
runs one after another in the order given. `alloclab export --format tar.gz` (the default) is the
other export, runner.store.archive: stored runs carried to another machine.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from runner.core.errors import UsageError
from runner.store.folders import StoredRun

if TYPE_CHECKING:
    import pandas as pd

DataFormat = Literal["csv", "parquet", "json"]
DATA_FORMATS: tuple[DataFormat, ...] = get_args(DataFormat)
ARCHIVE_FORMAT = "tar.gz"  # runner.store.archive's, the default of `alloclab export`


def build_export_frame(runs: Sequence[StoredRun]) -> pd.DataFrame:
    """Every sample of the runs, in order, with runner.analysis.frame's columns."""
    # Imported here: the command line imports this module for DATA_FORMATS and starts fast.
    import pandas as pd

    from runner.analysis.frame import COLUMNS, build_frame

    frames = [frame for frame in (build_frame(run) for run in runs) if len(frame)]
    if not frames:
        return pd.DataFrame([], columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)


def write_frame(frame: pd.DataFrame, path: Path, data_format: DataFormat) -> None:
    """Write `frame` as `data_format`; Parquet needs pyarrow (the `parquet` extra)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data_format == "csv":
        # Missing values as NaN, so an empty text value stays apart from a missing number:
        # pandas.read_csv(path, keep_default_na=False, na_values=["NaN"]) reads it back as is.
        frame.to_csv(path, index=False, na_rep="NaN")
    elif data_format == "json":
        # One object per sample, NaN as null: what pandas.read_json(orient="records") reads.
        frame.to_json(path, orient="records", double_precision=15)
    else:
        if importlib.util.find_spec("pyarrow") is None:
            raise UsageError(f"{path}: Parquet needs pyarrow, which is not installed (pip "
                             "install 'alloclab[parquet]', or use --format csv or json)")
        frame.to_parquet(path, index=False)
