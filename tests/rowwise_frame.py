"""The frame built one dict per sample, as runner.analysis.frame did before it was built
column-wise: the reference its column-wise values are checked against
(tests/analysis/test_frame.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from runner.analysis.frame import COLUMNS, PARAM_COLUMNS
from runner.core.model import PHASES
from runner.core.observation_types import Observation
from runner.core.observations import OBSERVATIONS
from runner.store.folders import StoredRun


def _metric_value(observation: Observation, reported: int, blocks: int, ops: int) -> float:
    if observation.per_op:
        return reported / blocks
    if observation.per_thread_op:
        return reported / ops
    if observation.per_million:
        return reported / 1_000_000
    return float(reported)


def _sample_row(run: StoredRun, scenario_index: int, scenario: dict[str, Any], process_index: int,
                index: int, probe: dict[str, Any], iteration: dict[str, Any]) -> dict[str, Any]:
    params = scenario["params"]
    page = int(probe["page_size_bytes"])
    size = int(params["size_bytes"])
    observed = iteration.get("observations", {})
    declared_ops = int(params["ops"])
    threads = int(params["threads"]) if params["workload"] == "churn" else 1
    ops = (max(1, int(observed["mappings_until_refused"]))
           if "mappings_until_refused" in observed else declared_ops * threads)
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
            f"{phase}_major_faults_per_page": major / (ops * pages_per_op),
            f"{phase}_rss_growth_bytes_per_op": (rss_after - rss_before) / ops,
        }
        rss_before = rss_after
    row["total_ns_per_op"] = total_ns / ops
    row["reuse_ns_per_op"] = ((row["free_ns"] + row["second_pass_ns"]) / ops
                              if params["workload"] == "reuse" else float("nan"))
    row["single_pass_ns_per_op"] = (total_ns - row["second_pass_ns"]) / ops
    fault_in_ns = row["allocate_ns"] + row["first_touch_ns"]
    fault_in_faults = row["allocate_minor_faults"] + row["first_touch_minor_faults"]
    row["fault_in_ns_per_op"] = fault_in_ns / ops
    row["fault_in_ns_per_page"] = fault_in_ns / (ops * pages_per_op)
    row["fault_in_minor_faults_per_page"] = fault_in_faults / (ops * pages_per_op)
    resident = int(iteration["phases"]["second_pass"]["rss_bytes"]) - int(
        iteration["rss_before_bytes"])
    given_back = int(iteration["phases"]["second_pass"]["rss_bytes"]) - rss_before
    row["free_returned_fraction"] = given_back / resident if resident > 0 else float("nan")
    after_pause = observed.get("rss_after_pause_bytes")
    row["pause_returned_fraction"] = (
        (int(iteration["phases"]["second_pass"]["rss_bytes"]) - int(after_pause)) / resident
        if resident > 0 and after_pause is not None else float("nan"))
    for observation in OBSERVATIONS:
        value = observed.get(observation.name)
        row[observation.metric.name] = (
            float("nan") if value is None
            else _metric_value(observation, int(value), ops, declared_ops))
    requested = size * ops
    row["resident_per_requested_byte"] = resident / requested
    row["brk_growth_per_requested_byte"] = row["brk_growth_bytes_per_op"] / size
    row["vm_size_growth_per_requested_byte"] = row["vm_size_growth_bytes_per_op"] / size
    row["usable_per_requested_byte"] = row["usable_bytes_per_op"] / size
    row["brk_step_per_requested_byte"] = row["brk_step_median_bytes"] / size
    row["vm_step_per_requested_byte"] = row["vm_step_median_bytes"] / size
    row["vm_call_growth_per_requested_byte"] = row["vm_call_growth_median_bytes"] / size
    row["page_table_per_requested_byte"] = row["vm_pte_growth_bytes_per_op"] / size
    after_free = int(iteration["phases"]["free"]["rss_bytes"])
    retained = after_free - int(iteration["rss_before_bytes"])
    row["retained_per_requested_byte"] = retained / requested
    single_pass = ("allocate", "first_touch", "free")
    row["single_pass_syscalls_per_op"] = sum(
        row[f"{phase}_syscalls_per_op"] for phase in single_pass)
    for window, phases in (("single_pass", single_pass), ("total", PHASES)):
        row[f"{window}_kernel_entries_per_op"] = sum(
            row[f"{phase}_syscalls_per_op"] + row[f"{phase}_minor_faults_per_op"]
            + row[f"{phase}_major_faults_per_op"] for phase in phases)
    for way in ("read", "write"):
        row[f"single_pass_io_{way}_bytes_per_op"] = sum(
            row[f"{phase}_io_{way}_bytes_per_op"] for phase in single_pass)
    median = row["latency_p50_ns"]
    for tail in ("p999", "max"):
        row[f"latency_{tail}_per_p50"] = (row[f"latency_{tail}_ns"] / median if median > 0
                                          else float("nan"))
    touched = row["touched_pages_per_op"]
    row["cached_per_touched_page"] = (row["cached_pages_added_per_op"] / touched
                                      if touched > 0 else float("nan"))
    row["io_read_per_touched_page"] = (
        row["single_pass_io_read_bytes_per_op"] / page / touched
        if touched > 0 else float("nan"))
    row["single_pass_ns_per_touched_page"] = (row["single_pass_ns_per_op"] / touched
                                              if touched > 0 else float("nan"))
    row["first_touch_rss_per_touched_page"] = (
        row["first_touch_rss_growth_bytes_per_op"] / touched if touched > 0 else float("nan"))
    row["anon_huge_per_requested_byte"] = row["anon_huge_bytes_per_op"] / size
    peak, kept = observed.get("peak_live_bytes"), observed.get("kept_bytes")
    row["rss_per_live_byte"] = (resident / int(peak) if peak is not None and int(peak) > 0
                                else float("nan"))
    held = observed.get("held_bytes")
    row["held_per_live_byte"] = (int(held) / int(peak) if held is not None and peak is not None
                                 and int(peak) > 0 else float("nan"))
    row["retained_per_kept_byte"] = (retained / int(kept) if kept is not None and int(kept) > 0
                                     else float("nan"))
    row["oom_killed"] = 0.0  # a sample is of a process that ran to its end
    return row


def build_frame_by_rows(run: StoredRun) -> pd.DataFrame:
    """runner.analysis.frame.build_frame's rows and values, one dict per sample."""
    scenarios = {s["id"]: (i, s) for i, s in enumerate(run.manifest["scenarios"])}
    rows = [
        _sample_row(run, *scenarios[record.scenario_id], record.process_index, index,
                    record.probe, iteration)
        for record in run.records
        if record.status == "ok" and record.probe is not None
        for index, iteration in enumerate(record.probe["iterations"])
    ]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values(["scenario_index", "process_index", "iteration"], kind="stable",
                             ignore_index=True)
