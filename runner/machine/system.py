"""The machine's fingerprint: what besides the code shapes the numbers, recorded with every run.

FACTS is the one registry (pyperf style): each key is declared once, with what it means, where
it comes from and whether a difference in it *confounds* a comparison — changes allocation cost
by itself (kernel, libc, THP mode, CPU model, allocator tunables, page size, overcommit,
compiler, and for file backings the disk under each file directory and how many page-cache
pages one fault maps there, which runner.machine.file_dirs reads…). `read_fingerprint` reads
the machine's facts when a run starts (writing and mapping one small file in each file
directory: the page-cache fact is observed, not read); `run_facts` adds those a run records
elsewhere in its manifest (the probe's compiler and hash, alloclab's version) or learns from
the probe (the libc it ran with). `read_load` snapshots the load and steal time around a run,
for the noise checks. Reading (and that one removed file per directory) is the only side
effect here.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import resource
import socket
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.core import names
from runner.core.units import format_bytes
from runner.machine.allocators import describe_allocators
from runner.machine.file_dirs import (
    NO_BLOCK_DEVICE,
    find_mount,
    mapped_pages_per_fault,
    read_block_device,
)
from runner.machine.kernel_files import int_or_none, read_text, selected_choice

Source = Literal["machine", "run", "probe"]


@dataclass(frozen=True)
class Fact:
    """One fingerprint key: its meaning, where it is read, and whether it confounds."""

    key: str
    description: str
    confounds: bool  # a difference in it can change the numbers by itself
    source: Source = "machine"  # machine: read_fingerprint; run: the manifest; probe: a record
    per_file_dir: bool = False  # {file_dir: value}: two runs differ only in the dirs both used


FACTS: tuple[Fact, ...] = (
    Fact("cpu_model", "CPU model name (/proc/cpuinfo)", True),
    Fact("cpu_flags", "CPU feature flags (/proc/cpuinfo)", False),
    Fact("cpu_count", "logical CPUs", False),
    Fact("cpu_caches", "caches of CPU 0 by level and type (sysfs)", True),
    Fact("cpu_governor", "CPU frequency scaling governor(s); null when not readable", True),
    Fact("hypervisor", "hypervisor the machine runs under ('none': no hypervisor flag)", True),
    Fact("machine", "processor architecture", True),
    Fact("boot_id", "identity of this boot of this machine (a copy of the same image, or the "
         "same machine rebooted, has another): scenarios are reused only within one boot",
         False),
    Fact("kernel", "kernel release (uname -r)", True),
    Fact("kernel_version", "kernel build (uname -v)", False),
    Fact("libc", "C library as Python sees it", True),
    Fact("page_size_bytes", "base page size", True),
    Fact("thp_enabled", "transparent huge pages: enabled", True),
    Fact("thp_defrag", "transparent huge pages: defrag", True),
    Fact("thp_shmem_enabled", "transparent huge pages: shmem_enabled", True),
    Fact("overcommit_memory", "vm.overcommit_memory (0 heuristic, 1 always, 2 strict)", True),
    Fact("nr_hugepages", "huge pages reserved (vm.nr_hugepages)", False),
    Fact("max_map_count", "vm.max_map_count: most mappings one process may hold", False),
    Fact("memlock_limit_bytes", "RLIMIT_MEMLOCK soft limit", False),
    Fact("numa_nodes", "NUMA nodes online", True),
    Fact("memory_bytes", "physical memory (MemTotal)", False),
    Fact("swap_bytes", "swap space (SwapTotal)", False),
    Fact("file_fs", "filesystem type of each file directory the experiment uses", True,
         per_file_dir=True),
    Fact("file_device", "block device each file directory's filesystem is on ('none': on no "
         "block device, as tmpfs and overlay are)", False, per_file_dir=True),
    Fact("file_disk", "driver and model of the disk under each file directory (virtio_blk: a "
         "virtual machine's disk; null: no disk behind it)", True, per_file_dir=True),
    Fact("file_rotational", "whether that disk says it spins (queue/rotational; virtual disks "
         "often say yes)", True, per_file_dir=True),
    Fact("file_scheduler", "I/O scheduler of that device (queue/scheduler)", True,
         per_file_dir=True),
    Fact("file_read_ahead_kb", "read-ahead of that device in KiB (queue/read_ahead_kb): how "
         "much one cold read or file-mapping fault reads around it", True, per_file_dir=True),
    Fact("file_pages_per_fault", "page-cache pages one fault maps there: a 2 MiB file written "
         "in 1 MiB writes (as the probe writes its data files) and read through a private "
         "read-only mapping; 16 is fault-around alone, more means large folios", True,
         per_file_dir=True),
    Fact("allocator_env", "GLIBC_TUNABLES, MALLOC_* and LD_PRELOAD passed to the probe", True),
    Fact("allocators", "library of each allocator the experiment preloads (parameter "
         "allocator): its path, the file it resolves to and its version, from dpkg-query "
         "where the package manager knows the file, else from the file's name (null: not "
         "installed)", True),
    Fact("python", "Python running alloclab", False),
    Fact("libraries", "versions of the Python libraries alloclab uses", False),
    Fact("git_commit", "git commit of the spec file (null: not in a git checkout)", False),
    Fact("git_dirty", "the spec file differs from that commit", False),
    Fact("alloclab_version", "alloclab version", False, "run"),
    Fact("spec_hash", "hash of the spec's content", False, "run"),
    Fact("compiler", "C compiler that built the probe", True, "run"),
    Fact("compiler_flags", "flags the probe was compiled with", True, "run"),
    Fact("probe_hash", "hash of the probe's source, flags and compiler", True, "run"),
    Fact("probe_libc", "C library the probe reports it ran with", True, "probe"),
)
BY_KEY: Mapping[str, Fact] = {fact.key: fact for fact in FACTS}
LIBRARIES = ("numpy", "pandas", "matplotlib", "jinja2", "PyYAML", "scipy")
ALLOCATOR_ENV_NAMES = ("GLIBC_TUNABLES", "LD_PRELOAD")
ALLOCATOR_ENV_PREFIX = "MALLOC_"
_GIT_TIMEOUT_S = 10.0
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"  # the fact boot_id


def _cpuinfo_field(name: str) -> str | None:
    text = read_text("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _meminfo_bytes(name: str) -> int | None:
    text = read_text("/proc/meminfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0]) * 1024
    return None


def _cpu_caches() -> str | None:
    """'L1d 48K, L1i 32K, L2 2048K, L3 307200K' from /sys/devices/system/cpu/cpu0/cache."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    parts = []
    for index in sorted(base.glob("index*")):
        level, kind, size = (read_text(index / name) for name in ("level", "type", "size"))
        if level is None or size is None:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind or "", "")
        parts.append(f"L{level}{suffix} {size}")
    return ", ".join(parts) or None


def _cpu_governor() -> str | None:
    """The scaling governors in use ('performance'), or None where cpufreq is not exposed."""
    governors = {text for path in Path("/sys/devices/system/cpu").glob(
        "cpu[0-9]*/cpufreq/scaling_governor") if (text := read_text(path))}
    return ",".join(sorted(governors)) or None


def _hypervisor(cpu_flags: str | None) -> str:
    """Which hypervisor, from the places Linux exposes it without special privileges."""
    if cpu_flags is None or "hypervisor" not in cpu_flags.split():
        return "none"
    for text in (read_text("/sys/hypervisor/type"), read_text("/sys/class/dmi/id/sys_vendor")):
        if text:
            return text
    clocks = (read_text("/sys/devices/system/clocksource/clocksource0/available_clocksource")
              or "").split()
    if "kvm-clock" in clocks:
        return "kvm"
    if "hyperv_clocksource_tsc_page" in clocks:
        return "hyperv"
    return "unknown"


def _numa_nodes() -> int | None:
    nodes = list(Path("/sys/devices/system/node").glob("node[0-9]*"))
    return len(nodes) or None


def _memlock_limit() -> int | str:
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return "unlimited" if soft == resource.RLIM_INFINITY else soft


def allocator_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that change how the C allocator behaves: GLIBC_TUNABLES, MALLOC_*, LD_PRELOAD.

    alloclab passes exactly these from its own environment to every probe (which otherwise
    runs with a minimal environment) and records them, so they are never in effect unseen.
    """
    return {name: environ[name] for name in sorted(environ)
            if name in ALLOCATOR_ENV_NAMES or name.startswith(ALLOCATOR_ENV_PREFIX)}


def _library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True,
                              text=True, timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git on this machine
    return done.stdout.strip() if done.returncode == 0 else None


def _git_state(spec_path: Path | None) -> tuple[str | None, bool | None]:
    """The commit checked out where the spec lives, and whether the spec differs from it."""
    if spec_path is None:
        return None, None
    directory = spec_path.resolve().parent
    commit = _git(directory, "rev-parse", "HEAD")
    if commit is None:
        return None, None
    status = _git(directory, "status", "--porcelain", "--", spec_path.resolve().name)
    return commit, None if status is None else bool(status)


def read_fingerprint(*, spec_path: Path | None = None, file_dirs: Iterable[str] = (),
                     environ: Mapping[str, str] | None = None,
                     allocators: Iterable[str] = ()) -> dict[str, Any]:
    """Every `machine` fact of FACTS, read now (None where this machine does not expose it).

    `spec_path` locates the git checkout of the experiment; `file_dirs` are the directories the
    experiment's file backings use; `environ` is where the allocator variables come from;
    `allocators` are the values of the experiment's parameter allocator.
    """
    libc_name, libc_version = platform.libc_ver()
    thp = "/sys/kernel/mm/transparent_hugepage"
    cpu_flags = _cpuinfo_field("flags")
    mountinfo = read_text("/proc/self/mountinfo") or ""
    commit, dirty = _git_state(spec_path)
    return {
        "cpu_model": _cpuinfo_field("model name"),
        "cpu_flags": " ".join(sorted(cpu_flags.split())) if cpu_flags else None,
        "cpu_count": os.cpu_count(),
        "cpu_caches": _cpu_caches(),
        "cpu_governor": _cpu_governor(),
        "hypervisor": _hypervisor(cpu_flags),
        "machine": platform.machine(),
        "boot_id": read_text(BOOT_ID_PATH),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "libc": f"{libc_name} {libc_version}".strip() or None,
        "page_size_bytes": os.sysconf("SC_PAGE_SIZE"),
        "thp_enabled": selected_choice(read_text(f"{thp}/enabled")),
        "thp_defrag": selected_choice(read_text(f"{thp}/defrag")),
        "thp_shmem_enabled": selected_choice(read_text(f"{thp}/shmem_enabled")),
        "overcommit_memory": int_or_none(read_text("/proc/sys/vm/overcommit_memory")),
        "nr_hugepages": int_or_none(read_text("/proc/sys/vm/nr_hugepages")),
        "max_map_count": int_or_none(read_text("/proc/sys/vm/max_map_count")),
        "memlock_limit_bytes": _memlock_limit(),
        "numa_nodes": _numa_nodes(),
        "memory_bytes": _meminfo_bytes("MemTotal"),
        "swap_bytes": _meminfo_bytes("SwapTotal"),
        **_file_dir_facts(file_dirs, mountinfo),
        "allocator_env": allocator_env(os.environ if environ is None else environ),
        "allocators": describe_allocators(allocators),
        "python": platform.python_version(),
        "libraries": _library_versions(),
        "git_commit": commit,
        "git_dirty": dirty,
    }


def run_facts(manifest: Mapping[str, Any],
              probe_output: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's facts in FACTS order: its fingerprint plus what the manifest and probe recorded.

    Keys the run lacks (older runs) are left out; keys this version does not know (newer runs)
    follow in name order, so nothing recorded is hidden.
    """
    probe = manifest.get("probe", {})
    libc = (probe_output or {}).get("libc")
    recorded: dict[str, Any] = {
        **manifest.get("fingerprint", {}),
        "alloclab_version": manifest.get("alloclab_version"),
        "spec_hash": manifest.get("spec_hash"),
        "compiler": probe.get("compiler"),
        "compiler_flags": " ".join(probe["flags"]) if "flags" in probe else None,
        "probe_hash": probe.get("source_hash"),
        "probe_libc": f"{libc['name']} {libc.get('version') or ''}".strip()
                      if isinstance(libc, Mapping) else None,
    }
    known = {fact.key: recorded[fact.key] for fact in FACTS if fact.key in recorded
             and (fact.source == "machine" or recorded[fact.key] is not None)}
    return known | {key: recorded[key] for key in sorted(recorded) if key not in BY_KEY}


def format_fact(key: str, value: object) -> str:
    """A fact as one line of text for tables: sizes in binary units, mappings as k=v."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "allocators" and isinstance(value, Mapping):
        return "; ".join(_format_allocator(str(name), library)
                         for name, library in value.items()) or "none preloaded"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={format_fact(str(k), v)}" for k, v in value.items()) or "none"
    if key.endswith("_bytes") and isinstance(value, int) and value >= 1 << 20:
        return format_bytes(value)
    return str(value)


def _format_allocator(name: str, library: object) -> str:
    """'jemalloc 5.3.0-1: /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (version from dpkg-query:
    package libjemalloc2)'."""
    if not isinstance(library, Mapping):
        return f"{name}: not installed"
    version = library.get("version") or "version unknown"
    source = f" (version from {library['version_from']})" if library.get("version_from") else ""
    return f"{name} {version}: {library.get('file') or library.get('path')}{source}"


def fact_differs(key: str, first: object, second: object) -> bool:
    """Whether two runs' values of a fact differ in a way that matters.

    Facts per file directory (file_fs...) compare only the directories both runs used:
    another experiment's extra directory is not a change of filesystem.
    """
    fact = BY_KEY.get(key)
    if (fact is not None and fact.per_file_dir and isinstance(first, Mapping)
            and isinstance(second, Mapping)):
        return any(first[d] != second[d] for d in first.keys() & second.keys())
    return first != second


def confounding_differences(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """The confounding facts two fingerprints both record with different values.

    A key one of them lacks (recorded by an older alloclab) is unknown, not different.
    """
    return [fact.key for fact in FACTS if fact.confounds and fact.key in first
            and fact.key in second and fact_differs(fact.key, first[fact.key], second[fact.key])]


def read_load() -> dict[str, Any]:
    """Load average and CPU time so far (/proc/loadavg, /proc/stat), for the noise checks.

    Two snapshots around a run give how busy the CPUs were, how much of that was alloclab
    itself and the probes it waited for (`own_cpu_s`), and how much time the hypervisor stole;
    times are jiffies summed over all CPUs. Unreadable values are None.
    """
    own = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return parse_load(read_text("/proc/loadavg") or "", read_text("/proc/stat") or "",
                      sum(r.ru_utime + r.ru_stime for r in own))


def parse_load(loadavg_text: str, stat_text: str, own_cpu_s: float | None) -> dict[str, Any]:
    """read_load's snapshot from the texts of /proc/loadavg and /proc/stat (its `cpu` lines
    suffice) and the CPU seconds of the runner and its probes; a remote target's too."""
    loadavg = loadavg_text.split()
    stat = stat_text.splitlines()
    snapshot: dict[str, Any] = {
        "loadavg_1m": float(loadavg[0]) if loadavg else None,
        "own_cpu_s": None if own_cpu_s is None else round(own_cpu_s, 3),
        "cpus": sum(1 for line in stat if line.startswith("cpu") and line[3:4].isdigit()) or None,
        "busy_jiffies": None, "idle_jiffies": None, "steal_jiffies": None, "total_jiffies": None,
    }
    if stat and stat[0].startswith("cpu "):
        values = [int(v) for v in stat[0].split()[1:9]] + [0] * 8
        user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
        snapshot |= {"busy_jiffies": user + nice + system + irq + softirq,
                     "idle_jiffies": idle + iowait, "steal_jiffies": steal,
                     "total_jiffies": sum(values[:8])}
    return snapshot


_TIMES_WORD = re.compile(r"(\d+)m(\d+(?:\.\d*)?)s")


def parse_times_s(text: str) -> float:
    """The CPU seconds in the output of the POSIX shell's `times` ("0m0.01s 0m0.02s" for the
    shell, then the same for the children it waited for), all added up."""
    return sum(int(minutes) * 60 + float(seconds)
               for minutes, seconds in _TIMES_WORD.findall(text))


def default_machine_label() -> str:
    """A stable folder name for this machine: $ALLOCLAB_MACHINE, else the host name made a
    label (runner.core.names)."""
    # $ALLOCLAB_MACHINE is taken as written: a label alloclab does not accept is refused
    # (runner.measure.pipeline), not silently changed into another folder. A host name is adapted.
    chosen = os.environ.get("ALLOCLAB_MACHINE")
    if chosen is not None:
        return chosen
    return names.label_from_host(socket.gethostname())


def _file_dir_facts(file_dirs: Iterable[str], mountinfo: str) -> dict[str, dict[str, Any]]:
    """The per-file-directory facts of FACTS (file_fs, file_device...), each {dir: value}."""
    facts: dict[str, dict[str, Any]] = {fact.key: {} for fact in FACTS if fact.per_file_dir}
    for directory in sorted(set(file_dirs)):
        mount = find_mount(directory, mountinfo)
        device = read_block_device(mount) if mount else None
        facts["file_fs"][directory] = mount.fs_type if mount else None
        facts["file_device"][directory] = device.name if device else NO_BLOCK_DEVICE
        facts["file_disk"][directory] = device.disk if device else None
        facts["file_rotational"][directory] = device.rotational if device else None
        facts["file_scheduler"][directory] = device.scheduler if device else None
        facts["file_read_ahead_kb"][directory] = device.read_ahead_kb if device else None
        facts["file_pages_per_fault"][directory] = mapped_pages_per_fault(directory)
    return facts
