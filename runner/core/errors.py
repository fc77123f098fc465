"""One exception tree for every expected failure, and the exit status each one maps to."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """What a command's exit status says; `meaning` and `details` are its one description (the
    command line's epilog and docs/reference/exit-status.md are made from them)."""

    OK = 0
    FAILURE = 1  # the command finished, but something it judged failed
    USAGE = 2  # the user must change something: the spec, the arguments, what is named
    ENVIRONMENT = 3  # the machine refused or lacks something alloclab needs
    INTERRUPTED = 130

    @property
    def meaning(self) -> str:
        """One line: what the status says (the command line's epilog)."""
        return _MEANINGS[self][0]

    @property
    def details(self) -> str:
        """The facts beyond `meaning`, for the reference ("" when there are none)."""
        return _MEANINGS[self][1]


_MEANINGS: dict[ExitStatus, tuple[str, str]] = {
    ExitStatus.OK: ("done", ""),
    ExitStatus.FAILURE: (
        "a failed check: a probe process that crashed, failed or timed out; compare "
        "--fail-above found a regression; report --check found stale pages",
        "A failed process is stored, and the report rendered, before the command exits; a "
        "scenario this machine cannot run is skipped with its reason, which is no failure. "
        "`alloclab run` over SSH also exits 1 when a host cannot be reached."),
    ExitStatus.USAGE: (
        "bad spec or arguments, a run already in progress, stored results or an archive "
        "refused",
        "Also `compare --fail-above` when nothing was compared, and a run named on the command "
        "line (compare, export) whose stored results fail their checks."),
    ExitStatus.ENVIRONMENT: (
        "the machine refused or lacks something: a C compiler, room for a scenario (without "
        "--force), a path it cannot read or write",
        "A path that cannot be read or written is one line naming it and the cause "
        "(permissions, a full disk, a file where a folder should be); --debug shows the "
        "traceback."),
    ExitStatus.INTERRUPTED: (
        "interrupted (Ctrl-C, SIGTERM, SIGHUP): run the printed command to resume",
        "Every probe process that finished is stored; `alloclab run` prints the command that "
        "resumes it."),
}


class AlloclabError(Exception):
    """An expected failure, printed as one line by the CLI (a traceback only with --debug)."""

    exit_status = ExitStatus.FAILURE


class SpecError(AlloclabError):
    """A spec file is invalid. The message reads `file:line: key.path: what (what is allowed)`."""

    exit_status = ExitStatus.USAGE

    def __init__(self, source: str, line: int | None, key_path: str, message: str) -> None:
        self.source = source
        self.line = line
        self.key_path = key_path
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {key_path}: {message}" if key_path else f"{where}: {message}")


class UsageError(AlloclabError):
    """Command-line arguments that cannot work together or name something missing."""

    exit_status = ExitStatus.USAGE


class ProbeBuildError(AlloclabError):
    """The native probe could not be compiled (no compiler, or the compiler failed)."""

    exit_status = ExitStatus.ENVIRONMENT


class StoreError(AlloclabError):
    """Stored results are missing, unreadable or of a format this version cannot read."""

    exit_status = ExitStatus.USAGE


class LockError(AlloclabError):
    """Another run of the same experiment into the same results folder is in progress."""

    exit_status = ExitStatus.USAGE


class GuardError(AlloclabError):
    """A scenario needs more memory or file space than this machine has free (see --force)."""

    exit_status = ExitStatus.ENVIRONMENT
