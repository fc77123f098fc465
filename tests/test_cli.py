"""The command line end to end: exit statuses, one-line errors, and a real run that resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner import execute
from runner.cli import main
from runner.store import latest_runs, list_runs

ROOT = Path(__file__).parent.parent
INVALID = sorted((ROOT / "tests" / "spec_cases" / "invalid").glob("*.yaml"))

TINY_SPEC = """\
name: tiny
title: Tiny
question: Does the whole path work?
matrix:
  backing: [malloc, mmap-anon]
  size: [4KiB, 1MiB]
fixed:
  access: write-page
  ops: 4
repetitions:
  processes: 2
  iterations: 2
charts:
  - title: touch
    metric: first_touch_minor_faults_per_page
    x: size
    series: backing
"""


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_every_bad_spec_gives_one_line_and_exit_2(path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{path}:"), err
    assert "Traceback" not in err


def test_debug_shows_the_traceback() -> None:
    bad = ROOT / "tests" / "spec_cases" / "invalid" / "bad_size.yaml"
    done = subprocess.run([sys.executable, "-m", "runner", "--debug", "validate", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2 and "Traceback" in done.stderr


def test_help_explains_every_subcommand() -> None:
    for command in ("run", "report", "validate", "plan", "schema"):
        done = subprocess.run([sys.executable, "-m", "runner", command, "--help"],
                              capture_output=True, text=True, cwd=ROOT, check=True)
        assert "usage: alloclab" in done.stdout and len(done.stdout.splitlines()) > 4


def test_plan_lists_ids_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(ROOT / "experiments" / "first-touch.yaml")]) == 0
    out = capsys.readouterr().out
    assert "30 scenarios" in out and "1GiB" in out


def test_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((ROOT / "runner" / "spec.schema.json").read_text())


def _run_args(tmp_path: Path, spec: Path) -> list[str]:
    return ["run", str(spec), "--results", str(tmp_path / "results"), "--reports",
            str(tmp_path / "reports"), "--templates", str(ROOT / "templates"),
            "--machine", "test", "--seed", "3"]


@pytest.mark.probe
def test_an_interrupted_run_resumes_without_losing_or_repeating_a_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    real = execute.run_process
    calls = {"n": 0}

    def interrupted_after_three(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(execute, "run_process", interrupted_after_three)
    assert main(_run_args(tmp_path, spec)) == 130
    [partial] = list_runs(tmp_path / "results")
    assert len(partial.records) == 3 and not partial.finished

    monkeypatch.setattr(execute, "run_process", real)
    assert main(_run_args(tmp_path, spec)) == 0
    [run] = list_runs(tmp_path / "results")  # the same run, continued
    assert run.path == partial.path and run.finished
    pairs = [(r.scenario_id, r.process_index) for r in run.records]
    assert len(pairs) == 8 and len(set(pairs)) == 8
    assert all(r.status == "ok" for r in run.records)
    html = (tmp_path / "reports" / "tiny.html").read_text()
    assert "Does the whole path work?" in html and "<svg" in html


@pytest.mark.probe
def test_a_timed_out_process_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    spec = tmp_path / "slow.yaml"
    # 1 ms is far too short to write 64 MiB, but the 4 KiB scenario fits.
    spec.write_text(TINY_SPEC.replace("tiny", "slow").replace("1MiB", "64MiB")
                    .replace("ops: 4", "ops: 1") + "timeout: 1ms\n")
    assert main(_run_args(tmp_path, spec)) == 0
    [run] = latest_runs(tmp_path / "results")
    statuses = {(s["label"], r.status) for r in run.records
                for s in run.manifest["scenarios"] if s["id"] == r.scenario_id}
    assert ("malloc 64MiB", "timeout") in statuses
    assert len(run.records) == 8 and run.finished
    assert "timeout" in (tmp_path / "reports" / "slow.html").read_text()
