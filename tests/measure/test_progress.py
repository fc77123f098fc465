"""What `alloclab run` shows while it runs (-q, -v, a bar on a terminal, plain lines in a
pipe), the grouped noise warnings, and the rough duration `plan` prints."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.measure import progress
from runner.measure.progress import ConsoleListener, estimate_process_s, format_duration
from tests.cli.test_main import TINY_SPEC, _run_args

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # everything but tab and newline


def _tiny(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    return spec


@pytest.mark.probe
def test_a_piped_run_prints_a_few_plain_lines(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_run_args(tmp_path, _tiny(tmp_path)), "--no-report"]) == 0
    err = capsys.readouterr().err
    assert not CONTROL.search(err)
    assert "1 experiment, 8 processes, about " in err
    assert re.search(r"^\[1/1\] tiny: 8 processes, \d+ s elapsed$", err, re.M)
    assert "8/8 processes" not in err  # per-process counts are -v's
    assert len(err.splitlines()) <= 5


@pytest.mark.probe
def test_verbose_shows_the_process_counts_and_quiet_shows_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _tiny(tmp_path)
    assert main([*_run_args(tmp_path, spec), "--no-report", "--fresh", "-v"]) == 0
    assert "tiny: 8/8 processes" in capsys.readouterr().err
    assert main([*_run_args(tmp_path, spec), "--no-report", "--fresh", "-q"]) == 0
    assert capsys.readouterr().err == ""  # no errors, and tiny declares no verdicts


def test_quiet_and_verbose_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "-q", "-v", "x.yaml"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def _fake_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.measure import pipeline

    def fake_run(*_: object) -> list[pipeline.RunSummary]:
        return [pipeline.RunSummary("tiny", Path("r"), 8, 0, warnings=tuple(
            f"noise {i}: load rose" for i in range(4)), verdicts=("holds: pages fault once",)),
            pipeline.RunSummary("calm", Path("r"), 8, 0)]

    monkeypatch.setattr(pipeline, "run_experiments", fake_run)


@pytest.mark.parametrize(("flag", "expected"), [
    ((), ["tiny: 4 noise warnings (-v shows them)"]),
    (("-v",), [f"tiny: warning: noise {i}: load rose" for i in range(4)]),
    (("-q",), [])])
def test_warnings_are_one_line_per_experiment_unless_verbose(
        flag: tuple[str, ...], expected: list[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_run(tmp_path, monkeypatch)
    assert main([*_run_args(tmp_path, tmp_path / "tiny.yaml"), "--no-report", *flag]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert [line for line in lines if " warning" in line or "warnings" in line] == expected
    # The verdict even with -q; the total time after it, but not with -q.
    verdict_at = lines.index("tiny: verdict: holds: pages fault once")
    assert lines[verdict_at + 1:] == ([] if "-q" in flag else [
        "measured 16 processes of 2 experiments in 0 s"])


def test_the_warning_summary_points_to_the_report_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.cli import commands
    from runner.measure import pipeline

    summary = pipeline.RunSummary("first-touch", tmp_path, 8, 0, warnings=("a",))
    assert commands._warning_lines([summary], Path("reports"), verbose=False, reported=True) == [
        "first-touch: 1 noise warning (see reports/first-touch.html)"]


def _drive(listener: ConsoleListener) -> None:
    listener.plan([("first-touch", 4, 8.0), ("heap-growth", 6, 2.0)])
    listener.experiment("first-touch", 4)
    for _ in range(4):
        listener.process(2.0)
    listener.experiment_done("first-touch", 4)
    listener.experiment("heap-growth", 6)


def test_on_a_terminal_one_bar_counts_experiments_and_processes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = io.StringIO()
    listener = ConsoleListener(stream=stream, live=True)
    assert listener.console.is_terminal
    _drive(listener)
    listener.say("a message above the bar")
    text = listener.describe()
    listener.close()
    assert "experiments 1/2" in text and "processes 4/10" in text and "ETA" in text
    written = stream.getvalue()
    assert "\x1b[" in written  # a live display, drawn with control sequences
    assert "a message above the bar" in written
    assert "[1/2]" not in written  # the per-experiment plain line is for pipes


def test_no_color_is_honoured_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert ConsoleListener(stream=io.StringIO(), live=True).console.no_color
    monkeypatch.delenv("NO_COLOR")
    assert not ConsoleListener(stream=io.StringIO(), live=True).console.no_color


def test_not_a_terminal_means_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(stream, "isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm")
    assert ConsoleListener(stream=stream).live
    monkeypatch.setenv("TERM", "dumb")
    assert not ConsoleListener(stream=stream).live
    assert not ConsoleListener(stream=io.StringIO()).live


def test_eta_starts_from_the_estimate_and_follows_the_measured_rate(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    listener = ConsoleListener(verbosity=-1, stream=io.StringIO(), live=False)
    listener.plan([("a", 10, 100.0)])
    assert listener.eta_s() == 100.0
    prior = progress.ESTIMATE_WEIGHT_SHARE * 100.0
    for _ in range(2):
        listener.process(10.0)
    now[0] += 40.0  # twice as slow as estimated for the 20 s done
    early = listener.eta_s()
    assert early == pytest.approx(80.0 * (40.0 + prior) / (20.0 + prior))
    for _ in range(6):
        listener.process(10.0)
    now[0] += 120.0  # still twice as slow: 80 s of estimate took 160 s
    assert listener.eta_s() == pytest.approx(20.0 * (160.0 + prior) / (80.0 + prior))
    # the estimate weighs less as more is measured: the rate approaches the measured 2x
    assert early / 80.0 < listener.eta_s() / 20.0 < 2.0


def test_a_resumed_experiment_shrinks_the_totals() -> None:
    listener = ConsoleListener(verbosity=-1, stream=io.StringIO(), live=False)
    listener.plan([("a", 10, 100.0), ("b", 10, 50.0)])
    listener.experiment("a", 4)  # 6 processes already stored
    assert (listener.processes, listener.estimate_s) == (14, pytest.approx(90.0))


def test_the_rough_model_grows_with_memory_and_is_slower_for_files() -> None:
    small = estimate_process_s(4 << 10, "malloc", 1)
    large = estimate_process_s(1 << 30, "malloc", 1)
    assert progress.PROCESS_BASE_S <= small < large
    assert estimate_process_s(1 << 30, "mmap-file", 1) > large
    assert estimate_process_s(1 << 30, "malloc", 3) > large
    assert [format_duration(s) for s in (4.4, 200, 3900)] == ["4 s", "3 min 20 s", "1 h 05 min"]


def test_plan_prints_a_rough_duration(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(_tiny(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^estimated duration: about \d+ s \(rough: ", out, re.M)


def _eta_bench() -> object:
    """bench/eta_accuracy.py, which reads the bar's text back: it must keep up with it."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "bench" / "eta_accuracy.py"
    spec = importlib.util.spec_from_file_location("eta_accuracy", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["eta_accuracy"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seconds", [0, 7, 59, 60, 200, 3599, 3600, 5400])
def test_the_eta_bench_reads_back_what_the_bar_draws(seconds: int) -> None:
    bench: object = _eta_bench()
    listener = ConsoleListener(stream=io.StringIO(), live=False)
    listener.plan([("a", 10, float(seconds))])
    match = bench.FRAME.search(listener.describe())  # type: ignore[attr-defined]
    assert match, listener.describe()
    eta_s = bench.parse_duration(match.group(2))  # type: ignore[attr-defined]
    # format_duration rounds to the minute past an hour: read back within that rounding
    assert abs(eta_s - seconds) <= (60 if seconds >= 3600 else 0)


def test_estimates_come_from_the_newest_run_measured_alike_else_the_model(
        tmp_path: Path) -> None:
    from dataclasses import replace

    from runner.spec import load, matrix
    from runner.store import folders, select
    from tests.synthetic import SMALL_SPEC, write_synthetic_run

    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    run = folders.load_run(write_synthetic_run(tmp_path / "results", spec_path))
    plan = matrix.expand(load.load_spec(spec_path))
    first, *rest = plan.scenarios

    def walls(wall_s: float, only: str | None = None, iterations: int = 2) -> select.RunTimes:
        scenarios = {r.scenario_id for r in run.records if only in (None, r.scenario_id)}
        return select.RunTimes(replace(plan.spec.repetitions, iterations=iterations),
                               {sid: (wall_s, wall_s * 3, wall_s) for sid in scenarios})

    history = [walls(9.0, iterations=7),  # newest, but other iterations per process
               walls(2.0, only=first.id), walls(5.0)]
    estimates = progress.scenario_estimates(plan, history=history)
    assert estimates[first.id] == 2.0
    assert [estimates[s.id] for s in rest] == [5.0] * len(rest)
    model = progress.scenario_estimates(plan)
    assert model[first.id] == estimate_process_s(first.memory_bytes, first.backing, 3)
    processes = plan.spec.repetitions.processes
    assert progress.estimate_plan_s(plan, estimates=estimates) == pytest.approx(
        progress.EXPERIMENT_BASE_S + processes * (2.0 + 5.0 * len(rest)))


def test_an_experiment_done_credits_its_summary_to_the_estimate() -> None:
    listener = ConsoleListener(verbosity=-1, stream=io.StringIO(), live=False)
    listener.plan([("a", 1, 10.0 + progress.EXPERIMENT_BASE_S)])
    listener.process(10.0)
    listener.experiment_done("a", 1)
    assert listener.estimate_done_s == listener.estimate_s


def test_plan_times_scenarios_this_machine_measured_before(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.synthetic import SMALL_SPEC, write_synthetic_run

    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    results = tmp_path / "results"
    args = ["plan", str(spec_path), "--results", str(results), "--machine", "test-machine"]
    assert main(args) == 0
    assert "about 1 s (rough: " in capsys.readouterr().out  # nothing stored yet: the model
    write_synthetic_run(results, spec_path)  # every process took 0.01 s
    assert main(args) == 0
    # 6 scenarios x 3 processes x 0.01 s, and a second for the summary
    assert ("estimated duration: about 1 s (as this machine measured every scenario last "
            "time)") in capsys.readouterr().out
