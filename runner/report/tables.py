"""A run's page as tables: each scenario's summary per metric, failures, skips, the machine's
recorded facts and the run's provenance; every value formatted in its metric's unit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import pandas as pd

from runner.analysis import noise
from runner.analysis.stats import Summary, summarize
from runner.core.metrics import format_value
from runner.core.parameters import WORKLOAD_MEASURES
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


def scenario_rows(run: StoredRun, samples: pd.DataFrame, metrics: list[str],
                   summaries: noise.Summaries,
                   highlighted: Mapping[tuple[str, str], str] | None = None
                   ) -> list[dict[str, Any]]:
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
            "processes": f"{done.count('ok')}/{len(done)}",
            "samples": int(counts.get(scenario["id"], 0)),
            "cells": [_summary_cell(m, summaries.get((scenario["id"], m)) or _NO_SAMPLES,
                                    (highlighted or {}).get((scenario["id"], m)))
                      for m in metrics],
        })
    return rows


_NO_SAMPLES = summarize([])


def failure_rows(run: StoredRun) -> list[dict[str, Any]]:
    """Processes that crashed, failed or timed out, each with what it said last."""
    labels = run.labels
    timeout_s = float(run.manifest.get("timeout_s", 0))
    return [
        {"label": labels.get(r.scenario_id, r.scenario_id), "process": r.process_index,
         "status": r.status, "detail": r.describe(timeout_s)}
        for r in run.records if r.status not in ("ok", "skipped")
    ]


def skipped_rows(run: StoredRun) -> list[dict[str, str]]:
    """Scenarios this machine could not measure, once each, with the precondition it lacks."""
    labels = run.labels
    reasons = {r.scenario_id: r.skip_reason or "" for r in run.records if r.status == "skipped"}
    return [{"label": labels.get(sid, sid), "reason": reason} for sid, reason in reasons.items()]


def workload_measures(run: StoredRun) -> list[str]:
    """What the allocate phase holds for each workload of the run, once each, in plan order:
    "churn: allocate is ops pairs..." (runner.core.parameters.WORKLOAD_MEASURES)."""
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
