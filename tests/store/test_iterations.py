"""Stored iterations -> columns: the bulk conversion gives what the one-by-one one gives, and
gives up on anything runner.store.untrusted's per-iteration checks would refuse or name."""

import contextlib
import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.analysis.frame import build_frame
from runner.core.errors import StoreError
from runner.core.model import PHASES
from runner.store.folders import load_run
from runner.store.iterations import (
    IterationColumns,
    columns_by_iteration,
    columns_of,
    decode_record,
    iteration_columns,
)
from runner.store.untrusted import check_record
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
    # Only the observations runner.core.metrics knows are kept (all are checked).
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


REFUSED = [
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
]


@pytest.mark.parametrize(("path", "value"), REFUSED)
def test_what_the_store_would_refuse_or_name_is_not_converted_in_bulk(
        path: tuple[Any, ...], value: Any) -> None:
    assert columns_of(_edited(path, value)) is None


def _line(iterations: Any, **probe: Any) -> bytes:
    """A samples line of a finished process holding these iterations."""
    record = {"exit_code": 0, "process_index": 1, "scenario_id": "s", "signal": None,
              "status": "ok", "stderr_tail": "", "wall_s": 0.25,
              "probe": {"page_size_bytes": 4096, "libc": {"name": "glibc", "version": "2.36"},
                        "iterations": iterations, **probe}}
    return json.dumps(record).encode()


def test_a_decoded_line_holds_the_record_and_the_columns_of_its_iterations() -> None:
    iterations = _iterations()
    record = decode_record(_line(iterations, file_fs=None))
    assert record is not None
    columns = record["probe"].pop("iterations")
    _assert_same(columns, columns_by_iteration(iterations))
    expected = json.loads(_line(iterations, file_fs=None))
    del expected["probe"]["iterations"]
    assert record == expected and list(record) == list(expected)


def _reordered(iterations: list[dict[str, Any]]) -> None:
    iterations[2]["observations"] = dict(reversed(iterations[2]["observations"].items()))
    del iterations[3]["observations"]["mappings"]


def _swapped(iterations: list[dict[str, Any]]) -> None:
    """As many names as the others, but another set: a known one for an unknown one."""
    del iterations[4]["observations"]["not_a_known_observation"]
    iterations[4]["observations"]["brk_moves"] = 1


@pytest.mark.parametrize("vary", [_reordered, _swapped])
def test_a_decoded_line_converts_observations_that_vary_as_the_one_by_one_conversion(
        vary: Any) -> None:
    iterations = _iterations()
    vary(iterations)
    record = decode_record(_line(iterations))
    assert record is not None
    _assert_same(record["probe"]["iterations"], columns_by_iteration(iterations))


@pytest.mark.parametrize(("path", "value"), REFUSED)
def test_a_line_whose_iterations_the_store_would_refuse_is_not_decoded(
        path: tuple[Any, ...], value: Any) -> None:
    assert decode_record(_line(_edited(path, value))) is None


@pytest.mark.parametrize("line", [
    _line([]), _line(_edited((2, "phases", "free", "ns"), 1 << 63)),
    _line(_iterations())[:-9],  # torn by a kill
    b'{"probe": null, "status": "crashed"}', b'{"status": "ok"}', b"[1, 2]", b"NaN",
    _line(_iterations()).replace(b'"iterations"', b'"iteration"'),
    _line(_iterations()).replace(b'"ns": 1001', b'"ns": 1001.0'),
    _line(_iterations()).replace(b'"warmup": true', b'"warmup": 1'),
    _line(_iterations()).replace(b"glibc", b"gl\\ud800ibc"),
])
def test_lines_the_columns_cannot_hold_are_left_to_the_checks(line: bytes) -> None:
    assert decode_record(line) is None


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


_values = st.one_of(st.none(), st.booleans(), st.integers(-2**65, 2**65), st.floats(),
                    st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2),
                    st.dictionaries(st.sampled_from(["ns", "mappings", "x"]),
                                    st.integers(0, 9), max_size=2))
_paths = st.sampled_from([
    (0, "warmup"), (4, "rss_before_bytes"), (1, "phases"), (2, "phases", "allocate"),
    (3, "phases", "free", "ns"), (0, "phases", "second_pass", "rss_bytes"),
    (1, "observations"), (2, "observations", "mappings"), (2, "observations", "new"),
    (0, "checksum"), (3, "extra"), (4,)])


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(edits=st.lists(st.tuples(_paths, st.one_of(_values, st.just(KeyError))), max_size=3))
def test_a_decoded_line_is_what_the_checks_accept_and_convert(
        edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    """Whatever is edited into the iterations: decoded, the line gives the columns the
    checks and the one-by-one conversion give; not decoded, the checks have their say."""
    iterations: Any = _iterations()
    for path, value in edits:
        with contextlib.suppress(KeyError, IndexError, TypeError):
            target = iterations
            for key in path[:-1]:
                target = target[key]
            if value is KeyError:
                del target[path[-1]]
            else:
                target[path[-1]] = copy.deepcopy(value)
    line = _line(iterations)
    decoded = decode_record(line)
    try:
        record = check_record(json.loads(line), "t", frozenset({"s"}), columns=True)
        expected = iteration_columns(record.probe["iterations"])
    except (StoreError, OverflowError):
        assert decoded is None
        return
    if decoded is not None:
        _assert_same(decoded["probe"]["iterations"], expected)
