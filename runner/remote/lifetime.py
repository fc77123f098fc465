"""How long what a run over SSH starts may live, and how the next run sweeps what a killed one
left.

- The master connection ends CONTROL_PERSIST_S seconds after its last session ends; the run
  keeps a session (the remote shell) open while it measures.
- The remote shell and its probe end when the session's input closes (runner.remote.ssh):
  the runner died, or the link did.
- This machine: the control folder (sockets, ssh logs) holds a marker naming its runner by
  boot id, pid and start time; a run removes the folders of runners that are gone
  (`control_dir`).
- The target: each run folder holds a lease naming its runner, refreshed every
  LEASE_REFRESH_S while the run lasts. A run removes a folder whose lease is older than
  LEASE_STALE_S, or whose runner was on this machine and is gone (`stale_run_dirs`); a folder
  held by a live runner, here or on another machine sharing the target, is never removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

CONTROL_PERSIST_S = 5
LEASE_REFRESH_S = 60.0
LEASE_STALE_S = 600.0
CONTROL_PREFIX = "alloclab-ssh-"
RUN_DIR_PREFIX = "alloclab-run."
_MARKER = "runner"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def _start_ticks(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid,
    it names the process even after the pid is reused."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError):
        return None


def current_runner() -> str:
    """This runner as one line, "<boot id> <pid> <start ticks>", for markers and leases."""
    pid = os.getpid()
    return f"{_boot_id()} {pid} {_start_ticks(pid)}"


def runner_gone(runner: str) -> bool:
    """Whether the runner a marker or lease names is known to be gone: it ran on this machine
    (same boot) and no process with its pid and start time lives. A runner of another machine,
    or an unreadable line, is not known to be gone."""
    words = runner.split()
    if len(words) != 3 or not words[1].isdigit() or words[0] != _boot_id():
        return False
    return _start_ticks(int(words[1])) != words[2]


def sweep_control_dirs(parent: Path) -> list[Path]:
    """Remove this user's control folders under `parent` whose runner is gone; the removed."""
    removed = []
    for folder in sorted(parent.glob(f"{CONTROL_PREFIX}*")):
        try:
            if folder.stat().st_uid != os.getuid():
                continue
            runner = (folder / _MARKER).read_text()
        except OSError:
            continue  # no marker: a folder being made, or not one of ours
        if runner_gone(runner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextlib.contextmanager
def control_dir(say: Callable[[str], None] = lambda _: None) -> Iterator[Path]:
    """A private folder (0700) for the connections' sockets and logs, marked with this runner
    and removed at the end; first, the folders of runners that are gone, said to `say`."""
    parent = Path(tempfile.gettempdir())
    for folder in sweep_control_dirs(parent):
        say(f"removed {folder}, left here by a runner that was killed")
    path = Path(tempfile.mkdtemp(prefix=CONTROL_PREFIX))
    try:
        os.chmod(path, 0o700)
        (path / _MARKER).write_text(current_runner() + "\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stale_run_dirs(listing: str) -> list[str]:
    """The run folders to remove, from the target's listing: one line per folder,
    "<name> <1 if its lease is older than LEASE_STALE_S, else 0> <the lease's runner>"."""
    stale = []
    for line in listing.splitlines():
        name, _, rest = line.partition(" ")
        old, _, runner = rest.partition(" ")
        if name.startswith(RUN_DIR_PREFIX) and (old == "1" or runner_gone(runner)):
            stale.append(name)
    return stale


@contextlib.contextmanager
def refreshing(refresh: Callable[[], object], every_s: float = LEASE_REFRESH_S
               ) -> Iterator[None]:
    """Call `refresh` every `every_s` seconds in a thread while the body runs (a lease that
    tells other runners this run still holds its folder)."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every_s):
            with contextlib.suppress(Exception):  # a missed refresh: the next one may pass
                refresh()

    thread = threading.Thread(target=loop, name="alloclab-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
