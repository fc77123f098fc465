"""Fidelity benchmark: does alloclab's probe time what independent plain C times?

Each family is one piece of work done two ways, each sample in a fresh process:

  alloclab  the real path of `alloclab run`: the scenario is written as a spec
            (runner.spec.parse_spec), expanded (runner.matrix.expand) and run by
            runner.schedule.run_jobs (probe_argv, probe_env, run_process, parse_probe_output);
            the sample is one phase's ns of its one iteration
  plain     bench/baseline.c: the same work written again in the reference idiom (lmbench
            bw_mem / bw_file_rd, will-it-scale), never a copy of the probe's loops, compiled
            with the probe's compiler and flags

Families (bandwidth ones over one 256 MiB block):
  first-touch  one store per page of a fresh anonymous mapping (probe: mmap-anon, write-page,
               first_touch)
  memset       memset over faulted memory (probe: mmap-anon, write-all, second_pass)
  read-all     sum every 64-bit word of memory whose pages are all in RAM (probe: mmap-anon,
               read-all, populate madv-populate-write, second_pass; the baseline faults by
               one store per page): memory, not the one shared zero page held in cache
  read-file    read a warm file in 1 MiB chunks into one reused page-aligned buffer (probe:
               read-file, read_buffer 1MiB, access none, cache warm, first_touch)
  map-file     sum every word of a warm file through a read-only private mapping, faults
               included (probe: mmap-file, protection read, read-all, first_touch)
  malloc-16    1,000,000 back-to-back malloc(16) + store + free (probe: workload churn,
               whose allocate slot times the pairs); malloc-4k the same with 4 KiB
  mmap-4k      100,000 back-to-back mmap(4 KiB) + store + munmap (workload churn)

One warm-up round runs first and is not counted (this VM's free page reporting makes memory
unused for a while slower to fault in). Then each round runs every family's two sides back to
back, alloclab first in even rounds and plain first in odd ones, so drift of the shared
machine lands on both sides of a pair. Per family it prints median and minimum of each side,
the median of the per-round ratios alloclab/plain and PASS when that is within BOUND of 1
(two-sided: a probe faster than careful C is as wrong as a slower one), and FAIL when not, or
when the two sides took different numbers of page faults (they would not be doing the same
kernel work). With it goes the bootstrap 95% interval of that median (runner.stats); when the
interval straddles the bound the verdict is within the machine's noise, and it says so. Raw
samples and the summary go to bench/out/fidelity.json. Exit status 1 when any family fails,
including a family this alloclab cannot express. Run from a checkout:
`python bench/fidelity.py [--rounds N] [--family NAME]`, or `nox -s bench -- --rounds N`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout, not necessarily installed
    sys.path.insert(0, str(ROOT))

from runner import machine, preconditions, schedule  # noqa: E402
from runner.errors import SpecError  # noqa: E402
from runner.execute import PROBE_ENV  # noqa: E402
from runner.matrix import expand  # noqa: E402
from runner.model import ProcessRecord, Repetitions, Scenario  # noqa: E402
from runner.probe import ProbeBinary, build_probe, compile_c, find_compiler, probe_argv  # noqa: E402
from runner.spec import parse_spec  # noqa: E402
from runner.stats import bootstrap_median_ci  # noqa: E402

SIZE_BYTES = 256 << 20
READ_CHUNK_BYTES = 1 << 20
FILE_DIR = "/tmp"  # ext4 here: a file read goes through the page cache of a real filesystem
BOUND = 0.03  # the median paired ratio alloclab/plain must lie within 1 ± BOUND
TIMEOUT_S = 120.0
DEFAULT_ROUNDS = 30  # about two minutes here, with other work sharing the machine
OUT = ROOT / "bench" / "out" / "fidelity.json"
SIDES = ("alloclab", "plain")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# The two sides of a family must take the same page faults in the timed window (else they do
# different kernel work): equal within this share of the pages, or this many faults.
FAULT_SLACK_FRACTION = 0.01
FAULT_SLACK_MIN = 16

Unit = Literal["ns/page", "GB/s", "ns/op"]


@dataclass(frozen=True)
class Family:
    """One piece of work: the probe scenario that does it, and the baseline command that does."""

    name: str
    params: Mapping[str, object]  # spec keys of the probe's scenario beyond size and ops
    phase: str  # the probe phase that times the work
    unit: Unit  # how a time is shown per unit of work
    plain: tuple[str, ...]  # the baseline's subcommand and arguments
    work: str  # one line, for the JSON
    size_bytes: int = SIZE_BYTES  # the probe scenario's block size
    ops: int = 1  # the probe scenario's blocks (pairs, for workload churn)

    def per_unit(self, ns: float) -> str:
        """A time as the unit of work it stands for: per page, per op, or bytes per second."""
        if self.unit == "ns/page":
            return f"{ns / (self.size_bytes // PAGE_BYTES):7.1f} ns/page"
        if self.unit == "ns/op":
            return f"{ns / self.ops:7.1f} ns/op"
        return f"{self.size_bytes / ns:7.2f} GB/s"


# Latency families: back-to-back pairs in one timed window (the probe's workload churn times
# them in its allocate slot), as will-it-scale and lmbench measure allocation latency.
CHURN_MALLOC_OPS = 1_000_000
CHURN_MMAP_OPS = 100_000


FAMILIES = (
    Family("first-touch", {"backing": "mmap-anon", "access": "write-page"}, "first_touch",
           "ns/page", ("first-touch", str(SIZE_BYTES)),
           "one store per page of a fresh private anonymous mapping"),
    Family("memset", {"backing": "mmap-anon", "access": "write-all"}, "second_pass", "GB/s",
           ("memset", str(SIZE_BYTES)), "memset over a mapping whose pages are all faulted in"),
    Family("read-all", {"backing": "mmap-anon", "access": "read-all",
                        "populate": "madv-populate-write"}, "second_pass", "GB/s",
           ("read-all", str(SIZE_BYTES)),
           "sum of every 64-bit word of a mapping whose pages are all in memory (written)"),
    Family("read-file", {"backing": "read-file", "access": "none", "cache": "warm",
                         "file_dir": FILE_DIR, "read_buffer": READ_CHUNK_BYTES},
           "first_touch", "GB/s",
           ("read-file", FILE_DIR, str(SIZE_BYTES), str(READ_CHUNK_BYTES)),
           "read() of a warm file in 1 MiB chunks into one reused page-aligned buffer"),
    Family("map-file", {"backing": "mmap-file", "protection": "read", "access": "read-all",
                        "cache": "warm", "file_dir": FILE_DIR}, "first_touch", "GB/s",
           ("map-file", FILE_DIR, str(SIZE_BYTES)),
           "sum of every word of a warm file through a read-only private mapping, its page "
           "faults included"),
    Family("malloc-16", {"workload": "churn", "backing": "malloc", "access": "write-page"},
           "allocate", "ns/op", ("malloc-free", "16", str(CHURN_MALLOC_OPS)),
           "malloc(16), a store, free, back to back", size_bytes=16, ops=CHURN_MALLOC_OPS),
    Family("malloc-4k", {"workload": "churn", "backing": "malloc", "access": "write-page"},
           "allocate", "ns/op", ("malloc-free", "4096", str(CHURN_MALLOC_OPS)),
           "malloc(4 KiB), a store, free, back to back", size_bytes=4096,
           ops=CHURN_MALLOC_OPS),
    Family("mmap-4k", {"workload": "churn", "backing": "mmap-anon", "access": "write-page"},
           "allocate", "ns/op", ("mmap-munmap", "4096", str(CHURN_MMAP_OPS)),
           "mmap of 4 KiB, a store (one page fault), munmap, back to back", size_bytes=4096,
           ops=CHURN_MMAP_OPS),
)


@dataclass(frozen=True)
class Sample:
    """One process's measurement of one side."""

    ns: int
    minor_faults: int
    extra: Mapping[str, Any] = field(default_factory=dict)  # what else that side reported


@dataclass
class Series:
    """A family's samples, round by round, and its probe scenario (None: cannot be built)."""

    family: Family
    scenario: Scenario | None
    problem: str = ""  # why the family cannot be measured with this alloclab
    rounds: list[dict[str, Any]] = field(default_factory=list)


def build_scenario(family: Family) -> Scenario:
    """The family's probe scenario, through the spec language and matrix expansion that
    `alloclab run` uses (so defaults, ops and conflicts are exactly a user's)."""
    spec_text = yaml.safe_dump({
        "name": f"fidelity-{family.name}",
        "title": f"fidelity: {family.name}",
        "question": family.work,
        "matrix": {"size": [family.size_bytes]},
        "fixed": {"ops": family.ops, **family.params},
        "timeout": f"{TIMEOUT_S:g}s",
    }, sort_keys=False)
    scenarios = expand(parse_spec(spec_text, f"bench/fidelity.py ({family.name})")).scenarios
    assert len(scenarios) == 1, scenarios
    return scenarios[0]


def build_baseline(probe: ProbeBinary, directory: Path) -> Path:
    """Compile baseline.c with the probe's compiler and flags."""
    compiler, _ = find_compiler()
    output = directory / "baseline"
    compile_c(compiler, ROOT / "bench" / "baseline.c", output, probe.flags)
    return output


class Runner:
    """Runs one side of one family in a fresh process and returns its sample."""

    def __init__(self, probe: ProbeBinary, baseline: Path, work_dir: Path) -> None:
        self.probe = probe
        self.baseline = baseline
        self.work_dir = work_dir
        self.facts = preconditions.read_facts()
        self.env = machine.allocator_env(os.environ)
        self.count = 0

    def run(self, side: str, family: Family, scenario: Scenario) -> Sample:
        self.count += 1
        if side == "alloclab":
            return self._alloclab(family, scenario)
        return self._plain(family)

    def _alloclab(self, family: Family, scenario: Scenario) -> Sample:
        records: list[ProcessRecord] = []
        run_dir = self.work_dir / family.name  # run_jobs stores each record there, as a run
        run_dir.mkdir(exist_ok=True)
        job = schedule.Job(scenario, self.count)
        schedule.run_jobs([job], self.probe, Repetitions(processes=1, warmup=0, iterations=1),
                          TIMEOUT_S, run_dir, set(),
                          lambda _, record: records.append(record), facts=self.facts,
                          extra_env=self.env)
        record = records[0]
        if record.status != "ok" or record.probe is None:
            raise SystemExit(f"bench/fidelity.py: {family.name}: alloclab probe "
                             f"{record.status}: {record.stderr_tail.strip()}")
        iteration = record.probe["iterations"][0]
        phase = iteration["phases"][family.phase]
        return Sample(int(phase["ns"]), int(phase["minor_faults"]),
                      {"rss_bytes": int(phase["rss_bytes"]),
                       "observations": iteration["observations"]})

    def _plain(self, family: Family) -> Sample:
        argv = [str(self.baseline), *family.plain]
        result = subprocess.run(argv, env={**PROBE_ENV, **self.env}, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise SystemExit(f"bench/fidelity.py: {family.name}: baseline exited "
                             f"{result.returncode}: {result.stderr.strip()}")
        data = json.loads(result.stdout)
        return Sample(int(data["ns"]), int(data["minor_faults"]),
                      {"buffer_page_offset": int(data["buffer_page_offset"])})


def measure(series: list[Series], runner: Runner, rounds: int, warmup_rounds: int) -> None:
    """All rounds, interleaved: every family's pair in each round, the order alternating."""
    for index in range(warmup_rounds + rounds):
        counted = index >= warmup_rounds
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        for entry in series:
            if entry.scenario is None:
                continue
            pair = {side: runner.run(side, entry.family, entry.scenario) for side in order}
            if counted:
                entry.rounds.append({"round": index - warmup_rounds, "first": order[0],
                                     **{side: asdict(pair[side]) for side in SIDES}})
        label = "warm-up round" if not counted else f"round {index - warmup_rounds + 1}/{rounds}"
        print(f"  {label} done", file=sys.stderr, flush=True)


def summarize(entry: Series) -> dict[str, Any]:
    """Median and minimum per side, the paired ratios, the fault check and the verdict."""
    if entry.scenario is None:
        return {"verdict": "FAIL", "reason": entry.problem}
    ns = {side: [r[side]["ns"] for r in entry.rounds] for side in SIDES}
    faults = {side: statistics.median(r[side]["minor_faults"] for r in entry.rounds)
              for side in SIDES}
    ratios = [a / p for a, p in zip(ns["alloclab"], ns["plain"], strict=True)]
    paired = statistics.median(ratios)
    low, high = bootstrap_median_ci(np.array(ratios, dtype=np.float64))
    summary: dict[str, Any] = {
        **{f"{side}_median_ns": statistics.median(ns[side]) for side in SIDES},
        **{f"{side}_min_ns": min(ns[side]) for side in SIDES},
        **{f"{side}_median_minor_faults": faults[side] for side in SIDES},
        "median_paired_ratio": paired,
        "min_ratio": min(ns["alloclab"]) / min(ns["plain"]),
        "median_paired_ratio_ci95": [low, high],
        # The interval lies wholly inside the bound or wholly outside it: the verdict stands.
        "resolved": (low >= 1 - BOUND and high <= 1 + BOUND) or high < 1 - BOUND
        or low > 1 + BOUND,
        "paired_ratios": ratios,
        "bound": BOUND,
    }
    pages = max(entry.family.size_bytes // PAGE_BYTES, 1) * entry.family.ops
    slack = max(FAULT_SLACK_MIN, FAULT_SLACK_FRACTION * pages)
    if abs(faults["alloclab"] - faults["plain"]) > slack:
        summary |= {"verdict": "FAIL", "reason": (
            f"the sides took different page faults in the timed window (median "
            f"{faults['alloclab']:g} vs {faults['plain']:g}): they do different work")}
    elif abs(paired - 1) > BOUND:
        summary |= {"verdict": "FAIL", "reason": (
            f"median paired ratio {paired:.3f} is outside 1 ± {BOUND:.0%}")}
    else:
        summary |= {"verdict": "PASS", "reason": ""}
    return summary


def print_table(series: Sequence[Series], summaries: Sequence[dict[str, Any]],
                rounds: int) -> None:
    print(f"alloclab fidelity: {rounds} counted rounds after a warm-up, a fresh process per "
          f"sample, order alternating by round; {SIZE_BYTES >> 20} MiB blocks, latency "
          "families (ns/op) in back-to-back pairs")
    print(f"{'family':<12} {'side':<9} {'median':>10} {'min':>10}  {'median':>15}  "
          f"{'min':>15}  {'faults':>7}")
    for entry, summary in zip(series, summaries, strict=True):
        name = entry.family.name
        if entry.scenario is None:
            print(f"{name:<12} FAIL: not measured: {summary['reason']}")
            continue
        for side in SIDES:
            median, low = summary[f"{side}_median_ns"], summary[f"{side}_min_ns"]
            print(f"{name:<12} {side:<9} {median / 1e6:7.2f} ms {low / 1e6:7.2f} ms  "
                  f"{entry.family.per_unit(median):>15}  "
                  f"{entry.family.per_unit(low):>15}  "
                  f"{summary[f'{side}_median_minor_faults']:>7g}")
        verdict = summary["verdict"]
        detail = f": {summary['reason']}" if verdict == "FAIL" else ""
        low, high = summary["median_paired_ratio_ci95"]
        print(f"{name:<12} {'ratio':<9} median paired alloclab/plain "
              f"{summary['median_paired_ratio']:.3f} [95% CI {low:.3f}-{high:.3f}] "
              f"(of minima {summary['min_ratio']:.3f}) -> {verdict} (bound ±{BOUND:.0%}){detail}")
        if not summary["resolved"]:
            print(f"{'':<12} {'':<9} noisy: the interval straddles the bound, so this verdict "
                  "could flip on a rerun (a quieter machine or more --rounds would settle it)")
        offsets = _buffer_page_offsets(entry)
        if offsets:
            print(f"{'':<12} {'':<9} read buffer offset into its page: {offsets}")


def _buffer_page_offsets(entry: Series) -> str:
    """The read destination's offset into its page on each side (read-file), as reported."""
    probe = {r["alloclab"]["extra"]["observations"].get("read_buffer_page_offset_bytes")
             for r in entry.rounds}
    plain = {r["plain"]["extra"].get("buffer_page_offset") for r in entry.rounds}
    if probe == {None} or not entry.rounds or entry.family.params.get("backing") != "read-file":
        return ""
    return (f"alloclab {', '.join(map(str, sorted(probe, key=str)))} bytes, "
            f"plain {', '.join(map(str, sorted(plain, key=str)))} bytes")


def prepare(families: Sequence[Family]) -> list[Series]:
    """Each family's probe scenario, or why this alloclab cannot build it."""
    series = []
    for family in families:
        try:
            series.append(Series(family, build_scenario(family)))
        except SpecError as error:
            series.append(Series(family, None, f"this alloclab cannot express the scenario: "
                                               f"{error}"))
    return series


def write_json(path: Path, probe: ProbeBinary, args: argparse.Namespace,
               series: Sequence[Series], summaries: Sequence[dict[str, Any]]) -> None:
    body = {
        "size_bytes": SIZE_BYTES, "rounds": args.rounds, "warmup_rounds": args.warmup_rounds,
        "bound": BOUND, "page_size_bytes": PAGE_BYTES, "cpu": _cpu_model(),
        "kernel": platform.release(), "compiler": probe.compiler, "flags": list(probe.flags),
        "probe_hash": probe.source_hash, "baseline_source": "bench/baseline.c",
        "families": {
            entry.family.name: {
                "work": entry.family.work, "phase": entry.family.phase,
                "scenario": entry.scenario.params() if entry.scenario else None,
                "scenario_id": entry.scenario.id if entry.scenario else None,
                "probe_argv": (probe_argv(probe, entry.scenario, 0, 1)[1:]
                               if entry.scenario else None),
                "plain_argv": list(entry.family.plain),
                "summary": summary, "samples": entry.rounds,
            } for entry, summary in zip(series, summaries, strict=True)},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1) + "\n")


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"counted rounds: samples per side and family "
                             f"(default {DEFAULT_ROUNDS})")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="rounds run, not counted")
    parser.add_argument("--family", action="append", choices=[f.name for f in FAMILIES],
                        help="measure only this family (repeatable; default all)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the JSON file (default {OUT})")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup_rounds < 0:
        parser.error("--rounds must be at least 1 and --warmup-rounds at least 0")

    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    series = prepare(families)
    probe = build_probe()
    with tempfile.TemporaryDirectory(prefix="alloclab-bench-") as tmp:
        baseline = build_baseline(probe, Path(tmp))
        measure(series, Runner(probe, baseline, Path(tmp)), args.rounds, args.warmup_rounds)
    summaries = [summarize(entry) for entry in series]
    print_table(series, summaries, args.rounds)
    write_json(args.out, probe, args, series, summaries)
    failed = [entry.family.name for entry, s in zip(series, summaries, strict=True)
              if s["verdict"] != "PASS"]
    print(f"raw samples and summary: {args.out}")
    print(f"FAIL: {', '.join(failed)}" if failed else "PASS: every family within its bound")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
