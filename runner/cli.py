"""The command line: parse arguments, call the pipeline, map errors to exit statuses. No logic."""

from __future__ import annotations

import argparse
import shlex
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import runner
from runner import matrix, pipeline, schema
from runner.errors import AlloclabError, ExitStatus
from runner.machine import default_machine_label

EPILOG = "Specs default to experiments/*.yaml. Exit status: 0 ok, 2 bad spec or arguments, " \
         "3 machine lacks something (a C compiler), 130 interrupted (run again to resume)."


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _specs(args: argparse.Namespace) -> list[Path]:
    return [Path(p) for p in args.specs] or [Path("experiments")]


def cmd_run(args: argparse.Namespace) -> ExitStatus:
    options = pipeline.RunOptions(
        results_dir=Path(args.results), machine=args.machine,
        command=shlex.join(["alloclab", *sys.argv[1:]]), resume=not args.fresh,
        seed=args.seed, processes=args.processes)
    summaries = pipeline.run_experiments(_specs(args), options, _say)
    for s in summaries:
        failed = f", {s.processes_failed} did not finish" if s.processes_failed else ""
        _say(f"{s.experiment}: {s.processes_run} processes run{failed} -> {s.run_dir}")
    if not args.no_report:
        return cmd_report(args)
    return ExitStatus.OK


def cmd_report(args: argparse.Namespace) -> ExitStatus:
    written = pipeline.render(Path(args.results), Path(args.reports), Path(args.templates))
    _say(f"wrote {len(written)} pages: {written[0]}")
    return ExitStatus.OK


def cmd_validate(args: argparse.Namespace) -> ExitStatus:
    plans = pipeline.load_plans(_specs(args))
    for plan in plans:
        print(f"{plan.spec.source}: ok: {plan.spec.name}: {len(plan.scenarios)} scenarios, "
              f"{len(plan.dropped)} combinations not measurable")
    return ExitStatus.OK


def cmd_plan(args: argparse.Namespace) -> ExitStatus:
    for plan in pipeline.load_plans(_specs(args)):
        print(matrix.format_plan(plan))
    return ExitStatus.OK


def cmd_schema(args: argparse.Namespace) -> ExitStatus:
    print(schema.render_schema(), end="")
    return ExitStatus.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alloclab", epilog=EPILOG,
        description="Measure how memory allocation behaves on this machine (malloc, mmap and "
                    "their cousins) from declarative experiment specs, and render HTML reports.")
    parser.add_argument("--version", action="version", version=f"alloclab {runner.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, with_specs: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks for errors")
        if with_specs:
            sub.add_argument("specs", nargs="*", metavar="SPEC",
                             help="experiment YAML files or folders of them (default: experiments)")
        return sub

    def add_report_paths(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--results", default="results", help="results folder (default: results)")
        sub.add_argument("--reports", default="reports", help="output folder (default: reports)")
        sub.add_argument("--templates", default="templates",
                         help="jinja2 templates folder (default: templates)")

    run = add("run", "measure the experiments on this machine, store every sample, then render "
                     "the reports; an interrupted run of the same spec is resumed")
    add_report_paths(run)
    run.add_argument("--machine", default=default_machine_label(),
                     help="label of this machine in results/ (default: $ALLOCLAB_MACHINE or the "
                          "host name: %(default)s)")
    run.add_argument("--processes", type=int, metavar="N",
                     help="override every spec's repetitions.processes (e.g. 1 for a smoke run)")
    run.add_argument("--seed", type=int, help="seed for the process order (default: random, "
                                              "recorded in the manifest)")
    run.add_argument("--fresh", action="store_true",
                     help="start a new run instead of resuming an unfinished one")
    run.add_argument("--no-report", action="store_true", help="store results, render nothing")
    run.set_defaults(func=cmd_run)

    report = add("report", "render reports/ from stored results only (no measuring); the same "
                           "results always give byte-identical files", with_specs=False)
    add_report_paths(report)
    report.set_defaults(func=cmd_report)

    add("validate", "check spec files and say how many scenarios each expands to").set_defaults(
        func=cmd_validate)
    add("plan", "print the expanded scenarios with their stable ids and the memory each needs, "
                "and the matrix points that cannot be measured").set_defaults(func=cmd_plan)
    add("schema", "print the JSON Schema of spec files (for editors)",
        with_specs=False).set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except AlloclabError as error:
        if args.debug:
            traceback.print_exc()
        print(str(error), file=sys.stderr)
        return int(error.exit_status)
    except KeyboardInterrupt:
        _say("interrupted: every finished process is stored; run the same command to resume")
        return int(ExitStatus.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
