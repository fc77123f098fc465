# PYTHON_ARGCOMPLETE_OK
"""The command line: parse arguments, call the pipeline, map errors to exit statuses. No logic."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import runner
import runner.remote.fleet
from runner.analysis import tidy
from runner.cli import commands, completion
from runner.core import names
from runner.core.errors import AlloclabError, ExitStatus, SpecError, UsageError
from runner.machine import guard, preconditions
from runner.machine.system import default_machine_label
from runner.measure import interrupt, pipeline
from runner.remote import hosts
from runner.spec import keys, load, matrix, schema
from runner.store.folders import SkippedRunWarning

EPILOG = "Exit status: 0 ok, 1 a failed check (a probe process that crashed, failed or timed " \
         "out; compare --fail-above; report --check), 2 bad spec or arguments, a run already " \
         "in progress, refused results or archive, 3 machine refused or lacks something (a C " \
         "compiler, room for a scenario, a path it cannot read or write), 130 interrupted " \
         "(Ctrl-C, SIGTERM, SIGHUP; run the printed command to resume)."
SPECS_EPILOG = "Specs default to experiments/*.yaml. " + EPILOG


def _say(message: str) -> None:
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
        force=args.force)
    fleet = hosts.load_fleet(args.host or (), Path(args.hosts) if args.hosts else None)
    if fleet is not None:
        return cmd_run_fleet(args, options, fleet)
    from runner.measure.progress import ConsoleListener

    verbosity = getattr(args, "verbosity", 0)
    listener = ConsoleListener(verbosity)
    try:
        summaries = pipeline.run_experiments(_specs(args), options, listener.say, listener)
    finally:
        listener.close()
    for s in summaries:
        (listener.problem if s.processes_failed else listener.say)(s.describe())
    for line in _warning_lines(summaries, Path(args.reports), verbose=verbosity > 0,
                               reported=not args.no_report):
        listener.say(line)
    for s in summaries:
        for line in s.verdicts:
            _say(f"{s.experiment}: verdict: {line}")
    if not args.no_report and verbosity >= 0:
        _say("rendering reports...")
    status = cmd_report(args) if not args.no_report else ExitStatus.OK
    if any(s.processes_failed for s in summaries):
        # Recorded and reported, but a script running alloclab should still hear of it.
        _say("some probe processes crashed, failed or timed out: see above and the report")
        return ExitStatus.FAILURE
    return status


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


def cmd_run_fleet(args: argparse.Namespace, options: pipeline.RunOptions,
                  fleet: hosts.Fleet) -> ExitStatus:
    """`run --host/--hosts`: every host's results under results/<label>/, then one report."""
    outcomes = runner.remote.fleet.run_fleet(_specs(args), options, fleet, _say)
    for outcome in outcomes:
        for s in outcome.summaries:
            _say(f"[{outcome.host.label}] {s.describe()}")
    status = cmd_report(args) if not args.no_report else ExitStatus.OK
    if any(o.error or any(s.processes_failed for s in o.summaries) for o in outcomes):
        _say("some hosts or probe processes failed: see above; run the same command again to "
             "measure what is missing")
        return ExitStatus.FAILURE
    return status


def cmd_report(args: argparse.Namespace) -> ExitStatus:
    if getattr(args, "check", False):
        return cmd_report_check(args)
    written = commands.render(Path(args.results), Path(args.reports), _templates(args))
    _say(f"wrote {len(written)} pages: {written[0]}")
    return ExitStatus.OK


def cmd_report_check(args: argparse.Namespace) -> ExitStatus:
    problems = commands.check_render(Path(args.results), Path(args.reports), _templates(args))
    for problem in problems:
        print(problem)
    if problems:
        _say(f"{args.reports}: does not match its results ({len(problems)} file(s)); "
             "run `alloclab report` to re-render")
        return ExitStatus.FAILURE
    _say(f"{args.reports}: matches its results byte for byte")
    return ExitStatus.OK


def cmd_compare(args: argparse.Namespace) -> ExitStatus:
    options = commands.CompareOptions(
        runs=tuple(Path(p) for p in args.runs),
        baseline=Path(args.baseline) if args.baseline else None,
        metrics=tuple(args.metric or ()), equivalence=args.equivalence,
        fail_above=args.fail_above, out_dir=Path(args.out) if args.out else None,
        markdown=Path(args.markdown) if args.markdown else None,
        templates_dir=_templates(args), command=shlex.join(["alloclab", *sys.argv[1:]]))
    result = commands.compare_stored(options)
    print(result.markdown, end="")
    if result.html is not None:
        _say(f"wrote {result.html}")
    regressions = result.comparison.regressions
    if args.fail_above is not None and not result.comparison.gated:
        # A CI gate that compared nothing must not pass: a renamed scenario, an empty or
        # unfinished run, or metrics of no direction would otherwise read as "no regression".
        raise UsageError("compare --fail-above: nothing was compared (no scenario matched the "
                         "baseline with a time or page-fault metric); failing")
    if regressions:
        _say(f"{len(regressions)} regression(s) above +{args.fail_above * 100:g}%: failing")
        return ExitStatus.FAILURE
    return ExitStatus.OK


def cmd_export(args: argparse.Namespace) -> ExitStatus:
    if args.format != tidy.ARCHIVE_FORMAT:
        rows = commands.export_data([Path(p) for p in args.runs], Path(args.output),
                                    args.format)
        _say(f"wrote {args.output}: {rows} samples, one row each ({args.format})")
        return ExitStatus.OK
    folders = commands.export_stored([Path(p) for p in args.runs], Path(args.output))
    for folder in folders:
        _say(f"exported {folder}")
    _say(f"wrote {args.output}")
    return ExitStatus.OK


def cmd_import(args: argparse.Namespace) -> ExitStatus:
    for imported in commands.import_stored(Path(args.archive), Path(args.results)):
        _say(f"{imported.action}: {imported.path}")
    return ExitStatus.OK


def _percent(text: str) -> float:
    """'10%' or '10' -> 0.10 (a fraction); argparse shows the ValueError's message."""
    try:
        value = float(text.strip().removesuffix("%")) / 100
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage (e.g. 10%)") from error
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a percentage above 0 (e.g. 10%)")
    return value


def _processes(text: str) -> int:
    """--processes: a whole number from 1 to spec.MAX_REPETITION."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= keys.MAX_REPETITION:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes from 1 to "
                                         f"{keys.MAX_REPETITION}")
    return value


def cmd_validate(args: argparse.Namespace) -> ExitStatus:
    """Every spec named is checked, each on its own: the valid ones said ok, every invalid one
    named with its error (on stderr), exit status 2 when any is invalid."""
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
        print(f"{plan.spec.source}: ok: {plan.spec.name}: {len(plan.scenarios)} scenarios, "
              f"{len(plan.dropped)} combinations not measurable")
        for dropped in plan.dropped:
            print(f"  not measured: {matrix.describe_dropped(plan, dropped)}")
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


def _completes(action: argparse.Action, completer: Callable[..., list[str]]) -> None:
    """Give an argument its shell completion: argcomplete reads the `completer` attribute."""
    action.completer = completer  # type: ignore[attr-defined]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alloclab", epilog=EPILOG,
        description="Measure how memory allocation behaves on this machine (malloc, mmap and "
                    "their cousins) from declarative experiment specs, and render HTML reports.")
    parser.add_argument("--version", action="version", version=f"alloclab {runner.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, with_specs: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text,
                                  epilog=SPECS_EPILOG if with_specs else EPILOG)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks for errors")
        if with_specs:
            _completes(sub.add_argument("specs", nargs="*", metavar="SPEC",
                                        help="experiment YAML files or folders of them "
                                             "(default: experiments)"),
                       completion.complete_specs)
        return sub

    def add_report_paths(sub: argparse.ArgumentParser) -> None:
        _completes(sub.add_argument("--results", default="results",
                                    help="results folder (default: results)"),
                   completion.complete_folders)
        _completes(sub.add_argument("--reports", default="reports",
                                    help="output folder (default: reports)"),
                   completion.complete_folders)
        _completes(sub.add_argument("--templates", type=Path, default=None,
                                    help="jinja2 templates folder (default: the templates "
                                         "shipped in the alloclab package, "
                                         "runner/report/templates)"),
                   completion.complete_folders)

    def add_force(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--force", action="store_true",
                         help="accept scenarios that need more than 80%% of the available "
                              "memory (MemAvailable) or of the free space of their file_dir "
                              "(refused by default, before any probe starts)")

    run = add("run", "measure the experiments on this machine, store every sample, then render "
                     "the reports; an interrupted run of the same spec is resumed")
    add_report_paths(run)
    _completes(run.add_argument("--machine", default=None,
                     help="label of this machine in results/ (default: $ALLOCLAB_MACHINE or the "
                          f"host name: {default_machine_label()}); under the default host name, "
                          "a machine with another CPU, kernel, libc, THP mode or memory size "
                          "than the runs already there gets a label of its own, e.g. vm-epyc"),
               completion.complete_machines)
    run.add_argument("--quick", action="store_true",
                     help=f"the quick profile: {pipeline.QUICK_PROCESSES} processes per "
                          "scenario, one iteration each, scenarios up to "
                          f"{pipeline.QUICK_MAX_BYTES >> 20} MiB per process; for a first look, "
                          "not conclusions (a report shows a full run of the same experiment in "
                          "preference)")
    run.add_argument("--processes", type=_processes, metavar="N",
                     help="override every spec's repetitions.processes, with no extra rounds "
                          "(e.g. 1 for a smoke run; like --quick, such a run is shown only when "
                          "no full run is)")
    run.add_argument("--seed", type=int, help="seed for the process order (default: random, "
                                              "recorded in the manifest)")
    run.add_argument("--fresh", action="store_true",
                     help="measure every scenario in a new run: resume no unfinished run and "
                          "reuse no scenario from an earlier one (by default a new run copies "
                          "the scenarios an earlier finished run measured with the same probe, "
                          "repetitions and machine conditions, so a spec change reruns only "
                          "what it changed)")
    run.add_argument("--no-report", action="store_true", help="store results, render nothing")
    loudness = run.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                          default=0, help="print only errors, verdicts and the final summary")
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                          help="print every progress line and every noise warning in full "
                               "(by default: one bar on a terminal, a line per experiment "
                               "otherwise, and a warning count per experiment)")
    add_force(run)
    run.add_argument("--host", action="append", metavar="[LABEL=][USER@]HOST[:PORT]",
                     help="run on this machine over SSH instead (repeatable; results go to "
                          "results/LABEL, LABEL defaulting to HOST); only the probe runs there")
    _completes(run.add_argument("--hosts", metavar="FILE",
                                help="run on the hosts a fleet file lists (labels, ssh options, "
                                     "work directories, parallel; see README 'Other machines "
                                     "over SSH')"),
               completion.complete_specs)
    run.set_defaults(func=cmd_run)

    report = add("report", "render reports/ from stored results only (no measuring); the same "
                           "results always give byte-identical files", with_specs=False)
    add_report_paths(report)
    report.add_argument("--check", action="store_true",
                        help="render into a temporary folder and say whether the reports folder "
                             "still matches byte for byte (exit 1 and the differing files when "
                             "not); writes nothing")
    report.set_defaults(func=cmd_report)

    compare = add("compare", "compare runs scenario by scenario against a baseline: ratio of "
                             "medians with a bootstrap 95%% CI, Mann-Whitney U with "
                             "Benjamini-Hochberg correction, an equivalence band, and the "
                             "fingerprint fields that differ", with_specs=False)
    compare.description = (
        "Compare runs of the same machine at different times, or of different machines, "
        "scenario by scenario (matched by scenario id). Each fresh process counts once (the "
        "median of its iterations). Per scenario and metric: the ratio of medians to the "
        "baseline with a bootstrap 95% confidence interval, a Mann-Whitney U p-value "
        "corrected with Benjamini-Hochberg over everything compared, and a verdict: 'same' "
        "when the interval lies inside the equivalence band, 'different' when significant and "
        "wholly outside it, 'inconclusive' otherwise. The comparability section lists the "
        "fingerprint fields that differ and flags those that confound a comparison (kernel, "
        "libc, THP mode, CPU, allocator tunables, compiler...). A Markdown summary is printed "
        "on stdout.")
    _completes(compare.add_argument("runs", nargs="+", metavar="RUN",
                                    help="a run folder results/<machine>/<experiment>/<run-id>, "
                                         "or results/<machine>/<experiment> for the run its "
                                         "report shows"),
               completion.complete_runs)
    _completes(compare.add_argument("--baseline", metavar="RUN",
                                    help="the run the others are compared with (default: the "
                                         "first RUN)"),
               completion.complete_runs)
    _completes(compare.add_argument("--metric", action="append", metavar="M",
                                    help="a metric to compare, repeatable (default: the metrics "
                                         "the baseline's charts show; names in `alloclab "
                                         "schema`)"),
               completion.complete_metrics)
    compare.add_argument("--equivalence", type=_percent, default=0.05, metavar="PCT",
                         help="half-width of the band within which runs count as the same "
                              "(default: 5%%)")
    compare.add_argument("--fail-above", type=_percent, metavar="PCT",
                         help="exit 1 when a time or page-fault metric of some scenario is "
                              "significantly higher than the baseline by more than PCT, e.g. "
                              "10%% (for CI gates)")
    _completes(compare.add_argument("--out", metavar="DIR",
                                    help="write the HTML report DIR/compare.html"),
               completion.complete_folders)
    compare.add_argument("--markdown", metavar="FILE",
                         help="also write the Markdown summary (for a pull-request comment) "
                              "to FILE")
    _completes(compare.add_argument("--templates", type=Path, default=None,
                                    help="jinja2 templates folder (default: the templates "
                                         "shipped in the alloclab package, "
                                         "runner/report/templates)"),
               completion.complete_folders)
    compare.set_defaults(func=cmd_compare)

    exporter = add("export", "pack runs into one .tar.gz to carry to another machine, or "
                             "write their samples as CSV, Parquet or JSON for a notebook (runs "
                             "are folders, or results/<machine>/<experiment> for the run its "
                             "report shows)",
                   with_specs=False)
    _completes(exporter.add_argument("runs", nargs="+", metavar="RUN",
                                     help="run or experiment folders"),
               completion.complete_runs)
    exporter.add_argument("-o", "--output", required=True, metavar="FILE",
                          help="the file to write, e.g. vm-results.tar.gz or samples.csv")
    exporter.add_argument("--format", choices=(tidy.ARCHIVE_FORMAT, *tidy.DATA_FORMATS),
                          default=tidy.ARCHIVE_FORMAT,
                          help="tar.gz (default): an archive `alloclab import` reads; csv, "
                               "parquet (needs pyarrow: alloclab[parquet]) or json: the tidy "
                               "frame, one row per sample, the columns of runner/analysis/frame.py")
    exporter.set_defaults(func=cmd_export)

    imports = add("import", "check an archive made by `alloclab export` (safe paths, format "
                            "version, readable samples, matching checksums) and add its runs to "
                            "results/; a different run already stored under the same name is "
                            "never overwritten", with_specs=False)
    imports.add_argument("archive", metavar="FILE", help="the .tar.gz to import")
    _completes(imports.add_argument("--results", default="results",
                                    help="results folder (default: results)"),
               completion.complete_folders)
    imports.set_defaults(func=cmd_import)

    add("validate", "check spec files and say how many scenarios each expands to").set_defaults(
        func=cmd_validate)
    plan = add("plan", "print the expanded scenarios with their stable ids and the memory each "
                       "needs, the matrix points that cannot be measured and a duration (as "
                       "this machine measured them before, else rough); exit 3 when a "
                       "scenario needs more memory or file space than is free")
    add_force(plan)
    _completes(plan.add_argument("--results", default="results",
                                 help="results folder whose runs on this machine time the "
                                      "estimate (default: results)"),
               completion.complete_folders)
    _completes(plan.add_argument("--machine", default=None,
                                 help="label of this machine in results/, as for run"),
               completion.complete_machines)
    plan.set_defaults(func=cmd_plan)
    add("schema", "print the JSON Schema of spec files (for editors)",
        with_specs=False).set_defaults(func=cmd_schema)
    return parser


def resume_command(argv: Sequence[str]) -> str:
    """The command that resumes an interrupted `alloclab run`: the same one without --fresh
    (which would start yet another run)."""
    return shlex.join(["alloclab", *(a for a in argv if a != "--fresh")])


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:
        # A shell completing `alloclab ...` (README: Shell completion): argcomplete prints the
        # candidates to the shell and exits. Imported only then, so start-up pays nothing.
        import argcomplete

        argcomplete.autocomplete(parser)
    args = parser.parse_args(arguments)
    with interrupt.handle_stop_signals(), warnings.catch_warnings():
        # SIGTERM and SIGHUP stop a run as Ctrl-C does; warnings (a stored run skipped as
        # unreadable) are one line each.
        warnings.simplefilter("always", SkippedRunWarning)
        warnings.showwarning = _show_warning
        return _dispatch(args, arguments)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    _say(f"warning: {message}")


def _dispatch(args: argparse.Namespace, arguments: list[str]) -> int:
    """Run the command; every expected failure becomes one line and its exit status."""
    try:
        return int(args.func(args))
    except AlloclabError as error:
        if args.debug:
            traceback.print_exc()
        print(str(error), file=sys.stderr)
        return int(error.exit_status)
    except KeyboardInterrupt as stop:
        if args.debug:
            traceback.print_exc()
        signal_name = stop.args[0] if isinstance(stop, interrupt.Stopped) else "SIGINT"
        how = "interrupted" if signal_name == "SIGINT" else f"stopped by {signal_name}"
        if args.command == "run":
            _say(f"{how}: every finished process is stored; to resume: "
                 f"{resume_command(arguments)} (or `alloclab report` if only the rendering was "
                 "cut short)")
        else:
            _say(how)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        # `alloclab plan | head`: the reader left; say nothing more to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitStatus.OK)
    except OSError as error:
        # Permissions, a full disk, a file where a folder should be: the machine's refusal,
        # in one line naming the path.
        if args.debug:
            traceback.print_exc()
        print(f"alloclab: {describe_os_error(error)}", file=sys.stderr)
        return int(ExitStatus.ENVIRONMENT)


def describe_os_error(error: OSError) -> str:
    """'<path>: <cause>' (both paths for a rename), or the error's own text without a path."""
    cause = error.strerror or str(error)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {cause}" if paths else cause


if __name__ == "__main__":
    sys.exit(main())
