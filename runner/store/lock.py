"""One run at a time per experiment and results folder: results/<machine>/<experiment>/.lock.

Two runs of one experiment into one folder would disturb each other's numbers and append to
one samples.jsonl, so the second is refused, naming who holds the lock. The lock is an
flock(2) on that file: the kernel drops it when its holder exits, however it exits, so the
lock of a dead process (SIGKILL, a reboot) is simply taken over. The file also says who holds
it (pid, host, since, command), for the refusal's message only. Probes never inherit the
lock's descriptor (Python opens files close-on-exec), so an orphaned probe cannot keep it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from runner.core.errors import LockError

LOCK_FILE = ".lock"
_HOLDER_BYTES = 4096


def lock_path(experiment_dir: Path) -> Path:
    return experiment_dir / LOCK_FILE


@contextlib.contextmanager
def hold_run_lock(experiment_dir: Path, experiment: str, command: str) -> Iterator[None]:
    """Hold the experiment folder's run lock for the body; raise LockError if another holds it."""
    fd = _acquire(experiment_dir, experiment)
    try:
        _write_holder(fd, command)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path(experiment_dir))  # removed while still held: see _acquire
        os.close(fd)


def _acquire(experiment_dir: Path, experiment: str) -> int:
    """Open and flock the lock file; retry when the file was removed by a releasing holder."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    path = lock_path(experiment_dir)
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(fd)
            os.close(fd)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise LockError(f"{experiment_dir}: another `alloclab run` of {experiment} is "
                            f"running ({holder}); wait for it to end, or give this run "
                            "another --results folder") from None
        # The holder before us may have unlinked the file after we opened it: a lock on a
        # removed file protects nothing, so start again with the file now at the path.
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise LockError(f"{path}: the run lock keeps changing hands; try again")


def _write_holder(fd: int, command: str) -> None:
    since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since_utc": since,
              "command": command[:1000]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder, sort_keys=True) + "\n").encode(), 0)


def _read_holder(fd: int) -> str:
    """Who holds the lock, in words, from what the holder wrote (best effort: untrusted)."""
    try:
        data = json.loads(os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace"))
        pid, host = int(data["pid"]), str(data["host"])[:100]
        since, command = str(data["since_utc"])[:40], str(data["command"])[:200]
    except (OSError, ValueError, TypeError, KeyError):
        return "holder unknown"
    return f"pid {pid} on {host!r} since {since}: {command}"
