"""Stored runs -> HTML: reports/index.html plus one page per experiment, and verdicts.json.

The report is a pure function of the stored results: the spec, the machine and the samples all
come from results/, never from the current checkout or clock, so rendering twice gives the same
bytes. pandas stops here: templates get plain strings and numbers, verdicts.json plain data.
"""

from __future__ import annotations

import functools
import html
import multiprocessing
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from runner.analysis import noise, verdict
from runner.analysis.frame import build_frame, measured
from runner.core.errors import StoreError, UsageError
from runner.machine import system
from runner.report import charts, highlight, permalinks, render_cache
from runner.report.chart_data import chart_data
from runner.report.grid import verdict_grid
from runner.report.tables import (
    failure_rows,
    file_systems,
    fingerprint_rows,
    metric_columns,
    oom_rows,
    provenance,
    run_workloads,
    scenario_columns,
    scenario_rows,
    skipped_rows,
    summary_csv,
    workload_measures,
)
from runner.report.verdicts import (
    extra_rounds_ending,
    render_verdicts_json,
    verdict_record,
    verdict_rows,
)
from runner.store import folders, identity, judged_with
from runner.store.folders import (
    SAMPLES,
    StoredRun,
    data_checksum,
    load_run,
    read_manifest,
    warn_skipped,
)
from runner.store.select import shown_run_dirs


def build_run_context(run: StoredRun, checksum: str | None = None) -> dict[str, Any]:
    """Everything a template shows about one run, as plain values (`checksum`: its
    data_checksum when the caller has it)."""
    experiment = folders.experiment_of(run)
    samples = measured(build_frame(run, categorical=True))
    label_keys = tuple(run.manifest["label_keys"])
    metrics = noise.watched_metrics(experiment)
    results = verdict.run_verdicts(run, experiment, samples)
    summaries = noise.scenario_summaries(samples, metrics)
    columns = scenario_columns(run, {key for key, values in experiment.matrix if len(values) > 1})
    highlighted = highlight.noisy_cells(summaries, run.manifest["scenarios"], experiment.charts,
                                        results, metrics)
    plotted = [chart_data(samples, c, label_keys, summaries) for c in experiment.charts]
    looks = charts.assign_looks(s.label for data in plotted for s in data.series)
    facts = system.run_facts(run.manifest, run.first_probe_output())
    records = [verdict_record(run, result, facts) for result in results]
    return {
        "anchor": permalinks.machine_id(run.machine),
        "verdicts": verdict_rows(experiment, results, run.machine, extra_rounds_ending(run),
                                 records),
        "verdict_records": records,
        # the answer first: how many claims reach each verdict, above the page's question
        "verdict_counts": [(status, n) for status in verdict.STATUSES
                           if (n := sum(r.status == status for r in results))],
        "machine": run.machine,
        "reduced": run.reduced,
        "run_id": run.run_id,
        "started": run.manifest.get("started_utc"),
        "finished": run.manifest.get("finished_utc"),
        "repetitions": run.manifest["repetitions"],
        "charts": [{"svg": charts.render_svg(data, looks),
                    "caption": charts.chart_caption(data.chart)} for data in plotted],
        "chart_ids": permalinks.chart_ids(run.machine, (c.title for c in experiment.charts)),
        "metrics": metric_columns(metrics, run_workloads(run)),
        "parameters": list(columns.axes),
        "usual": [f"{key}={value}" for key, value in columns.usual],
        "rows": scenario_rows(run, samples, metrics, summaries, columns, highlighted),
        "data_file": data_file(run.experiment, run.machine),
        "data_csv": summary_csv(run, metrics, summaries),
        "failures": failure_rows(run),
        "skipped": skipped_rows(run),
        "oom": oom_rows(run),
        "file_systems": file_systems(run),
        "measures": workload_measures(run),
        "dropped": run.manifest.get("dropped", []),
        "fingerprint": fingerprint_rows(facts),
        "identity": {key: facts.get(key) for key in IDENTITY_KEYS},
        "command": run.manifest.get("command"),
        "spec_text": run.manifest["spec_text"],
        "judged_with": judged_with.read(run.path),
        "provenance": provenance(run, samples, metrics, summaries, checksum),
    }


DATA_DIR = "data"  # the summary tables' CSV files, under the reports folder


def data_file(experiment: str, machine: str) -> str:
    """Where a run's summary table is written as CSV, relative to the reports folder (a folder
    per experiment: experiment and machine names may both contain '-')."""
    return f"{DATA_DIR}/{experiment}/{machine}.csv"


# What tells which machine and configuration a run is of (runner.analysis.conditions).
IDENTITY_KEYS = ("boot_id", *identity.IDENTITY_FACTS, "allocator_env")


def index_entry(experiment: dict[str, Any]) -> dict[str, Any]:
    """What index.html and verdicts.json take from an experiment's context (plain JSON)."""
    return {
        "name": experiment["name"], "title": experiment["title"],
        "question": experiment["question"], "page": experiment["page"],
        "runs": [{
            "machine": run["machine"], "run_id": run["run_id"], "finished": run["finished"],
            "reduced": run["reduced"], "anchor": run["anchor"], "identity": run["identity"],
            "rows": [row["id"] for row in run["rows"]],
            "failures": [failure["label"] for failure in run["failures"]],
            "verdicts": [{key: v[key] for key in ("claim", "status", "text", "id", "key")}
                         for v in run["verdicts"]],
            "verdict_records": run["verdict_records"],
        } for run in experiment["runs"]],
    }


VERDICTS_JSON = "verdicts.json"
# Pages rendered at once: one process per CPU this process may use, at most 4 (each worker
# imports pandas and matplotlib anew, and a site has few pages that cost much).
RENDER_PROCESSES = max(1, min(4, len(os.sched_getaffinity(0))))


@dataclass(frozen=True)
class _PageJob:
    """One experiment's page to render: its shown runs, with their data checksums."""

    name: str
    run_dirs: tuple[Path, ...]
    checksums: tuple[str, ...] | None  # None: computed by the page's worker, in parallel
    templates_dir: Path


@dataclass(frozen=True)
class _Page:
    """A rendered experiment page, its index entry, and the runs left off it as unreadable
    (path, why): they are warned about where the page is used (a worker's warnings are lost)."""

    html: str
    entry: dict[str, Any]
    skipped: tuple[tuple[Path, str], ...]
    checksums: tuple[str, ...]  # of job.run_dirs
    files: dict[str, str]  # the page's data files: text by path relative to the reports folder


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
    html = render_page(job.templates_dir, "experiment.html", experiment=experiment,
                       page_name=job.name)
    files = {run["data_file"]: run["data_csv"] for run in contexts}
    return _Page(html, index_entry(experiment), tuple(skipped), checksums, files)


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
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def render_reports(results_dir: Path, reports_dir: Path, templates_dir: Path,
                   outputs_dir: Path | None = None) -> list[Path]:
    """Render index.html, one page per experiment and verdicts.json; return the site's files.

    Experiment pages whose inputs are unchanged since the last render (runner.report.render_cache)
    are kept as they are; index.html and verdicts.json are rebuilt from every page's entry. The
    index links the compare pages and fidelity figures found in `outputs_dir` (default
    reports_dir): see other_outputs.
    """
    return render_site(results_dir, reports_dir, templates_dir, outputs_dir).pages


# Where `alloclab compare --out reports/compare/NAME` and `nox -s bench` write.
COMPARE_PAGES = "compare/*/compare.html"
FIDELITY = "bench/fidelity.txt"
_TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)


def other_outputs(outputs_dir: Path) -> dict[str, list[dict[str, str]]]:
    """The pages made beside the report that the index links: compare pages (with their
    <title>) and the fidelity figures, as links relative to the index."""
    compare = []
    for page in sorted(outputs_dir.glob(COMPARE_PAGES)):
        found = _TITLE.search(page.read_text(errors="replace"))
        title = html.unescape(found.group(1)).removesuffix(" — alloclab") if found else ""
        compare.append({"href": page.relative_to(outputs_dir).as_posix(), "title": title})
    fidelity = [{"href": FIDELITY, "title": "fidelity figures"}] if (
        outputs_dir / FIDELITY).is_file() else []
    return {"compare": compare, "fidelity": fidelity}


@dataclass(frozen=True)
class Rendered:
    """The site's files, and the experiment pages rendered anew (the others were kept)."""

    pages: list[Path]
    rendered: list[Path]


def render_site(results_dir: Path, reports_dir: Path, templates_dir: Path,
                outputs_dir: Path | None = None) -> Rendered:
    """render_reports, saying which experiment pages it rendered (`pages` lists the data files
    of the experiment pages after index.html, the pages and verdicts.json)."""
    run_dirs = shown_run_dirs(results_dir)
    if not run_dirs:
        raise StoreError(f"{results_dir}: no stored runs to report (run `alloclab run` first)")
    by_experiment: dict[str, list[Path]] = defaultdict(list)
    for path in run_dirs:
        # The experiment's folder: shown_run_dirs checked that it is the manifest's experiment.
        by_experiment[path.parent.name].append(path)
    navigation = tuple(sorted(by_experiment))  # the index lists them in this order
    cache = render_cache.load_cache(reports_dir)
    code = render_cache.code_hash(templates_dir)
    entries: dict[str, dict[str, Any]] = {}
    files: list[str] = []  # every page's data files, relative to reports_dir
    jobs: list[_PageJob] = []
    stamps: dict[Path, render_cache.Stamp] = {}

    def inputs(name: str, checksums: Sequence[str]) -> str:
        # A run's judged-with record changes its page as its data does (it is read each time:
        # a few hundred bytes, where the data's checksum is remembered by its files' stamps).
        return render_cache.page_hash(code, name, [
            (str(path.relative_to(results_dir)), judged_with.inputs_checksum(path, checksum))
            for path, checksum in zip(by_experiment[name], checksums, strict=True)])

    for name in navigation:
        paths = by_experiment[name]
        page = f"{name}.html"
        if not cache.has_page(page):
            # Rendered whatever the checksums say: its worker computes them (a cold render
            # hashes every sample once, on both CPUs instead of before them).
            stamps.update((path, render_cache.stamp_of(path)) for path in paths)
            jobs.append(_PageJob(name, tuple(paths), None, templates_dir))
            continue
        checksums = tuple(cache.checksum(path) for path in paths)
        kept = cache.kept(reports_dir, page, inputs(name, checksums))
        if kept is not None:
            entries[page] = kept
            files += cache.files(page)
        else:
            jobs.append(_PageJob(name, tuple(paths), checksums, templates_dir))
    reports_dir.mkdir(parents=True, exist_ok=True)
    rendered = []
    for job, result in zip(jobs, _render_all(jobs), strict=True):
        page = f"{job.name}.html"
        if job.checksums is None:
            for path, checksum in zip(job.run_dirs, result.checksums, strict=True):
                cache.learn(path, stamps[path], checksum)
        entries[page] = result.entry
        _write_if_changed(reports_dir / page, result.html)
        for name, text in result.files.items():
            _write_if_changed(reports_dir / name, text)
        files += result.files
        for path, why in result.skipped:
            warn_skipped(path, StoreError(why))
        if not result.skipped:  # else rendered again next time, saying so again
            cache.remember(page, inputs(job.name, result.checksums), result.html,
                           result.entry, result.files)
        rendered.append(reports_dir / page)
    context = {"experiments": [entries[f"{name}.html"] for name in navigation]}
    _write_if_changed(reports_dir / "index.html", render_page(
        templates_dir, "index.html", **context, summary=verdict_grid(context),
        outputs=other_outputs(outputs_dir or reports_dir)))
    _write_if_changed(reports_dir / VERDICTS_JSON, render_verdicts_json(context))
    render_cache.write_cache(reports_dir, cache, list(entries))
    pages = ["index.html", *(f"{name}.html" for name in navigation), VERDICTS_JSON,
             *sorted(files)]
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

    Every file the results produce must exist with the same bytes; an .html page at the top
    of reports_dir, or a file under its data folder, that they no longer produce is stale.
    Other sub-folders (compare pages, fidelity figures) are not rendered from results and are
    left alone; the index lists those of reports_dir, so one added since the last render makes
    the index stale.
    """
    with tempfile.TemporaryDirectory(prefix="alloclab-check-") as scratch:
        fresh = render_reports(results_dir, Path(scratch), templates_dir, reports_dir)
        produced = {page.relative_to(scratch).as_posix(): page for page in fresh}
        problems = []
        for name, page in produced.items():
            committed = reports_dir / name
            if not committed.exists():
                problems.append(f"{committed}: missing")
            elif committed.read_bytes() != page.read_bytes():
                problems.append(f"{committed}: differs from what the results render")
        written = [*reports_dir.glob("*.html"),
                   *(p for p in (reports_dir / DATA_DIR).rglob("*") if p.is_file())]
        problems += [f"{path}: not produced by the results (stale)" for path in sorted(written)
                     if path.relative_to(reports_dir).as_posix() not in produced]
    return problems
