"""Fidelity of latency percentiles: the probe's histogram against every latency kept and sorted.

Family `malloc-4k-percentiles`: 100,000 back-to-back malloc(4 KiB) + store + free pairs, each
between two clock reads, in a fresh process per sample, the two sides interleaved round by
round:

  alloclab  the probe as `alloclab run` starts it (probe_argv, run_process,
            parse_probe_output) for workload churn with latency histogram: the observations
            latency_p50_ns and latency_p99_ns of its one measured iteration
  plain     bench/latency_baseline.c: the same pairs timed by code written separately, which
            keeps every latency in a preallocated array, sorts it and reads the nearest rank

Bounds, on the median over rounds of each side's percentile: the p50 within 3% (the
histogram's buckets add at most 0.4%), the p99 within 10% (the tail moves with the machine's
interrupts from round to round more than the bucket width). Exit status 1 when a bound is
missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from runner.core.model import Scenario
from runner.core.parameters import PARAMETERS
from runner.probe.execute import run_process
from runner.probe.native import ProbeBinary, build_probe, compile_c, find_compiler, probe_argv

ROOT = Path(__file__).resolve().parents[1]
SIZE_BYTES = 4096
OPS = 100_000
BOUNDS = {"p50": 0.03, "p99": 0.10}


def probe_scenario() -> Scenario:
    values: dict[str, Any] = {p.field: p.default for p in PARAMETERS}
    values.update(backing="malloc", size_bytes=SIZE_BYTES, ops=OPS, workload="churn",
                  latency="histogram")
    return Scenario(**values)


def measure_probe(probe: ProbeBinary, scenario: Scenario) -> dict[str, int]:
    record = run_process(probe_argv(probe, scenario, 1, 1), scenario_id=scenario.id,
                         process_index=0, timeout_s=60)
    if record.status != "ok" or record.probe is None:
        raise SystemExit(f"bench/latency_fidelity.py: the probe failed: {record.stderr_tail}")
    (iteration,) = [i for i in record.probe["iterations"] if not i["warmup"]]
    observed = iteration["observations"]
    return {"p50": observed["latency_p50_ns"], "p99": observed["latency_p99_ns"]}


def measure_plain(baseline: Path) -> dict[str, int]:
    result = subprocess.run([str(baseline), str(SIZE_BYTES), str(OPS)], capture_output=True,
                            text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise SystemExit(f"bench/latency_fidelity.py: the baseline exited {result.returncode}: "
                         f"{result.stderr.strip()}")
    data = json.loads(result.stdout)
    return {"p50": data["p50_ns"], "p99": data["p99_ns"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="processes per side (15)")
    args = parser.parse_args(argv)
    probe = build_probe()
    compiler, _ = find_compiler()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "latency_baseline"
        compile_c(compiler, ROOT / "bench" / "latency_baseline.c", baseline, probe.flags)
        scenario = probe_scenario()
        samples: dict[str, list[dict[str, int]]] = {"alloclab": [], "plain": []}
        for index in range(args.rounds):
            # alternate which side goes first, so a slow spell falls on both alike
            sides = ("alloclab", "plain") if index % 2 == 0 else ("plain", "alloclab")
            for side in sides:
                samples[side].append(measure_probe(probe, scenario) if side == "alloclab"
                                     else measure_plain(baseline))
    missed = []
    print(f"malloc-4k-percentiles: {OPS:,} malloc({SIZE_BYTES}) + store + free pairs, "
          f"{args.rounds} processes per side")
    for name, bound in BOUNDS.items():
        ours = statistics.median(s[name] for s in samples["alloclab"])
        plain = statistics.median(s[name] for s in samples["plain"])
        ratio = ours / plain if plain else float("inf")
        ok = abs(ratio - 1) <= bound
        missed += [] if ok else [name]
        print(f"  {name}: alloclab {ours:g} ns, plain {plain:g} ns, ratio {ratio:.3f} "
              f"(bound ±{bound:.0%}) {'ok' if ok else 'FAIL'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
