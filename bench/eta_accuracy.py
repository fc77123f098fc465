"""How well the progress bar's ETA predicts the end of a run, on a real (pseudo) terminal.

Runs `alloclab run ARGS...` with its output on a pseudo-terminal 200 columns wide, as a person
at a terminal sees it, and reads every frame of the bar as it is drawn. At each moment t the
bar predicts the end of measuring at t + ETA; the real end is the last frame the bar drew
(rendering the reports comes after the bar and is not in its ETA). Prints the prediction's
error at 0%, 10%, 25%, 50%, 75% and 90% of the run and exits 1 when any prediction from 10% of
the run on is off by more than the bound (25% by default). The 0% figure is the plan's model
alone, before any process was measured: shown, not bounded.

    python bench/eta_accuracy.py [--bound 0.25] -- [alloclab run arguments...]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
FRAME = re.compile(r"elapsed ((?:\d+ h )?(?:\d+ min )?\d+ (?:s|min))\s+ETA "
                   r"((?:\d+ h )?(?:\d+ min )?\d+ (?:s|min))")
DURATION_PART = re.compile(r"(\d+) (h|min|s)")
SECONDS = {"h": 3600, "min": 60, "s": 1}
FRACTIONS = (0.0, 0.10, 0.25, 0.50, 0.75, 0.90)


@dataclass(frozen=True)
class Frame:
    at_s: float  # seconds since the command started, by this script's clock
    eta_s: float


def parse_duration(text: str) -> float:
    """'3 min 20 s' -> 200.0 (runner.measure.progress.format_duration read back)."""
    return float(sum(int(n) * SECONDS[unit] for n, unit in DURATION_PART.findall(text)))


def read_frames(argv: list[str], columns: int = 200) -> tuple[list[Frame], float, int, str]:
    """Run argv on a pty; every bar frame seen, the total seconds, the exit code, the text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    env.pop("NO_COLOR", None)
    started = time.monotonic()
    child = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                             close_fds=True)
    os.close(slave)
    frames: list[Frame] = []
    text: list[str] = []
    pending = ""
    while True:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if child.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536).decode("utf-8", "replace")
        except OSError:  # EIO: the child closed the terminal
            break
        now = time.monotonic() - started
        pending += ANSI.sub("", chunk)
        *complete, pending = re.split(r"[\r\n]", pending)
        for line in complete:
            text.append(line)
            match = FRAME.search(line)
            if match:
                frames.append(Frame(now, parse_duration(match.group(2))))
    code = child.wait()
    os.close(master)
    return frames, time.monotonic() - started, code, "\n".join(text)


def errors_at(frames: list[Frame], end_s: float) -> list[tuple[float, float, float]]:
    """(fraction of the run, predicted end s, relative error) at each of FRACTIONS."""
    rows = []
    for fraction in FRACTIONS:
        frame = next(f for f in frames if f.at_s >= fraction * end_s)
        predicted = frame.at_s + frame.eta_s
        rows.append((fraction, predicted, (predicted - end_s) / end_s))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bound", type=float, default=0.25,
                        help="largest relative error allowed from 10%% of the run on")
    parser.add_argument("run_args", nargs="*", help="arguments after `alloclab run`")
    args = parser.parse_args()
    argv = [sys.executable, "-m", "runner", "run", *args.run_args]
    frames, total_s, code, text = read_frames(argv)
    if code != 0 or not frames:
        print(text[-2000:])
        print(f"alloclab run exited {code} with {len(frames)} bar frames seen")
        return 1
    end_s = frames[-1].at_s
    print(f"{len(frames)} frames; measuring ended at {end_s:.1f} s, "
          f"the command at {total_s:.1f} s (reports rendered in the rest)")
    print(f"{'at':>5} {'predicted end':>14} {'error':>7}")
    worst = 0.0
    for fraction, predicted, error in errors_at(frames, end_s):
        print(f"{fraction:>5.0%} {predicted:>12.1f} s {error:>+7.1%}")
        if fraction >= 0.10:
            worst = max(worst, abs(error))
    verdict = "PASS" if worst <= args.bound else "FAIL"
    print(f"worst error from 10% on: {worst:.1%} (bound {args.bound:.0%}): {verdict}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
