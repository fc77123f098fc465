"""What each subcommand does, as runner.cli.main calls it (`cmd_<name>(args)` -> ExitStatus), and
the glue of the commands that do not measure: render and check reports, compare, export and
import stored runs. Each imports the heavy stage it needs when it starts, so the light commands
stay fast (tests/cli/test_main.py checks)."""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
import textwrap
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import runner.remote.fleet
from runner.analysis import tidy
from runner.analysis.tidy import DataFormat
from runner.core import names
from runner.core.errors import ExitStatus, SpecError, UsageError
from runner.core.metrics import BY_NAME
from runner.machine import guard, preconditions
from runner.machine.system import default_machine_label
from runner.measure import pipeline
from runner.remote import hosts
from runner.spec import coverage, load, matrix, schema
from runner.store import archive, folders, select

if TYPE_CHECKING:
    from runner.analysis import compare
    from runner.report.rejudge import Finding


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


def _check_metrics(metric_names: Sequence[str]) -> None:
    for name in metric_names:
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


def say(message: str) -> None:
    """One line to the user on stderr (stdout is for what a command outputs)."""
    print(message, file=sys.stderr, flush=True)


def _specs(args: argparse.Namespace) -> list[Path]:
    return [Path(p) for p in args.specs] or [Path("experiments")]


def _templates(args: argparse.Namespace) -> Path:
    """--templates, or the default: imported here, as runner.report.site brings pandas and
    jinja2."""
    if args.templates is not None:
        return Path(args.templates)
    from runner.report.site import default_templates_dir

    return default_templates_dir()


def _plan_options(args: argparse.Namespace) -> pipeline.RunOptions:
    """Where `plan` looks for this machine's earlier runs: the label `run` would use."""
    from runner.machine.system import read_fingerprint
    from runner.store import identity

    explicit = args.machine is not None or "ALLOCLAB_MACHINE" in os.environ
    label = default_machine_label() if args.machine is None else args.machine
    if names.is_label(label):
        label, _ = identity.choose_label(Path(args.results), label, read_fingerprint(),
                                         explicit=explicit)
    return pipeline.RunOptions(results_dir=Path(args.results), machine=label,
                               command="alloclab plan")


def cmd_run(args: argparse.Namespace) -> ExitStatus:
    options = pipeline.RunOptions(
        results_dir=Path(args.results), machine=(default_machine_label() if args.machine is None
                                           else args.machine),
        machine_explicit=args.machine is not None or "ALLOCLAB_MACHINE" in os.environ,
        command=shlex.join(["alloclab", *sys.argv[1:]]), resume=not args.fresh,
        reuse=not args.fresh, seed=args.seed, processes=args.processes, quick=args.quick,
        force=args.force, strict=args.strict)
    fleet = hosts.load_fleet(args.host or (), Path(args.hosts) if args.hosts else None,
                             args.limit)
    if fleet is not None:
        return _run_fleet(args, options, fleet)
    from runner.measure.progress import ConsoleListener

    verbosity = getattr(args, "verbosity", 0)
    listener = ConsoleListener(verbosity)
    started = time.monotonic()
    try:
        summaries = pipeline.run_experiments(_specs(args), options, listener.say, listener)
    finally:
        listener.close()
    measured_s = time.monotonic() - started
    for s in summaries:
        (listener.problem if s.processes_failed else listener.say)(s.describe())
    for line in _warning_lines(summaries, Path(args.reports), verbose=verbosity > 0,
                               reported=not args.no_report):
        listener.say(line)
    for line in verdict_lines(summaries):
        say(line)
    if not args.no_report and verbosity >= 0:
        say("rendering reports...")
    status = cmd_report(args) if not args.no_report else ExitStatus.OK
    listener.say(total_line(summaries, measured_s, None if args.no_report
                            else time.monotonic() - started))
    if any(s.processes_failed for s in summaries):
        # Recorded and reported, but a script running alloclab should still hear of it.
        say("some probe processes crashed, failed or timed out: see above and the report")
        return ExitStatus.FAILURE
    return status


# Verdict lines wrap here, so that a terminal or a log shows each at a glance.
CONSOLE_COLUMNS = 120


def verdict_lines(summaries: Sequence[pipeline.RunSummary]) -> list[str]:
    """Each verdict of the run as "<experiment>: verdict: <line>", wrapped at CONSOLE_COLUMNS
    with the continuation indented."""
    return [wrapped for s in summaries for line in s.verdicts
            for wrapped in textwrap.wrap(f"{s.experiment}: verdict: {line}", CONSOLE_COLUMNS,
                                         subsequent_indent="    ", break_long_words=False,
                                         break_on_hyphens=False)]


def total_line(summaries: Sequence[pipeline.RunSummary], measured_s: float,
               total_s: float | None) -> str:
    """"measured 548 processes of 17 experiments in 14 s (42 s with the reports)"."""
    from runner.measure.progress import count_of, format_duration

    processes = sum(s.processes_run - s.processes_skipped for s in summaries)
    line = (f"measured {count_of(processes, 'process')} of "
            f"{count_of(len(summaries), 'experiment')} in {format_duration(measured_s)}")
    if total_s is not None:
        line += f" ({format_duration(total_s)} with the reports)"
    return line


def _warning_lines(summaries: Sequence[pipeline.RunSummary], reports: Path, verbose: bool,
                   reported: bool) -> list[str]:
    """Noise warnings at the end of a run: one line per experiment that has any, pointing to
    its report page; every warning's text when verbose."""
    lines = []
    for s in summaries:
        if not s.warnings:
            continue
        if verbose:
            lines += [f"{s.experiment}: warning: {warning}" for warning in s.warnings]
            continue
        where = f"see {reports / s.experiment}.html" if reported else "-v shows them"
        noun = "warning" if len(s.warnings) == 1 else "warnings"
        lines.append(f"{s.experiment}: {len(s.warnings)} noise {noun} ({where})")
    return lines


def _run_fleet(args: argparse.Namespace, options: pipeline.RunOptions,
               fleet: hosts.Fleet) -> ExitStatus:
    """`run --host/--hosts`: every host's results under results/<label>/, its verdicts, one
    report, and a recap per host whose worst state sets the exit status."""
    from runner.remote.console import FleetConsole

    console = FleetConsole(getattr(args, "verbosity", 0))
    started = time.monotonic()
    outcomes = runner.remote.fleet.run_fleet(_specs(args), options, fleet, console,
                                             allow_shared_host=args.allow_shared_host)
    measured_s = time.monotonic() - started
    verbose = getattr(args, "verbosity", 0) > 0
    for outcome in outcomes:
        for s in outcome.summaries:
            (console.problem if s.processes_failed else console.say)(
                f"[{outcome.host.label}] {s.describe()}")
        for line in _warning_lines(outcome.summaries, Path(args.reports), verbose=verbose,
                                   reported=not args.no_report):
            console.say(f"[{outcome.host.label}] {line}")
        for line in verdict_lines(outcome.summaries):
            console.write(f"[{outcome.host.label}] {line}")
    if not args.no_report:
        console.say("rendering reports...")
    status = cmd_report(args) if not args.no_report else ExitStatus.OK
    summaries = [s for o in outcomes for s in o.summaries]
    console.say(total_line(summaries, measured_s, None if args.no_report
                           else time.monotonic() - started))
    for line in runner.remote.fleet.recap_lines(outcomes):
        console.write(line)
    if any(o.state()[0] != "ok" for o in outcomes):
        console.write("some hosts were not measured whole: run the same command again to "
                      "measure what is missing")
        return ExitStatus.FAILURE
    return status


def cmd_report(args: argparse.Namespace) -> ExitStatus:
    """`alloclab report`, and the report at the end of `run` (its specs judge the shown runs)."""
    check = getattr(args, "check", False)
    findings = _rejudge(args, write=not check)
    if check:
        return _check_reports(args, findings)
    from runner.report import rejudge

    for line in rejudge.judged_lines(findings):
        say(line)
    written = render(Path(args.results), Path(args.reports), _templates(args))
    say(f"wrote {len(written)} files (pages, verdicts.json and CSV data): {written[0]}")
    return ExitStatus.OK


def _rejudge(args: argparse.Namespace, *, write: bool) -> list[Finding]:
    """The report's spec files against the runs it shows (runner.report.rejudge): none with
    --as-run; by default experiments/ where it exists (a results folder may come alone)."""
    if getattr(args, "as_run", False):
        return []
    paths = [Path(p) for p in args.specs] or [p for p in [Path("experiments")] if p.is_dir()]
    if not paths:
        return []
    from runner.report import rejudge

    findings, unreadable = rejudge.rejudge(paths, Path(args.results), _utc_now(), write=write)
    for line in unreadable:
        say(f"warning: {line}")
    for line in rejudge.remeasure_lines(findings):
        say(line)
    return findings


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _check_reports(args: argparse.Namespace, findings: Sequence[Finding]) -> ExitStatus:
    from runner.report import rejudge

    problems = [*rejudge.judged_lines(findings, done=False),
                *check_render(Path(args.results), Path(args.reports), _templates(args))]
    for problem in problems:
        print(problem)
    if problems:
        say(f"{args.reports}: does not match its results and specs ({len(problems)} "
            "problem(s)); run `alloclab report` to judge and render again")
        return ExitStatus.FAILURE
    say(f"{args.reports}: matches its results byte for byte")
    return ExitStatus.OK


def cmd_compare(args: argparse.Namespace) -> ExitStatus:
    options = CompareOptions(
        runs=tuple(Path(p) for p in args.runs),
        baseline=Path(args.baseline) if args.baseline else None,
        metrics=tuple(args.metric or ()), equivalence=args.equivalence,
        fail_above=args.fail_above, out_dir=Path(args.out) if args.out else None,
        markdown=Path(args.markdown) if args.markdown else None,
        templates_dir=_templates(args), command=shlex.join(["alloclab", *sys.argv[1:]]))
    result = compare_stored(options)
    print(result.markdown, end="")
    if result.html is not None:
        say(f"wrote {result.html}")
    regressions = result.comparison.regressions
    if args.fail_above is not None and not result.comparison.gated:
        # A CI gate that compared nothing must not pass: a renamed scenario, an empty or
        # unfinished run, or metrics of no direction would otherwise read as "no regression".
        raise UsageError("compare --fail-above: nothing was compared (no scenario matched the "
                         "baseline with a time or page-fault metric); failing")
    if regressions:
        # Still a failure under a load difference (runner.analysis.compare.MetricComparison),
        # but said, so the reader reruns on a quiet machine before hunting a slowdown.
        loaded = sorted({row.load_difference for _, row in regressions if row.load_difference})
        under = (f" ({sum(1 for _, row in regressions if row.load_difference)} measured under "
                 f"different load: {'; '.join(loaded)}; rerun both on a quiet machine to tell)"
                 if loaded else "")
        say(f"{len(regressions)} regression(s) above +{args.fail_above * 100:g}%{under}: failing")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def cmd_export(args: argparse.Namespace) -> ExitStatus:
    if args.format != tidy.ARCHIVE_FORMAT:
        rows = export_data([Path(p) for p in args.runs], Path(args.output),
                                    args.format)
        say(f"wrote {args.output}: {rows} samples, one row each ({args.format})")
        return ExitStatus.OK
    folders = export_stored([Path(p) for p in args.runs], Path(args.output))
    for folder in folders:
        say(f"exported {folder}")
    say(f"wrote {args.output}")
    return ExitStatus.OK


def cmd_import(args: argparse.Namespace) -> ExitStatus:
    for imported in import_stored(Path(args.archive), Path(args.results)):
        say(f"{imported.action}: {imported.path}")
    return ExitStatus.OK


def cmd_validate(args: argparse.Namespace) -> ExitStatus:
    """Every spec named is checked, each on its own: the valid ones said ok (with a line per
    warning of runner.spec.coverage, on stderr), every invalid one named with its error (on
    stderr), exit status 2 when any is invalid; with --strict a spec with warnings is
    invalid."""
    errors = 0
    checked = load.check_specs(_specs(args))
    for loaded in checked:
        try:
            if isinstance(loaded, SpecError):
                raise loaded
            plan = pipeline.plan_of(loaded)
        except SpecError as error:
            if args.debug:
                traceback.print_exception(error)
            print(str(error), file=sys.stderr)
            errors += 1
            continue
        warnings = coverage.find_warnings(plan)
        for warning in warnings:
            print(str(warning), file=sys.stderr)
        if warnings and args.strict:
            print(f"{plan.spec.source}: refused: --strict counts its {len(warnings)} "
                  "warning(s) as errors", file=sys.stderr)
            errors += 1
            continue
        verdict = f"ok, {len(warnings)} warning(s)" if warnings else "ok"
        print(f"{plan.spec.source}: {verdict}: {plan.spec.name}: {len(plan.scenarios)} "
              f"scenarios, {len(plan.dropped)} combinations not measurable")
        for dropped in plan.dropped:
            print(f"  not measured: {matrix.describe_dropped(plan, dropped)}")
        sys.stdout.flush()  # each file's lines in order with the next one's errors in a log
    if errors:
        if len(checked) > 1:
            print(f"{errors} of {len(checked)} spec files are invalid", file=sys.stderr)
        return ExitStatus.USAGE
    return ExitStatus.OK


def cmd_plan(args: argparse.Namespace) -> ExitStatus:
    facts = preconditions.read_facts()
    plans = pipeline.load_plans(_specs(args))
    from runner.measure.progress import format_duration

    options = _plan_options(args)
    total_s = 0.0
    for plan in plans:
        unmet = preconditions.find_unmet(plan.scenarios, facts)
        for warning in coverage.find_warnings(plan):
            print(warning)
        print(matrix.format_plan(plan, unmet))
        estimate = pipeline.duration_estimate(plan, options, skipped=unmet)
        extra = pipeline.extra_rounds_bound(plan, options, estimate.seconds)
        total_s += estimate.seconds
        print(f"estimated duration: about {format_duration(estimate.seconds)} "
              f"({estimate.describe()})")
        print(f"extra rounds: {extra.describe()}")
    if len(plans) > 1:
        print(f"all {len(plans)} experiments: about {format_duration(total_s)}")
    if not args.force:
        guard.check_fit(plans)
    return ExitStatus.OK


def cmd_schema(args: argparse.Namespace) -> ExitStatus:
    print(schema.render_schema(), end="")
    return ExitStatus.OK
