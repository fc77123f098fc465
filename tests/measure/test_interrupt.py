"""Stop signals: SIGTERM and SIGHUP stop like Ctrl-C, and a stop whose exception got lost is
still honoured before the next process starts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.core.model import Repetitions, Scenario
from runner.core.parameters import DEFAULTS
from runner.machine import preconditions
from runner.measure import interrupt, pipeline, schedule
from runner.probe import native

SCENARIO = Scenario.from_params({**DEFAULTS, "ops": 1})
BINARY = native.ProbeBinary(Path("/bin/false"), "feedfacefeedface", "cc", ())


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_ends_the_run_with_130_and_the_resume_command(
        signum: signal.Signals, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def run_experiments(*args: object) -> list[object]:
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("not stopped")

    monkeypatch.setattr(pipeline, "run_experiments", run_experiments)
    assert main(["run", "--fresh", "x.yaml", "--machine", "m"]) == 130
    err = capsys.readouterr().err
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
    assert err.startswith(f"{how}: every finished process is stored; to resume: "
                          "alloclab run x.yaml --machine m (or")
    assert signal.getsignal(signum) is not interrupt._on_signal  # handlers given back


def test_a_lost_stop_is_honoured_before_the_next_process(tmp_path: Path) -> None:
    with interrupt.handle_stop_signals():
        interrupt._requested.append("SIGTERM")  # as if the handler's exception was swallowed
        with pytest.raises(interrupt.Stopped):
            schedule.run_jobs([schedule.Job(SCENARIO, 0)], BINARY, Repetitions(), 1.0, tmp_path,
                              set(), lambda job, record: None,
                              facts=preconditions.read_facts())
    assert not (tmp_path / "samples.jsonl").exists()
