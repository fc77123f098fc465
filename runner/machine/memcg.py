"""Memory cgroups for scenarios with a memory_limit: where alloclab may make them, making one,
reading its OOM kills, removing it, and sweeping those a killed runner left.

A limited scenario's probe runs in a cgroup of its own, made below the runner's own memory
cgroup (so whatever limits the runner lives under still hold the probe), named
alloclab-<runner pid>-<number>. The probe joins it itself, first thing (runner/probe/cgroup.c,
told the folder by JOIN_VARIABLE), before it maps or touches anything measured: no code runs
between fork and exec in the runner (runner.probe.execute says why). The cgroup gets no swap
(memory.memsw.limit_in_bytes on v1, memory.swap.max on v2), so "anonymous memory past the
limit is OOM-killed" holds whatever swap the machine has. The runner removes the folder when
the process has ended, however it ended; a folder whose runner is gone (killed by SIGKILL) is
swept at the start of the next run.

cgroup v2 (one unified hierarchy with the memory controller) is used where the machine has it,
else v1's `memory` hierarchy. Making one needs write access to the parent folder (root, or a
delegated subtree on v2), else every limited scenario is a recorded skip saying so.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runner.core.units import format_size
from runner.machine import processes
from runner.machine.kernel_files import read_text

PREFIX = "alloclab-"
# The folder of its cgroup, for the probe to join (runner/probe/cgroup.c).
JOIN_VARIABLE = "ALLOCLAB_MEMORY_CGROUP"
_NAME = re.compile(rf"{PREFIX}(\d+)-\d+")
# rmdir may find the cgroup busy for a moment after its last process was reaped (a peer the
# probe started dies with it, by PR_SET_PDEATHSIG): tries, a few milliseconds apart.
_REMOVE_TRIES = 200
_REMOVE_PAUSE_S = 0.005
_numbers = itertools.count()

Version = Literal[1, 2]


@dataclass(frozen=True)
class Hierarchy:
    """Where this runner makes memory cgroups: the runner's own cgroup's folder, and which
    cgroup version it belongs to."""

    version: Version
    parent: Path


@dataclass(frozen=True)
class MemoryCgroup:
    """One scenario process's cgroup: its folder and limit."""

    path: Path
    version: Version
    limit_bytes: int

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer ended in this cgroup (the oom_kill line of
        memory.oom_control on v1, memory.events on v2)."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        for line in (read_text(self.path / name) or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0


def find_hierarchy(self_cgroup: str, mounts: str) -> Hierarchy | None:
    """The hierarchy with the memory controller and this process's place in it, from the text
    of /proc/self/cgroup and /proc/self/mounts; None where the kernel has no memory cgroups."""
    places = {}
    for line in self_cgroup.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        places["" if number == "0" else controllers] = path
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mount_point, kind, options = fields[1], fields[2], fields[3].split(",")
        if kind == "cgroup2" and "" in places:
            if "memory" in (read_text(Path(mount_point) / "cgroup.controllers") or "").split():
                return Hierarchy(2, Path(mount_point) / places[""].lstrip("/"))
        elif kind == "cgroup" and "memory" in options:
            own = next((path for names, path in places.items()
                        if "memory" in names.split(",")), "/")
            return Hierarchy(1, Path(mount_point) / own.lstrip("/"))
    return None


def read_hierarchy() -> Hierarchy | None:
    """This machine's memory hierarchy and the runner's place in it (find_hierarchy)."""
    return find_hierarchy(read_text("/proc/self/cgroup") or "", read_text("/proc/self/mounts")
                          or "")


def find_problem(hierarchy: Hierarchy | None) -> str | None:
    """Why memory cgroups cannot be made here (a limited scenario's skip reason), or None."""
    if hierarchy is None:
        return "this kernel has no memory cgroup controller (neither cgroup v2 nor v1 memory)"
    where = hierarchy.parent
    if not os.access(where, os.W_OK):
        return (f"making a memory cgroup needs write access to {where} (run as root, or in a "
                "cgroup v2 subtree delegated to you)")
    if hierarchy.version == 2 and "memory" not in (
            read_text(where / "cgroup.subtree_control") or "").split():
        return (f"the cgroup {where} does not give its children the memory controller (add "
                f"+memory to its cgroup.subtree_control, as root or in a delegated subtree)")
    return None


def create(hierarchy: Hierarchy, limit_bytes: int) -> MemoryCgroup:
    """A new cgroup below the runner's with `limit_bytes` of memory and no swap; OSError where
    the kernel refuses (it is then removed again)."""
    path = hierarchy.parent / f"{PREFIX}{os.getpid()}-{next(_numbers)}"
    path.mkdir()
    group = MemoryCgroup(path, hierarchy.version, limit_bytes)
    try:
        if hierarchy.version == 2:
            _write(path / "memory.max", limit_bytes)
            _write(path / "memory.swap.max", 0, optional=True)
        else:
            _write(path / "memory.limit_in_bytes", limit_bytes)
            # memory + swap no larger than memory: no swap (absent without swap accounting).
            _write(path / "memory.memsw.limit_in_bytes", limit_bytes, optional=True)
    except OSError:
        remove(group)
        raise
    return group


def remove(group: MemoryCgroup) -> None:
    """Remove the cgroup once its processes are gone; a folder left busy is swept later."""
    for _ in range(_REMOVE_TRIES):
        try:
            group.path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY:
                return
        time.sleep(_REMOVE_PAUSE_S)


def sweep(hierarchy: Hierarchy) -> list[Path]:
    """Remove the cgroups of alloclab runners that are gone (a runner killed by SIGKILL cannot
    remove its own); return those removed. Another live runner's are left alone."""
    removed = []
    with contextlib.suppress(OSError):
        for path in sorted(hierarchy.parent.iterdir()):
            match = _NAME.fullmatch(path.name)
            if match is None or not path.is_dir() or processes.alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                path.rmdir()
                removed.append(path)
    return removed


def oom_note(group: MemoryCgroup, kills: int) -> str:
    """What a record of a process the OOM killer ended says, in alloclab's words."""
    return (f"alloclab: OOM-killed in its memory cgroup (limit {format_size(group.limit_bytes)}, "
            f"no swap; the cgroup counted {kills} OOM kill{'s' if kills != 1 else ''})")


def _write(path: Path, value: int, optional: bool = False) -> None:
    try:
        path.write_text(f"{value}\n")
    except FileNotFoundError:
        if not optional:
            raise
