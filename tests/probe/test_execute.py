"""run_process: how each way a probe process can end becomes a ProcessRecord.

Fake probes (small scripts) stand in for the real one to make each ending exact; one test
runs the real probe.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.core.model import PHASES, Scenario
from runner.core.parameters import PARAMETERS
from runner.probe import execute
from runner.probe.execute import OWN_LIMIT_GRACE_S, PROBE_ENV, STDERR_TAIL_CHARS, run_process
from runner.probe.native import EXIT_SKIPPED, ProbeBinary, build_probe, probe_argv


def fake_probe(tmp_path: Path, body: str, interpreter: str = "/bin/sh") -> list[str]:
    script = tmp_path / "fake-probe"
    script.write_text(f"#!{interpreter}\n{body}\n")
    script.chmod(0o755)
    return [str(script)]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, merely not reaped


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    argv = fake_probe(tmp_path, f"sleep 60 &\necho $! > {pid_file}\necho started >&2\nwait")
    started = time.monotonic()
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=0.5)
    assert time.monotonic() - started < 10
    assert record.status == "timeout"
    assert record.exit_code is None and record.probe is None
    assert record.stderr_tail.startswith("started\n")
    assert "0.5 s timeout" in record.stderr_tail
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


@pytest.mark.parametrize(("signal_name", "command"), [("SIGSEGV", "SEGV"), ("SIGKILL", "KILL")])
def test_death_by_signal_is_a_crash_named_by_the_signal(tmp_path: Path, signal_name: str,
                                                        command: str) -> None:
    argv = fake_probe(tmp_path, f"echo about to die >&2\nkill -{command} $$")
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert record.status == "crashed"
    assert record.signal == signal_name
    assert record.exit_code is None
    assert record.stderr_tail == "about to die\n"


def test_non_zero_exit_is_a_failure_with_its_code(tmp_path: Path) -> None:
    argv = fake_probe(tmp_path, 'echo "probe: mmap: Cannot allocate memory" >&2\nexit 3')
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert record.status == "failed"
    assert record.exit_code == 3 and record.signal is None and record.probe is None
    assert record.stderr_tail == "probe: mmap: Cannot allocate memory\n"
    assert (record.scenario_id, record.process_index) == ("abc", 3)
    assert record.wall_s > 0


def test_exit_status_4_is_a_skip_with_the_reason(tmp_path: Path) -> None:
    argv = fake_probe(tmp_path, 'echo "probe: skipped: mmap(MAP_HUGETLB): no huge pages" >&2\n'
                                f"exit {EXIT_SKIPPED}")
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert record.status == "skipped"
    assert record.exit_code == EXIT_SKIPPED == 4
    assert record.probe is None and record.signal is None
    assert record.stderr_tail == "probe: skipped: mmap(MAP_HUGETLB): no huge pages\n"
    assert record.skip_reason == "mmap(MAP_HUGETLB): no huge pages"


def test_unreadable_output_is_a_failure_saying_why(tmp_path: Path) -> None:
    argv = fake_probe(tmp_path, 'echo "x" >&2\necho "{not json"')
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert record.status == "failed"
    assert record.exit_code == 0 and record.probe is None
    assert record.stderr_tail.startswith("x\nalloclab: unreadable probe output: ")
    assert "not JSON" in record.stderr_tail


def test_json_of_the_wrong_shape_is_a_failure(tmp_path: Path) -> None:
    argv = fake_probe(tmp_path, 'echo \'{"probe_version": 1}\'')
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert record.status == "failed"
    assert "missing libc" in record.stderr_tail


def test_stderr_is_cut_to_its_tail_keeping_the_note(tmp_path: Path) -> None:
    argv = fake_probe(tmp_path, "i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); "
                                "done\necho garbage")
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert len(record.stderr_tail) <= STDERR_TAIL_CHARS
    assert "line499\n" in record.stderr_tail and "line0\n" not in record.stderr_tail
    assert "unreadable probe output" in record.stderr_tail


def test_a_program_that_cannot_start_is_a_failure(tmp_path: Path) -> None:
    record = run_process([str(tmp_path / "missing")], scenario_id="abc", process_index=3,
                         timeout_s=10)
    assert record.status == "failed"
    assert record.exit_code is None
    assert "cannot start" in record.stderr_tail


def test_environment_is_minimal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")
    monkeypatch.setenv("LD_PRELOAD", "")
    # Python started with LC_ALL set adds nothing to its environment (no locale coercion).
    body = "import json, os, sys\nprint(json.dumps(dict(os.environ)), file=sys.stderr)\nsys.exit(1)"
    argv = fake_probe(tmp_path, body, interpreter=sys.executable)
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=30)
    assert record.exit_code == 1, record.stderr_tail
    tether = execute.tether_env(30)
    assert json.loads(record.stderr_tail) == {"PATH": "/usr/bin:/bin", "LC_ALL": "C", **tether}
    assert dict(PROBE_ENV) == {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}

    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=30,
                         extra_env={"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"})
    assert json.loads(record.stderr_tail) == {
        "PATH": "/usr/bin:/bin", "LC_ALL": "C",
        "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096", **tether}


def test_stdin_is_empty(tmp_path: Path) -> None:
    argv = fake_probe(tmp_path, "cat >&2\nexit 1")
    record = run_process(argv, scenario_id="abc", process_index=3, timeout_s=10)
    assert record.exit_code == 1 and record.stderr_tail == ""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ProbeBinary:
    return build_probe(tmp_path_factory.mktemp("probe-cache"))


@pytest.mark.probe
def test_real_probe_run_is_ok(probe: ProbeBinary) -> None:
    values: dict[str, object] = {p.field: p.default for p in PARAMETERS}
    scenario = Scenario(**{**values, "ops": 4})  # type: ignore[arg-type]
    record = run_process(probe_argv(probe, scenario, 1, 2), scenario_id=scenario.id,
                         process_index=0, timeout_s=30)
    assert record.status == "ok", record.stderr_tail
    assert record.exit_code == 0 and record.signal is None and record.stderr_tail == ""
    assert record.probe is not None
    assert [it["warmup"] for it in record.probe["iterations"]] == [True, False, False]
    assert set(record.probe["iterations"][0]["phases"]) == set(PHASES)
    assert record.to_json()["probe"] == record.probe


def _wait_gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _long_probe_argv(probe: ProbeBinary) -> list[str]:
    """The real probe on a scenario that runs for a minute or so (16 MiB, 100 000 times)."""
    values: dict[str, object] = {p.field: p.default for p in PARAMETERS}
    scenario = Scenario(**{**values, "size_bytes": 16 << 20, "ops": 1})  # type: ignore[arg-type]
    return probe_argv(probe, scenario, 0, 100_000)


RUNNER = """
import sys
from runner.probe.execute import run_process
run_process(sys.argv[1:], scenario_id="abc", process_index=0, timeout_s=600)
"""


def _probe_pid(runner_pid: int, within_s: float = 10.0) -> int:
    """The runner's child once it runs the probe (not merely forked: exec'd)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{runner_pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                if Path(f"/proc/{child}/comm").read_text().strip() != "python3":
                    return int(child)
        time.sleep(0.02)
    raise AssertionError("the runner started no probe")


@pytest.mark.probe
def test_probe_dies_with_a_runner_killed_by_sigkill(probe: ProbeBinary) -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, *_long_probe_argv(probe)],
                              cwd=Path(__file__).parents[2])
    try:
        probe_pid = _probe_pid(runner.pid)
        time.sleep(0.2)  # past the probe's start, where it ties itself to the runner
        assert _alive(probe_pid)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        assert _wait_gone(probe_pid), "the probe outlived its runner"
    finally:
        runner.kill()
        runner.wait()


@pytest.mark.probe
def test_probe_whose_runner_is_gone_does_not_start(probe: ProbeBinary) -> None:
    # The runner died between the spawn and the probe's PR_SET_PDEATHSIG: the probe's parent
    # is not the runner it was told of, and it exits before measuring anything.
    env = {**PROBE_ENV, **execute.tether_env(60), execute.RUNNER_PID_VARIABLE: "1"}
    started = time.monotonic()
    done = subprocess.run(_long_probe_argv(probe), env=env, capture_output=True, timeout=60)
    assert time.monotonic() - started < 5
    assert done.returncode == 3 and done.stdout == b""


@pytest.mark.probe
def test_probe_enforces_its_own_time_limit(probe: ProbeBinary,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The runner's own timeout is made unreachable, as when the runner is stopped: the
    # probe's alarm ends it, and the record still says timeout.
    monkeypatch.setattr(execute, "OWN_LIMIT_GRACE_S", 0)
    original = execute._collect

    def no_runner_timeout(process: subprocess.Popen[bytes], deadline: float
                          ) -> tuple[bytes, bytes, bool]:
        return original(process, deadline + 3600)

    monkeypatch.setattr(execute, "_collect", no_runner_timeout)
    started = time.monotonic()
    record = run_process(_long_probe_argv(probe), scenario_id="abc", process_index=0,
                         timeout_s=0.2)
    assert time.monotonic() - started < 10
    assert record.status == "timeout"
    assert "SIGALRM" in record.stderr_tail


def test_tether_env_names_this_runner_and_the_limit() -> None:
    assert execute.tether_env(0.2) == {"ALLOCLAB_RUNNER_PID": str(os.getpid()),
                                       "ALLOCLAB_TIME_LIMIT_S": str(1 + OWN_LIMIT_GRACE_S)}


def test_the_probe_is_spawned_without_a_preexec_function(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A preexec_fn makes Python fork instead of vfork: ~3 ms of copy-on-write faults a process.
    seen: list[object] = []
    original = subprocess.Popen.__init__

    def spy(self: subprocess.Popen[bytes], *args: object, **kwargs: object) -> None:
        seen.append(kwargs.get("preexec_fn"))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(subprocess.Popen, "__init__", spy)
    record = run_process(fake_probe(tmp_path, "env"), scenario_id="abc", process_index=0,
                         timeout_s=30)
    assert seen == [None]
    assert record.status == "failed"  # not the probe's JSON; the environment is in stdout
