"""Fault injection over SSH, against a real OpenSSH server on 127.0.0.1: the runner killed or
stopped by a signal mid-run, the link dropped and the link blackholed. Afterwards nothing of
the run lives on, here or on the target, within LINGER_S; its folders are gone, or the next
run removes them and says so; and the rerun's records are a clean run's set.

The runner is the real `alloclab run --hosts` in a child process, with a private TMPDIR (its
control folder) and work_dir (its run folder there), so its processes are found in /proc by
those paths: ssh masters and clients by their ControlPath, the remote shell by its argument
and the probes by their open files.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.remote import lifetime, ssh
from tests.sshd_server import Sshd, _descendants

ROOT = Path(__file__).parents[2]
pytestmark = [pytest.mark.probe, pytest.mark.slow]

SPEC = """\
name: faults
title: Faults over SSH
question: Does a run over SSH that is cut short leave nothing behind?
matrix:
  size: [64KiB, 32MiB]
fixed:
  backing: malloc
  access: write-page
repetitions:
  processes: {processes}
  iterations: 2
timeout: 20s
"""
LABEL = "target"
LINGER_S = 30.0  # the bound for anything of a killed run
ALIVE_INTERVAL_S, ALIVE_COUNT = 5, 3  # ssh.Connection's ServerAliveInterval and CountMax


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """The runner's TMPDIR: short, for the sockets in it (a unix socket's path must fit in
    108 bytes, and pytest's tmp_path is long)."""
    path = Path(tempfile.mkdtemp(prefix="alloclab-t-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Run:
    """One experiment measured on the loopback target by `alloclab run` in child processes."""

    def __init__(self, tmp_path: Path, short_tmp: Path, sshd: Sshd, processes: int) -> None:
        self.jobs = 2 * processes
        self.tmp, self.work = short_tmp, tmp_path / "work"
        self.results = tmp_path / "results"
        self.work.mkdir()
        self.spec = tmp_path / "faults.yaml"
        self.spec.write_text(SPEC.format(processes=processes))
        self.fleet = tmp_path / "fleet.yaml"
        self.fleet.write_text("hosts:\n" + sshd.hosts_entry(LABEL)
                              + f"    work_dir: {self.work}\n")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "runner", "run", str(self.spec), "--hosts",
                str(self.fleet), "--results", str(self.results), "--no-report", "--seed", "3"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.tmp)}

    def start(self) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(), cwd=ROOT, env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def rerun(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(), cwd=ROOT, env=self.env(), capture_output=True,
                              text=True, timeout=120)

    def records(self) -> list[dict[str, object]]:
        lines = [line for path in self.results.glob(f"{LABEL}/faults/*/samples.jsonl")
                 for line in path.read_text().splitlines()]
        return [json.loads(line) for line in lines]

    def wait_for_records(self, count: int, runner: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 60
        while len(self.records()) < count:
            if runner.poll() is not None:
                pytest.fail(f"the run ended before the fault: {runner.communicate()[1]}")
            assert time.monotonic() < deadline, "the run stored too little"
            time.sleep(0.01)

    def leftovers(self) -> dict[int, str]:
        """Live processes of the run, here or there: pid -> command line."""
        found = {}
        paths = (str(self.tmp), str(self.work))
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if proc.name == str(os.getpid()) or \
                        (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace")
                files = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
                files.append(os.readlink(proc / "cwd"))
            except (OSError, IndexError):
                continue
            if any(path in text for path in paths for text in [cmdline, *files]):
                found[int(proc.name)] = cmdline
        return found

    def wait_until_nothing_lives(self) -> float:
        started = time.monotonic()
        while self.leftovers() and time.monotonic() < started + LINGER_S:
            time.sleep(0.1)
        assert not self.leftovers(), f"alive {LINGER_S:g} s after the fault"
        return time.monotonic() - started

    def folders(self) -> list[Path]:
        return sorted([*self.tmp.glob(f"{lifetime.CONTROL_PREFIX}*"), *self.work.iterdir()])

    def assert_complete_once(self) -> None:
        records = self.records()
        pairs = Counter((r["scenario_id"], r["process_index"]) for r in records)
        assert len(pairs) == self.jobs, "a (scenario, process) pair is missing"
        assert max(pairs.values()) == 1, "a (scenario, process) pair is stored twice"
        assert {r["status"] for r in records} == {"ok"}
        [manifest] = self.results.glob(f"{LABEL}/faults/*/manifest.json")
        assert json.loads(manifest.read_text())["finished_utc"] is not None


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT,
                                  signal.SIGHUP])
def test_a_runner_stopped_mid_run_leaves_nothing_and_the_rerun_completes(
        tmp_path: Path, short_tmp: Path, sshd: Sshd, stop: signal.Signals) -> None:
    run = Run(tmp_path, short_tmp, sshd, processes=6)
    runner = run.start()
    run.wait_for_records(3, runner)
    runner.send_signal(stop)
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode == (-9 if stop == signal.SIGKILL else 130), stderr
    run.wait_until_nothing_lives()
    left = run.folders()
    if stop == signal.SIGKILL:
        # Nothing could remove them; the next run does, on both sides, and says so.
        control = [f for f in left if f.name.startswith(lifetime.CONTROL_PREFIX)]
        remote = [f for f in left if f.name.startswith(lifetime.RUN_DIR_PREFIX)]
        assert len(control) == 1 and len(remote) == 1 and (remote[0] / "lease").is_file()
    else:
        assert left == []
    stored = run.records()
    assert 0 < len(stored) < run.jobs
    rerun = run.rerun()
    assert rerun.returncode == 0, rerun.stderr
    if stop == signal.SIGKILL:
        assert f"removed {control[0]}, left here by a runner that was killed" in rerun.stderr
        assert f"removed {remote[0]} there, left by a runner that was killed" in rerun.stderr
    assert "resuming" in rerun.stderr
    assert run.folders() == []
    run.assert_complete_once()
    assert run.records()[:len(stored)] == stored  # nothing rewritten
    assert not run.leftovers()


def _session_servers(sshd: Sshd) -> list[int]:
    """The sshd processes serving connections (not the listener, nor the shells they run)."""
    assert sshd.process is not None
    pids = []
    for pid in _descendants(sshd.process.pid):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith("sshd"):
                pids.append(pid)
        except OSError:
            continue
    return pids


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def test_a_blackholed_link_is_detected_by_the_keepalive_and_the_run_completes(
        tmp_path: Path, short_tmp: Path, sshd: Sshd) -> None:
    """Packets that vanish, as opposed to a refused connection: the sshd serving the session
    is stopped (SIGSTOP), so the kernel still acknowledges but nothing answers. The master
    gives up after ServerAliveInterval x ServerAliveCountMax without an answer (the process in
    flight would otherwise wait its timeout + ssh.GRACE_S); the process is run again over a
    new connection."""
    run = Run(tmp_path, short_tmp, sshd, processes=8)
    runner = run.start()
    run.wait_for_records(2, runner)
    stopped = _session_servers(sshd)
    assert stopped
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    blackholed = time.monotonic()
    try:
        logs = list(run.tmp.glob(f"{lifetime.CONTROL_PREFIX}*/{LABEL}.log"))
        while not any("not responding" in _text(log) for log in logs):
            assert time.monotonic() < blackholed + 60, "the dead link was never noticed"
            time.sleep(0.05)
        detected_s = time.monotonic() - blackholed
        # ssh counts an unanswered keepalive per quiet interval and gives up past CountMax.
        assert ALIVE_INTERVAL_S * ALIVE_COUNT - 1 <= detected_s <= \
            ALIVE_INTERVAL_S * (ALIVE_COUNT + 1) + 3
        assert detected_s < 20 + ssh.GRACE_S  # the probe's timeout + grace: not what ended it
        _, stderr = runner.communicate(timeout=120)
    finally:
        for pid in stopped:  # the link comes back: the stale session sees its peer gone
            os.kill(pid, signal.SIGCONT)
    assert runner.returncode == 0, stderr
    run.assert_complete_once()
    run.wait_until_nothing_lives()
    assert run.folders() == []


def test_a_dropped_link_is_noticed_at_once_and_the_run_completes(
        tmp_path: Path, short_tmp: Path, sshd: Sshd) -> None:
    run = Run(tmp_path, short_tmp, sshd, processes=8)
    runner = run.start()
    run.wait_for_records(2, runner)
    count = len(run.records())
    for pid in _session_servers(sshd):
        os.kill(pid, signal.SIGKILL)
    dropped = time.monotonic()
    run.wait_for_records(count + 2, runner)
    # A closed connection is an end of file at once, not a keepalive's timeout.
    assert time.monotonic() - dropped < ALIVE_INTERVAL_S * ALIVE_COUNT
    _, stderr = runner.communicate(timeout=120)
    assert runner.returncode == 0, stderr
    run.assert_complete_once()
    run.wait_until_nothing_lives()
    assert run.folders() == []
