"""Fidelity benchmark: does alloclab measure what a plain C loop measures?

Two pieces of work, each done by alloclab (build_probe + probe_argv + run_process, the real
path) and by bench/baseline.c (the loop alone, same compiler and flags), in fresh processes,
interleaved round by round with the order alternating:

  first-touch  one byte written to every page of a fresh 256 MiB private anonymous mapping
               (alloclab: mmap-anon, access write-page, ops 1 -> first_touch ns)
  memset       memset over an already-faulted 256 MiB mapping
               (alloclab: mmap-anon, access write-all, ops 1 -> second_pass ns)

Prints median and minimum of each side and the ratio alloclab/plain of each, plus the median
of the per-round ratios (pairing cancels drift of the shared machine); the goal is a median
ratio within 5% of 1. This VM's free-page reporting makes first touches bimodal (memory freed
long ago is slower to fault back), so compare the minima too; for the same reason one
warm-up round runs first and is not counted. Raw samples go to bench/out/fidelity.json.
Run from a checkout: `python bench/fidelity.py [--rounds N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout, not necessarily installed
    sys.path.insert(0, str(ROOT))

from runner.execute import PROBE_ENV, run_process  # noqa: E402
from runner.model import Scenario  # noqa: E402
from runner.parameters import PARAMETERS  # noqa: E402
from runner.probe import ProbeBinary, build_probe, compile_c, find_compiler, probe_argv  # noqa: E402

SIZE_BYTES = 256 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
GOAL = 0.05
TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Case:
    name: str
    access: str  # the probe's access pattern
    phase: str  # the probe phase that times the same work as the baseline loop
    unit: str  # "ns/page" or "GB/s"


CASES = (
    Case("first-touch", "write-page", "first_touch", "ns/page"),
    Case("memset", "write-all", "second_pass", "GB/s"),
)
SIDES = ("alloclab", "plain")


def build_baseline(probe: ProbeBinary, directory: Path) -> Path:
    """Compile baseline.c with the probe's compiler and flags."""
    compiler, _ = find_compiler()
    output = directory / "baseline"
    compile_c(compiler, ROOT / "bench" / "baseline.c", output, probe.flags)
    return output


def run_alloclab(probe: ProbeBinary, case: Case, index: int) -> int:
    values: dict[str, object] = {p.field: p.default for p in PARAMETERS}
    values.update(backing="mmap-anon", size_bytes=SIZE_BYTES, access=case.access, ops=1)
    scenario = Scenario(**values)  # type: ignore[arg-type]
    record = run_process(probe_argv(probe, scenario, warmup=0, iterations=1),
                         scenario_id=scenario.id, process_index=index, timeout_s=TIMEOUT_S)
    if record.status != "ok" or record.probe is None:
        raise SystemExit(f"alloclab probe {record.status}: {record.stderr_tail}")
    return int(record.probe["iterations"][0]["phases"][case.phase]["ns"])


def run_plain(baseline: Path, case: Case) -> int:
    result = subprocess.run([str(baseline), case.name, str(SIZE_BYTES)], env=dict(PROBE_ENV),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise SystemExit(f"baseline {case.name} failed: {result.stderr}")
    return int(result.stdout)


def per_unit(case: Case, ns: float) -> str:
    if case.unit == "ns/page":
        return f"{ns / (SIZE_BYTES // PAGE):8.1f} ns/page"
    return f"{SIZE_BYTES / ns:8.2f} GB/s"


def report(samples: dict[str, dict[str, list[int]]], rounds: int) -> list[float]:
    """Print the table; return the median ratios."""
    print(f"alloclab fidelity: {SIZE_BYTES >> 20} MiB, {rounds} rounds, a fresh process per "
          "sample, order alternating each round")
    print(f"{'case':<12} {'side':<9} {'median':>10} {'min':>10}   {'median per unit':>16}"
          f"   {'min per unit':>16}")
    ratios = []
    for case in CASES:
        stats = {}
        for side in SIDES:
            values = samples[case.name][side]
            median, low = statistics.median(values), min(values)
            stats[side] = (median, low)
            print(f"{case.name:<12} {side:<9} {median / 1e6:7.2f} ms {low / 1e6:7.2f} ms   "
                  f"{per_unit(case, median):>16}   {per_unit(case, low):>16}")
        ratio_median = stats["alloclab"][0] / stats["plain"][0]
        ratio_min = stats["alloclab"][1] / stats["plain"][1]
        paired = statistics.median(a / p for a, p in zip(
            samples[case.name]["alloclab"], samples[case.name]["plain"], strict=True))
        ratios.append(ratio_median)
        print(f"{case.name:<12} {'ratio':<9} {ratio_median:10.3f} {ratio_min:10.3f}   "
              f"(alloclab / plain time; median of per-round ratios {paired:.3f})")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="samples per side and case")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="rounds run, not counted")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "fidelity.json")
    parser.add_argument("--fail-above", type=float, metavar="PCT",
                        help="exit 1 when a median ratio is further than PCT%% from 1")
    args = parser.parse_args(argv)

    probe = build_probe()
    samples: dict[str, dict[str, list[int]]] = {c.name: {s: [] for s in SIDES} for c in CASES}
    with tempfile.TemporaryDirectory(prefix="alloclab-bench-") as tmp:
        baseline = build_baseline(probe, Path(tmp))
        for index in range(args.warmup_rounds + args.rounds):
            order = SIDES if index % 2 == 0 else SIDES[::-1]
            for case in CASES:
                for side in order:
                    ns = (run_alloclab(probe, case, index) if side == "alloclab"
                          else run_plain(baseline, case))
                    if index >= args.warmup_rounds:
                        samples[case.name][side].append(ns)

    ratios = report(samples, args.rounds)
    worst = max(abs(r - 1) for r in ratios)
    print(f"median ratios within {GOAL:.0%} of 1: {'yes' if worst <= GOAL else 'NO'} "
          f"(worst {worst:.1%})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "size_bytes": SIZE_BYTES, "rounds": args.rounds, "compiler": probe.compiler,
        "flags": list(probe.flags), "probe_hash": probe.source_hash, "samples_ns": samples,
    }, indent=1) + "\n")
    print(f"raw samples: {args.out}")
    if args.fail_above is not None and worst > args.fail_above / 100:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
