"""alloclab's own cost per probe process, over a bare spawn of the same probe command line.

N runs of one tiny scenario (the defaults, 4 KiB, one op, one iteration) through the runner's
path for one process (runner.probe.execute.run_process, then the record serialised and appended
as runner.measure.schedule does) against `subprocess.run` of the same argv and environment,
interleaved A B A B so drift of the machine lands on both. Prints both medians and their
difference; exits 1 when the difference is above the bound (1 ms by default).

    python bench/harness_overhead.py [--runs N] [--bound-ms MS]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# The runner as it is from the second experiment of a run on, with pandas, numpy and matplotlib
# loaded (the first experiment's summary imported them): a fork would cost more with them.
import runner.report.site  # noqa: F401
from runner.core.model import Scenario
from runner.core.parameters import PARAMETERS
from runner.probe import execute, native
from runner.store import folders

ROUND_SIZE = 10  # scenarios per round: the smaller experiments of experiments/ have about that


def tiny_scenario() -> Scenario:
    values: dict[str, object] = {p.field: p.default for p in PARAMETERS}
    return replace(Scenario(**values), size_bytes=4096, ops=1)  # type: ignore[arg-type]


def time_runner(argv: list[str], env: dict[str, str], writer: folders.RecordWriter,
                index: int) -> float:
    """One process the way `alloclab run` runs it: spawn, wait, parse, record, append, and a
    sync every ROUND_SIZE processes (runner.measure.schedule syncs once a round of all
    scenarios)."""
    started = time.perf_counter()
    record = execute.run_process(argv, scenario_id="bench", process_index=index, timeout_s=60,
                                 extra_env=env)
    writer.append(record)
    if index % ROUND_SIZE == 0:
        writer.sync()
    elapsed = time.perf_counter() - started
    if record.status != "ok":
        raise SystemExit(f"the probe did not run: {record.describe(60)}")
    return elapsed


def time_bare(argv: list[str], env: dict[str, str]) -> float:
    """The same command line spawned plainly, its output read and discarded."""
    started = time.perf_counter()
    subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=True,
                   env={**execute.PROBE_ENV, **env})
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="runs of each (default: 400)")
    parser.add_argument("--bound-ms", type=float, default=1.0,
                        help="largest accepted difference of medians (default: 1 ms)")
    args = parser.parse_args()
    binary = native.build_probe()
    scenario = tiny_scenario()
    argv = native.probe_argv(binary, scenario, warmup=0, iterations=1)
    env = native.probe_env(scenario)
    runner_s: list[float] = []
    bare_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="alloclab-bench-") as folder, \
            folders.RecordWriter(Path(folder)) as writer:
        for _ in range(20):  # page cache, the binary, Python's own first-call costs
            time_bare(argv, env)
            time_runner(argv, env, writer, 1)
        for index in range(args.runs):
            if index % 2:
                bare_s.append(time_bare(argv, env))
                runner_s.append(time_runner(argv, env, writer, index))
            else:
                runner_s.append(time_runner(argv, env, writer, index))
                bare_s.append(time_bare(argv, env))
    runner_ms = statistics.median(runner_s) * 1e3
    bare_ms = statistics.median(bare_s) * 1e3
    difference_ms = runner_ms - bare_ms
    print(f"{args.runs} runs of {' '.join(argv[1:3])} ...: alloclab {runner_ms:.3f} ms, "
          f"bare spawn {bare_ms:.3f} ms (medians); alloclab's own cost {difference_ms:+.3f} ms "
          f"per process (bound {args.bound_ms:g} ms)")
    if difference_ms > args.bound_ms:
        print(f"over the bound by {difference_ms - args.bound_ms:.3f} ms", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
