"""What the pages and verdicts.json say of each verdict: the verdict table's rows (claim, figures,
ratio with its interval, how the judging of each pair ended, the conditions it rests on) and
one record per check for verdicts.json. The index's grid of them is runner.report.grid."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from runner.analysis import conditions, verdict
from runner.core.metrics import format_value
from runner.core.model import CheckSpec, ExperimentSpec
from runner.core.scope import describe_where
from runner.machine import system
from runner.report import permalinks
from runner.store.folders import (
    StoredRun,
)


def _ratio_text(metric: str, c: verdict.Comparison) -> str:
    """"0.5× (0.45–0.55)", "+12 B (3 B to 20 B)"; "(no interval)" when too few processes."""
    decided = not math.isnan(c.ci_low)
    if c.difference:
        interval = (f" ({format_value(metric, c.ci_low)} to {format_value(metric, c.ci_high)})"
                    if decided else " (no interval)")
        sign = "+" if c.ratio >= 0 else ""
        return f"{sign}{format_value(metric, c.ratio)}{interval}"
    interval = f" ({c.ci_low:.3g}–{c.ci_high:.3g})" if decided else " (no interval)"
    return f"{c.ratio:.3g}×{interval}"


def _method_text(check: CheckSpec, result: verdict.Verdict) -> str:
    """How the check's pairs were judged, for the verdict table."""
    if result.method == "exact":
        return "exact: every sample"
    looks = max((c.looks for c in result.comparisons), default=1)
    confidence = min((c.confidence for c in result.comparisons), default=math.nan)
    design = ("the median of the candidate's processes against the value (sign test)"
              if check.value is not None else
              "paired rounds: candidate and reference side by side, signed-rank interval of "
              "their log ratios")
    seen = (f"up to {looks} looks at {verdict.percent(confidence)} each (95% in all)"
            if looks > 1 else f"one look at {verdict.percent(confidence)}"
            if math.isfinite(confidence) else "")
    return f"per-process {check.statistic}s, {design}" + (f"; {seen}" if seen else "")


# Why a pair's judging stopped where the run measured no more rounds for it, by how the run's
# extra rounds ended (manifest "adaptive"; absent: runs before extra rounds, or unfinished).
_NO_MORE_ROUNDS = {
    "time": ("time", "the run's time for extra rounds was spent"),
    "off": ("off", "extra rounds were off in this run"),
    "done": ("failed", "the rounds it needed did not give paired processes"),
}


def _stop(c: verdict.Comparison, ending: str | None) -> tuple[str, str]:
    """(reason, words) of how a pair's judging ended."""
    count = (f"{c.pairs} paired rounds" if c.design == "paired"
             else f"{c.pairs} processes" if c.design == "one-sample" else f"{c.pairs} samples")
    if c.stop == "exact":
        return "exact", f"exact: {count}"
    look = f"look {c.look} of {c.looks}" if c.looks > 1 else "one look"
    if c.stop == "decided":
        return "decided", f"decided at {look}, {count}"
    if c.stop == "most":
        return "most", f"undecided after {count}, the most this check takes"
    reason, why = _NO_MORE_ROUNDS.get(ending or "", ("measured", "the run measured no more"))
    return reason, f"undecided after {count} ({look}): {why}"


def _noise_floor_text(result: verdict.Verdict) -> str:
    if result.noise_floor is None or (result.method == "exact" and result.noise_floor == 0):
        return ""
    return (f"differences below ±{result.noise_floor:.0%} cannot be told apart here"
            if result.method == "statistical"
            else f"samples spread by up to ±{result.noise_floor:.0%}")


def extra_rounds_ending(run: StoredRun) -> str | None:
    """How the run's extra rounds ended (runner.analysis.adaptive.Ending), None when it does
    not say."""
    extra = run.manifest.get("adaptive")
    return extra.get("ending") if isinstance(extra, dict) else None


def verdict_rows(experiment: ExperimentSpec, results: Sequence[verdict.Verdict],
                 machine: str, ending: str | None,
                 records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The verdict table: each claim with its permalink (runner.report.permalinks), what the
    data says, the figures, and the first chart of its metric."""
    chart_of: dict[str, str] = {}
    for chart, chart_id in zip(experiment.charts, permalinks.chart_ids(
            machine, (chart.title for chart in experiment.charts)), strict=True):
        chart_of.setdefault(chart.metric, f"#{chart_id}")
    keys = permalinks.claim_keys(experiment.name, (r.check.claim for r in results))
    rows = []
    for result, record, key in zip(results, records, keys, strict=True):
        check = result.check
        rows.append({
            "id": permalinks.verdict_id(machine, key), "key": key,
            "former_ids": [permalinks.verdict_id(machine, former) for former in
                           permalinks.former_keys(experiment.name, check.formerly, keys)],
            "claim": check.claim,
            "conditions": record["conditions"]["text"],
            "status": result.status.replace(" ", "-"),
            "text": result.text,
            "note": result.note,
            "noise_floor": _noise_floor_text(result),
            "metric": check.metric,
            "tolerance": f"±{check.tolerance:.0%}",
            "method": _method_text(check, result),
            "where": describe_where(check.where),
            "chart": chart_of.get(check.metric),
            "comparisons": [{
                "where": c.where, "outcome": c.outcome,
                "candidate": format_value(check.metric, c.candidate_median),
                "reference": format_value(check.metric, c.reference_median),
                "candidate_min": format_value(check.metric, c.candidate_minimum),
                "reference_min": format_value(check.metric, c.reference_minimum),
                "n": f"{c.candidate_n}/{c.reference_n}" if c.reference_n else f"{c.candidate_n}",
                "pair": f"{c.candidate_label} against {c.reference_label}",
                "ratio": _ratio_text(check.metric, c),
                "judged": _stop(c, ending)[1],
            } for c in result.comparisons],
        })
    return rows


def _number(value: float) -> float | None:
    """A float for JSON: six significant digits (stable, readable diffs), None for NaN/inf."""
    if not math.isfinite(value):
        return None
    return float(f"{value:.6g}")


def _conditions_record(run: StoredRun, result: verdict.Verdict,
                       facts: Mapping[str, Any]) -> dict[str, Any]:
    """The machine conditions that decide a verdict (runner.analysis.conditions), of the
    scenarios its pairs compare: as one sentence and fact by fact, each with why it matters."""
    params = {s["id"]: s["params"] for s in run.manifest["scenarios"]}
    ids = dict.fromkeys(sid for c in result.comparisons
                        for sid in (c.candidate_id, c.reference_id) if sid)
    found = conditions.decisive_conditions(facts, [params[sid] for sid in ids])
    return {"text": conditions.describe_conditions(found),
            "facts": [asdict(condition) for condition in found]}


def verdict_record(run: StoredRun, result: verdict.Verdict,
                   facts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One check's verdict as plain data, for verdicts.json (`facts`: the run's
    machine.run_facts, when the caller has them)."""
    check = result.check
    ending = extra_rounds_ending(run)
    if facts is None:
        facts = system.run_facts(run.manifest, run.first_probe_output())
    return {
        "experiment": run.experiment, "machine": run.machine, "run_id": run.run_id,
        "claim": check.claim, "metric": check.metric, "expect": check.expect,
        "tolerance": check.tolerance, "where": describe_where(check.where),
        "method": result.method, "statistic": check.statistic,
        "max_processes": check.max_processes, "quantifier": check.quantifier,
        "status": result.status, "text": result.text, "note": result.note,
        "counts": {outcome: result.count(outcome)
                   for outcome in ("holds", "contradicts", "undecided")},
        "noise_floor": None if result.noise_floor is None else _number(result.noise_floor),
        "crossovers": [{
            "parameter": c.parameter, "group": c.group,
            "holds": "above" if c.holds_above else "below",
            "between": [c.before, c.after], "text": c.text,
        } for c in result.crossovers],
        "pairs": [{
            "where": c.where, "candidate": c.candidate_label, "reference": c.reference_label,
            "outcome": c.outcome, "measure": "difference" if c.difference else "ratio",
            "estimate": _number(c.ratio),
            "interval": (None if math.isnan(c.ci_low)
                         else [_number(c.ci_low), _number(c.ci_high)]),
            "coverage": _number(c.coverage),
            "candidate_median": _number(c.candidate_median),
            "reference_median": _number(c.reference_median),
            "candidate_minimum": _number(c.candidate_minimum),
            "reference_minimum": _number(c.reference_minimum),
            "candidate_n": c.candidate_n, "reference_n": c.reference_n,
            "design": c.design, "rounds": c.pairs, "look": c.look, "looks": c.looks,
            "confidence": _number(c.confidence),
            "stop": dict(zip(("reason", "text"), _stop(c, ending), strict=True)),
        } for c in result.comparisons],
        "conditions": _conditions_record(run, result, facts),
    }


def render_verdicts_json(context: dict[str, Any]) -> str:
    """Every verdict of the site, by experiment, machine and check order; deterministic bytes."""
    records = [record for experiment in context["experiments"] for run in experiment["runs"]
               for record in run["verdict_records"]]
    return json.dumps({"format": 2, "verdicts": records}, indent=1, sort_keys=True,
                      ensure_ascii=False, allow_nan=False) + "\n"
