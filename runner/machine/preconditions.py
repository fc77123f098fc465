"""What a scenario needs from this machine, checked before its probe starts.

`find_conflict` (runner.core.combinations) refuses combinations that make no physical sense
anywhere; this module skips scenarios that make sense but cannot run *here*: hugetlb blocks without
enough free huge pages, mlock past RLIMIT_MEMLOCK, THP asked for where the kernel has it off, glibc
tunables this machine's glibc does not have (it would ignore them without a word), a memory_limit
where no memory cgroup can be made (runner.machine.memcg), a hugetlb_pool where alloclab may not
set the pool (runner.machine.hugetlb_pool), an allocator that is not installed.
`read_facts()`
reads the machine once; `check_preconditions(scenario, facts)` is pure, so `plan`, `run` and the
tests agree on every reason. The probe checks again when it runs (the machine may change in between)
and exits with EXIT_SKIPPED and the reason on stderr.
"""

from __future__ import annotations

import glob
import os
import platform
import re
import resource
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.core.choices import HUGE_PAGE_BYTES
from runner.core.model import Scenario
from runner.core.sizing import block_bytes
from runner.core.units import format_size
from runner.machine import allocators, hugetlb_pool, memcg

HUGEPAGES_DIR = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")
MAX_MAP_COUNT = Path("/proc/sys/vm/max_map_count")
# Mappings the probe and its libraries hold besides the measured blocks.
OWN_MAPPINGS = 64
POPULATE_WRITE_KERNEL = (5, 14)
# glibc's dynamic loader lists its tunables (glibc 2.33 and later): where to look for it.
LOADER_PATTERNS = ("/lib64/ld-linux*.so*", "/lib/ld-linux*.so*", "/lib/*-linux-gnu*/ld-linux*.so*",
                   "/usr/lib/*-linux-gnu*/ld-linux*.so*")
_LOADER_TIMEOUT_S = 10.0
REMOTE_MEMORY_CGROUP = ("memory_limit runs on this machine only (alloclab makes memory cgroups "
                        "here, not over ssh)")
REMOTE_HUGETLB_POOL = ("hugetlb_pool runs on this machine only (alloclab sets vm.nr_hugepages "
                       "here, not over ssh)")


@dataclass(frozen=True)
class MachineFacts:
    """What the preconditions look at, read once per run."""

    free_huge_pages: int | None  # 2 MiB hugetlb pages a new mapping can get; None: no such size
    memlock_limit_bytes: int | None  # soft RLIMIT_MEMLOCK; None: unlimited
    euid: int
    thp_enabled: str | None  # always / madvise / never; None: the kernel has no THP
    max_map_count: int | None
    kernel: tuple[int, int]  # (major, minor) of the running kernel
    # The tunables this machine's glibc knows (`ld.so --list-tunables`); None: unknown (not
    # glibc, or a glibc before 2.33), and then tunables are not checked.
    glibc_tunables: frozenset[str] | None = None
    # Why no memory cgroup can be made for memory_limit (runner.machine.memcg); None: it can.
    # Another machine's facts keep the default: cgroups are made on this machine only.
    memory_cgroup_problem: str | None = REMOTE_MEMORY_CGROUP
    # Allocator name -> its library here (runner.machine.allocators); None: not looked up (a
    # remote host), and then a named allocator is skipped as not found there.
    allocator_libraries: Mapping[str, str] | None = None
    # Whether alloclab may set vm.nr_hugepages here (hugetlb_pool): root on this machine only.
    may_set_hugetlb_pool: bool = False


def read_facts() -> MachineFacts:
    """This machine's facts, from /sys, /proc and getrlimit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return MachineFacts(
        free_huge_pages=_available_huge_pages(),
        memlock_limit_bytes=None if soft == resource.RLIM_INFINITY else soft,
        euid=os.geteuid(),
        thp_enabled=_selected(_read(THP_ENABLED)),
        max_map_count=_int(_read(MAX_MAP_COUNT)),
        kernel=_kernel_version(platform.release()),
        glibc_tunables=_list_tunables(),
        memory_cgroup_problem=memcg.find_problem(memcg.read_hierarchy()),
        allocator_libraries=allocators.find_libraries(),
        may_set_hugetlb_pool=True,
    )


def check_preconditions(scenario: Scenario, facts: MachineFacts) -> str | None:
    """Why this machine cannot measure the scenario (the skip reason), or None when it can."""
    for check in (_huge_pages, _hugetlb_pool, _thp, _populate, _map_count, _tunables,
                  _memory_limit, _allocator):
        reason = check(scenario, facts)
        if reason is not None:
            return reason
    return None


def find_unmet(scenarios: Iterable[Scenario], facts: MachineFacts) -> dict[str, str]:
    """Scenario id -> skip reason, for the scenarios this machine cannot measure."""
    unmet: dict[str, str] = {}
    for scenario in scenarios:
        reason = check_preconditions(scenario, facts)
        if reason is not None:
            unmet[scenario.id] = reason
    return unmet


def _blocks_at_once(scenario: Scenario) -> int:
    """The most blocks a scenario holds at once: its ops (churn holds one per thread, at most
    ops unless it has more threads than ops)."""
    return max(scenario.ops, scenario.threads)


def _huge_pages(scenario: Scenario, facts: MachineFacts) -> str | None:
    if scenario.backing != "mmap-hugetlb":
        return None
    if facts.free_huge_pages is None:
        return "this kernel offers no 2 MiB hugetlb pages"
    needed = _huge_pages_needed(scenario)
    if scenario.hugetlb_pool:
        return None  # its own pool: _hugetlb_pool's to judge
    if needed <= facts.free_huge_pages:
        return None
    return (f"needs {needed} free 2 MiB huge pages, the machine has {facts.free_huge_pages} "
            f"(reserve them as root: echo {needed} > /proc/sys/vm/nr_hugepages)")


def _huge_pages_needed(scenario: Scenario) -> int:
    """The 2 MiB pages a hugetlb scenario's blocks take at once."""
    return (_blocks_at_once(scenario) * block_bytes(scenario.backing, scenario.size_bytes)
            // HUGE_PAGE_BYTES)


def _hugetlb_pool(scenario: Scenario, facts: MachineFacts) -> str | None:
    pool = scenario.hugetlb_pool
    if not pool:
        return None
    needed = _huge_pages_needed(scenario)
    if needed > pool:
        return (f"its blocks take {needed} huge pages at once, more than its hugetlb_pool of "
                f"{pool} (a larger pool, or fewer ops)")
    if not facts.may_set_hugetlb_pool:
        return REMOTE_HUGETLB_POOL
    if facts.euid != 0:
        return (f"hugetlb_pool {pool} sets /proc/sys/vm/nr_hugepages, which needs root: run "
                f"alloclab as root (it restores the value after), or measure the machine's own "
                f"pool without hugetlb_pool after reserving it yourself, as root: "
                f"{hugetlb_pool.command(pool)}")
    return None


def _thp(scenario: Scenario, facts: MachineFacts) -> str | None:
    if scenario.thp == "default":
        return None
    if facts.thp_enabled is None:
        return "this kernel has no transparent huge pages, so madvise cannot ask for them"
    if scenario.thp == "huge" and facts.thp_enabled == "never":
        return ("transparent huge pages are disabled (enabled = never), so MADV_HUGEPAGE has no "
                "effect (as root: echo madvise > /sys/kernel/mm/transparent_hugepage/enabled)")
    return None


def _populate(scenario: Scenario, facts: MachineFacts) -> str | None:
    if scenario.populate == "madv-populate-write" and facts.kernel < POPULATE_WRITE_KERNEL:
        major, minor = facts.kernel
        return f"MADV_POPULATE_WRITE needs Linux 5.14 or later, this is {major}.{minor}"
    if (scenario.populate != "mlock" or scenario.memlock_limit_bytes or facts.euid == 0
            or facts.memlock_limit_bytes is None):
        return None  # memlock_limit: refusals past the scenario's own limit are recorded
    needed = _blocks_at_once(scenario) * _page_rounded(block_bytes(scenario.backing,
                                                                   scenario.size_bytes))
    if scenario.workload == "resize" and scenario.grow_method == "mremap":
        needed *= scenario.grow_factor  # a locked mapping stays locked as it grows
    if needed <= facts.memlock_limit_bytes:
        return None
    return (f"mlock of {format_size(needed)} is past RLIMIT_MEMLOCK "
            f"({format_size(facts.memlock_limit_bytes)}; raise `ulimit -l` or run as root)")


def _map_count(scenario: Scenario, facts: MachineFacts) -> str | None:
    # Blocks of one file each never merge into one mapping as anonymous blocks do; nor do
    # mappings of /dev/zero, private ones included (they keep the device as their file);
    # workload ipc maps one channel, whatever its ops (messages).
    if (scenario.backing not in ("memfd", "shm", "dev-zero") or scenario.workload == "ipc"
            or facts.max_map_count is None):
        return None
    if scenario.ops + OWN_MAPPINGS <= facts.max_map_count:
        return None
    return (f"{scenario.ops} blocks need a mapping each, more than vm.max_map_count "
            f"({facts.max_map_count}) allows (use fewer ops)")


def _tunables(scenario: Scenario, facts: MachineFacts) -> str | None:
    if not scenario.tunables or facts.glibc_tunables is None:
        return None
    names = [pair.split("=", 1)[0] for pair in scenario.tunables.split(":")]
    unknown = [name for name in names if name not in facts.glibc_tunables]
    if not unknown:
        return None
    return (f"this machine's glibc has no tunable {', '.join(unknown)} and would ignore it "
            "(`ld.so --list-tunables` lists those it has)")


def _memory_limit(scenario: Scenario, facts: MachineFacts) -> str | None:
    return facts.memory_cgroup_problem if scenario.memory_limit_bytes else None


def allocator_library(scenario: Scenario, facts: MachineFacts) -> str | None:
    """The library the scenario's probe preloads: its allocator's here, or the path it names;
    None for glibc and for an allocator this machine lacks."""
    if scenario.allocator == allocators.GLIBC:
        return None
    if scenario.allocator.startswith("/"):
        return scenario.allocator
    return (facts.allocator_libraries or {}).get(scenario.allocator)


def _allocator(scenario: Scenario, facts: MachineFacts) -> str | None:
    if scenario.allocator == allocators.GLIBC:
        return None
    if scenario.allocator.startswith("/"):
        # Looked at here only: on a remote host (no libraries looked up) the probe's
        # malloc_from_allocator tells whether the dynamic loader preloaded it.
        if facts.allocator_libraries is None or os.path.isfile(scenario.allocator):
            return None
        return f"no file {scenario.allocator} on this machine (allocator: a shared library's path)"
    if allocator_library(scenario, facts) is not None:
        return None
    if facts.allocator_libraries is None:
        return (f"allocator {scenario.allocator}: its library is looked up on this machine "
                "only; on another machine name its library by its absolute path")
    return allocators.install_hint(scenario.allocator)


def _list_tunables() -> frozenset[str] | None:
    """The tunable names the dynamic loader lists, or None where none can be asked."""
    for pattern in LOADER_PATTERNS:
        for loader in sorted(glob.glob(pattern)):
            try:
                done = subprocess.run([loader, "--list-tunables"], capture_output=True, text=True,
                                      timeout=_LOADER_TIMEOUT_S, check=False)
            except (OSError, subprocess.TimeoutExpired):
                continue
            names = frozenset(line.split(":", 1)[0].strip() for line in done.stdout.splitlines()
                              if line.startswith("glibc."))
            if done.returncode == 0 and names:
                return names
    return None


def _page_rounded(size_bytes: int) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    return -(-size_bytes // page) * page


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _selected(text: str | None) -> str | None:
    """The bracketed choice of a sysfs mode file: 'always [madvise] never' -> 'madvise'."""
    match = re.search(r"\[(\w+)\]", text or "")
    return match.group(1) if match else None


def _available_huge_pages() -> int | None:
    """Free pages not promised to existing mappings, plus what overcommit may still add."""
    free = _int(_read(HUGEPAGES_DIR / "free_hugepages"))
    if free is None:
        return None
    reserved = _int(_read(HUGEPAGES_DIR / "resv_hugepages")) or 0
    overcommit = _int(_read(HUGEPAGES_DIR / "nr_overcommit_hugepages")) or 0
    surplus = _int(_read(HUGEPAGES_DIR / "surplus_hugepages")) or 0
    return max(0, free - reserved) + max(0, overcommit - surplus)


def _kernel_version(release: str) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
