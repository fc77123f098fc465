"""Fault injection: the runner and its probes killed at random points lose no finished sample,
store none twice, leave no probe behind, and a rerun completes the run.

Each test runs the real `alloclab run` on a tiny experiment in a child process and signals
it (or its probe) once a random number of processes has been stored.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from runner.probe import native

pytestmark = pytest.mark.probe

SPEC = """\
name: faults
title: Faults
question: Does an interrupted run lose nothing?
matrix:
  size: [4KiB, 64KiB, 1MiB, 4MiB]
fixed:
  backing: malloc
  access: write-page
repetitions:
  processes: 6
timeout: 20s
"""
JOBS = 4 * 6
LONG_PROCESSES = 25
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def built() -> native.ProbeBinary:
    return native.build_probe()  # once, so no test's timing includes the compiler


@pytest.fixture
def spec(tmp_path: Path, built: native.ProbeBinary) -> Path:
    path = tmp_path / "faults.yaml"
    path.write_text(SPEC)
    return path


def _command(spec: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "runner", "run", str(spec), "--results", str(results),
            "--machine", "m", "--no-report", "--seed", "7", *extra]


def _start(spec: Path, results: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(spec, results, *extra), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _samples(results: Path) -> list[Path]:
    return sorted(results.glob("m/faults/*/samples.jsonl"))


def _stored_lines(results: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in _samples(results))


def _wait_for_lines(results: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while _stored_lines(results) < count:
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.002)


def _records(results: Path) -> list[dict[str, object]]:
    [samples] = _samples(results)  # one run: interrupting and resuming never starts another
    return [json.loads(line) for line in samples.read_text().splitlines()]


def _assert_complete_once(results: Path, jobs: int = JOBS) -> None:
    records = _records(results)
    pairs = Counter((r["scenario_id"], r["process_index"]) for r in records)
    assert len(pairs) == jobs, "a (scenario, process) pair is missing"
    assert max(pairs.values()) == 1, "a (scenario, process) pair is stored twice"
    manifest = json.loads(next(results.glob("m/faults/*/manifest.json")).read_text())
    assert manifest["finished_utc"] is not None


def _probe_children(parent: int | None = None) -> set[int]:
    """Live (not zombie) processes of the built probe, of any parent or of `parent`."""
    alive = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"/probe-" not in cmdline.read_bytes().split(b"\0")[0]:
                continue
            state, ppid = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if state != "Z" and (parent is None or int(ppid) == parent):
            alive.add(int(cmdline.parent.name))
    return alive


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_runner_stopped_keeps_what_finished_and_says_how_to_resume(
        spec: Path, tmp_path: Path, stop: signal.Signals) -> None:
    results = tmp_path / "results"
    run = _start(spec, results, "--fresh")
    _wait_for_lines(results, random.Random(stop).randint(1, JOBS // 3), run)
    run.send_signal(stop)
    _, stderr = run.communicate(timeout=30)
    assert run.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert "every finished process is stored; to resume: alloclab run" in last
    assert "--fresh" not in last  # --fresh again would start another run, not resume it
    interrupted = _records(results)
    assert 0 < len(interrupted) < JOBS
    resumed = subprocess.run(_command(spec, results), cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    _assert_complete_once(results)
    assert _records(results)[:len(interrupted)] == interrupted  # nothing rewritten


def test_runner_killed_leaves_no_probe_and_a_rerun_completes(spec: Path,
                                                               tmp_path: Path) -> None:
    results = tmp_path / "results"
    before = _probe_children()
    run = _start(spec, results)
    _wait_for_lines(results, random.Random(3).randint(1, JOBS // 3), run)
    run.kill()
    run.communicate(timeout=30)
    deadline = time.monotonic() + 5
    while _probe_children() - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _probe_children() - before, "a probe outlived its killed runner"
    resumed = subprocess.run(_command(spec, results), cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    _assert_complete_once(results)


def test_probe_killed_is_recorded_as_a_crash_once(spec: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    run = _start(spec, results)
    killed = 0
    deadline = time.monotonic() + 30
    # A probe may end on its own between being seen and being killed: kill a few, so that
    # at least one dies by the signal.
    while run.poll() is None and killed < 3 and time.monotonic() < deadline:
        for pid in _probe_children(run.pid):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    _, _stderr = run.communicate(timeout=60)
    assert killed
    assert run.returncode == 1  # a crashed process fails the run, after storing it
    _assert_complete_once(results)
    statuses = Counter(r["status"] for r in _records(results))
    assert statuses["crashed"] >= 1 and statuses["ok"] >= JOBS - killed


def test_a_second_concurrent_run_is_refused_and_the_first_completes(
        spec: Path, tmp_path: Path) -> None:
    # The first run must outlast the second's start-up (about a second): more processes.
    spec.write_text(SPEC.replace("processes: 6", f"processes: {LONG_PROCESSES}"))
    results = tmp_path / "results"
    first = _start(spec, results)
    _wait_for_lines(results, 1, first)
    second = subprocess.run(_command(spec, results), cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert second.returncode == 2
    assert f"another `alloclab run` of faults is running (pid {first.pid}" in second.stderr
    # the probe build line, the plan (experiments, processes, duration), the refusal
    assert len(second.stderr.strip().splitlines()) <= 3
    first.communicate(timeout=60)
    assert first.returncode == 0
    _assert_complete_once(results, jobs=4 * LONG_PROCESSES)
