"""How long a run should take, and what `alloclab run` shows while it runs.

The duration model is rough on purpose: a fixed cost per probe process (spawn, exec, report)
plus the time to touch its memory at a rate that depends on the backing. It is good for "a
minute or an hour", not for planning. Where this machine has measured a scenario before (a
finished run of the experiment with the same iterations per process), the estimate is what
that took instead: the model is off by a factor of two either way on single experiments
(reservations it counts as touched, file writes it counts as reads), the history is not.
While a run goes, the measured rate corrects whatever is left.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TextIO

from runner.core.choices import FILE_BACKINGS

if TYPE_CHECKING:
    from runner.core.model import Plan, Repetitions
    from runner.store.select import RunTimes

# Calibrated on the 2-vCPU KVM guest of docs/findings.md: 200 small processes took 2 s (spawn,
# setup, JSON report, storing the record), and the full suite (2530 processes) measured for about
# five minutes, most of it touching memory. Page faults dominate the per-byte cost.
PROCESS_BASE_S = 0.012
ANON_BYTES_PER_S = 2.0e9
FILE_BYTES_PER_S = 0.65e9


def estimate_process_s(memory_bytes: int, backing: str, iterations: int,
                       pause_ms: int = 0) -> float:
    """Rough seconds one probe process takes: a fixed cost plus touching its memory (and the
    scenario's pauses, pause_ms and free_pause_ms, once an iteration)."""
    rate = FILE_BYTES_PER_S if backing in FILE_BACKINGS else ANON_BYTES_PER_S
    return PROCESS_BASE_S + iterations * (memory_bytes / rate + pause_ms / 1000)


# How much the estimate counts against the rate measured so far, as seconds of estimated work
# it stands for (a share of the whole run's): the measured rate weighs as much as the
# estimate once this much is done. Early in a run the rate is mostly start-up (the probe's
# build, the first fingerprint, a data file being written): taken alone (0), it doubled the
# predicted duration of a full suite run at a tenth of the way; at a quarter of the run, the
# prediction stayed within 13% of the real end all the way (bench/eta_accuracy.py, replayed
# over the same run), and a first run without history still follows its measured rate.
ESTIMATE_WEIGHT_SHARE = 0.25

# Between one experiment's last process and the next one's first: its summary (frame, noise
# checks, verdicts), the next fingerprint and lock. About a second each on that machine.
EXPERIMENT_BASE_S = 1.0


def measured_process_s(history: Iterable[RunTimes], scenario_ids: set[str],
                       iterations: int) -> dict[str, float]:
    """Median wall seconds of one process of each scenario, from the newest of `history`
    (newest first) that measured it with `iterations` iterations (warm-up included) per
    process; scenarios never measured so are left out. Stops reading at the first run that
    leaves nothing to learn."""
    found: dict[str, float] = {}
    for run in history:
        if len(found) == len(scenario_ids):
            break
        if run.repetitions.warmup + run.repetitions.iterations != iterations:
            continue
        found.update((sid, statistics.median(walls)) for sid, walls in run.walls_s.items()
                     if sid in scenario_ids and sid not in found and walls)
    return found


def scenario_estimates(plan: Plan, repetitions: Repetitions | None = None,
                       history: Iterable[RunTimes] = ()) -> dict[str, float]:
    """Seconds per process of each scenario of `plan`: measured here before, else the model."""
    repetitions = repetitions or plan.spec.repetitions
    iterations = repetitions.warmup + repetitions.iterations
    return with_model(plan, iterations,
                      measured_process_s(history, {s.id for s in plan.scenarios}, iterations))


def with_model(plan: Plan, iterations: int, measured: Mapping[str, float]) -> dict[str, float]:
    """`measured` seconds per process, and the model's for the scenarios it lacks."""
    return {s.id: measured[s.id] if s.id in measured
            else estimate_process_s(s.memory_bytes, s.backing, iterations,
                                 s.pause_ms + s.free_pause_ms)
            for s in plan.scenarios}


def estimate_plan_s(plan: Plan, repetitions: Repetitions | None = None,
                    estimates: Mapping[str, float] | None = None) -> float:
    """Seconds for every process of a plan and its summary (`repetitions` overrides the
    spec's; `estimates` per scenario from scenario_estimates, else the model's)."""
    repetitions = repetitions or plan.spec.repetitions
    estimates = estimates if estimates is not None else scenario_estimates(plan, repetitions)
    return EXPERIMENT_BASE_S + repetitions.processes * sum(estimates.values())


def format_duration(seconds: float) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min': rounded as an estimate deserves."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def count_of(number: int, noun: str) -> str:
    """"1 process", "8 processes"."""
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{number} {noun if number == 1 else plural}"


def is_live(stream: TextIO) -> bool:
    """A live bar only on a terminal (TERM=dumb is none); a pipe or file gets plain lines."""
    return stream.isatty() and os.environ.get("TERM") != "dumb"


class ConsoleListener:
    """pipeline.RunListener for a person: one rich bar on a terminal, plain lines otherwise.

    verbosity: -1 (-q) errors only; 0 a line per experiment; 1 (-v) every progress line. The
    ETA is the plan's estimate for what is left, scaled by how the measured time so far
    compares with the estimate for what is done: it starts as the estimate and becomes the
    rate as the run goes (eta_s).
    """

    def __init__(self, verbosity: int = 0, stream: TextIO | None = None,
                 live: bool | None = None) -> None:
        from rich.console import Console

        self.stream = stream if stream is not None else sys.stderr
        self.verbosity = verbosity
        self.live = is_live(self.stream) if live is None else live
        self.console = Console(file=self.stream, force_terminal=self.live,
                               no_color="NO_COLOR" in os.environ or not self.live,
                               highlight=False, soft_wrap=True)
        self.experiments = self.experiments_done = self.processes = self.processes_done = 0
        self.estimate_s = self.estimate_done_s = 0.0
        self.started = time.monotonic()
        self.current = ""
        self.planned: dict[str, tuple[int, float]] = {}
        self.bar: object | None = None

    # --- pipeline.RunListener -------------------------------------------------------------
    def plan(self, experiments: Sequence[tuple[str, int, float]]) -> None:
        """(name, processes, estimated seconds) of every experiment this invocation runs."""
        self.planned = {name: (processes, estimate_s)
                        for name, processes, estimate_s in experiments}
        self.experiments = len(experiments)
        self.processes = sum(p for _, p, _ in experiments)
        self.estimate_s = sum(e for _, _, e in experiments)
        self.started = time.monotonic()
        if self.live and self.verbosity >= 0:
            self._start_bar()
        elif self.verbosity >= 0:
            self.line(f"{count_of(self.experiments, 'experiment')}, "
                      f"{count_of(self.processes, 'process')}, "
                      f"about {format_duration(self.estimate_s)} (rough estimate)")

    def experiment(self, name: str, processes: int) -> None:
        """`processes` left to run: fewer than planned when resumed or reused; the totals and
        the estimate shrink to match."""
        self.current = name
        planned, estimate_s = self.planned.get(name, (processes, 0.0))
        if planned and processes != planned:
            self.processes += processes - planned
            self.estimate_s += estimate_s * (processes / planned - 1)
        self._refresh()

    def more(self, processes: int, estimate_s: float) -> None:
        """Extra rounds for undecided check pairs: more processes, more time, than planned."""
        self.processes += processes
        self.estimate_s += estimate_s
        self._refresh()

    def process(self, estimate_s: float) -> None:
        self.processes_done += 1
        self.estimate_done_s += estimate_s
        self._refresh()

    def experiment_done(self, name: str, processes: int) -> None:
        self.experiments_done += 1
        self.estimate_done_s += EXPERIMENT_BASE_S
        if not self.live and self.verbosity >= 0:
            self.line(f"[{self.experiments_done}/{self.experiments}] {name}: {processes} "
                      f"processes, {format_duration(self.elapsed_s())} elapsed")
        self._refresh()

    def say(self, message: str) -> None:
        """An ordinary message: shown unless -q."""
        if self.verbosity >= 0:
            self.line(message)

    def detail(self, message: str) -> None:
        """Per-process detail: shown with -v only."""
        if self.verbosity >= 1:
            self.line(message)

    def problem(self, message: str) -> None:
        """A failed process or an error: always shown."""
        self.line(message)

    # --- display ----------------------------------------------------------------------------
    def line(self, message: str) -> None:
        if self.live:
            self.console.print(message, markup=False)  # above the bar, which stays
        else:
            print(message, file=self.stream, flush=True)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def eta_s(self) -> float:
        """The estimate for what is left, times measured/estimated for what is done, where
        the estimate itself counts as ESTIMATE_WEIGHT_SHARE of the run measured at its rate."""
        left = max(0.0, self.estimate_s - self.estimate_done_s)
        prior_s = ESTIMATE_WEIGHT_SHARE * self.estimate_s
        if self.estimate_done_s + prior_s <= 0:
            return left
        return left * (self.elapsed_s() + prior_s) / (self.estimate_done_s + prior_s)

    def describe(self) -> str:
        return (f"experiments {self.experiments_done}/{self.experiments}  "
                f"processes {self.processes_done}/{self.processes}  "
                f"elapsed {format_duration(self.elapsed_s())}  "
                f"ETA {format_duration(self.eta_s())}  {self.current}")

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, Progress, ProgressColumn, Task
        from rich.text import Text

        listener = self

        class Counts(ProgressColumn):
            """describe() at every refresh (4 a second), so elapsed and ETA move between
            processes that take seconds."""

            def render(self, task: Task) -> Text:
                return Text(listener.describe(), no_wrap=True, overflow="ellipsis")

        bar = Progress(BarColumn(bar_width=20), Counts(), console=self.console,
                       transient=True)
        self.task = bar.add_task("run", total=max(1, self.processes))
        bar.start()
        self.bar = bar

    def _refresh(self) -> None:
        from rich.progress import Progress

        if isinstance(self.bar, Progress):
            self.bar.update(self.task, completed=self.processes_done,
                            total=max(1, self.processes))

    def close(self) -> None:
        from rich.progress import Progress

        if isinstance(self.bar, Progress):
            self.bar.stop()
            self.bar = None
