"""Bystander threads (parameter bystanders): a thread that spins beside the measuring one makes
every munmap flush its CPU's TLB too, counted by the kernel as TLB shootdown interrupts."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from runner.probe.native import ProbeBinary
from tests.probe.running import measured, scenario

INTERRUPTS = Path("/proc/interrupts")
BLOCKS = 1024  # some 60 ms of munmaps: long enough for /proc/stat's 10 ms ticks
ATTEMPTS = 5
MAX_OTHERS_CPUS = 0.2


def tlb_shootdowns() -> int | None:
    """TLB shootdown interrupts so far, over every CPU (x86's TLB line); None where there is
    no such line."""
    for line in INTERRUPTS.read_text().splitlines():
        words = line.split()
        if words and words[0] == "TLB:":
            return sum(int(word) for word in words[1:] if word.isdigit())
    return None


def busy_cpu_s() -> float:
    """CPU time the whole machine has spent busy so far (/proc/stat: all but idle and iowait),
    in seconds (USER_HZ ticks: a 10 ms resolution)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Attempt:
    shootdowns: int
    others_cpus: float  # CPUs other processes kept busy during the run, on average


def shootdowns_while_freeing(probe: ProbeBinary, bystanders: int) -> Attempt:
    s = scenario(backing="mmap-anon", size_bytes=64 << 10, ops=BLOCKS, release="munmap",
                 bystanders=bystanders)
    before, busy, own, start = tlb_shootdowns(), busy_cpu_s(), children_cpu_s(), time.monotonic()
    measured(probe, s)
    wall_s = time.monotonic() - start
    others_s = (busy_cpu_s() - busy) - (children_cpu_s() - own)
    after = tlb_shootdowns()
    assert before is not None and after is not None
    return Attempt(after - before, others_s / wall_s)


@pytest.mark.probe
def test_a_bystander_makes_every_munmap_a_tlb_shootdown(probe: ProbeBinary) -> None:
    """Alone, a process's munmap flushes only its own CPU: no interrupt (a few may come from
    other processes on a shared machine). With a bystander on the other CPU, each of the
    1,024 munmaps of written blocks interrupts it, but for those made while the bystander
    was off its CPU for other work (then its CPU holds nothing to flush)."""
    if tlb_shootdowns() is None or (os.cpu_count() or 1) < 2:
        pytest.skip("needs two CPUs and a TLB line in /proc/interrupts (x86)")
    # The count is the machine's: other processes' munmaps add to it, never take from it, so
    # the fewest of a few runs alone is judged.
    alone = [shootdowns_while_freeing(probe, 0).shootdowns for _ in range(ATTEMPTS)]
    assert min(alone) <= BLOCKS // 16, alone
    # Where other processes keep a CPU busy, the scheduler runs the bystander on the
    # measuring thread's CPU, or not while the munmaps run, and none needs a flush (0 of 256
    # seen with the tests run beside another test run). So only runs during which the other
    # processes took little CPU are judged; the probe's own CPU time (the bystander spins
    # through the run) is told apart from theirs by its rusage.
    quiet = []
    for _ in range(ATTEMPTS * 4):
        attempt = shootdowns_while_freeing(probe, 1)
        if attempt.others_cpus < MAX_OTHERS_CPUS:
            quiet.append(attempt.shootdowns)
            if len(quiet) == ATTEMPTS:
                break
    if not quiet:
        pytest.skip(f"other processes kept over {MAX_OTHERS_CPUS} CPUs busy during each of "
                    f"{ATTEMPTS * 4} runs: the bystander needs a CPU of its own")
    # Another process may still take the CPU for a moment: the best of the quiet runs.
    assert max(quiet) >= BLOCKS * 3 // 4, quiet
