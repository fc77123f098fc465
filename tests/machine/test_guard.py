"""The memory and disk guard: scenarios that do not fit are refused before any probe starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli.main import main
from runner.core.errors import GuardError
from runner.core.model import Plan, Scenario
from runner.core.parameters import DEFAULTS
from runner.machine import guard
from runner.measure import pipeline
from runner.probe import execute, native
from runner.spec import load, matrix

SPEC = """\
name: big
title: Big
question: Does a scenario larger than memory start?
matrix:
  size: [4KiB, 1GiB]
  backing: [malloc, read-file]
fixed:
  access: write-page
  ops: 1
  file_dir: {file_dir}
repetitions:
  processes: 1
"""
GIB = 1 << 30


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.yaml"
    path.write_text(SPEC.format(file_dir=tmp_path))
    return path


@pytest.fixture
def one_gib_free(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       2097152 kB\nMemAvailable:   1048576 kB\n")
    monkeypatch.setattr(guard, "MEMINFO", meminfo)


def _plan(path: Path) -> Plan:
    return matrix.expand(load.load_spec(path))


def test_scenarios_larger_than_the_margin_are_named_largest_first(big: Path,
                                                                  tmp_path: Path) -> None:
    room = guard.Room(memory_available_bytes=GIB, free_bytes={str(tmp_path): GIB // 2})
    lines = guard.find_unfit(_plan(big), room)
    assert lines == [
        "big: 1GiB malloc: needs about 1 GiB of memory, 1 GiB available",
        "big: 1GiB read-file: needs about 1 GiB of memory, 1 GiB available",
        f"big: 1GiB read-file: needs a 1 GiB file in {tmp_path}, 512 MiB free there",
    ]


def test_what_fits_within_the_margin_passes(big: Path, tmp_path: Path) -> None:
    room = guard.Room(memory_available_bytes=2 * GIB, free_bytes={str(tmp_path): 2 * GIB})
    assert guard.find_unfit(_plan(big), room) == []
    guard.check_fit([_plan(big)], room)


def test_unknown_room_refuses_nothing(big: Path) -> None:
    assert guard.find_unfit(_plan(big), guard.Room(None, {})) == []


def test_refusal_is_one_line_with_the_count_of_the_others(big: Path, tmp_path: Path) -> None:
    room = guard.Room(memory_available_bytes=GIB, free_bytes={str(tmp_path): GIB // 2})
    with pytest.raises(GuardError) as caught:
        guard.check_fit([_plan(big)], room)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("big: 1GiB malloc: needs about 1 GiB of memory, 1 GiB available"
                              " (and 2 more): refused before any probe started")
    assert "--force" in message


def test_workload_limits_needs_one_block_of_file() -> None:
    scenario = Scenario.from_params({**DEFAULTS, "backing": "mmap-file", "workload": "limits",
                                     "access": "none", "size": GIB, "ops": 8})
    assert guard.file_bytes(scenario) == GIB
    assert guard.file_bytes(Scenario.from_params({**DEFAULTS, "backing": "read-file",
                                                  "size": GIB, "ops": 8})) == 8 * GIB
    assert guard.file_bytes(Scenario.from_params({**DEFAULTS, "size": GIB, "ops": 8})) == 0


def test_plan_exits_3_unless_forced(big: Path, one_gib_free: None,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(big)]) == 3
    captured = capsys.readouterr()
    assert "1GiB malloc" in captured.out  # the plan is still shown
    assert captured.err.count("\n") == 1 and "needs about 1 GiB of memory" in captured.err
    assert main(["plan", "--force", str(big)]) == 0


def test_run_refuses_before_building_or_starting_a_probe_and_force_runs(
        big: Path, tmp_path: Path, one_gib_free: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    started: list[str] = []
    binary = native.ProbeBinary(Path("/bin/false"), "feedfacefeedface", "cc", ())

    def build() -> native.ProbeBinary:
        started.append("build")
        return binary

    def run_process(argv: list[str], *, scenario_id: str, process_index: int,
                    timeout_s: float, extra_env: object = None) -> execute.ProcessRecord:
        started.append(scenario_id)
        return execute.ProcessRecord(scenario_id, process_index, "failed", 1, None, 0.0, "",
                                     None)

    monkeypatch.setattr(pipeline.native, "build_probe", build)
    monkeypatch.setattr(execute, "run_process", run_process)
    args = ["run", str(big), "--results", str(tmp_path / "results"), "--machine", "m",
            "--no-report"]
    assert main(args) == 3
    assert started == []
    assert not (tmp_path / "results").exists()
    assert "refused before any probe started" in capsys.readouterr().err
    assert main([*args, "--force"]) == 1  # it ran: the fake probe failed every process
    assert started[0] == "build" and len(started) == 1 + 4
