"""What the commands that do not measure do: render and check reports, compare, export and import
stored runs. Each imports the heavy stage it needs when it starts, so the light commands stay
fast (tests/test_cli.py checks)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.analysis.tidy import DataFormat
from runner.core.errors import UsageError
from runner.core.metrics import BY_NAME
from runner.store import archive, folders, select

if TYPE_CHECKING:
    from runner.analysis import compare


def render(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[Path]:
    from runner.report import site

    return site.render_reports(results_dir, reports_dir, templates_dir)


@dataclass(frozen=True)
class CompareOptions:
    """What `alloclab compare` was asked: which runs, which metrics, which thresholds, outputs."""

    runs: tuple[Path, ...]
    baseline: Path | None = None  # None: the first of `runs`
    metrics: tuple[str, ...] = ()  # empty: the metrics the baseline's charts show
    equivalence: float = 0.05  # compare.DEFAULT_EQUIVALENCE, spelt out not to import pandas
    fail_above: float | None = None
    out_dir: Path | None = None
    markdown: Path | None = None
    templates_dir: Path = Path("templates")
    command: str = "alloclab compare"


@dataclass(frozen=True)
class CompareResult:
    comparison: compare.Comparison
    markdown: str
    html: Path | None


def _check_metrics(names: Sequence[str]) -> None:
    for name in names:
        if name not in BY_NAME:
            close = difflib.get_close_matches(name, list(BY_NAME), n=1)
            hint = f" (did you mean {close[0]}?)" if close else " (see `alloclab schema`)"
            raise UsageError(f"--metric: unknown metric '{name}'{hint}")


def compare_stored(options: CompareOptions) -> CompareResult:
    """Load the runs, compare each with the baseline, write the HTML and Markdown asked for."""
    from runner.analysis import compare, noise
    from runner.report import compare_page

    _check_metrics(options.metrics)
    named = [select.resolve_run(path) for path in options.runs]
    baseline = select.resolve_run(options.baseline) if options.baseline else named[0]
    candidates = [run for run in named if run.path != baseline.path]
    if not candidates:
        raise UsageError("compare: name at least one run besides the baseline")
    metrics = list(options.metrics) or noise.watched_metrics(folders.experiment_of(baseline))
    comparison = compare.compare_runs(baseline, candidates, metrics=metrics,
                                      equivalence=options.equivalence,
                                      fail_above=options.fail_above)
    markdown = compare_page.render_markdown(comparison)
    if options.markdown is not None:
        options.markdown.parent.mkdir(parents=True, exist_ok=True)
        options.markdown.write_text(markdown)
    html = None
    if options.out_dir is not None:
        html = compare_page.render_compare_html(comparison, [baseline, *candidates],
                                                  options.command, options.out_dir,
                                                  options.templates_dir)
    return CompareResult(comparison, markdown, html)


def export_stored(run_paths: Sequence[Path], archive_path: Path) -> list[str]:
    """Pack the named runs (folders, or experiment folders for their latest run) into a .tar.gz."""
    return archive.export_runs([select.resolve_run(path) for path in run_paths], archive_path)


def export_data(run_paths: Sequence[Path], output: Path, data_format: DataFormat) -> int:
    """Write the tidy frame of the named runs (as export_stored names them) to `output`;
    the number of rows (samples) written."""
    from runner.analysis import tidy

    frame = tidy.build_export_frame([select.resolve_run(path) for path in run_paths])
    tidy.write_frame(frame, output, data_format)
    return len(frame)


def import_stored(archive_path: Path, results_dir: Path) -> list[archive.ImportedRun]:
    return archive.import_archive(archive_path, results_dir)


def check_render(results_dir: Path, reports_dir: Path, templates_dir: Path) -> list[str]:
    from runner.report import site

    return site.check_reports(results_dir, reports_dir, templates_dir)
