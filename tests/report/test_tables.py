"""A run's summary table: the scenario columns that tell rows apart, and its CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from runner.analysis import noise
from runner.analysis.frame import build_frame, measured
from runner.report.tables import (
    NOT_APPLICABLE,
    failure_rows,
    metric_heading,
    oom_rows,
    parameter_text,
    scenario_columns,
    scenario_rows,
    short_labels,
    summary_csv,
    varying_keys,
)
from runner.store.folders import SAMPLES, StoredRun, load_run
from tests.synthetic import write_synthetic_run

# Two axes the matrix varies and one it does not (protection has one value: a constant the
# stored label repeats), and an include entry that alone sets populate.
INCLUDE_SPEC = """\
name: inc
title: Include entries
question: Which columns tell the scenarios apart?
matrix:
  backing: [malloc, mmap-anon]
  size: [4KiB, 64KiB]
  protection: [read-write]
include:
  - {backing: mmap-anon, size: 64KiB, populate: map-populate}
fixed: {access: write-page, ops: 2}
repetitions: {processes: 2, iterations: 1}
charts:
  - {title: First touch, metric: first_touch_ns_per_page, x: size, series: backing}
"""


def _run(tmp_path: Path) -> StoredRun:
    spec = tmp_path / "inc.yaml"
    spec.write_text(INCLUDE_SPEC)
    return load_run(write_synthetic_run(tmp_path / "results", spec))


def test_only_the_parameters_that_differ_between_scenarios_are_shown(tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert all("read-write" not in label for label in short_labels(run).values())
    assert varying_keys(run) == ("backing", "size", "populate")
    columns = scenario_columns(run, {"backing", "size"})
    assert columns.axes == ("backing", "size")
    assert columns.usual == (("populate", "none"),)
    samples = measured(build_frame(run))
    metrics = ["first_touch_ns_per_page"]
    rows = scenario_rows(run, samples, metrics, noise.scenario_summaries(samples, metrics),
                         columns)
    shown = [(row["parameters"], row["other"]) for row in rows]
    assert shown == [(["malloc", "4KiB"], ""), (["malloc", "64KiB"], ""),
                     (["mmap-anon", "4KiB"], ""), (["mmap-anon", "64KiB"], ""),
                     (["mmap-anon", "64KiB"], "populate=map-populate")]
    # A spec whose matrix varies nothing shown makes every varying parameter a column.
    assert scenario_columns(run, set()).axes == ("backing", "size", "populate")

def test_a_parameter_that_means_nothing_for_a_scenario_shows_as_not_applicable(
        tmp_path: Path) -> None:
    params = _run(tmp_path).manifest["scenarios"][0]["params"]
    assert parameter_text("read_buffer", params) == NOT_APPLICABLE  # read-file's alone
    assert parameter_text("size", params) == "4KiB"


def test_the_csv_is_the_tidy_data_behind_the_table(tmp_path: Path) -> None:
    run = _run(tmp_path)
    samples = measured(build_frame(run))
    metrics = ["first_touch_ns_per_page", "first_touch_minor_faults_per_page"]
    summaries = noise.scenario_summaries(samples, metrics)
    text = summary_csv(run, metrics, summaries)
    assert text == summary_csv(run, metrics, summaries)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(run.manifest["scenarios"]) * len(metrics)
    assert list(rows[0])[:8] == ["experiment", "machine", "run_id", "scenario_id", "scenario",
                                 "backing", "size_bytes", "populate"]
    first = rows[0]
    assert (first["experiment"], first["machine"], first["backing"], first["size_bytes"],
            first["populate"]) == ("inc", "test-machine", "malloc", "4096", "none")
    summary = summaries[first["scenario_id"], "first_touch_ns_per_page"]
    assert (first["metric"], first["unit"]) == ("first_touch_ns_per_page", "ns")
    assert float(first["median"]) == summary.median and int(first["samples"]) == summary.n
    assert float(first["q1"]) <= float(first["median"]) <= float(first["q3"])
    faults = rows[1]
    assert (faults["metric"], faults["median"], faults["processes_ok"]) == (
        "first_touch_minor_faults_per_page", "1.0", "2")
    assert rows[-1]["populate"] == "map-populate"


def test_a_heading_names_the_unit_where_neither_the_name_nor_the_cells_do() -> None:
    assert metric_heading("first_touch_ns_per_page") == "first touch time per page"  # "1.2 µs"
    assert metric_heading("first_touch_minor_faults_per_page") == (
        "first touch minor faults per page")
    assert metric_heading("protection_enforced") == "protection enforced (0 or 1)"
    assert metric_heading("free_returned_fraction").endswith(" (fraction)")


def test_an_oom_killed_process_is_an_outcome_not_a_failure(tmp_path: Path) -> None:
    """A process the OOM killer ended in its memory cgroup, stored and read back through the
    store's checks: listed once among the OOM outcomes, not among the processes that did not
    finish, and counted beside its scenario's processes."""
    spec = tmp_path / "inc.yaml"
    spec.write_text(INCLUDE_SPEC)
    run_dir = write_synthetic_run(tmp_path / "results", spec,
                                  crash=("malloc 4KiB populate=none", 1))
    samples = run_dir / SAMPLES
    note = "alloclab: OOM-killed in its memory cgroup (limit 64MiB, no swap; the cgroup " \
           "counted 1 OOM kill)"
    lines = []
    for line in samples.read_text().splitlines():
        record = json.loads(line)
        if record["status"] == "crashed":
            record |= {"status": "oom", "signal": "SIGKILL", "stderr_tail": note + "\n"}
        lines.append(json.dumps(record))
    samples.write_text("\n".join(lines) + "\n")
    run = load_run(run_dir)
    ended = next(r for r in run.records if r.status == "oom")
    assert failure_rows(run) == []
    assert oom_rows(run) == [{"label": short_labels(run)[ended.scenario_id],
                              "processes": "1 of 2", "detail": note}]
    samples = measured(build_frame(run))
    metrics = ["first_touch_ns_per_page"]
    rows = scenario_rows(run, samples, metrics, noise.scenario_summaries(samples, metrics),
                         scenario_columns(run, {"backing", "size"}))
    assert [row["processes"] for row in rows if row["id"] == ended.scenario_id] == \
        ["1/2 (1 OOM-killed)"]
