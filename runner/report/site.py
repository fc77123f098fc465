"""Stored runs -> HTML: reports/index.html plus one page per experiment, and verdicts.json.

The report is a pure function of the stored results: the spec, the machine and the samples all
come from results/, never from the current checkout or clock, so rendering twice gives the same
bytes. pandas stops here: templates get plain strings and numbers, verdicts.json plain data.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing
import tempfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from runner.analysis import conditions, noise, verdict
from runner.analysis.frame import build_frame, measured
from runner.analysis.stats import Summary, summarize
from runner.core.errors import StoreError, UsageError
from runner.core.metrics import BY_NAME
from runner.core.model import CheckSpec, ExperimentSpec
from runner.core.scope import describe_where
from runner.core.units import format_bytes, format_ns
from runner.machine import system
from runner.report import charts, highlight, render_cache
from runner.store import folders, identity
from runner.store.folders import (
    SAMPLES,
    StoredRun,
    data_checksum,
    load_run,
    read_manifest,
    warn_skipped,
)
from runner.store.select import shown_run_dirs


def format_value(metric: str, value: float) -> str:
    """A metric value in its unit, three significant digits."""
    if value != value:  # NaN: no sample
        return "–"
    unit = BY_NAME[metric].unit
    if unit == "ns":
        return format_ns(value)
    if unit == "bytes":
        return format_bytes(value)
    return f"{value:.3g}"


def _summary_cell(metric: str, summary: Summary, reason: str | None = None) -> dict[str, Any]:
    """One table cell; `reason`: why its noise can change a conclusion (runner.report.highlight)."""
    spread = f"{format_value(metric, summary.q1)} – {format_value(metric, summary.q3)}"
    return {"median": format_value(metric, summary.median), "spread": spread,
            "noisy": reason is not None, "title": highlight.cell_title(summary, reason),
            "cv": f"{summary.cv:.0%}" if summary.n > 1 else "–"}


def _scenario_rows(run: StoredRun, samples: pd.DataFrame, metrics: list[str],
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


def _failures(run: StoredRun) -> list[dict[str, Any]]:
    """Processes that crashed, failed or timed out, each with what it said last."""
    labels = run.labels
    timeout_s = float(run.manifest.get("timeout_s", 0))
    return [
        {"label": labels.get(r.scenario_id, r.scenario_id), "process": r.process_index,
         "status": r.status, "detail": r.describe(timeout_s)}
        for r in run.records if r.status not in ("ok", "skipped")
    ]


def _skipped(run: StoredRun) -> list[dict[str, str]]:
    """Scenarios this machine could not measure, once each, with the precondition it lacks."""
    labels = run.labels
    reasons = {r.scenario_id: r.skip_reason or "" for r in run.records if r.status == "skipped"}
    return [{"label": labels.get(sid, sid), "reason": reason} for sid, reason in reasons.items()]


def _file_systems(run: StoredRun) -> str:
    """Where the files of file backings lived, e.g. "/tmp (ext4)": disk and tmpfs differ."""
    dirs = {s["id"]: s["params"]["file_dir"] for s in run.manifest["scenarios"]}
    seen = {f"{dirs[r.scenario_id]} ({r.probe['file_fs']})" for r in run.records
            if r.probe is not None and r.probe.get("file_fs") and r.scenario_id in dirs}
    return ", ".join(sorted(seen))


def _fingerprint_rows(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every fact the run recorded (runner.machine.system.run_facts, FACTS order), as (key,
    text)."""
    return [(key, system.format_fact(key, value)) for key, value in facts.items()]


def _provenance(run: StoredRun, samples: pd.DataFrame, metrics: list[str],
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


def _ending(run: StoredRun) -> str | None:
    """How the run's extra rounds ended (runner.analysis.adaptive.Ending), None when it does
    not say."""
    extra = run.manifest.get("adaptive")
    return extra.get("ending") if isinstance(extra, dict) else None


def _verdict_rows(experiment: ExperimentSpec, results: Sequence[verdict.Verdict],
                  anchor: str, ending: str | None,
                  records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The verdict table: each claim, what the data says, the figures, and its chart."""
    chart_of: dict[str, str] = {}
    for index, chart in enumerate(experiment.charts):
        chart_of.setdefault(chart.metric, f"#{anchor}-chart-{index}")
    rows = []
    for result, record in zip(results, records, strict=True):
        check = result.check
        rows.append({
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
    ending = _ending(run)
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


def machine_configurations(context: dict[str, Any]) -> dict[str, conditions.Configuration]:
    """Each machine label as the machine and configuration it names: a label whose runs set
    allocator variables on a machine another label holds without them is a configuration of
    that machine (runner.analysis.conditions.machine_configurations; a label is judged by its newest
    shown run)."""
    newest: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for experiment in context["experiments"]:
        for run in experiment["runs"]:
            if run["machine"] not in newest or run["run_id"] > newest[run["machine"]][0]:
                newest[run["machine"]] = (run["run_id"], run["identity"])
    return conditions.machine_configurations({label: identity for label, (_, identity)
                                              in newest.items()})


def verdict_summary(context: dict[str, Any]) -> dict[str, Any]:
    """Counts per status, each claim's verdict and the machines' names, for index.html. The
    counts are of the machines as they are: a configuration's verdicts (a run with allocator
    variables) are listed, and counted apart, so that a claim is not counted twice for one
    machine."""
    found = machine_configurations(context)
    claims = [{"claim": v["claim"], "status": v["status"], "text": v["text"],
               "experiment": e["title"], "page": e["page"],
               "machine": found[run["machine"]].describe(),
               "configuration": found[run["machine"]].name}
              for e in context["experiments"] for run in e["runs"]
              for v in run["verdicts"]]
    plain = [c for c in claims if not c["configuration"]]
    counts = [(status, sum(1 for c in plain if c["status"] == status.replace(" ", "-")))
              for status in verdict.STATUSES]
    configured: dict[str, int] = {}
    for c in claims:
        if c["configuration"]:
            configured[c["machine"]] = configured.get(c["machine"], 0) + 1
    return {"claims": claims, "counts": [(s, n) for s, n in counts if n],
            "configured": sorted(configured.items()),
            "machines": {label: c.describe() for label, c in found.items()}}


def build_run_context(run: StoredRun, checksum: str | None = None) -> dict[str, Any]:
    """Everything a template shows about one run, as plain values (`checksum`: its
    data_checksum when the caller has it)."""
    experiment = folders.experiment_of(run)
    samples = measured(build_frame(run, categorical=True))
    label_keys = tuple(run.manifest["label_keys"])
    metrics = noise.watched_metrics(experiment)
    anchor = f"run-{run.machine}"
    results = verdict.run_verdicts(run, experiment, samples)
    summaries = noise.scenario_summaries(samples, metrics)
    highlighted = highlight.noisy_cells(summaries, run.manifest["scenarios"], experiment.charts,
                                        results, metrics)
    plotted = [charts.chart_data(samples, c, label_keys, summaries) for c in experiment.charts]
    looks = charts.assign_looks(s.label for data in plotted for s in data.series)
    facts = system.run_facts(run.manifest, run.first_probe_output())
    records = [verdict_record(run, result, facts) for result in results]
    return {
        "anchor": anchor,
        "verdicts": _verdict_rows(experiment, results, anchor, _ending(run), records),
        "verdict_records": records,
        "machine": run.machine,
        "reduced": run.reduced,
        "run_id": run.run_id,
        "started": run.manifest.get("started_utc"),
        "finished": run.manifest.get("finished_utc"),
        "repetitions": run.manifest["repetitions"],
        "charts": [charts.render_svg(data, looks) for data in plotted],
        "metrics": [{"name": m, "description": BY_NAME[m].description} for m in metrics],
        "rows": _scenario_rows(run, samples, metrics, summaries, highlighted),
        "failures": _failures(run),
        "skipped": _skipped(run),
        "file_systems": _file_systems(run),
        "dropped": run.manifest.get("dropped", []),
        "fingerprint": _fingerprint_rows(facts),
        "identity": {key: facts.get(key) for key in IDENTITY_KEYS},
        "command": run.manifest.get("command"),
        "spec_text": run.manifest["spec_text"],
        "provenance": _provenance(run, samples, metrics, summaries, checksum),
    }


# What tells which machine and configuration a run is of (runner.analysis.conditions).
IDENTITY_KEYS = ("boot_id", *identity.IDENTITY_FACTS, "allocator_env")


def index_entry(experiment: dict[str, Any]) -> dict[str, Any]:
    """What index.html and verdicts.json take from an experiment's context (plain JSON)."""
    return {
        "name": experiment["name"], "title": experiment["title"],
        "question": experiment["question"], "page": experiment["page"],
        "runs": [{
            "machine": run["machine"], "run_id": run["run_id"], "finished": run["finished"],
            "identity": run["identity"],
            "rows": [row["id"] for row in run["rows"]],
            "failures": [failure["label"] for failure in run["failures"]],
            "verdicts": [{key: v[key] for key in ("claim", "status", "text")}
                         for v in run["verdicts"]],
            "verdict_records": run["verdict_records"],
        } for run in experiment["runs"]],
    }


VERDICTS_JSON = "verdicts.json"
RENDER_PROCESSES = 2  # pages rendered at once: the machines alloclab is built on have 2 CPUs


@dataclass(frozen=True)
class _PageJob:
    """One experiment's page to render: its shown runs, with their data checksums."""

    name: str
    run_dirs: tuple[Path, ...]
    checksums: tuple[str, ...] | None  # None: computed by the page's worker, in parallel
    navigation: tuple[str, ...]  # every experiment, for the navigation bar
    templates_dir: Path


@dataclass(frozen=True)
class _Page:
    """A rendered experiment page, its index entry, and the runs left off it as unreadable
    (path, why): they are warned about where the page is used (a worker's warnings are lost)."""

    html: str
    entry: dict[str, Any]
    skipped: tuple[tuple[Path, str], ...]
    checksums: tuple[str, ...]  # of job.run_dirs


def _render_experiment_page(job: _PageJob) -> _Page:
    """The page's HTML and its index entry; runs are read here, one at a time.

    A run whose samples turn out unreadable past the first record (shown_run_dirs checks no
    further) is left off the page rather than failing the whole report.
    """
    runs = [StoredRun(path, read_manifest(path), ()) for path in job.run_dirs]
    first = folders.experiment_of(runs[-1])
    checksums = job.checksums or tuple(data_checksum(path) for path in job.run_dirs)
    contexts, skipped = [], []
    for path, checksum in zip(job.run_dirs, checksums, strict=True):
        try:
            contexts.append(build_run_context(load_run(path, columns=True), checksum))
        except (StoreError, OSError) as error:
            skipped.append((path, str(error)))
    experiment = {
        "name": job.name, "title": first.title, "question": first.question,
        "page": f"{job.name}.html", "runs": contexts,
    }
    navigation = [{"name": name, "page": f"{name}.html"} for name in job.navigation]
    html = render_page(job.templates_dir, "experiment.html", experiment=experiment,
                       experiments=navigation)
    return _Page(html, index_entry(experiment), tuple(skipped), checksums)


# A chart costs about as much to draw as this many bytes of samples to read and summarise
# (~0.25 s against ~60 MB/s on the machines alloclab is built on).
CHART_COST_BYTES = 15 << 20


def _cost(job: _PageJob) -> int:
    """Roughly how long a page takes to render, in bytes of samples: its runs' samples and
    its charts (which cost the same however many samples they summarise)."""
    total = 0
    for path in job.run_dirs:
        try:
            stored = StoredRun(path, read_manifest(path), ())
            charts_drawn = len(folders.experiment_of(stored).charts)
            total += (path / SAMPLES).stat().st_size + CHART_COST_BYTES * charts_drawn
        except (StoreError, OSError):
            continue  # found out, and said, when the page is rendered
    return total


def _render_all(jobs: list[_PageJob]) -> list[_Page]:
    """Render pages in up to RENDER_PROCESSES processes, costliest first (so that no long
    page starts last while the other process idles); same bytes as rendering them one by one
    (each page depends on its own inputs only)."""
    if len(jobs) <= 1 or RENDER_PROCESSES <= 1:
        return [_render_experiment_page(job) for job in jobs]
    costs = [_cost(job) for job in jobs]
    order = sorted(range(len(jobs)), key=lambda i: -costs[i])
    results: dict[int, _Page] = {}
    with ProcessPoolExecutor(max_workers=min(RENDER_PROCESSES, len(jobs)),
                             mp_context=multiprocessing.get_context("fork")) as pool:
        futures = {i: pool.submit(_render_experiment_page, jobs[i]) for i in order}
        for i in order:
            results[i] = futures[i].result()
    return [results[i] for i in range(len(jobs))]


def _write_if_changed(path: Path, text: str) -> None:
    """Write a page unless it already holds these bytes (a kept page keeps its time, too)."""
    data = text.encode()
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def render_reports(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[Path]:
    """Render index.html, one page per experiment and verdicts.json; return the site's files.

    Experiment pages whose inputs are unchanged since the last render (runner.report.render_cache)
    are kept as they are; index.html and verdicts.json are rebuilt from every page's entry.
    """
    return render_site(results_dir, reports_dir, templates_dir).pages


@dataclass(frozen=True)
class Rendered:
    """The site's files, and the experiment pages rendered anew (the others were kept)."""

    pages: list[Path]
    rendered: list[Path]


def render_site(results_dir: Path, reports_dir: Path, templates_dir: Path) -> Rendered:
    """render_reports, saying which experiment pages it rendered."""
    run_dirs = shown_run_dirs(results_dir)
    if not run_dirs:
        raise StoreError(f"{results_dir}: no stored runs to report (run `alloclab run` first)")
    by_experiment: dict[str, list[Path]] = defaultdict(list)
    for path in run_dirs:
        # The experiment's folder: shown_run_dirs checked that it is the manifest's experiment.
        by_experiment[path.parent.name].append(path)
    navigation = tuple(sorted(by_experiment))
    cache = render_cache.load_cache(reports_dir)
    code = render_cache.code_hash(templates_dir)
    entries: dict[str, dict[str, Any]] = {}
    jobs: list[_PageJob] = []
    stamps: dict[Path, render_cache.Stamp] = {}

    def inputs(name: str, checksums: Sequence[str]) -> str:
        return render_cache.page_hash(code, list(navigation), [
            (str(path.relative_to(results_dir)), checksum)
            for path, checksum in zip(by_experiment[name], checksums, strict=True)])

    for name in navigation:
        paths = by_experiment[name]
        page = f"{name}.html"
        if not cache.has_page(page):
            # Rendered whatever the checksums say: its worker computes them (a cold render
            # hashes every sample once, on both CPUs instead of before them).
            stamps.update((path, render_cache.stamp_of(path)) for path in paths)
            jobs.append(_PageJob(name, tuple(paths), None, navigation, templates_dir))
            continue
        checksums = tuple(cache.checksum(path) for path in paths)
        kept = cache.kept(reports_dir, page, inputs(name, checksums))
        if kept is not None:
            entries[page] = kept
        else:
            jobs.append(_PageJob(name, tuple(paths), checksums, navigation, templates_dir))
    reports_dir.mkdir(parents=True, exist_ok=True)
    rendered = []
    for job, result in zip(jobs, _render_all(jobs), strict=True):
        page = f"{job.name}.html"
        if job.checksums is None:
            for path, checksum in zip(job.run_dirs, result.checksums, strict=True):
                cache.learn(path, stamps[path], checksum)
        entries[page] = result.entry
        _write_if_changed(reports_dir / page, result.html)
        for path, why in result.skipped:
            warn_skipped(path, StoreError(why))
        if not result.skipped:  # else rendered again next time, saying so again
            cache.remember(page, inputs(job.name, result.checksums), result.html,
                           result.entry)
        rendered.append(reports_dir / page)
    context = {"experiments": [entries[f"{name}.html"] for name in navigation]}
    _write_if_changed(reports_dir / "index.html", render_page(
        templates_dir, "index.html", **context, summary=verdict_summary(context)))
    _write_if_changed(reports_dir / VERDICTS_JSON, render_verdicts_json(context))
    render_cache.write_cache(reports_dir, cache, list(entries))
    pages = ["index.html", *(f"{name}.html" for name in navigation), VERDICTS_JSON]
    return Rendered([reports_dir / page for page in pages], rendered)


@functools.lru_cache(maxsize=8)
def template_environment(templates_dir: Path) -> jinja2.Environment:
    """The jinja2 setup every page is rendered with (strict, escaped, whitespace-stable);
    one per folder, so each template is compiled once a process, not once a page."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir), autoescape=True,
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True,
        lstrip_blocks=True)


def render_page(templates_dir: Path, name: str, **context: Any) -> str:
    """One page; a missing or mismatched templates folder is a one-line error, not a traceback."""
    try:
        return template_environment(templates_dir).get_template(name).render(**context)
    except jinja2.TemplateError as error:
        raise UsageError(f"{templates_dir}: {error.__class__.__name__}: {error} (use the "
                         "templates of this alloclab version, runner/report/templates, or "
                         "--templates)") from error


def default_templates_dir() -> Path:
    """The templates shipped as package data (runner/report/templates), found through
    importlib.resources so a wheel install renders as an editable one does."""
    shipped = resources.files("runner.report") / "templates"
    # jinja2's FileSystemLoader and the render cache need a real folder: alloclab is installed
    # unzipped (setuptools wheels are), so the resource is one.
    return Path(str(shipped))


def check_reports(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[str]:
    """Re-render into a temporary folder; list how reports_dir differs (empty: it matches).

    Every page the results produce must exist with the same bytes; an .html page at the top
    of reports_dir that they no longer produce is stale. Sub-folders (compare pages) are not
    part of the report and are left alone.
    """
    with tempfile.TemporaryDirectory(prefix="alloclab-check-") as scratch:
        fresh = render_reports(results_dir, Path(scratch), templates_dir)
        problems = []
        for page in fresh:
            committed = reports_dir / page.name
            if not committed.exists():
                problems.append(f"{committed}: missing")
            elif committed.read_bytes() != page.read_bytes():
                problems.append(f"{committed}: differs from what the results render")
        produced = {page.name for page in fresh}
        problems += [f"{page}: not produced by the results (stale)"
                     for page in sorted(reports_dir.glob("*.html")) if page.name not in produced]
    return problems
