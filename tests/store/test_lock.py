"""The per-experiment run lock: a second holder is refused with who holds it; a dead
holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runner.core.errors import ExitStatus, LockError
from runner.store import lock

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from runner.store import lock
    with lock.hold_run_lock(Path(sys.argv[1]), "exp", "alloclab run holder.yaml"):
        print("held", flush=True)
        time.sleep(60)
""")


def _start_holder(folder: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], text=True,
                              stdout=subprocess.PIPE, cwd=Path(__file__).parents[2])
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path / "exp")
    try:
        with pytest.raises(LockError) as caught, \
                lock.hold_run_lock(tmp_path / "exp", "exp", "alloclab run"):
            pass
        message = str(caught.value)
        assert f"pid {holder.pid}" in message
        assert "alloclab run holder.yaml" in message
        assert "\n" not in message
        assert caught.value.exit_status == ExitStatus.USAGE
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path / "exp")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert lock.lock_path(tmp_path / "exp").exists()  # left behind by the dead holder
    with lock.hold_run_lock(tmp_path / "exp", "exp", "alloclab run"):
        assert f'"pid": {os.getpid()}' in lock.lock_path(tmp_path / "exp").read_text()
    assert not lock.lock_path(tmp_path / "exp").exists()


def test_lock_is_released_after_the_body_and_on_errors(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), lock.hold_run_lock(tmp_path, "exp", "a"):
        raise RuntimeError("boom")
    with lock.hold_run_lock(tmp_path, "exp", "b"):
        pass


def test_nested_acquisition_in_one_process_is_refused(tmp_path: Path) -> None:
    # flock is per open file description: a second open in the same process conflicts too,
    # so two run_plan calls of one experiment cannot interleave even in one process.
    with lock.hold_run_lock(tmp_path, "exp", "a"), pytest.raises(LockError), \
            lock.hold_run_lock(tmp_path, "exp", "b"):
        pass


def test_a_garbage_lock_file_is_taken_over_and_a_garbage_holder_described(
        tmp_path: Path) -> None:
    lock.lock_path(tmp_path).write_bytes(b"\xff\x00not json")
    with lock.hold_run_lock(tmp_path, "exp", "a"):
        pass
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert lock._read_holder(fd) == "holder unknown"
    finally:
        os.close(fd)
