"""Whether each scenario fits this machine: its peak memory and data file against what is free.

A scenario that writes more memory than the machine has wakes the OOM killer, which takes
other work with it; a data file larger than its folder's free space fills the disk. `plan`
and `run` refuse such scenarios before any probe starts (GuardError: one line naming the
scenario, the estimate and what is available), unless `--force`. The estimates are
runner.core.model.Scenario.memory_bytes (every block of a process at once, a fork's second copy, a
resize's old and grown blocks) and, for the file backings, the data file the probe creates.
Only MARGIN of what is free counts as usable: the rest is for everything else running.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.core.choices import FILE_BACKINGS, IPC_CONTROL_BYTES
from runner.core.errors import GuardError
from runner.core.model import Plan, Scenario
from runner.core.sizing import block_bytes
from runner.core.units import format_bytes

MARGIN = 0.8  # the share of available memory or free space a scenario may use
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class Room:
    """What is free: MemAvailable, and the free space of each folder a file goes to."""

    memory_available_bytes: int | None  # None: unknown (no /proc/meminfo)
    free_bytes: Mapping[str, int]  # file_dir -> bytes free to an unprivileged user


def file_bytes(scenario: Scenario) -> int:
    """The data file a scenario's probe creates in file_dir: one block per op, or one block
    for workload limits (mapped again and again) and for ipc (its one message, after a
    control page); 0 without a file backing."""
    if scenario.backing not in FILE_BACKINGS:
        return 0
    block = block_bytes(scenario.backing, scenario.size_bytes)
    if scenario.workload == "ipc":
        return IPC_CONTROL_BYTES + block
    return block if scenario.workload == "limits" else block * scenario.ops


def read_room(file_dirs: Iterable[str]) -> Room:
    """MemAvailable from /proc/meminfo and statvfs of each existing file_dir."""
    free = {}
    for folder in sorted(set(file_dirs)):
        try:
            stat = os.statvfs(folder)
        except OSError:
            continue  # a missing folder is the spec check's to report, not this one's
        free[folder] = stat.f_bavail * stat.f_frsize
    return Room(_mem_available(), free)


def _mem_available() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def find_unfit(plan: Plan, room: Room) -> list[str]:
    """One line per scenario of the plan that does not fit in `room`, the largest first."""
    problems: list[tuple[int, str]] = []
    for scenario in plan.scenarios:
        where = f"{plan.spec.name}: {scenario.label(plan.label_keys)}"
        memory = scenario.memory_bytes
        available = room.memory_available_bytes
        if available is not None and memory > MARGIN * available:
            problems.append((memory, f"{where}: needs about {format_bytes(memory)} of memory, "
                                     f"{format_bytes(available)} available"))
        data = file_bytes(scenario)
        free = room.free_bytes.get(scenario.file_dir)
        if data and free is not None and data > MARGIN * free:
            problems.append((data, f"{where}: needs a {format_bytes(data)} file in "
                                   f"{scenario.file_dir}, {format_bytes(free)} free there"))
    return [line for _, line in sorted(problems, key=lambda p: -p[0])]


def check_fit(plans: Iterable[Plan], room: Room | None = None) -> None:
    """Raise GuardError naming the largest scenario that does not fit, and how many more."""
    plans = list(plans)
    if room is None:
        room = read_room(s.file_dir for plan in plans for s in plan.scenarios
                         if s.backing in FILE_BACKINGS)
    unfit = [line for plan in plans for line in find_unfit(plan, room)]
    if not unfit:
        return
    more = f" (and {len(unfit) - 1} more)" if len(unfit) > 1 else ""
    raise GuardError(f"{unfit[0]}{more}: refused before any probe started, as more than "
                     f"{MARGIN:.0%} of what is free would be needed (--force runs it anyway)")
