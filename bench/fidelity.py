"""Fidelity benchmark: does alloclab's probe time what independent plain C times?

Each family is one piece of work done two ways, each sample in a fresh process:

  alloclab  the real path of `alloclab run`: the scenario is written as a spec
            (runner.spec.load.parse_spec), expanded (runner.spec.matrix.expand) and run by
            runner.measure.schedule.run_jobs (probe_argv, probe_env, run_process,
            parse_probe_output); the sample is one phase's ns of its one iteration
  plain     bench/baseline.c: the same work written again in the reference idiom (lmbench
            bw_mem / bw_file_rd, will-it-scale), never a copy of the probe's loops, compiled
            with the probe's compiler and flags

Families (bandwidth ones over one 256 MiB block), each with its probe scenario:
  first-touch  one store per page of a fresh anonymous mapping (probe: mmap-anon, write-page,
               first_touch)
  memset       memset over faulted memory (probe: mmap-anon, write-all, second_pass)
  read-all     sum every 64-bit word of memory whose pages are all in RAM (probe: mmap-anon,
               read-all, populate madv-populate-write, second_pass; the baseline faults by
               one store per page): memory, not the one shared zero page held in cache
  read-file    read a warm file in 1 MiB chunks into one reused page-aligned buffer (probe:
               read-file, read_buffer 1MiB, access none, cache warm, first_touch)
  write-file   rewrite a 64 MiB file clean in the page cache in 1 MiB chunks made by memset in one
               reused buffer, each pwrite to its place (probe: write-file, write_buffer 1MiB,
               write-all, first_touch)
  map-file     sum every word of a warm file through a read-only private mapping, faults
               included (probe: mmap-file, protection read, read-all, first_touch)
  malloc-16    1,000,000 back-to-back malloc(16) + store + free (probe: workload churn,
               whose allocate slot times the pairs); malloc-4k the same with 4 KiB;
               malloc-4k-jemalloc, -tcmalloc and -mimalloc the same with that allocator in
               LD_PRELOAD on both sides (probe: parameter allocator); malloc-4k-threads the
               same pairs in two threads at once (probe: threads 2; baseline: two workers
               released by one flag, as will-it-scale's threads mode)
  mmap-4k      100,000 back-to-back mmap(4 KiB) + store + munmap (workload churn)
  mmap-4k-untouched
               the same pairs without the store (access none): mmap and munmap alone, no
               fault. In both mmap families each side's mapping is one of its own, as lmbench
               lat_mmap's and will-it-scale mmap1's are: the probe makes any mapping a block
               would join unjoinable, the baseline maps a PROT_NONE guard page first (a fresh
               process's first small mapping would join ld.so's anonymous page: mmap extending
               it and munmap splitting it, a quarter dearer per untouched pair); both report
               whether a mapping like the loop's joined a neighbour
  map-populate mmap of 256 MiB with MAP_POPULATE, the kernel faulting every page in inside
               the call (probe: mmap-anon, populate map-populate, allocate), ns/page
  malloc-64m   one store per page of a fresh malloc(64 MiB), which glibc maps (probe: malloc,
               write-page, first_touch), ns/page
  thp          one store per 4 KiB page of 256 MiB aligned to 2 MiB and advised
               MADV_HUGEPAGE: a huge page fault per 2 MiB (probe: mmap-anon, thp huge,
               first_touch), ns/page
  map-file-cold
               one load per page through a read-only private mapping of a 256 MiB ext4 file
               dropped from the page cache (posix_fadvise DONTNEED) right before (probe:
               mmap-file, protection read, read-page, cache cold, first_touch), ns/page; FAIL
               when either side found more than 1% of the file still cached
  malloc-1m-reuse
               40,000 back-to-back malloc(1 MiB) + one store per page + free: after the first
               two pairs the same resident heap chunk every time (probe: workload churn,
               malloc, write-page, allocate), ns per page touched
  grow-mremap  a 1 MiB mapping doubled ten times to 1 GiB by mremap, one store per page of
               each step's new part right after the step (probe: workload resize, mmap-anon,
               grow_method mremap, grow_steps 10, touch_grown, second_pass), ns per page added
  grow-realloc the same with malloc and realloc (probe: malloc, grow_method realloc)

The baseline of every family is bench/baseline.c's own code in a reference tool's idiom
(its header names which), never the probe's: the THP region comes from posix_memalign, where
the probe maps 2 MiB more and trims; the cold file is dropped as fio's invalidate=1 drops it,
where the probe also fdatasyncs; the growth chain is a plain realloc/mremap loop. So the bench
can disagree with the probe, and says so by FAIL.

Method. One warm-up round runs first and is not counted (this VM's free page reporting makes
memory unused for a while slower to fault in). Then each round runs every family's two sides
back to back, alloclab first in even rounds and plain first in odd ones, so drift of the
shared machine lands on both sides of a pair. Before each sample of a family that first-touches
much anonymous memory (first-touch, map-populate, malloc-64m, thp, the growth chains), a
process of its own writes and frees as much (in huge pages for thp), so that either side gets
memory the host backs rather than memory it took back (WARM_HOST). Every process of a round,
warm-ups included, runs on one CPU, the CPUs taking turns every two rounds (PIN_ROUNDS): the
kernel keeps freed pages in a list per CPU, so the memory a process gets depends on the CPU it
runs on, and left to the scheduler the two sides of a family settled on different CPUs round
after round. The file families read one data file per family that the bench writes once,
shared by both sides and all rounds (DATA_FILE), as alloclab shares one between the processes
of a scenario; each side still sets its cache state itself.

Per family it prints median and minimum of each side and the paired ratio alloclab/plain:
the geometric mean of the median ratio among rounds alloclab ran first and that among rounds
plain ran first. The second process of a pair often runs faster or slower than the first (by
10-20% on a busy machine); balanced so, that effect cancels instead of making a two-humped
spread whose median wanders between the humps. The effect is printed too, and the plain
median of all pairs. PASS when the ratio is within BOUND of 1 (two-sided: a probe faster than
careful C is as wrong as a slower one), FAIL when not, or when the two sides took different
numbers of page faults (they would not be doing the same kernel work), or, for the mmap
families, when one side's mapping joined a neighbouring mapping and the other's did not
(other kernel work again: mmap extending a mapping and munmap splitting it, against making
and removing one). A family whose probe
scenario deliberately differs from the plain work carries the reason
(Family.known_difference): off the bound it prints KNOWN with that reason and does not fail
(unequal faults still fail it). With the ratio goes its bootstrap 95% interval (each order's
rounds resampled apart); when the interval straddles the bound the verdict is within the
machine's noise, and it says so. Raw samples and the summary go to bench/out/fidelity.json,
the printed table beside it as fidelity.txt (`--out reports/bench/fidelity.json` for the
published figures). Exit status 1 when any family fails, including a family this alloclab
cannot express. The default 30 rounds and the warm-up take about 6 minutes on a 2-vCPU VM of
this kind with an Intel Xeon and little else running (each round 11 s, half of it the two
1 GiB growth chains; the table ends with each family's seconds per round), 10 with the other
CPU busy; about 4 on one with an AMD EPYC (7 s a round). Run from a
checkout: `python bench/fidelity.py [--rounds N] [--families a,b] [--family NAME]`, or
`nox -s bench -- --rounds N --families thp,map-file-cold`.
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
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout, not necessarily installed
    sys.path.insert(0, str(ROOT))

from runner.analysis.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, bootstrap_median_ci  # noqa: E402
from runner.core.errors import SpecError  # noqa: E402
from runner.core.model import ProcessRecord, Repetitions, Scenario  # noqa: E402
from runner.machine import allocators, preconditions, system  # noqa: E402
from runner.measure import datafiles, schedule  # noqa: E402
from runner.probe import native  # noqa: E402
from runner.probe.execute import PROBE_ENV, run_process  # noqa: E402
from runner.probe.native import ProbeBinary, build_probe, compile_c, find_compiler, probe_argv  # noqa: E402
from runner.spec.load import parse_spec  # noqa: E402
from runner.spec.matrix import expand  # noqa: E402

SIZE_BYTES = 256 << 20
READ_CHUNK_BYTES = 1 << 20
# write-file: each side makes, flushes and reads in a file of its own per sample (a file that
# is written cannot be shared), so a smaller one keeps the round short.
WRITE_FILE_BYTES = 64 << 20
FILE_DIR = "/tmp"  # ext4 here: a file read goes through the page cache of a real filesystem
BOUND = 0.03  # the median paired ratio alloclab/plain must lie within 1 ± BOUND
TIMEOUT_S = 120.0
DEFAULT_ROUNDS = 30  # 4-6 minutes here (7-11 s a round), more with other work running
OUT = ROOT / "bench" / "out" / "fidelity.json"
SIDES = ("alloclab", "plain")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# The two sides of a family must take the same page faults in the timed window (else they do
# different kernel work): equal within this share of the pages, or this many faults.
FAULT_SLACK_FRACTION = 0.01
FAULT_SLACK_MIN = 16
# A cold-file family's sides must find at most this share of the file cached before timing.
COLD_MAX_CACHED = 0.01

Unit = Literal["ns/page", "GB/s", "ns/op"]
Verdict = Literal["PASS", "FAIL", "KNOWN"]  # KNOWN: off the bound for the documented reason


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
    pages: int = 0  # pages the timed work covers; 0: size_bytes in pages, times ops
    # Anonymous memory a process of its own writes and frees right before each sample (both
    # sides alike): see WARM_HOST below. 0: none.
    warm_bytes: int = 0
    # Why the two sides may lie off the bound, when they may: the bench prints it and does not
    # fail the family for its ratio (it still fails for unequal page faults). Empty: the
    # family must be within the bound.
    known_difference: str = ""
    # An allocator both sides run under (LD_PRELOAD of its library); empty: the C library's.
    allocator: str = ""

    @property
    def work_pages(self) -> int:
        """The pages the timed work covers (at least one per op)."""
        return self.pages or max(self.size_bytes // PAGE_BYTES, 1) * self.ops

    def per_unit(self, ns: float) -> str:
        """A time as the unit of work it stands for: per page, per op, or bytes per second."""
        if self.unit == "ns/page":
            return f"{ns / self.work_pages:7.1f} ns/page"
        if self.unit == "ns/op":
            return f"{ns / self.ops:7.1f} ns/op"
        return f"{self.size_bytes / ns:7.2f} GB/s"


# File families read one data file the bench writes and flushes once per family, in FILE_DIR,
# and hands to both sides in every round: the probe through the variable with which alloclab
# gives the processes of one scenario one shared file (runner.measure.datafiles), the baseline as
# the argument this stands for. Each side still sets the file's cache state itself (reads it in, or
# drops it). One file for both sides means they read the same blocks through the same page-cache
# pages: with a fresh file per process (as before), the pages each side got, and the first read of
# freshly written blocks from this VM's disk (twice as slow as later cold reads), and each process
# writing and syncing 256 MiB varied per process: on a busy machine, 18 rounds of each way, the
# spread (sd of log paired ratios) of read-file fell from 0.39 to 0.17 and of map-file from 0.46 to
# 0.23.
DATA_FILE = "{data_file}"

# Latency families: back-to-back pairs in one timed window (the probe's workload churn times
# them in its allocate slot), as will-it-scale and lmbench measure allocation latency.
CHURN_MALLOC_OPS = 1_000_000
CHURN_MMAP_OPS = 100_000

MIB = 1 << 20
# First touch through the other ways of getting anonymous memory.
MALLOC_LARGE_BYTES = 64 * MIB  # above glibc's largest mmap threshold (32 MiB): always mapped
# malloc(1 MiB) reused: the first pair maps it, free raises glibc's mmap threshold past it, so
# every later pair gets the same heap chunk back, its pages resident: the per-page cost of
# memory a program reuses. Enough pairs that the first two pairs' faults are under 1%.
REUSE_BYTES = MIB
REUSE_OPS = 40_000
# Growth 1 MiB -> 1 GiB by doubling (the probe's resize workload, grow_steps, touch_grown).
GROW_START_BYTES = MIB
GROW_STEPS = 10
GROW_ADDED_PAGES = (GROW_START_BYTES << GROW_STEPS) // PAGE_BYTES - GROW_START_BYTES // PAGE_BYTES
GROW_PARAMS = {"workload": "resize", "grow_factor": 2, "grow_steps": GROW_STEPS,
               "touch_grown": True, "access": "write-page"}
# This VM reports free memory to its host after about two seconds; a page the host took back
# costs a host fault too on its next first touch, up to 10x more (large first touches are
# bimodal). The kernel hands out memory freed last first (on the CPU that freed it: see
# PIN_ROUNDS), so a process of its own that writes and frees this much memory right before a
# sample, on the sample's CPU, leaves it backed for the sample, on either side alike. Without
# it, of a pair of 1 GiB growths the side that ran first got reported memory and the second the
# memory the first just freed.
WARM_HOST = True
# Every process of a round (both sides of every family and the warm-up processes) runs on one
# CPU, the CPUs taking turns every two rounds, so each takes as many rounds of either order
# (round_cpu). A page a process frees goes to a list of the CPU it ran on (the per-CPU page
# lists, up to 416 MiB each on these 24 GiB VMs: high_max in /proc/zoneinfo), and a page fault
# takes from the list of the CPU it runs on, last freed first. So the memory a process gets
# depends on its CPU: the warm-up above backs a sample's memory only on the sample's CPU, and
# the two lists can hold pages of different physical scatter, which on the AMD EPYC machines
# of this kind read at different speeds (summing 256 MiB, a fresh process: 23-25 ms on pages
# drawn on one CPU, each 2 MiB of them spread over ~277 physical 2 MiB regions, 18-20 ms on
# the other's, ~119; one buffer read on either CPU: the same speed; the same pages handed out
# in random order: 1.22-1.26x slower). Left to the scheduler, back-to-back processes alternate
# CPUs in a pattern the round's sequence fixes: alloclab's read-all ran on one CPU in 29 of 30
# rounds, plain's on the other in 30 of 30 (read-all 1.107, memset 1.027), and nearly every
# warm-up on the other CPU than its sample (map-populate 0.858, grow-realloc 0.887). Pinned,
# in three full runs: 1.002-1.010, 0.989-1.001, 0.992-0.999, 0.991-0.992.
PIN_ROUNDS = True


FAMILIES = (
    Family("first-touch", {"backing": "mmap-anon", "access": "write-page"}, "first_touch",
           "ns/page", ("first-touch", str(SIZE_BYTES)),
           "one store per page of a fresh private anonymous mapping", warm_bytes=SIZE_BYTES),
    Family("memset", {"backing": "mmap-anon", "access": "write-all"}, "second_pass", "GB/s",
           ("memset", str(SIZE_BYTES)), "memset over a mapping whose pages are all faulted in"),
    Family("read-all", {"backing": "mmap-anon", "access": "read-all",
                        "populate": "madv-populate-write"}, "second_pass", "GB/s",
           ("read-all", str(SIZE_BYTES)),
           "sum of every 64-bit word of a mapping whose pages are all in memory (written)"),
    Family("read-file", {"backing": "read-file", "access": "none", "cache": "warm",
                         "file_dir": FILE_DIR, "read_buffer": READ_CHUNK_BYTES},
           "first_touch", "GB/s",
           ("read-file", DATA_FILE, str(SIZE_BYTES), str(READ_CHUNK_BYTES)),
           "read() of a warm file in 1 MiB chunks into one reused page-aligned buffer"),
    Family("write-file", {"backing": "write-file", "access": "write-all", "cache": "warm",
                          "file_dir": FILE_DIR, "write_buffer": READ_CHUNK_BYTES},
           "first_touch", "GB/s",
           ("write-file", FILE_DIR, str(WRITE_FILE_BYTES), str(READ_CHUNK_BYTES)),
           "rewrite a file clean in the page cache in 1 MiB chunks, each made by memset in one "
           "reused page-aligned buffer and written by pwrite (each side writes a file of its "
           "own, as alloclab does for a scenario that writes its file)",
           size_bytes=WRITE_FILE_BYTES),
    Family("map-file", {"backing": "mmap-file", "protection": "read", "access": "read-all",
                        "cache": "warm", "file_dir": FILE_DIR}, "first_touch", "GB/s",
           ("map-file", DATA_FILE, str(SIZE_BYTES)),
           "sum of every word of a warm file through a read-only private mapping, its page "
           "faults included"),
    Family("malloc-16", {"workload": "churn", "backing": "malloc", "access": "write-page"},
           "allocate", "ns/op", ("malloc-free", "16", str(CHURN_MALLOC_OPS)),
           "malloc(16), a store, free, back to back", size_bytes=16, ops=CHURN_MALLOC_OPS),
    Family("malloc-4k", {"workload": "churn", "backing": "malloc", "access": "write-page"},
           "allocate", "ns/op", ("malloc-free", "4096", str(CHURN_MALLOC_OPS)),
           "malloc(4 KiB), a store, free, back to back", size_bytes=4096,
           ops=CHURN_MALLOC_OPS),
    # The same pair under each allocator alloclab preloads (parameter allocator): the probe's
    # loop with the library in LD_PRELOAD, and baseline.c's own loop with the same library
    # preloaded. A missing allocator leaves its family out, saying which package adds it.
    *(Family(f"malloc-4k-{name}", {"workload": "churn", "backing": "malloc",
                                   "access": "write-page", "allocator": name},
             "allocate", "ns/op", ("malloc-free", "4096", str(CHURN_MALLOC_OPS)),
             f"malloc(4 KiB), a store, free, back to back, {name} preloaded", size_bytes=4096,
             ops=CHURN_MALLOC_OPS, allocator=name)
      for name in ("jemalloc", "tcmalloc", "mimalloc")),
    # Two threads' pairs at once (workload churn, threads 2): the probe's crew released at one
    # barrier against baseline.c's workers released by one flag, will-it-scale's way. The
    # window covers both threads' pairs; the time per pair divides by both.
    Family("malloc-4k-threads", {"workload": "churn", "backing": "malloc",
                                 "access": "write-page", "threads": 2},
           "allocate", "ns/op", ("malloc-free-threads", "4096", str(CHURN_MALLOC_OPS), "2"),
           "two threads, each malloc(4 KiB), a store, free, back to back", size_bytes=4096,
           ops=CHURN_MALLOC_OPS),
    Family("mmap-4k", {"workload": "churn", "backing": "mmap-anon", "access": "write-page"},
           "allocate", "ns/op", ("mmap-munmap", "4096", str(CHURN_MMAP_OPS)),
           "mmap of 4 KiB, a store (one page fault), munmap, back to back", size_bytes=4096,
           ops=CHURN_MMAP_OPS),
    Family("mmap-4k-untouched", {"workload": "churn", "backing": "mmap-anon", "access": "none"},
           "allocate", "ns/op", ("mmap-munmap-untouched", "4096", str(CHURN_MMAP_OPS)),
           "mmap of 4 KiB and munmap, back to back, the page never touched (no fault), "
           "each mapping one of its own", size_bytes=4096, ops=CHURN_MMAP_OPS),
    # The baselines of the families below are bench/baseline.c's own loops in the idioms its
    # header names: MAP_POPULATE in the mmap call, posix_memalign + madvise for THP (the probe
    # maps 2 MiB more and trims), a file dropped by posix_fadvise as fio's invalidate does, a
    # malloc'd buffer touched as will-it-scale touches one, mremap/realloc doubling chains.
    Family("map-populate", {"backing": "mmap-anon", "populate": "map-populate",
                            "access": "none"}, "allocate",
           "ns/page", ("populate", str(SIZE_BYTES)),
           "mmap of a private anonymous mapping with MAP_POPULATE: every page faulted in "
           "inside the call (the probe's allocate phase; access none leaves first touch "
           "empty, so the fault_in window is the same call)", warm_bytes=SIZE_BYTES),
    Family("malloc-64m", {"backing": "malloc"}, "first_touch", "ns/page",
           ("malloc-touch", str(MALLOC_LARGE_BYTES)),
           "one store per page of a fresh malloc(64 MiB), which glibc maps",
           size_bytes=MALLOC_LARGE_BYTES, warm_bytes=MALLOC_LARGE_BYTES),
    Family("thp", {"backing": "mmap-anon", "thp": "huge"}, "first_touch", "ns/page",
           ("thp-touch", str(SIZE_BYTES)),
           "one store per 4 KiB page of a 2 MiB-aligned anonymous region advised "
           "MADV_HUGEPAGE: one fault and one zeroed huge page per 2 MiB",
           warm_bytes=SIZE_BYTES),
    Family("map-file-cold", {"backing": "mmap-file", "protection": "read",
                             "access": "read-page", "cache": "cold", "file_dir": FILE_DIR},
           "first_touch", "ns/page", ("map-file-cold", DATA_FILE, str(SIZE_BYTES)),
           "one load per page through a read-only private mapping of a file dropped from the "
           "page cache (posix_fadvise DONTNEED) right before: reads from the disk"),
    Family("malloc-1m-reuse", {"workload": "churn", "backing": "malloc",
                               "access": "write-page"}, "allocate", "ns/page",
           ("malloc-touch-free", str(REUSE_BYTES), str(REUSE_OPS)),
           "malloc(1 MiB), one store per page, free, back to back: the same heap chunk "
           "reused (per page)", size_bytes=REUSE_BYTES, ops=REUSE_OPS),
    Family("grow-mremap", {**GROW_PARAMS, "backing": "mmap-anon", "grow_method": "mremap"},
           "second_pass", "ns/page", ("grow-mremap", str(GROW_START_BYTES), str(GROW_STEPS)),
           "a 1 MiB mapping doubled to 1 GiB by mremap, one store per page of each step's new "
           "part right after it (per page added)", size_bytes=GROW_START_BYTES,
           pages=GROW_ADDED_PAGES, warm_bytes=GROW_START_BYTES << GROW_STEPS),
    Family("grow-realloc", {**GROW_PARAMS, "backing": "malloc", "grow_method": "realloc"},
           "second_pass", "ns/page", ("grow-realloc", str(GROW_START_BYTES), str(GROW_STEPS)),
           "a 1 MiB malloc'd block doubled to 1 GiB by realloc, one store per page of each "
           "step's new part right after it (per page added)", size_bytes=GROW_START_BYTES,
           pages=GROW_ADDED_PAGES, warm_bytes=GROW_START_BYTES << GROW_STEPS),
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
    seconds: float = 0.0  # wall time of all its rounds, warm-up included (both sides, warming)


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

    def __init__(self, probe: ProbeBinary, baseline: Path, work_dir: Path,
                 data_files: Mapping[str, Path]) -> None:
        self.probe = probe
        self.baseline = baseline
        self.work_dir = work_dir
        self.data_files = data_files  # family name -> its data file (file families)
        self.facts = preconditions.read_facts()
        self.libraries = dict(self.facts.allocator_libraries or {})
        self.env = system.allocator_env(os.environ)
        self.count = 0

    def run(self, side: str, family: Family, scenario: Scenario) -> Sample:
        self.count += 1
        if family.warm_bytes and WARM_HOST:
            self._warm_host(family.warm_bytes, family.params.get("thp") == "huge")
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
                          extra_env=self.env, run_process=self._start(family))
        record = records[0]
        if record.status != "ok" or record.probe is None:
            raise SystemExit(f"bench/fidelity.py: {family.name}: alloclab probe "
                             f"{record.status}: {record.stderr_tail.strip()}")
        iteration = record.probe["iterations"][0]
        phase = iteration["phases"][family.phase]
        return Sample(int(phase["ns"]), int(phase["minor_faults"]),
                      {"rss_bytes": int(phase["rss_bytes"]),
                       "observations": iteration["observations"]})

    def _start(self, family: Family) -> schedule.RunProcess | None:
        """How run_jobs starts the probe: as it always does (None), or for a file family with
        the family's data file in the probe's environment, as run_jobs names a scenario's
        shared file. (run_jobs would make and remove a file per call, i.e. per sample; its
        hook for starting processes elsewhere lets the file last all rounds.)"""
        data_file = self.data_files.get(family.name)
        if data_file is None:
            return None

        def start(argv: Sequence[str], **options: Any) -> ProcessRecord:
            env = {**options.pop("extra_env"), datafiles.VARIABLE: str(data_file)}
            return run_process(argv, extra_env=env, **options)
        return start

    def _warm_host(self, size_bytes: int, huge: bool) -> None:
        """Write and free `size_bytes` of anonymous memory in a process of its own (in huge
        pages for a THP family: freed whole, they are what its huge page faults get next)."""
        subprocess.run([str(self.baseline), "warm-huge" if huge else "warm", str(size_bytes)],
                       env=PROBE_ENV,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_S,
                       check=True)

    def _plain(self, family: Family) -> Sample:
        data_file = str(self.data_files.get(family.name, ""))
        argv = [str(self.baseline),
                *(data_file if arg == DATA_FILE else arg for arg in family.plain)]
        preload = ({native.PRELOAD_VARIABLE: self.libraries[family.allocator]}
                   if family.allocator else {})
        result = subprocess.run(argv, env={**PROBE_ENV, **self.env, **preload},
                                stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise SystemExit(f"bench/fidelity.py: {family.name}: baseline exited "
                             f"{result.returncode}: {result.stderr.strip()}")
        data = json.loads(result.stdout)
        return Sample(int(data["ns"]), int(data["minor_faults"]),
                      {"buffer_page_offset": int(data["buffer_page_offset"]),
                       "resident_ppm_before": int(data["resident_ppm_before"]),
                       "joined_neighbour": int(data["joined_neighbour"])})


def round_cpu(index: int, cpus: Sequence[int]) -> int:
    """The CPU of round `index` (PIN_ROUNDS): each of `cpus` in turn for two rounds, the
    rounds of one order and of the other (the order alternates by round)."""
    return cpus[(index // 2) % len(cpus)]


def measure(series: list[Series], runner: Runner, rounds: int, warmup_rounds: int) -> None:
    """All rounds, interleaved: every family's pair in each round, the order alternating,
    every process of a round on the round's CPU (PIN_ROUNDS; the processes inherit this
    process's CPU affinity, which is given back at the end)."""
    cpus = sorted(os.sched_getaffinity(0))
    try:
        for index in range(warmup_rounds + rounds):
            counted = index >= warmup_rounds
            order = SIDES if index % 2 == 0 else SIDES[::-1]
            cpu = round_cpu(index, cpus) if PIN_ROUNDS else None
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            for entry in series:
                if entry.scenario is None:
                    continue
                started = time.perf_counter()
                pair = {side: runner.run(side, entry.family, entry.scenario) for side in order}
                entry.seconds += time.perf_counter() - started
                if counted:
                    entry.rounds.append({"round": index - warmup_rounds, "first": order[0],
                                         "cpu": cpu,
                                         **{side: asdict(pair[side]) for side in SIDES}})
            label = ("warm-up round" if not counted
                     else f"round {index - warmup_rounds + 1}/{rounds}")
            print(f"  {label} done", file=sys.stderr, flush=True)
    finally:
        os.sched_setaffinity(0, cpus)


def order_balanced_ratio(ratios: Sequence[float], first: Sequence[str]
                         ) -> tuple[float, tuple[float, float], float]:
    """The paired ratio alloclab/plain with the order of the pair cancelled, its bootstrap
    95% interval, and the order effect.

    A pair's second process often runs faster or slower than its first (memory just freed,
    caches, the neighbours' rhythm), by as much as 10-20% on a busy machine. Rounds alternate
    the order, so among rounds with alloclab first the ratios are r·e, among the others r/e:
    the median of them all falls anywhere between, as the two groups' spread allows. The
    geometric mean of the two groups' medians is r (as a crossover design estimates a
    treatment effect apart from the period effect), and e is the square root of their
    quotient. A real difference between the sides shows in both groups alike, so this hides
    none. With only one order measured (one round) it is the plain median of the ratios and
    the effect 1. The effect e > 1: the first process of a pair ran e times slower.
    """
    values = np.array(ratios, dtype=np.float64)
    groups = [values[[who == side for who in first]] for side in SIDES]
    if min(len(group) for group in groups) == 0:
        low, high = bootstrap_median_ci(values)
        return float(np.median(values)), (low, high), 1.0
    medians = [float(np.median(group)) for group in groups]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = [np.median(group[rng.integers(0, len(group), (BOOTSTRAP_RESAMPLES, len(group)))],
                           axis=1) for group in groups]
    low, high = np.percentile(np.sqrt(resampled[0] * resampled[1]), [2.5, 97.5])
    return (float(np.sqrt(medians[0] * medians[1])), (float(low), float(high)),
            float(np.sqrt(medians[0] / medians[1])))


def summarize(entry: Series) -> dict[str, Any]:
    """Median and minimum per side, the paired ratios, the fault check and the verdict."""
    if entry.scenario is None:
        return {"verdict": "FAIL", "reason": entry.problem}
    ns = {side: [r[side]["ns"] for r in entry.rounds] for side in SIDES}
    faults = {side: statistics.median(r[side]["minor_faults"] for r in entry.rounds)
              for side in SIDES}
    ratios = [a / p for a, p in zip(ns["alloclab"], ns["plain"], strict=True)]
    paired, (low, high), order_effect = order_balanced_ratio(
        ratios, [r["first"] for r in entry.rounds])
    summary: dict[str, Any] = {
        **{f"{side}_median_ns": statistics.median(ns[side]) for side in SIDES},
        **{f"{side}_min_ns": min(ns[side]) for side in SIDES},
        **{f"{side}_median_minor_faults": faults[side] for side in SIDES},
        "paired_ratio": paired,  # order-balanced: the verdict's
        "paired_ratio_ci95": [low, high],
        # how much slower the first process of a pair ran than the second (both sides alike)
        "order_effect": order_effect,
        "median_paired_ratio": statistics.median(ratios),  # of all rounds, order mixed
        "min_ratio": min(ns["alloclab"]) / min(ns["plain"]),
        # The interval lies wholly inside the bound or wholly outside it: the verdict stands.
        "resolved": (low >= 1 - BOUND and high <= 1 + BOUND) or high < 1 - BOUND
        or low > 1 + BOUND,
        "paired_ratios": ratios,
        # per CPU the rounds ran on (PIN_ROUNDS): the sides of a pair drew from one CPU's pages
        "median_paired_ratio_by_cpu": _ratios_by_cpu(entry.rounds, ratios),
        "bound": BOUND,
    }
    slack = max(FAULT_SLACK_MIN, FAULT_SLACK_FRACTION * entry.family.work_pages)
    cached = _cached_before(entry)
    joined = _joined_rounds(entry)
    if abs(faults["alloclab"] - faults["plain"]) > slack:
        summary |= {"verdict": "FAIL", "reason": (
            f"the sides took different page faults in the timed window (median "
            f"{faults['alloclab']:g} vs {faults['plain']:g}): they do different work")}
    elif joined and joined["alloclab"] != joined["plain"]:
        summary |= {"verdict": "FAIL", "reason": (
            "the sides' mappings joined a neighbouring mapping in different numbers of "
            f"rounds (alloclab {joined['alloclab']}, plain {joined['plain']} of "
            f"{len(entry.rounds)}): mmap extending a mapping and munmap splitting it is "
            "other kernel work than making and removing one")}
    elif cached and max(cached.values()) > COLD_MAX_CACHED:
        summary |= {"verdict": "FAIL", "reason": (
            "the file was not cold before the timed pass (largest share cached: "
            + ", ".join(f"{side} {share:.1%}" for side, share in cached.items())
            + "): posix_fadvise did not drop it")}
    elif abs(paired - 1) > BOUND and entry.family.known_difference:
        summary |= {"verdict": "KNOWN", "reason": (
            f"paired ratio {paired:.3f} is outside 1 ± {BOUND:.0%}, as documented: "
            f"{entry.family.known_difference}")}
    elif abs(paired - 1) > BOUND:
        summary |= {"verdict": "FAIL", "reason": (
            f"paired ratio {paired:.3f} is outside 1 ± {BOUND:.0%}")}
    else:
        summary |= {"verdict": "PASS", "reason": ""}
    if cached:
        summary["cached_before_max"] = cached
    if joined:
        summary["joined_neighbour_rounds"] = joined
    return summary


def _ratios_by_cpu(rounds: Sequence[Mapping[str, Any]], ratios: Sequence[float]
                   ) -> dict[str, float]:
    """The median paired ratio of the rounds run on each CPU; empty when rounds were not
    pinned to one."""
    by_cpu: dict[str, list[float]] = {}
    for entry, ratio in zip(rounds, ratios, strict=True):
        if entry.get("cpu") is not None:
            by_cpu.setdefault(str(entry["cpu"]), []).append(ratio)
    return {cpu: statistics.median(values) for cpu, values in sorted(by_cpu.items())}


def _joined_rounds(entry: Series) -> dict[str, int]:
    """mmap families: on each side, the rounds whose mapping joined a neighbouring mapping
    (the probe's joined_neighbour, the baseline's check before its loop); empty for the
    families that report none."""
    probe = [r["alloclab"]["extra"]["observations"].get("joined_neighbour") for r in entry.rounds]
    plain = [r["plain"]["extra"].get("joined_neighbour", -1) for r in entry.rounds]
    if not entry.rounds or None in probe or min(plain) < 0:
        return {}
    return {"alloclab": sum(probe), "plain": sum(plain)}


def _cached_before(entry: Series) -> dict[str, float]:
    """Cold-file families: each side's largest share of the file cached before the timed
    pass (the probe's resident_ppm_before, the baseline's mincore); empty for the others."""
    if entry.family.params.get("cache") != "cold" or not entry.rounds:
        return {}
    probe = [r["alloclab"]["extra"]["observations"]["resident_ppm_before"] for r in entry.rounds]
    plain = [r["plain"]["extra"]["resident_ppm_before"] for r in entry.rounds]
    return {"alloclab": max(probe) / 1e6, "plain": max(plain) / 1e6}


def format_table(series: Sequence[Series], summaries: Sequence[dict[str, Any]],
                 rounds: int, warmup_rounds: int) -> list[str]:
    """The summary as the lines the bench prints (and writes beside the JSON)."""
    w = max([12, *(len(entry.family.name) for entry in series)])
    lines = [f"alloclab fidelity: {rounds} counted rounds after {warmup_rounds} warm-up, "
             "a fresh process per sample, order alternating by round, "
             + ("each round's processes on one CPU, the CPUs in turn every two rounds; "
                if PIN_ROUNDS else "CPUs left to the scheduler; ") +
             f"{SIZE_BYTES >> 20} MiB blocks unless the family says otherwise, latency "
             "families (ns/op) in back-to-back pairs",
             f"{'family':<{w}} {'side':<9} {'median':>10} {'min':>10}  {'median':>15}  "
             f"{'min':>15}  {'faults':>7}"]
    for entry, summary in zip(series, summaries, strict=True):
        name = entry.family.name
        if entry.scenario is None:
            lines.append(f"{name:<{w}} FAIL: not measured: {summary['reason']}")
            continue
        for side in SIDES:
            median, low = summary[f"{side}_median_ns"], summary[f"{side}_min_ns"]
            lines.append(f"{name:<{w}} {side:<9} {median / 1e6:7.2f} ms {low / 1e6:7.2f} ms  "
                         f"{entry.family.per_unit(median):>15}  "
                         f"{entry.family.per_unit(low):>15}  "
                         f"{summary[f'{side}_median_minor_faults']:>7g}")
        verdict: Verdict = summary["verdict"]
        detail = f": {summary['reason']}" if verdict != "PASS" else ""
        low, high = summary["paired_ratio_ci95"]
        lines.append(f"{name:<{w}} {'ratio':<9} paired alloclab/plain "
                     f"{summary['paired_ratio']:.3f} [95% CI {low:.3f}-{high:.3f}] "
                     f"(all pairs' median {summary['median_paired_ratio']:.3f}, first of a pair "
                     f"x{summary['order_effect']:.3f}, of minima {summary['min_ratio']:.3f}) "
                     f"-> {verdict} (bound ±{BOUND:.0%}){detail}")
        if not summary["resolved"]:
            lines.append(f"{'':<{w}} {'':<9} noisy: the interval straddles the bound, so this "
                         "verdict could flip on a rerun (a quieter machine or more --rounds "
                         "would settle it)")
        offsets = _buffer_page_offsets(entry)
        if offsets:
            lines.append(f"{'':<{w}} {'':<9} read buffer offset into its page: {offsets}")
        if "joined_neighbour_rounds" in summary:
            joined = summary["joined_neighbour_rounds"]
            lines.append(f"{'':<{w}} {'':<9} rounds whose mapping joined a neighbouring mapping: "
                         f"alloclab {joined['alloclab']}, plain {joined['plain']} of "
                         f"{len(entry.rounds)}")
        if "cached_before_max" in summary:
            shares = ", ".join(f"{side} {share:.2%}"
                               for side, share in summary["cached_before_max"].items())
            lines.append(f"{'':<{w}} {'':<9} largest share of the file cached before the "
                         f"timed pass: {shares}")
    measured = [entry for entry in series if entry.scenario is not None]
    total = sum(entry.seconds for entry in measured)
    per_round = max(rounds + warmup_rounds, 1)
    lines.append(f"measuring took {total / 60:.1f} min; seconds per round (both sides, warming "
                 "included): " + ", ".join(f"{entry.family.name} {entry.seconds / per_round:.1f}"
                                          for entry in measured))
    return lines


def _buffer_page_offsets(entry: Series) -> str:
    """The read destination's offset into its page on each side (read-file), as reported."""
    probe = {r["alloclab"]["extra"]["observations"].get("read_buffer_page_offset_bytes")
             for r in entry.rounds}
    plain = {r["plain"]["extra"].get("buffer_page_offset") for r in entry.rounds}
    if probe == {None} or not entry.rounds or entry.family.params.get("backing") != "read-file":
        return ""
    return (f"alloclab {', '.join(map(str, sorted(probe, key=str)))} bytes, "
            f"plain {', '.join(map(str, sorted(plain, key=str)))} bytes")


def write_data_files(series: Sequence[Series], directory: Path, files: dict[str, Path]) -> None:
    """Each measured file family's data file, into `files` as soon as it exists: written,
    flushed to disk (so its pages are clean, which eviction needs, and no writeback runs in a
    timed pass) and closed."""
    chunk = bytes(range(1, 252)) * ((1 << 20) // 251 + 1)  # never zero, period 251
    for entry in series:
        if entry.scenario is None or DATA_FILE not in entry.family.plain:
            continue
        path = directory / f"alloclab-bench-{os.getpid()}-{entry.family.name}.data"
        files[entry.family.name] = path
        with path.open("wb") as out:
            for done in range(0, entry.family.size_bytes, 1 << 20):
                out.write(chunk[:min(1 << 20, entry.family.size_bytes - done)])
            out.flush()
            os.fsync(out.fileno())


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
        "pinned_rounds": PIN_ROUNDS,
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
                "work_pages": entry.family.work_pages, "unit": entry.family.unit,
                "warm_bytes": entry.family.warm_bytes if WARM_HOST else 0,
                "known_difference": entry.family.known_difference,
                "seconds": entry.seconds, "summary": summary, "samples": entry.rounds,
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


def _family_list(text: str) -> list[str]:
    """--families: comma-separated names, each a family's."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in {f.name for f in FAMILIES}]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
            f"(families: {', '.join(f.name for f in FAMILIES)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    names = [f.name for f in FAMILIES]
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                        help=f"counted rounds: samples per side and family "
                             f"(default {DEFAULT_ROUNDS})")
    parser.add_argument("--warmup-rounds", type=int, default=1, help="rounds run, not counted")
    parser.add_argument("--family", action="append", choices=names, metavar="NAME",
                        help="measure only this family (repeatable; default all): "
                             + ", ".join(names))
    parser.add_argument("--families", type=_family_list, default=[], metavar="A,B,...",
                        help="measure only these families (comma-separated)")
    parser.add_argument("--out", type=Path, default=OUT,
                        help=f"the JSON file; the printed table goes beside it as .txt "
                             f"(default {OUT})")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.warmup_rounds < 0:
        parser.error("--rounds must be at least 1 and --warmup-rounds at least 0")

    chosen = set(args.family or []) | set(args.families)
    families = [f for f in FAMILIES if not chosen or f.name in chosen]
    installed = allocators.find_libraries()
    for family in [f for f in families if f.allocator and f.allocator not in installed]:
        print(f"{family.name}: left out: {allocators.install_hint(family.allocator)}")
        families.remove(family)
    series = prepare(families)
    probe = build_probe()
    data_files: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="alloclab-bench-") as tmp:
        try:
            baseline = build_baseline(probe, Path(tmp))
            write_data_files(series, Path(FILE_DIR), data_files)
            measure(series, Runner(probe, baseline, Path(tmp), data_files), args.rounds,
                    args.warmup_rounds)
        finally:
            for path in data_files.values():
                path.unlink(missing_ok=True)
    summaries = [summarize(entry) for entry in series]
    failed = [entry.family.name for entry, s in zip(series, summaries, strict=True)
              if s["verdict"] == "FAIL"]
    known = [entry.family.name for entry, s in zip(series, summaries, strict=True)
             if s["verdict"] == "KNOWN"]
    lines = [f"# {_cpu_model() or 'unknown CPU'}, {os.cpu_count()} CPUs, Linux "
             f"{platform.release()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             *format_table(series, summaries, args.rounds, args.warmup_rounds)]
    if known:
        lines.append(f"KNOWN (off the bound for the documented reason, not failed): "
                     f"{', '.join(known)}")
    lines.append(f"FAIL: {', '.join(failed)}" if failed
                 else "PASS: every family within its bound or off it as documented")
    print("\n".join(lines))
    write_json(args.out, probe, args, series, summaries)
    text_path = args.out.with_suffix(".txt")
    text_path.write_text("\n".join(lines) + "\n")
    print(f"raw samples and summary: {args.out}; this table: {text_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
