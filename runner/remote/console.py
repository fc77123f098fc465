"""What a fleet run prints: one writer for every host's thread, each line under its host's label,
and -q / -v as a local run has them.

Hosts run in threads of their own; each line goes out in one write under a lock, so two hosts'
messages never share a line. A problem (a process that failed, a host that stopped) is always
printed; progress and notes are left out with -q. There is no bar for several hosts at once:
each host's counts are notes.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import TextIO


class FleetConsole:
    """The one writer of a fleet run's console (stderr)."""

    def __init__(self, verbosity: int = 0, stream: TextIO | None = None) -> None:
        self.verbosity = verbosity
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        """One line, whole, whatever other threads write."""
        stream = self._stream or sys.stderr
        with self._lock:
            stream.write(line + "\n")
            stream.flush()

    def say(self, message: str) -> None:
        """Progress and notes: left out with -q."""
        if self.verbosity >= 0:
            self.write(message)

    def problem(self, message: str) -> None:
        """Always printed."""
        self.write(message)

    def for_host(self, label: str) -> HostConsole:
        return HostConsole(self, label)


class HostConsole:
    """One host's messages, each under its label; also the run's listener there
    (runner.measure.pipeline.RunListener), sorting messages as a local run's console does."""

    def __init__(self, console: FleetConsole, label: str) -> None:
        self.console, self.label = console, label

    def say(self, message: str) -> None:
        self.console.say(f"[{self.label}] {message}")

    def problem(self, message: str) -> None:
        self.console.problem(f"[{self.label}] {message}")

    def detail(self, message: str) -> None:
        self.say(message)

    def plan(self, experiments: Sequence[tuple[str, int, float]]) -> None:
        pass

    def experiment(self, name: str, processes: int) -> None:
        pass

    def more(self, processes: int, estimate_s: float) -> None:
        pass

    def process(self, estimate_s: float) -> None:
        pass

    def experiment_done(self, name: str, processes: int) -> None:
        pass
