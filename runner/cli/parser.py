"""The command line's grammar: every subcommand, its arguments and their help, and nothing they
do (runner.cli.main maps each subcommand to its function in runner.cli.commands).

docs/reference/cli.md is generated from this parser (runner.cli.reference), so its help texts
are the one description of every option.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import runner
from runner.analysis import tidy
from runner.cli import completion
from runner.core import names
from runner.core.errors import ExitStatus
from runner.measure import quick
from runner.spec import keys

PROG = "alloclab"
DESCRIPTION = ("Measure how memory allocation behaves on this machine (malloc, mmap and their "
               "cousins) from declarative experiment specs, and render HTML reports.")
SPECS_NOTE = "Specs default to experiments/*.yaml."
TEMPLATES_HELP = ("jinja2 templates folder (default: the templates shipped in the alloclab "
                  "package, runner/report/templates)")

# The subcommand parsers' container, as argparse.add_subparsers returns it (a private type).
Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def exit_status_epilog() -> str:
    """Every exit status and what it says, in one paragraph, from ExitStatus."""
    return "Exit status: " + " ".join(f"{int(status)}: {status.meaning}."
                                      for status in ExitStatus)


def build_parser(machine_label: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. `machine_label` is the default --machine this machine would
    get, shown in its help; None (the generated reference) leaves it out."""
    parser = argparse.ArgumentParser(prog=PROG, epilog=exit_status_epilog(),
                                     description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"alloclab {runner.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(subcommands, machine_label)
    _add_report(subcommands)
    _add_compare(subcommands)
    _add_export(subcommands)
    _add_import(subcommands)
    _add_validate(subcommands)
    _add_plan(subcommands)
    _add_schema(subcommands)
    return parser


def _completes(action: argparse.Action, completer: Callable[..., list[str]]) -> None:
    """Give an argument its shell completion: argcomplete reads the `completer` attribute."""
    action.completer = completer  # type: ignore[attr-defined]


def _subcommand(subcommands: Subcommands, name: str,
                help_text: str, with_specs: bool = True) -> argparse.ArgumentParser:
    """A subcommand with --debug and, `with_specs`, the spec files it reads."""
    epilog = exit_status_epilog()
    sub = subcommands.add_parser(name, help=help_text, description=help_text,
                                 epilog=f"{SPECS_NOTE} {epilog}" if with_specs else epilog)
    sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                     help="show tracebacks for errors")
    if with_specs:
        _completes(sub.add_argument("specs", nargs="*", metavar="SPEC",
                                    help="experiment YAML files or folders of them "
                                         "(default: experiments)"),
                   completion.complete_specs)
    return sub


def _add_results(sub: argparse.ArgumentParser, help_text: str = "results folder") -> None:
    _completes(sub.add_argument("--results", default="results",
                                help=f"{help_text} (default: results)"),
               completion.complete_folders)


def _add_templates(sub: argparse.ArgumentParser) -> None:
    _completes(sub.add_argument("--templates", type=Path, default=None, help=TEMPLATES_HELP),
               completion.complete_folders)


def _add_report_paths(sub: argparse.ArgumentParser) -> None:
    _add_results(sub)
    _completes(sub.add_argument("--reports", default="reports",
                                help="output folder (default: reports)"),
               completion.complete_folders)
    _add_templates(sub)


def _add_force(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--force", action="store_true",
                     help="accept scenarios that need more than 80%% of the available memory "
                          "(MemAvailable) or of the free space of their file_dir (refused by "
                          "default, before any probe starts)")


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


def _add_run(subcommands: Subcommands,
             machine_label: str | None) -> None:
    run = _subcommand(subcommands, "run",
                      "measure the experiments on this machine, store every sample, then render "
                      "the reports; an interrupted run of the same spec is resumed")
    _add_report_paths(run)
    host_name = "the host name" if machine_label is None else f"the host name: {machine_label}"
    _completes(run.add_argument("--machine", default=None,
                                help="label of this machine in results/ (default: "
                                     f"$ALLOCLAB_MACHINE or {host_name}); under the default "
                                     "host name, a machine with another CPU, kernel, libc, THP "
                                     "mode or memory size than the runs already there gets a "
                                     "label of its own, e.g. vm-epyc, while a label given is "
                                     f"trusted as it is; a label is {names.LABEL_HINT}"),
               completion.complete_machines)
    run.add_argument("--quick", action="store_true",
                     help=f"the quick profile: {quick.QUICK_PROCESSES} processes per "
                          "scenario, one iteration each, scenarios up to "
                          f"{quick.QUICK_MAX_BYTES >> 20} MiB per process (the larger ones "
                          "listed as left out), no extra rounds; for a first look, not "
                          "conclusions (a report shows a full run of the same experiment in "
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
    _add_strict(run)
    loudness = run.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1,
                          default=0, help="print only errors, verdicts and the final summary")
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1,
                          help="print every progress line and every noise warning in full "
                               "(by default: one bar on a terminal, a line per experiment "
                               "otherwise, and a warning count per experiment)")
    _add_force(run)
    run.add_argument("--host", action="append", metavar="[LABEL=][USER@]HOST[:PORT]",
                     help="run on this machine over SSH instead (repeatable; results go to "
                          "results/LABEL, LABEL defaulting to HOST); only the probe runs there")
    _completes(run.add_argument("--hosts", metavar="FILE",
                                help="run on the hosts a fleet file lists (labels, ssh options, "
                                     "work directories, parallel; see "
                                     "docs/guide/other-machines.md), or an Ansible inventory "
                                     "(INI or YAML); either is trusted like code, as ssh "
                                     "options can run commands (ProxyCommand)"),
               completion.complete_specs)
    run.add_argument("--allow-shared-host", action="store_true",
                     help="measure hosts that are one machine (the same boot id, e.g. two "
                          "labels for one address) one after another instead of refusing")
    run.add_argument("--limit", metavar="PATTERN",
                     help="only the groups and hosts of --hosts this picks, as ansible's "
                          "--limit: names or shell wildcards joined by ',' or ':', '!NAME' "
                          "leaves out, '&NAME' keeps only those also in NAME (a fleet file's "
                          "hosts by label)")


def _add_report(subcommands: Subcommands) -> None:
    report = _subcommand(subcommands, "report",
                         "render reports/ from stored results only (no measuring); the same "
                         "results always give byte-identical files. Runs whose spec file now "
                         "has other checks, charts or words, and measures the same, are judged "
                         "with it first (stored beside each run as judged-with.json)",
                         with_specs=False)
    _completes(report.add_argument("specs", nargs="*", metavar="SPEC",
                                   help="experiment YAML files or folders of them whose "
                                        "checks and charts judge the runs shown (default: "
                                        "experiments, where it exists)"),
               completion.complete_specs)
    report.add_argument("--as-run", action="store_true",
                        help="read no spec file: judge every run with what is stored with it")
    _add_report_paths(report)
    report.add_argument("--check", action="store_true",
                        help="render into a temporary folder and say whether the reports folder "
                             "still matches byte for byte, and whether a spec file would judge "
                             "its runs again (exit 1 and the differing files when not); writes "
                             "nothing")


COMPARE_DESCRIPTION = (
    "Compare runs of the same machine at different times, or of different machines, scenario "
    "by scenario (matched by scenario id). Each fresh process counts once (the median of its "
    "iterations). Per scenario and metric: the ratio of medians to the baseline with a "
    "bootstrap 95% confidence interval, a Mann-Whitney U p-value corrected with "
    "Benjamini-Hochberg over everything compared, and a verdict: 'same' when the interval lies "
    "inside the equivalence band, 'different' when significant and wholly outside it, "
    "'inconclusive' otherwise. The comparability section lists the fingerprint fields that "
    "differ and flags those that confound a comparison (kernel, libc, THP mode, CPU, allocator "
    "tunables, compiler...). A Markdown summary is printed on stdout.")


def _add_compare(subcommands: Subcommands) -> None:
    compare = _subcommand(subcommands, "compare",
                          "compare runs scenario by scenario against a baseline: ratio of "
                          "medians with a bootstrap 95%% CI, Mann-Whitney U with "
                          "Benjamini-Hochberg correction, an equivalence band, and the "
                          "fingerprint fields that differ", with_specs=False)
    compare.description = COMPARE_DESCRIPTION
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
                              "10%% (for CI gates); exit 2 when nothing was compared")
    _completes(compare.add_argument("--out", metavar="DIR",
                                    help="write the HTML report DIR/compare.html"),
               completion.complete_folders)
    compare.add_argument("--markdown", metavar="FILE",
                         help="also write the Markdown summary (for a pull-request comment) "
                              "to FILE")
    _add_templates(compare)


def _add_export(subcommands: Subcommands) -> None:
    exporter = _subcommand(subcommands, "export",
                           "pack runs into one .tar.gz to carry to another machine, or write "
                           "their samples as CSV, Parquet or JSON for a notebook (runs are "
                           "folders, or results/<machine>/<experiment> for the run its report "
                           "shows)", with_specs=False)
    _completes(exporter.add_argument("runs", nargs="+", metavar="RUN",
                                     help="run or experiment folders"),
               completion.complete_runs)
    exporter.add_argument("-o", "--output", required=True, metavar="FILE",
                          help="the file to write, e.g. vm-results.tar.gz or samples.csv")
    exporter.add_argument("--format", choices=(tidy.ARCHIVE_FORMAT, *tidy.DATA_FORMATS),
                          default=tidy.ARCHIVE_FORMAT,
                          help="tar.gz (default): an archive `alloclab import` reads; csv, "
                               "parquet (needs pyarrow: alloclab[parquet]) or json: the tidy "
                               "frame, one row per sample, the columns of "
                               "runner/analysis/frame.py (csv writes a missing value as NaN)")


def _add_import(subcommands: Subcommands) -> None:
    imports = _subcommand(subcommands, "import",
                          "check an archive made by `alloclab export` (safe paths, format "
                          "version, readable samples, matching checksums) and add its runs to "
                          "results/; a different run already stored under the same name is "
                          "never overwritten", with_specs=False)
    imports.add_argument("archive", metavar="FILE", help="the .tar.gz to import")
    _add_results(imports)


def _add_validate(subcommands: Subcommands) -> None:
    validate = _subcommand(subcommands, "validate",
                           "check spec files and say how many scenarios each expands to, with "
                           "a warning where a matrix axis collapses to one value or most of "
                           "its points cannot be measured; each file is checked on its own, so "
                           "one bad file hides no other")
    _add_strict(validate)


def _add_strict(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--strict", action="store_true",
                     help="treat a spec's warnings (a matrix axis that collapses to one value "
                          "after the combinations that cannot be measured are dropped, or more "
                          "than half of its points dropped) as errors: exit 2 before anything "
                          "runs")


def _add_plan(subcommands: Subcommands) -> None:
    plan = _subcommand(subcommands, "plan",
                       "print the expanded scenarios with their stable ids and the memory each "
                       "needs, the matrix points that cannot be measured and a duration (as "
                       "this machine measured them before, else rough); exit 3 when a scenario "
                       "needs more memory or file space than is free")
    _add_force(plan)
    _add_results(plan, "results folder whose runs on this machine time the estimate")
    _completes(plan.add_argument("--machine", default=None,
                                 help="label of this machine in results/, as for run"),
               completion.complete_machines)


def _add_schema(subcommands: Subcommands) -> None:
    _subcommand(subcommands, "schema", "print the JSON Schema of spec files (for editors)",
                with_specs=False)
