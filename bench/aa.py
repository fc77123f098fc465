"""A/A benchmark: how often does alloclab's verdict rule see a difference that is not there?

Each A/A pair is one scenario measured as both candidate and reference: round after round, two
fresh probe processes of the same scenario back to back, in an order drawn at random (as a
run's schedule places a check's two scenarios side by side in a shuffled order), each process
counted by the median of its iterations, exactly as `alloclab run` measures and the report
judges a check pair. The pair is judged by the verdict rule itself
(runner.analysis.sequential.decide): `same` within a 5% band, looked at after 10 rounds and after
each 10 more up to 40, at 1 - 5%/4 per look, stopping at the first look that decides (extra rounds
as a run takes them for an undecided pair).

A pair is "different" when the interval of the look that stopped it excludes a ratio of 1:
the two sides told apart, though they are one scenario. The rule promises that at most 5% of
A/A pairs end so (the chance that any of its looks misses the true ratio); the bench exits 1
when more do. It also counts the pairs decided the same within the band, those left
undecided, and the rounds they took, per scenario kind.

The kinds are small and quick on purpose, from each family of the suite: heap pairs, mapping
pairs, first touch, file reads through read() and through a mapping, a heap batch, and a
large first touch. Every process is a real probe process started the way `alloclab run`
starts it (runner.measure.schedule.run_jobs), its metric computed by runner.analysis.frame. Raw
values per round go to bench/out/aa.json. `python bench/aa.py [--pairs N] [--kinds a,b]`, or `nox -s
aa -- --pairs N`. The default 30 pairs of each of 7 kinds (210 pairs) take about 5 minutes on a
2-vCPU VM of this kind.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout, not necessarily installed
    sys.path.insert(0, str(ROOT))

from runner.analysis.frame import build_frame, measured  # noqa: E402
from runner.analysis.sequential import Decision, decide  # noqa: E402
from runner.core.model import Looks, ProcessRecord, Repetitions, Scenario  # noqa: E402
from runner.core.parameters import FILE_BACKINGS  # noqa: E402
from runner.machine import preconditions, system  # noqa: E402
from runner.measure import datafiles, schedule  # noqa: E402
from runner.probe.execute import run_process  # noqa: E402
from runner.probe.native import ProbeBinary, build_probe  # noqa: E402
from runner.spec.load import parse_spec  # noqa: E402
from runner.spec.matrix import expand  # noqa: E402
from runner.store.folders import StoredRun  # noqa: E402

LOOKS = Looks(base=10, batch=10, most=40)  # a run's default: ADAPTIVE_FACTOR 4 x 10 processes
TOLERANCE = 0.05  # the default band of a timing check
BOUND = 0.05  # the share of A/A pairs the rule may call different
DEFAULT_PAIRS = 30
TIMEOUT_S = 120.0
OUT = ROOT / "bench" / "out" / "aa.json"


@dataclass(frozen=True)
class Kind:
    """One scenario measured against itself, and the metric its checks judge."""

    name: str
    params: Mapping[str, object]  # spec keys of the scenario
    metric: str
    iterations: int = 1


KINDS = (
    Kind("malloc-churn", {"backing": "malloc", "workload": "churn", "size": "16B",
                          "access": "write-page", "ops": 200_000}, "allocate_ns_per_op"),
    Kind("mmap-churn", {"backing": "mmap-anon", "workload": "churn", "size": "4KiB",
                        "access": "write-page", "ops": 20_000}, "allocate_ns_per_op"),
    Kind("first-touch", {"backing": "mmap-anon", "size": "1MiB", "access": "write-page",
                         "ops": "auto"}, "first_touch_ns_per_page"),
    Kind("read-file", {"backing": "read-file", "size": "16MiB", "access": "read-all",
                       "file_dir": "/tmp", "ops": 1}, "single_pass_ns_per_op", iterations=2),
    Kind("map-file", {"backing": "mmap-file", "protection": "read", "size": "16MiB",
                      "access": "read-all", "file_dir": "/tmp", "ops": 1},
         "single_pass_ns_per_op", iterations=2),
    Kind("heap-batch", {"backing": "malloc", "size": "64KiB", "access": "write-page",
                        "ops": "auto"}, "total_ns_per_op"),
    Kind("large-touch", {"backing": "mmap-anon", "size": "64MiB", "access": "write-page",
                         "ops": 1, "host_warm": True}, "first_touch_ns_per_page"),
)


def build_scenario(kind: Kind) -> Scenario:
    """The kind's scenario, through the spec language and matrix expansion of `alloclab run`."""
    params = dict(kind.params)
    spec_text = yaml.safe_dump({
        "name": f"aa-{kind.name}", "title": f"A/A: {kind.name}", "question": "A against A?",
        "matrix": {"size": [params.pop("size")]}, "fixed": params,
        "timeout": f"{TIMEOUT_S:g}s"}, sort_keys=False)
    [scenario] = expand(parse_spec(spec_text, f"bench/aa.py ({kind.name})")).scenarios
    return scenario


class Runner:
    """Starts one probe process of a scenario as `alloclab run` does, returns its value."""

    def __init__(self, probe: ProbeBinary, work_dir: Path) -> None:
        self.probe, self.work_dir = probe, work_dir
        self.facts = preconditions.read_facts()
        self.env = system.allocator_env(os.environ)
        self.count = 0

    def value(self, kind: Kind, scenario: Scenario, data_file: Path | None) -> float:
        self.count += 1
        records: list[ProcessRecord] = []
        run_dir = self.work_dir / kind.name
        run_dir.mkdir(exist_ok=True)

        def start(argv: Sequence[str], **options: Any) -> ProcessRecord:
            if data_file is not None:  # one data file for every process, as a run shares one
                options["extra_env"] = {**options["extra_env"],
                                        datafiles.VARIABLE: str(data_file)}
            return run_process(argv, **options)

        schedule.run_jobs([schedule.Job(scenario, self.count)], self.probe,
                          Repetitions(processes=1, iterations=kind.iterations), TIMEOUT_S,
                          run_dir, set(), lambda _, record: records.append(record),
                          facts=self.facts, extra_env=self.env, run_process=start)
        [record] = records
        if record.status != "ok":
            raise SystemExit(f"bench/aa.py: {kind.name}: probe {record.status}: "
                             f"{record.stderr_tail.strip()}")
        run = StoredRun(run_dir, {
            "machine_label": "aa", "experiment": f"aa-{kind.name}", "run_id": "aa",
            "scenarios": [{"id": scenario.id, "label": kind.name,
                           "params": asdict(scenario)}]}, (record,))
        return float(measured(build_frame(run))[kind.metric].median())


@dataclass
class Pair:
    """One A/A pair: the two sides' values round by round, and how the rule ended it."""

    kind: str
    candidate: dict[int, float]
    reference: dict[int, float]
    first: list[str]  # per round, which side ran first
    decision: Decision | None = None

    @property
    def different(self) -> bool:
        shift = self.decision.shift if self.decision else None
        return bool(shift and not math.isnan(shift.low) and not shift.low <= 1 <= shift.high)


def judge_pair(pair: Pair) -> Decision:
    return decide(pair.candidate, pair.reference, 0.0, "same", TOLERANCE, LOOKS)


def measure_pair(kind: Kind, scenario: Scenario, runner: Runner, rng: random.Random,
                 data_file: Path | None) -> Pair:
    """Rounds of the pair until the rule stops it: base rounds, then a batch at a time."""
    pair = Pair(kind.name, {}, {}, [])
    done = 0
    for count in LOOKS.rounds:
        for number in range(done, count):
            order = ["candidate", "reference"]
            rng.shuffle(order)
            pair.first.append(order[0])
            for side in order:
                getattr(pair, side)[number] = runner.value(kind, scenario, data_file)
        done = count
        pair.decision = judge_pair(pair)
        if pair.decision.decided:
            break
    return pair


def report(pairs: Sequence[Pair], kinds: Sequence[Kind], seconds: Mapping[str, float]) -> str:
    lines = [f"{'kind':<13} {'pairs':>5} {'different':>9} {'same':>5} {'undecided':>9} "
             f"{'rounds':>6} {'median ratio':>12} {'s/pair':>7}"]
    for kind in kinds:
        mine = [p for p in pairs if p.kind == kind.name]
        if not mine:
            continue
        lines.append(_row(kind.name, mine, seconds.get(kind.name, 0.0)))
    lines.append(_row("all", list(pairs), sum(seconds.values())))
    different = sum(p.different for p in pairs)
    upper = _clopper_pearson_upper(different, len(pairs))
    verdict = "PASS" if different <= BOUND * len(pairs) else "FAIL"
    lines.append(f"{verdict}: {different} of {len(pairs)} A/A pairs "
                 f"({different / max(1, len(pairs)):.1%}; 95% upper bound {upper:.1%}) told "
                 f"apart, bound {BOUND:.0%}")
    return "\n".join(lines)


def _row(name: str, pairs: Sequence[Pair], seconds: float) -> str:
    decisions = [p.decision for p in pairs if p.decision]
    same = sum(d.outcome == "holds" for d in decisions)
    undecided = sum(d.outcome == "undecided" for d in decisions)
    rounds = np.mean([d.pairs for d in decisions]) if decisions else math.nan
    ratios = [d.shift.estimate for d in decisions]
    return (f"{name:<13} {len(pairs):>5} {sum(p.different for p in pairs):>9} {same:>5} "
            f"{undecided:>9} {rounds:>6.1f} {np.median(ratios):>12.4f} "
            f"{seconds / max(1, len(pairs)):>7.2f}")


def _clopper_pearson_upper(successes: int, trials: int, confidence: float = 0.95) -> float:
    """The one-sided upper bound of a binomial proportion (exact, by bisection)."""
    if trials == 0 or successes >= trials:
        return 1.0
    low, high = successes / trials, 1.0
    tail = 1 - confidence
    for _ in range(60):
        mid = (low + high) / 2
        cdf = sum(math.comb(trials, k) * mid ** k * (1 - mid) ** (trials - k)
                  for k in range(successes + 1))
        low, high = (mid, high) if cdf > tail else (low, mid)
    return high


def _kind_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in {k.name for k in KINDS}]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kinds {', '.join(unknown)} (kinds: "
                                         f"{', '.join(k.name for k in KINDS)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=DEFAULT_PAIRS,
                        help=f"A/A pairs per kind (default {DEFAULT_PAIRS})")
    parser.add_argument("--kinds", type=_kind_list, default=[], metavar="A,B,...",
                        help="only these kinds: " + ", ".join(k.name for k in KINDS))
    parser.add_argument("--seed", type=int, default=1, help="the order within each round")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the JSON file (default {OUT})")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    kinds = [k for k in KINDS if not args.kinds or k.name in args.kinds]
    probe = build_probe()
    rng = random.Random(args.seed)
    pairs: list[Pair] = []
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="alloclab-aa-") as tmp:
        runner = Runner(probe, Path(tmp))
        scenarios = {k.name: build_scenario(k) for k in kinds}
        files = {k.name: Path("/tmp") / f"alloclab-aa-{os.getpid()}-{k.name}.data"
                 for k in kinds if scenarios[k.name].backing in FILE_BACKINGS}
        try:
            # Kinds take turns pair by pair, so a slow spell of the machine spreads over all.
            for index in range(args.pairs):
                for kind in kinds:
                    started = time.perf_counter()
                    pairs.append(measure_pair(kind, scenarios[kind.name], runner, rng,
                                              files.get(kind.name)))
                    seconds[kind.name] = (seconds.get(kind.name, 0.0)
                                          + time.perf_counter() - started)
                print(f"  pair {index + 1}/{args.pairs} of each kind done", file=sys.stderr,
                      flush=True)
        finally:
            for path in files.values():
                path.unlink(missing_ok=True)
    table = report(pairs, kinds, seconds)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "looks": list(LOOKS.rounds), "confidence_per_look": LOOKS.confidence,
        "tolerance": TOLERANCE, "bound": BOUND, "probe_hash": probe.source_hash,
        "kinds": {k.name: {"scenario": scenarios[k.name].params(), "metric": k.metric}
                  for k in kinds},
        "pairs": [{"kind": p.kind, "first": p.first,
                   "candidate": [p.candidate[k] for k in sorted(p.candidate)],
                   "reference": [p.reference[k] for k in sorted(p.reference)],
                   "outcome": p.decision.outcome if p.decision else None,
                   "different": p.different} for p in pairs]}, indent=1) + "\n")
    args.out.with_suffix(".txt").write_text(table + "\n")
    return 0 if sum(p.different for p in pairs) <= BOUND * len(pairs) else 1


if __name__ == "__main__":
    sys.exit(main())
