"""The data files a run shares between the processes of one scenario.

A file-backed scenario's probe used to write, sync and read back its own data file in every
process (a third of `--quick`: 1 GiB files in address-space). Now the runner names one file per
scenario, the probe of the scenario's first process creates it (whole and synced before it
gets the name: runner/probe/datafile.c), later processes open it, and each process still sets
the file's cache state itself (read in; evicted before each iteration for cache cold). The
runner removes the file after the scenario's last process, and any left at the end of the run
(a failure, an interruption).

Not shared, so each process makes its own file as before: scenarios that write into the file
(the next process would find it changed, and the previous one's dirty pages written back under
its phases; workload ipc writes its control page), workload limits (it maps a file of its
own), file_origin new (its file is made inside allocate), file layouts other than whole (short,
with holes, or truncated under the mappings), and scenarios whose files would not
fit in their folder's free space all at once (files of all shared scenarios live side by side,
as processes run round by round).

Names say whose a file is: alloclab-<experiment>-<run id>-<runner pid>-<scenario id>.data, so
concurrent runs and leftovers are never taken for each other. A file a killed runner left is
removed when the same run is resumed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from runner.core.choices import FILE_BACKINGS, WRITING_ACCESSES
from runner.core.model import Scenario
from runner.machine.guard import MARGIN, file_bytes

VARIABLE = "ALLOCLAB_DATA_FILE"  # read by the probe: runner/probe/datafile.c
SUFFIX = ".data"


def can_share(scenario: Scenario) -> bool:
    """Whether the scenario's processes can use one data file (see the module docstring);
    workload ipc writes its file's control page, whatever the sharing."""
    if scenario.backing not in FILE_BACKINGS or scenario.workload in ("limits", "ipc"):
        return False
    if scenario.file_origin == "new" or scenario.file_layout != "whole":
        return False  # no file before timing; a file laid out (and truncated) its own way
    writes = scenario.backing == "write-file" or (
        scenario.backing == "mmap-file" and scenario.sharing == "shared"
        and scenario.access in WRITING_ACCESSES)
    return not writes


def _prefix(run_dir: Path) -> str:
    """alloclab-<experiment>-<run id>-: the start of every data file name of one run."""
    return f"alloclab-{run_dir.parent.name}-{run_dir.name}-"


def name_files(scenarios: Iterable[Scenario], run_dir: Path,
               free_bytes: Mapping[str, int] | None = None) -> dict[str, Path]:
    """The shared data file of each scenario that gets one, by scenario id.

    Within each file_dir, the files of all sharing scenarios must fit at once in MARGIN of the
    free space, beside one private file as large as the largest: the largest files share
    first (they save the most), the rest make their own files per process.
    `free_bytes` (file_dir -> bytes) is read with statvfs when not given.
    """
    candidates = sorted({s for s in scenarios if can_share(s)},
                        key=lambda s: (-file_bytes(s), s.id))
    folders = {s.file_dir for s in candidates}
    if free_bytes is None:
        free_bytes = _free_bytes(folders)
    budget = {folder: MARGIN * free_bytes.get(folder, 0)
              - max(file_bytes(s) for s in candidates if s.file_dir == folder)
              for folder in folders}
    names: dict[str, Path] = {}
    for scenario in candidates:
        size = file_bytes(scenario)
        if size <= budget[scenario.file_dir]:
            budget[scenario.file_dir] -= size
            names[scenario.id] = (Path(scenario.file_dir)
                                  / f"{_prefix(run_dir)}{os.getpid()}-{scenario.id}{SUFFIX}")
    return names


def _free_bytes(folders: Iterable[str]) -> dict[str, int]:
    free = {}
    for folder in folders:
        try:
            stat = os.statvfs(folder)
        except OSError:
            continue  # no room known: nothing shared there, each process fails as before
        free[folder] = stat.f_bavail * stat.f_frsize
    return free


def remove_leftovers(run_dir: Path, file_dirs: Iterable[str]) -> None:
    """Remove the data files an earlier invocation of this run left (a killed runner).

    Only files of this experiment's run id: the run lock says no other runner is at it.
    """
    prefix = _prefix(run_dir)
    for folder in set(file_dirs):
        entries: list[os.DirEntry[str]] = []
        with contextlib.suppress(OSError):  # a folder that cannot be listed holds none of ours
            entries = list(os.scandir(folder))
        for entry in entries:
            if entry.name.startswith(prefix) and entry.name.endswith(SUFFIX):
                remove(Path(entry.path))


def remove(path: Path) -> None:
    """Remove one data file (never created, as when its scenario was skipped: nothing to do)."""
    path.unlink(missing_ok=True)
