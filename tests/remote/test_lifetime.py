"""What a run over SSH may leave behind (runner.remote.lifetime): runner markers and leases,
and which folders a later run sweeps. The fault injection against a real sshd is in
test_ssh_faults.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runner.remote import lifetime


def _dead_runner() -> str:
    """The line of a runner of this machine that has exited."""
    child = subprocess.run([sys.executable, "-c",
                            "from runner.remote import lifetime; print(lifetime.current_runner())"],
                           capture_output=True, text=True, check=True,
                           cwd=Path(__file__).parents[2])
    return child.stdout.strip()


def test_a_runner_is_gone_only_when_known_to_be() -> None:
    me = lifetime.current_runner()
    assert not lifetime.runner_gone(me)
    assert lifetime.runner_gone(_dead_runner())
    boot, pid, start = me.split()
    assert lifetime.runner_gone(f"{boot} {pid} {int(start) + 1}")  # the pid, reused
    # Another machine's runner, or a line alloclab did not write, is not known to be gone.
    assert not lifetime.runner_gone(f"another-boot-id {pid} 1")
    assert not lifetime.runner_gone("")
    assert not lifetime.runner_gone("a b")


def test_stale_run_folders_are_old_leases_and_dead_runners_of_this_machine() -> None:
    listing = "\n".join([
        f"alloclab-run.live0001 0 {lifetime.current_runner()}",
        f"alloclab-run.dead0001 0 {_dead_runner()}",
        "alloclab-run.else0001 0 another-boot-id 12 34",  # held by a runner elsewhere
        "alloclab-run.else0002 1 another-boot-id 12 34",  # ... whose lease is stale
        "alloclab-run.nolease1 0 ",  # no lease yet: being made
        "alloclab-run.nolease2 1 ",  # none, and old
        "something-else 1 x y z"])
    assert lifetime.stale_run_dirs(listing) == ["alloclab-run.dead0001",
                                                "alloclab-run.else0002",
                                                "alloclab-run.nolease2"]


def test_control_folders_of_dead_runners_are_swept_and_said(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(lifetime.tempfile, "tempdir", None)
    dead, live, unmarked = (tmp_path / f"{lifetime.CONTROL_PREFIX}{name}"
                            for name in ("dead", "live", "unmarked"))
    for folder in (dead, live, unmarked):
        folder.mkdir()
    (dead / "runner").write_text(_dead_runner() + "\n")
    (live / "runner").write_text(lifetime.current_runner() + "\n")
    said: list[str] = []
    with lifetime.control_dir(said.append) as control:
        assert control.parent == tmp_path and oct(control.stat().st_mode & 0o777) == "0o700"
        assert not lifetime.runner_gone((control / "runner").read_text())
        assert said == [f"removed {dead}, left here by a runner that was killed"]
    assert not control.exists() and not dead.exists()
    assert live.exists() and unmarked.exists()


def test_a_lease_is_refreshed_while_the_body_runs() -> None:
    calls: list[int] = []

    def refresh() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("a missed refresh")

    with lifetime.refreshing(refresh, every_s=0.01):
        while len(calls) < 4:
            pass
    count = len(calls)
    assert count >= 4
    with lifetime.refreshing(refresh, every_s=60):
        pass  # leaving the body stops the thread at once, without a last refresh
    assert len(calls) == count
