"""A run's page as tables: each scenario's summary per metric, failures, skips, the machine's
recorded facts and the run's provenance; every value formatted in its metric's unit.

A scenario is shown by the parameters that tell it apart from the run's other scenarios (its
stored label also repeats the ones every scenario shares), and the summary table's tidy data
(one row per scenario and metric) is also written as CSV beside the page (`summary_csv`).
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from runner.analysis import noise
from runner.analysis.stats import Summary, summarize
from runner.core.choices import WORKLOAD_MEASURES
from runner.core.metrics import BY_NAME, format_value, short_name
from runner.core.model import ProcessRecord
from runner.core.parameters import BY_KEY, applies
from runner.machine import system
from runner.report import highlight
from runner.store.folders import (
    StoredRun,
    data_checksum,
)


def _summary_cell(metric: str, summary: Summary, reason: str | None = None) -> dict[str, Any]:
    """One table cell; `reason`: why its noise can change a conclusion (runner.report.highlight)."""
    spread = f"{format_value(metric, summary.q1)} – {format_value(metric, summary.q3)}"
    return {"median": format_value(metric, summary.median), "spread": spread,
            "noisy": reason is not None, "title": highlight.cell_title(summary, reason),
            "cv": f"{summary.cv:.0%}" if summary.n > 1 else "–"}


NOT_APPLICABLE = "–"  # a parameter that means nothing for the scenario (runner.core.parameters)


def parameter_text(key: str, params: Mapping[str, Any]) -> str:
    """A scenario parameter's value as the spec writes it ("64KiB", "warm"), or NOT_APPLICABLE."""
    parameter = BY_KEY[key]
    return parameter.format(params[parameter.field]) if applies(key, params) else NOT_APPLICABLE


def varying_keys(run: StoredRun) -> tuple[str, ...]:
    """The label's parameters whose value differs between the run's scenarios, label order.

    The stored label names every matrix axis the spec varies; a combination rule or an
    `include` can leave an axis one value in what was measured, and that value says nothing
    about one row against another.
    """
    scenarios = run.manifest["scenarios"]
    return tuple(key for key in run.manifest["label_keys"]
                 if len({parameter_text(key, s["params"]) for s in scenarios}) > 1)


@dataclass(frozen=True)
class ScenarioColumns:
    """How the summary table tells scenarios apart: a column per matrix axis that varies
    (`axes`), and one column for the varying parameters only some scenarios set (an `include`
    entry's), each named only where it departs from its usual value (`usual`: key, value)."""

    axes: tuple[str, ...]
    usual: tuple[tuple[str, str], ...]


def scenario_columns(run: StoredRun, matrix_axes: Collection[str]) -> ScenarioColumns:
    """The run's varying parameters split by whether the spec's matrix varies them (all of
    them columns when it varies none)."""
    keys = varying_keys(run)
    axes = tuple(key for key in keys if key in matrix_axes) or keys
    usual = []
    for key in keys:
        if key not in axes:
            texts = Counter(parameter_text(key, s["params"]) for s in run.manifest["scenarios"]
                            if applies(key, s["params"]))
            usual.append((key, texts.most_common(1)[0][0]))
    return ScenarioColumns(axes, tuple(usual))


def _departures(columns: ScenarioColumns, params: Mapping[str, Any]) -> str:
    """'order=random touch_share=1%': the folded parameters not at their usual value."""
    return " ".join(f"{key}={parameter_text(key, params)}" for key, usual in columns.usual
                    if applies(key, params) and parameter_text(key, params) != usual)


def short_labels(run: StoredRun) -> dict[str, str]:
    """Each scenario's label from its varying parameters alone ("64KiB cache=cold"), by id;
    the stored label where nothing varies."""
    keys = varying_keys(run)
    labels = {}
    for scenario in run.manifest["scenarios"]:
        params = scenario["params"]
        shown = [BY_KEY[key].label_text(params[BY_KEY[key].field]) for key in keys
                 if applies(key, params)]
        labels[scenario["id"]] = " ".join(shown) or scenario["label"]
    return labels


def scenario_rows(run: StoredRun, samples: pd.DataFrame, metrics: list[str],
                   summaries: noise.Summaries, columns: ScenarioColumns,
                   highlighted: Mapping[tuple[str, str], str] | None = None
                   ) -> list[dict[str, Any]]:
    """A summary table row per scenario: its values of `columns` ("parameters", one per axis;
    "other", the departures of the rest), processes, samples and a cell per metric."""
    counts = samples["scenario_id"].value_counts(sort=False)
    statuses: dict[str, list[str]] = defaultdict(list)
    for record in run.records:
        statuses[record.scenario_id].append(record.status)
    rows = []
    for scenario in run.manifest["scenarios"]:
        done = statuses.get(scenario["id"], [])
        rows.append({
            "id": scenario["id"],
            "label": scenario["label"],
            "parameters": [parameter_text(key, scenario["params"]) for key in columns.axes],
            "other": _departures(columns, scenario["params"]),
            "processes": f"{done.count('ok')}/{len(done)}" + (
                f" ({done.count('oom')} OOM-killed)" if "oom" in done else ""),
            "samples": int(counts.get(scenario["id"], 0)),
            "cells": [_summary_cell(m, summaries.get((scenario["id"], m)) or _NO_SAMPLES,
                                    (highlighted or {}).get((scenario["id"], m)))
                      for m in metrics],
        })
    return rows


_NO_SAMPLES = summarize([])


# Units a cell writes itself (format_value: "7.47 µs", "1 MiB"): a heading need not say them.
_UNITS_IN_CELLS = frozenset({"ns", "bytes"})


def metric_heading(metric: str, workloads: Collection[str] = ()) -> str:
    """A summary column's heading: the metric's short name for the run's `workloads`
    (runner.core.metrics.short_name), with its unit where neither the name nor the cells say
    it ("protection enforced (0 or 1)")."""
    unit, short = BY_NAME[metric].unit, short_name(metric, workloads)
    if unit in _UNITS_IN_CELLS or unit in short:
        return short
    return f"{short} ({unit})"


def metric_columns(metrics: Sequence[str], workloads: Collection[str] = ()
                   ) -> list[dict[str, str]]:
    """The summary table's metric headings (metric_heading), with the id and the description
    for the tooltip."""
    return [{"id": m, "short": metric_heading(m, workloads), "description": BY_NAME[m].description}
            for m in metrics]


def run_workloads(run: StoredRun) -> set[str]:
    """The workloads of a run's scenarios."""
    return {str(s["params"]["workload"]) for s in run.manifest["scenarios"]}


def _number(value: float) -> str:
    """A CSV number: Python's shortest round-tripping form, empty for NaN (no sample)."""
    return "" if value != value else repr(float(value))


def _csv_value(value: object) -> object:
    """A parameter's stored value for CSV: booleans as the spec writes them."""
    return ("true" if value else "false") if isinstance(value, bool) else value


def summary_csv(run: StoredRun, metrics: Sequence[str], summaries: noise.Summaries) -> str:
    """The summary table as tidy CSV: a row per scenario and metric, raw values in the metric's
    unit; the same run gives the same bytes."""
    keys = varying_keys(run)
    fields = [BY_KEY[key].field for key in keys]
    ok: dict[str, int] = defaultdict(int)
    for record in run.records:
        ok[record.scenario_id] += record.status == "ok"
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["experiment", "machine", "run_id", "scenario_id", "scenario", *fields,
                     "processes_ok", "metric", "unit", "samples", "median", "q1", "q3",
                     "robust_cv"])
    for scenario in run.manifest["scenarios"]:
        params = scenario["params"]
        values = [_csv_value(params[field]) if applies(key, params) else ""
                  for key, field in zip(keys, fields, strict=True)]
        for metric in metrics:
            summary = summaries.get((scenario["id"], metric)) or _NO_SAMPLES
            writer.writerow([run.experiment, run.machine, run.run_id, scenario["id"],
                             scenario["label"], *values, ok[scenario["id"]], metric,
                             BY_NAME[metric].unit, summary.n, _number(summary.median),
                             _number(summary.q1), _number(summary.q3),
                             _number(summary.cv) if summary.n > 1 else ""])
    return out.getvalue()


def failure_rows(run: StoredRun) -> list[dict[str, Any]]:
    """Processes that crashed, failed or timed out, each with what it said last (not those the
    OOM killer ended in their memory cgroup: that is an outcome, oom_rows)."""
    labels = short_labels(run)
    timeout_s = float(run.manifest.get("timeout_s", 0))
    return [
        {"label": labels.get(r.scenario_id, r.scenario_id), "process": r.process_index,
         "status": r.status, "detail": r.describe(timeout_s)}
        for r in run.records if r.status not in ("ok", "skipped", "oom")
    ]


def oom_rows(run: StoredRun) -> list[dict[str, str]]:
    """Scenarios whose processes the OOM killer ended in their memory cgroup (memory_limit),
    once each: how many of their processes, and what the record says."""
    labels = short_labels(run)
    ended: dict[str, list[ProcessRecord]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for record in run.records:
        counts[record.scenario_id] += 1
        if record.status == "oom":
            ended[record.scenario_id].append(record)
    return [{"label": labels.get(sid, sid), "processes": f"{len(records)} of {counts[sid]}",
             "detail": (records[-1].stderr_tail.strip().splitlines() or [""])[-1]}
            for sid, records in ended.items()]


def skipped_rows(run: StoredRun) -> list[dict[str, str]]:
    """Scenarios this machine could not measure, once each, with the precondition it lacks."""
    labels = short_labels(run)
    reasons = {r.scenario_id: r.skip_reason or "" for r in run.records if r.status == "skipped"}
    return [{"label": labels.get(sid, sid), "reason": reason} for sid, reason in reasons.items()]


def workload_measures(run: StoredRun) -> list[str]:
    """What the allocate phase holds for each workload of the run, once each, in plan order:
    "churn: allocate is ops pairs..." (runner.core.choices.WORKLOAD_MEASURES)."""
    workloads = dict.fromkeys(str(s["params"].get("workload", "cycle"))
                              for s in run.manifest["scenarios"])
    return [f"{name}: {WORKLOAD_MEASURES[name]}" for name in workloads
            if name in WORKLOAD_MEASURES]


def file_systems(run: StoredRun) -> str:
    """Where the files of file backings lived, e.g. "/tmp (ext4)": disk and tmpfs differ."""
    dirs = {s["id"]: s["params"]["file_dir"] for s in run.manifest["scenarios"]}
    seen = {f"{dirs[r.scenario_id]} ({r.probe['file_fs']})" for r in run.records
            if r.probe is not None and r.probe.get("file_fs") and r.scenario_id in dirs}
    return ", ".join(sorted(seen))


def fingerprint_rows(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every fact the run recorded (runner.machine.system.run_facts, FACTS order), as (key,
    text)."""
    return [(key, system.format_fact(key, value)) for key, value in facts.items()]


def provenance(run: StoredRun, samples: pd.DataFrame, metrics: list[str],
                summaries: noise.Summaries, checksum: str | None) -> dict[str, Any]:
    """How far to trust a run and how to reproduce it: noise warnings, checksum, reuse."""
    reused = run.manifest.get("reused_from", {})
    return {
        "warnings": [w.message for w in noise.run_warnings(run, metrics, samples, summaries)],
        "conditions": noise.conditions_text(run),
        "checksum": data_checksum(run.path) if checksum is None else checksum,
        "alloclab_version": run.manifest.get("alloclab_version"),
        "reused": len(reused),
        "reused_runs": ", ".join(sorted(set(reused.values()))),
    }
