"""Stored records -> one pandas DataFrame, one row per sample (one iteration of one process).

This is the one place column names are defined. Parameter columns use the Scenario field
names (`size_bytes`, `backing`, ...), in today's vocabulary whatever the age of the run
(runner.store.load_run upgrades them); metric columns are those of runner.metrics, observations
included: an observation the probe did not report for a sample is NaN there.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from runner.metrics import METRICS, OBSERVATIONS
from runner.model import PHASES
from runner.parameters import PARAMETERS
from runner.store import StoredRun

ID_COLUMNS = ("machine", "experiment", "run_id", "scenario_index", "scenario_id", "label",
              "process_index", "iteration", "warmup")
PARAM_COLUMNS = tuple(p.field for p in PARAMETERS)
RAW_COLUMNS = (
    "page_size_bytes",
    "pages_per_op",
    "rss_before_bytes",
    *(f"{phase}_{what}" for phase in PHASES
      for what in ("ns", "minor_faults", "major_faults", "rss_after_bytes")),
)
METRIC_COLUMNS = tuple(m.name for m in METRICS)
COLUMNS = (*ID_COLUMNS, *PARAM_COLUMNS, *RAW_COLUMNS, *METRIC_COLUMNS)


def _sample_row(run: StoredRun, scenario_index: int, scenario: dict[str, Any], process_index: int,
                index: int, probe: dict[str, Any], iteration: dict[str, Any]) -> dict[str, Any]:
    params = scenario["params"]
    page = int(probe["page_size_bytes"])
    size = int(params["size_bytes"])
    ops = int(params["ops"])
    pages_per_op = max(1, -(-size // page))
    row: dict[str, Any] = {
        "machine": run.machine, "experiment": run.experiment, "run_id": run.run_id,
        "scenario_index": scenario_index, "scenario_id": scenario["id"], "label": scenario["label"],
        "process_index": process_index, "iteration": index,
        "warmup": bool(iteration["warmup"]),
        **{field: params[field] for field in PARAM_COLUMNS},
        "page_size_bytes": page, "pages_per_op": pages_per_op,
        "rss_before_bytes": iteration["rss_before_bytes"],
    }
    rss_before = int(iteration["rss_before_bytes"])
    total_ns = 0
    for phase in PHASES:
        values = iteration["phases"][phase]
        ns = int(values["ns"])
        minor, major = int(values["minor_faults"]), int(values["major_faults"])
        rss_after = int(values["rss_bytes"])
        total_ns += ns
        row |= {
            f"{phase}_ns": ns, f"{phase}_minor_faults": minor, f"{phase}_major_faults": major,
            f"{phase}_rss_after_bytes": rss_after,
            f"{phase}_ns_per_op": ns / ops,
            f"{phase}_ns_per_page": ns / (ops * pages_per_op),
            f"{phase}_minor_faults_per_op": minor / ops,
            f"{phase}_minor_faults_per_page": minor / (ops * pages_per_op),
            f"{phase}_major_faults_per_op": major / ops,
            f"{phase}_rss_growth_bytes_per_op": (rss_after - rss_before) / ops,
        }
        rss_before = rss_after
    row["total_ns_per_op"] = total_ns / ops
    row["single_pass_ns_per_op"] = (total_ns - row["second_pass_ns"]) / ops
    resident = int(iteration["phases"]["second_pass"]["rss_bytes"]) - int(
        iteration["rss_before_bytes"])
    given_back = int(iteration["phases"]["second_pass"]["rss_bytes"]) - rss_before
    row["free_returned_fraction"] = given_back / resident if resident > 0 else float("nan")
    observed = iteration.get("observations", {})  # absent before probe version 2
    for observation in OBSERVATIONS:
        value = observed.get(observation.name)
        row[observation.metric.name] = (
            float("nan") if value is None else observation.metric_value(int(value), ops))
    # Growth as a share of what was asked for: "malloc grows the heap by what you ask" is
    # a claim about this ratio (1: exactly the request).
    requested = size * ops
    row["resident_per_requested_byte"] = resident / requested
    row["brk_growth_per_requested_byte"] = row["brk_growth_bytes_per_op"] / size
    row["vm_size_growth_per_requested_byte"] = row["vm_size_growth_bytes_per_op"] / size
    return row


def build_frame(run: StoredRun) -> pd.DataFrame:
    """Every sample of every successful process of a run, warm-up iterations flagged."""
    scenarios = {s["id"]: (i, s) for i, s in enumerate(run.manifest["scenarios"])}
    rows = [
        _sample_row(run, *scenarios[record.scenario_id], record.process_index, index,
                    record.probe, iteration)
        for record in run.records
        if record.status == "ok" and record.probe is not None
        for index, iteration in enumerate(record.probe["iterations"])
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    # Plan order, so tables and chart series read in the order the spec declares them.
    return frame.sort_values(["scenario_index", "process_index", "iteration"], kind="stable",
                             ignore_index=True)


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """The samples that count: warm-up iterations are kept in storage but not summarised."""
    return frame[~frame["warmup"].astype(bool)]
