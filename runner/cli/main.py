# PYTHON_ARGCOMPLETE_OK
"""The command line's entry point: parse the arguments, call the subcommand's function, turn
every expected failure into one line and its exit status. The grammar is runner.cli.parser's,
what each subcommand does runner.cli.commands'."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from runner.cli import commands
from runner.cli.commands import say
from runner.cli.parser import build_parser
from runner.core.errors import AlloclabError, ExitStatus
from runner.machine.system import default_machine_label
from runner.measure import interrupt
from runner.store.folders import SkippedRunWarning

# Every subcommand of runner.cli.parser and the function that does it.
COMMANDS: Mapping[str, Callable[[argparse.Namespace], ExitStatus]] = {
    "run": commands.cmd_run,
    "report": commands.cmd_report,
    "compare": commands.cmd_compare,
    "export": commands.cmd_export,
    "import": commands.cmd_import,
    "validate": commands.cmd_validate,
    "plan": commands.cmd_plan,
    "schema": commands.cmd_schema,
}


def resume_command(argv: Sequence[str]) -> str:
    """The command that resumes an interrupted `alloclab run`: the same one without --fresh
    (which would start yet another run)."""
    return shlex.join(["alloclab", *(a for a in argv if a != "--fresh")])


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(default_machine_label())
    if "_ARGCOMPLETE" in os.environ:
        # A shell completing `alloclab ...` (docs/guide/first-run.md#shell-completion):
        # argcomplete prints the candidates to the shell and exits. Imported only then, so
        # start-up pays nothing.
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
    say(f"warning: {message}")


def _dispatch(args: argparse.Namespace, arguments: list[str]) -> int:
    """Run the command; every expected failure becomes one line and its exit status."""
    try:
        return int(COMMANDS[args.command](args))
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
            say(f"{how}: every finished process is stored; to resume: "
                f"{resume_command(arguments)} (or `alloclab report` if only the rendering was "
                "cut short)")
        else:
            say(how)
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
