"""Ctrl-C, SIGTERM and SIGHUP: stop the run, keep what finished.

The handler raises Stopped (a KeyboardInterrupt) at once, so a probe in flight is killed
(runner.probe.execute) and nothing more is stored. Python may swallow an exception raised in a
handler at some points (a fork hook, a finalizer), so the request is also remembered, and
runner.measure.schedule calls `check` before each process: the run stops there at the latest.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_requested: list[str] = []


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; args[0] names it."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    _requested.append(name)
    raise Stopped(name)


def check() -> None:
    """Raise Stopped if a stop signal arrived whose exception got lost on the way."""
    if _requested:
        raise Stopped(_requested[0])


@contextlib.contextmanager
def handle_stop_signals() -> Iterator[None]:
    """Turn STOP_SIGNALS into Stopped for the body; the previous handlers come back after."""
    _requested.clear()
    previous = {signum: signal.signal(signum, _on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested.clear()
