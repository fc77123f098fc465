"""Stored iterations -> columns: the bulk conversion gives what the one-by-one one gives, and
gives up on anything runner.store's per-iteration checks would refuse or name."""

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from runner.frame import build_frame
from runner.iterations import (
    IterationColumns,
    columns_by_iteration,
    columns_of,
    iteration_columns,
)
from runner.model import PHASES
from runner.store import load_run
from tests.synthetic import write_synthetic_run


def _iterations(count: int = 5) -> list[dict[str, Any]]:
    """Iterations as the probe prints them: warm-up first, observations of one workload."""
    return [{
        "checksum": 18374971274742927636,  # above int64: stored, never read
        "warmup": index < 2,
        "rss_before_bytes": 4096 * (100 + index),
        "phases": {phase: {"major_faults": index % 2, "minor_faults": 16 * index + p,
                           "ns": 1000 * (index + 1) + p, "rss_bytes": 4096 * (200 + p)}
                   for p, phase in enumerate(PHASES)},
        "observations": {"mappings": 20 + index, "vm_size_growth_bytes": 65536,
                         "not_a_known_observation": 3},
    } for index in range(count)]


def _assert_same(got: IterationColumns, expected: IterationColumns) -> None:
    assert got.warmup.tolist() == expected.warmup.tolist()
    assert got.rss_before_bytes.tolist() == expected.rss_before_bytes.tolist()
    assert got.phases.keys() == expected.phases.keys()
    for key, column in expected.phases.items():
        assert got.phases[key].dtype == column.dtype == np.int64
        assert got.phases[key].tolist() == column.tolist(), key
    assert got.observations.keys() == expected.observations.keys()
    for name, column in expected.observations.items():
        np.testing.assert_array_equal(got.observations[name], column)


def test_bulk_and_one_by_one_conversion_agree() -> None:
    iterations = _iterations()
    columns = columns_of(iterations)
    assert columns is not None and len(columns) == 5
    _assert_same(columns, columns_by_iteration(iterations))
    assert columns.warmup.tolist() == [True, True, False, False, False]
    assert columns.phases["first_touch", "ns"].tolist() == [1001, 2001, 3001, 4001, 5001]
    # Only the observations runner.metrics knows are kept (all are checked).
    assert sorted(columns.observations) == ["mappings", "vm_size_growth_bytes"]


def test_iterations_of_a_probe_before_observations_convert_in_bulk() -> None:
    iterations = _iterations()
    for iteration in iterations:
        del iteration["observations"]
    columns = columns_of(iterations)
    assert columns is not None and columns.observations == {}
    _assert_same(columns, columns_by_iteration(iterations))


def test_observations_in_another_order_are_left_to_the_one_by_one_conversion() -> None:
    iterations = _iterations()
    iterations[2]["observations"] = dict(reversed(iterations[2]["observations"].items()))
    assert columns_of(iterations) is None
    _assert_same(iteration_columns(iterations), columns_by_iteration(_iterations()))


def test_an_observation_some_iterations_lack_is_left_to_the_one_by_one_conversion() -> None:
    iterations = _iterations()
    del iterations[3]["observations"]["mappings"]
    assert columns_of(iterations) is None
    columns = iteration_columns(iterations)
    assert math.isnan(columns.observations["mappings"][3])
    assert columns.observations["mappings"][4] == 24


def _edited(path: tuple[Any, ...], value: Any) -> list[dict[str, Any]]:
    iterations = copy.deepcopy(_iterations())
    target: Any = iterations
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return iterations


@pytest.mark.parametrize(("path", "value"), [
    ((4, "warmup"), 0),
    ((1, "rss_before_bytes"), True),
    ((1, "rss_before_bytes"), -4096),
    ((2, "phases", "free", "ns"), 1.5),
    ((2, "phases", "free", "ns"), "7"),
    ((2, "phases", "free", "ns"), None),
    ((2, "phases", "free", "ns"), KeyError),
    ((2, "phases", "free"), KeyError),
    ((2, "phases", "free"), [1, 2, 3, 4]),
    ((3, "phases"), KeyError),
    ((0, "observations", "mappings"), -1),
    ((0, "observations", "mappings"), None),
    ((0, "observations", "not_a_known_observation"), "x"),
    ((0, "observations"), [1]),
    ((0,), [1]),
])
def test_what_the_store_would_refuse_or_name_is_not_converted_in_bulk(
        path: tuple[Any, ...], value: Any) -> None:
    assert columns_of(_edited(path, value)) is None


def test_values_past_int64_fail_as_they_always_did() -> None:
    iterations = _edited((2, "phases", "free", "ns"), 1 << 63)
    assert columns_of(iterations) is None
    with pytest.raises(OverflowError):
        iteration_columns(iterations)


def test_no_iterations_are_no_columns() -> None:
    assert columns_of([]) is None
    assert len(iteration_columns([])) == 0


def test_a_run_read_as_columns_gives_the_frame_of_a_run_read_as_records(
        tmp_path: Path, small_spec: Path) -> None:
    run_dir = write_synthetic_run(tmp_path, small_spec, crash=("malloc 4KiB", 1))
    columns = load_run(run_dir, columns=True)
    ok = [r for r in columns.records if r.status == "ok"]
    assert ok and all(isinstance(r.probe["iterations"], IterationColumns) for r in ok)
    pd.testing.assert_frame_equal(build_frame(columns), build_frame(load_run(run_dir)),
                                  check_exact=True)
