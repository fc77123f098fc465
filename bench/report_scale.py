"""How `alloclab report` scales: time and peak memory over a synthetic store of many samples.

The store is made from the runs a report shows in results/ (their manifests, specs and the
shape of their probe output, observations included), each process given as many iterations as
it takes to reach --samples in all, with deterministic jitter on times. Then `alloclab report`
renders it three times in a fresh process each: cold (no render cache), warm (nothing changed)
and after one run changed (one page and the index re-rendered). Peak memory is the largest
resident set of any process the report started (getrusage of children: ru_maxrss).

The cold render is held to COLD_WALL_S of wall time and PEAK_RSS_MIB of peak memory: the
script says whether it kept them and exits 1 when it did not (after printing every figure).

    python bench/report_scale.py --samples 1000000 [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.store import folders, select  # noqa: E402  (the checkout's runner, not an installed one)

# What a cold render of a million samples may take on the 2-CPU machines alloclab is built on.
COLD_WALL_S = 10.0
PEAK_RSS_MIB = 1536.0


def _jittered(iteration: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of one stored iteration whose phase times vary by up to ±10%."""
    phases = {name: {**values, "ns": int(values["ns"] * rng.uniform(0.9, 1.1))}
              for name, values in iteration["phases"].items()}
    return {**iteration, "warmup": False, "phases": phases}


def write_store(source: Path, target: Path, samples: int, seed: int = 1) -> int:
    """Copy the shown runs of `source` into `target`, scaled to about `samples`; return how many."""
    rng = random.Random(seed)
    runs = select.latest_runs(source)
    stored = sum(len(r.probe["iterations"]) for run in runs for r in run.records
                 if r.status == "ok" and r.probe)
    factor = max(1, math.ceil(samples / max(stored, 1)))
    written = 0
    for run in runs:
        run_dir = target / run.path.relative_to(source)
        run_dir.mkdir(parents=True)
        shutil.copyfile(run.path / folders.MANIFEST, run_dir / folders.MANIFEST)
        with open(run_dir / folders.SAMPLES, "w") as out:
            for record in run.records:
                data = record.to_json()
                if record.status == "ok" and record.probe:
                    iterations = [_jittered(it, rng) for it in record.probe["iterations"]
                                  for _ in range(factor)]
                    data["probe"] = {**record.probe, "iterations": iterations}
                    written += len(iterations)
                out.write(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    return written


def time_report(results: Path, reports: Path, *extra: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one `alloclab report` in a fresh process.

    CPU time (user + system of the report and the processes it starts) is the figure to trust
    on a shared machine: wall time grows with whatever else runs.
    """
    command = [sys.executable, "-m", "runner", "report", "--results", str(results),
               "--reports", str(reports), "--templates", str(ROOT / "templates"), *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    # ru_maxrss of children is the largest of them so far: each step runs in its own
    # interpreter (see main) so that it is this step's.
    return elapsed, cpu, after.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--source", type=Path, default=ROOT / "results")
    parser.add_argument("--keep", type=Path, help="write the store here and keep it")
    parser.add_argument("--only", choices=("cold", "warm", "one"),
                        help="time one step on an existing --keep store (own process: own peak)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="alloclab-scale-")) if args.keep is None else args.keep
    results, reports = scratch / "results", scratch / "reports"
    try:
        if args.only is None:
            start = time.perf_counter()
            n = write_store(args.source, results, args.samples)
            print(f"store: {n} samples in {time.perf_counter() - start:.1f} s "
                  f"({sum(f.stat().st_size for f in results.rglob('*')) / 2**20:.0f} MiB)")
            steps = ("cold", "warm", "one")
        else:
            steps = (args.only,)
        missed = False
        for step in steps:
            if args.only is None and step != "cold":
                # A fresh interpreter per step, so each peak is that step's own.
                subprocess.run([sys.executable, __file__, "--keep", str(scratch), "--only",
                                step], check=True)
                continue
            if step == "cold":
                shutil.rmtree(reports, ignore_errors=True)
            if step == "one":
                # A changed manifest changes the run's checksum, as a new run would.
                manifest = sorted(results.glob(f"*/*/*/{folders.MANIFEST}"))[0]
                data = json.loads(manifest.read_text())
                data["command"] = f"{data.get('command')} "
                manifest.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n")
            elapsed, cpu_s, peak_mib = time_report(results, reports)
            print(f"report {step}: {elapsed:.1f} s wall, {cpu_s:.1f} s CPU, peak RSS "
                  f"{peak_mib:.0f} MiB", flush=True)
            if step == "cold":
                missed = elapsed > COLD_WALL_S or peak_mib > PEAK_RSS_MIB
                print(f"bounds (cold): {elapsed:.1f} s wall of {COLD_WALL_S:g} s, "
                      f"{peak_mib:.0f} MiB of {PEAK_RSS_MIB:.0f} MiB peak RSS: "
                      f"{'MISSED' if missed else 'kept'}", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
