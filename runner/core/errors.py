"""One exception tree for every expected failure, and the exit status each one maps to."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0
    FAILURE = 1  # the run finished but some scenario did not (crash, timeout, probe error)
    USAGE = 2  # bad spec, bad arguments: the user must change something
    ENVIRONMENT = 3  # the machine lacks something alloclab needs (a C compiler, a directory)
    INTERRUPTED = 130


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
