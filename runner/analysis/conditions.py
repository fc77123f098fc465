"""The machine conditions that decide a check's verdict, and one sentence that says them.

A verdict holds on a machine set up a certain way: "mmap reads a cold file faster" on a disk
that reads 8 MiB ahead of every fault, "THP cuts first-touch faults" where THP is on for the
memory at hand. `decisive_conditions` picks, from a run's recorded facts (runner.machine.system),
those that decide a verdict about the given scenarios (their parameters: backing, file_dir, cache,
sync, workload, populate): for files the filesystem and, where the data goes to or comes from the
disk, the disk; for mappings of files the page-cache pages one fault maps; THP for anonymous and
shared memory; the C library and the allocator variables for heap memory; the limits a workload runs
into. `describe_conditions` says them in one sentence.

The allocator variables are the conditions a user varies on purpose (GLIBC_TUNABLES=...
alloclab run --machine vm-hugetlb): such a label is a *configuration* of a machine, not
another machine. `machine_configurations` tells, from one fingerprint per label, which labels
are one machine in other configurations, and names each configuration by its variables.
Pure: facts and parameters in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.core.choices import FILE_BACKINGS, HEAP_BACKINGS
from runner.machine.file_dirs import NO_BLOCK_DEVICE
from runner.machine.system import format_fact
from runner.store.identity import identity_differences

ConditionValue = str | int | bool | None

FILESYSTEM = "filesystem"
BLOCK_DEVICE = "block device"
DISK = "disk"
VIRTUAL_DISK = "virtual disk"
ROTATIONAL = "rotational"
READ_AHEAD = "read_ahead_kb"
PAGES_PER_FAULT = "page-cache pages per mapping fault"
THP_ENABLED = "THP enabled"
THP_DEFRAG = "THP defrag"
THP_SHMEM = "THP shmem_enabled"
C_LIBRARY = "C library"
ALLOCATOR_VARIABLES = "allocator variables"
OVERCOMMIT = "overcommit_memory"
MAX_MAP_COUNT = "max_map_count"
MEMLOCK = "RLIMIT_MEMLOCK"

# Why each condition decides verdicts: said with it wherever it is shown.
WHY: Mapping[str, str] = {
    FILESYSTEM: "how file pages are cached and evicted: tmpfs keeps them in memory only, so a "
                "cold read there is a warm one",
    BLOCK_DEVICE: "the device cold reads and synced writes wait for; 'none': the files live "
                  "in memory",
    DISK: "which disk that is (driver and model)",
    VIRTUAL_DISK: "a virtual disk's reads and writes are served by the host, often from its "
                  "own cache: its latency is not a physical disk's",
    ROTATIONAL: "the kernel treats a disk that says it spins differently (read-ahead, "
                "scheduling)",
    READ_AHEAD: "one cold read or file-mapping fault reads up to this many KiB around it: large "
                "values make access advice and access order matter less",
    PAGES_PER_FAULT: "pages one fault of a cached file mapping maps: 16 is fault-around alone, "
                     "more is large page-cache folios, which cut mapping faults by that factor",
    THP_ENABLED: "whether anonymous memory gets 2 MiB pages (one fault per 2 MiB instead of per "
                 "page): always, only where madvised, or never",
    THP_DEFRAG: "whether a fault waits for memory to be compacted into a huge page",
    THP_SHMEM: "whether shared memory (memfd, System V) gets huge pages",
    C_LIBRARY: "the allocator: its mmap threshold, arenas and trimming decide what malloc costs",
    ALLOCATOR_VARIABLES: "GLIBC_TUNABLES and MALLOC_* tune the allocator, LD_PRELOAD replaces "
                         "it",
    OVERCOMMIT: "how much address space the kernel promises before it refuses a mapping",
    MAX_MAP_COUNT: "how many mappings one process may hold",
    MEMLOCK: "how much memory a process may lock",
}

# The limits' facts (runner.machine.system.FACTS), by condition.
LIMIT_FACTS: Mapping[str, str] = {OVERCOMMIT: "overcommit_memory",
                                  MAX_MAP_COUNT: "max_map_count",
                                  MEMLOCK: "memlock_limit_bytes"}
# Drivers of paravirtual disks, and words of the models hypervisors and clouds give theirs.
VIRTUAL_DRIVERS = ("virtio_blk", "xen_blkfront", "vbd")
VIRTUAL_MODEL_WORDS = ("qemu", "vmware", "vbox", "virtual", "elastic block store",
                       "persistentdisk")
# Backings whose memory is anonymous (heap blocks, and the heap buffers of read-file and
# write-file), and those whose memory is shared memory.
ANONYMOUS_BACKINGS = (*HEAP_BACKINGS, "mmap-anon")
SHMEM_BACKINGS = ("memfd", "shm")
READ_BACKINGS = ("mmap-file", "read-file")


@dataclass(frozen=True)
class MachineCondition:
    """One recorded fact of the machine that decides a verdict."""

    name: str  # FILESYSTEM, READ_AHEAD...
    value: ConditionValue  # as recorded; None: the run did not record it
    why: str
    file_dir: str = ""  # the file directory it is a fact of; "" for the whole machine


def is_virtual_disk(disk: str | None) -> bool | None:
    """Whether a disk (machine.BlockDevice.disk: "virtio_blk", "sd QEMU HARDDISK") is a
    virtual machine's or a cloud's; None when nothing is known of it."""
    if not disk:
        return None
    text = disk.lower()
    return text.split()[0] in VIRTUAL_DRIVERS or any(word in text for word in
                                                     VIRTUAL_MODEL_WORDS)


def _condition(name: str, value: ConditionValue, file_dir: str = "") -> MachineCondition:
    return MachineCondition(name, value, WHY[name], file_dir)


def _per_dir(facts: Mapping[str, Any], key: str, file_dir: str) -> Any:
    values = facts.get(key)
    return values.get(file_dir) if isinstance(values, Mapping) else None


def _file_conditions(facts: Mapping[str, Any], file_dir: str,
                     scenarios: Sequence[Mapping[str, Any]]) -> list[MachineCondition]:
    """The conditions of one file directory that decide verdicts about these scenarios."""
    reads_disk = any(s.get("cache") == "cold" and s["backing"] in READ_BACKINGS
                     for s in scenarios)
    writes_disk = any(s.get("sync", "none") != "none" for s in scenarios)
    device = _per_dir(facts, "file_device", file_dir)
    found = [_condition(FILESYSTEM, _per_dir(facts, "file_fs", file_dir), file_dir)]
    if reads_disk or writes_disk:
        found.append(_condition(BLOCK_DEVICE, device, file_dir))
        if device != NO_BLOCK_DEVICE:
            disk = _per_dir(facts, "file_disk", file_dir)
            found += [_condition(DISK, disk, file_dir),
                      _condition(VIRTUAL_DISK, is_virtual_disk(disk), file_dir),
                      _condition(ROTATIONAL, _per_dir(facts, "file_rotational", file_dir),
                                 file_dir)]
            if reads_disk:
                found.append(_condition(
                    READ_AHEAD, _per_dir(facts, "file_read_ahead_kb", file_dir), file_dir))
    if any(s["backing"] == "mmap-file" for s in scenarios):
        found.append(_condition(
            PAGES_PER_FAULT, _per_dir(facts, "file_pages_per_fault", file_dir), file_dir))
    return found


def _allocator_variables(facts: Mapping[str, Any]) -> str | None:
    variables = facts.get("allocator_env")
    if not isinstance(variables, Mapping):
        return None
    return " ".join(f"{name}={value}" for name, value in variables.items()) or "none"


def _machine_conditions(facts: Mapping[str, Any],
                        scenarios: Sequence[Mapping[str, Any]]) -> list[MachineCondition]:
    """The conditions of the whole machine that decide verdicts about these scenarios."""
    backings = {s["backing"] for s in scenarios}
    found = []
    if backings & set(ANONYMOUS_BACKINGS):
        found += [_condition(THP_ENABLED, facts.get("thp_enabled")),
                  _condition(THP_DEFRAG, facts.get("thp_defrag"))]
    if backings & set(SHMEM_BACKINGS):
        found.append(_condition(THP_SHMEM, facts.get("thp_shmem_enabled")))
    if backings & set(HEAP_BACKINGS):
        found += [_condition(C_LIBRARY, facts.get("probe_libc") or facts.get("libc")),
                  _condition(ALLOCATOR_VARIABLES, _allocator_variables(facts))]
    if any(s.get("workload") == "limits" for s in scenarios):
        found += [_condition(name, facts.get(LIMIT_FACTS[name]))
                  for name in (OVERCOMMIT, MAX_MAP_COUNT)]
    if any(s.get("populate") == "mlock" for s in scenarios):
        found.append(_condition(MEMLOCK, facts.get(LIMIT_FACTS[MEMLOCK])))
    return found


def decisive_conditions(facts: Mapping[str, Any],
                        scenarios: Iterable[Mapping[str, Any]]) -> tuple[MachineCondition, ...]:
    """The machine conditions that decide a verdict about `scenarios`, file directories first
    (in name order), then the whole machine's.

    `facts` is a run's fingerprint, or its facts (machine.run_facts: then the C library is
    the one the probe ran with); `scenarios` are the compared scenarios' parameters by
    Scenario field (a manifest's "params"). A condition the run did not record has the
    value None: it still decides the verdict, and the sentence says it is unknown.
    """
    scenarios = list(scenarios)
    by_dir: dict[str, list[Mapping[str, Any]]] = {}
    for scenario in scenarios:
        if scenario["backing"] in FILE_BACKINGS:
            by_dir.setdefault(scenario["file_dir"], []).append(scenario)
    found = [condition for file_dir in sorted(by_dir)
             for condition in _file_conditions(facts, file_dir, by_dir[file_dir])]
    return tuple(found + _machine_conditions(facts, scenarios))


def _disk_phrase(values: Mapping[str, ConditionValue]) -> str | None:
    """"on a rotational virtual disk (virtio_blk, vda)", "(in memory, on no block device)"."""
    device = values.get(BLOCK_DEVICE)
    if device == NO_BLOCK_DEVICE:
        return "(in memory, on no block device)"
    if device is None:
        return None
    rotational = values.get(ROTATIONAL)
    kind = " ".join(word for word in (
        None if rotational is None else ("rotational" if rotational else "non-rotational"),
        "virtual" if values.get(VIRTUAL_DISK) else None, "disk") if word)
    named = ", ".join(str(v) for v in (values.get(DISK), device) if v is not None)
    return f"on a {kind} ({named})"


def _file_dir_phrase(values: Mapping[str, ConditionValue]) -> str:
    """"on ext4 on a rotational virtual disk (virtio_blk, vda), read_ahead_kb 8192, page cache
    mapped 30 pages per fault": what is recorded of one file directory."""
    filesystem = values.get(FILESYSTEM)
    parts = [" ".join(part for part in (f"on {filesystem}" if filesystem else None,
                                        _disk_phrase(values)) if part)]
    if values.get(READ_AHEAD) is not None:
        parts.append(f"read_ahead_kb {values[READ_AHEAD]}")
    if values.get(PAGES_PER_FAULT) is not None:
        parts.append(f"page cache mapped {values[PAGES_PER_FAULT]} pages per fault")
    return ", ".join(part for part in parts if part)


def _machine_phrases(values: Mapping[str, ConditionValue]) -> list[str]:
    """"THP enabled madvise, defrag madvise", "glibc 2.36 with GLIBC_TUNABLES=...", ..."""
    thp = ", ".join(f"{label} {values[name]}" for name, label in (
        (THP_ENABLED, "enabled"), (THP_DEFRAG, "defrag"), (THP_SHMEM, "shmem_enabled"))
        if values.get(name) is not None)
    variables = values.get(ALLOCATOR_VARIABLES)
    allocator = " ".join(str(part) for part in (
        values.get(C_LIBRARY),
        None if variables is None else
        "with no allocator variables" if variables == "none" else f"with {variables}")
        if part is not None)
    limits = ", ".join(f"{name} {format_fact(key, values[name])}"
                       for name, key in LIMIT_FACTS.items() if values.get(name) is not None)
    return [phrase for phrase in (f"THP {thp}" if thp else "", allocator, limits) if phrase]


def describe_conditions(conditions: Sequence[MachineCondition]) -> str:
    """The conditions as one sentence, e.g. "on ext4 on a rotational virtual disk (virtio_blk,
    vda), read_ahead_kb 8192, page cache mapped 30 pages per fault; THP enabled madvise,
    defrag madvise"; each file directory is named when there are several. Conditions the
    run did not record are listed at the end, in order; "" when there are no conditions."""
    dirs: dict[str, dict[str, ConditionValue]] = {}
    machine_wide: dict[str, ConditionValue] = {}
    for condition in conditions:
        target = dirs.setdefault(condition.file_dir, {}) if condition.file_dir else machine_wide
        target[condition.name] = condition.value
    phrases = [f"{file_dir} {phrase}" if len(dirs) > 1 else phrase
               for file_dir, values in dirs.items() if (phrase := _file_dir_phrase(values))]
    phrases += _machine_phrases(machine_wide)
    unknown = [f"{c.name} of {c.file_dir}" if c.file_dir and len(dirs) > 1 else c.name
               for c in conditions if c.value is None]
    if unknown:
        phrases.append(f"not recorded: {', '.join(unknown)}")
    return "; ".join(phrases)


# What two fingerprints must both record for "no identity fact tells them apart" to mean one
# machine rather than two that recorded too little to tell.
_IDENTIFYING = ("cpu_model", "kernel")


@dataclass(frozen=True)
class Configuration:
    """What a machine label names: a machine (by the label of its runs without allocator
    variables) in a configuration ("" for the machine as it is)."""

    machine: str
    name: str

    def describe(self) -> str:
        """"vm", "vm, configuration GLIBC_TUNABLES=glibc.malloc.hugetlb=1"."""
        return f"{self.machine}, configuration {self.name}" if self.name else self.machine


def configuration_name(fingerprint: Mapping[str, Any]) -> str:
    """The allocator variables a run recorded, as its configuration's name
    ("GLIBC_TUNABLES=glibc.malloc.hugetlb=1", several joined by spaces); "" for none."""
    variables = fingerprint.get("allocator_env")
    if not isinstance(variables, Mapping):
        return ""
    return " ".join(f"{name}={value}" for name, value in sorted(variables.items()))


def same_machine(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    """Whether two fingerprints are of one machine: the same boot, or the same hardware and
    system (no fact of runner.store.identity.IDENTITY_FACTS tells them apart, and both record the
    CPU and the kernel)."""
    boot = first.get("boot_id")
    if boot is not None and boot == second.get("boot_id"):
        return True
    recorded = all(first.get(key) is not None and second.get(key) is not None
                   for key in _IDENTIFYING)
    return recorded and not identity_differences(first, second)


def is_configuration_of(candidate: Mapping[str, Any], machine: Mapping[str, Any]) -> bool:
    """Whether `candidate` is `machine`'s machine set up with other allocator variables."""
    return (same_machine(candidate, machine)
            and configuration_name(candidate) != configuration_name(machine))


def machine_configurations(
        fingerprints: Mapping[str, Mapping[str, Any]]) -> dict[str, Configuration]:
    """Each machine label (with the fingerprint of a run under it) as a configuration.

    A label whose run set allocator variables is a configuration of the first label (in name
    order) of the same machine whose run set none; every other label names a machine of its
    own, in the configuration its variables make ("" for none).
    """
    plain = [label for label in sorted(fingerprints)
             if not configuration_name(fingerprints[label])]
    found = {}
    for label in sorted(fingerprints):
        name = configuration_name(fingerprints[label])
        machine = next((other for other in plain if is_configuration_of(
            fingerprints[label], fingerprints[other])), label)
        found[label] = Configuration(machine, name)
    return found
