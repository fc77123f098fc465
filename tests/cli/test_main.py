"""The command line end to end: exit statuses, one-line errors, and a real run that resumes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli.main import main
from runner.probe import execute
from runner.store.select import latest_runs, list_runs
from tests.synthetic import COMPARE_SPEC, load_session, write_synthetic_run

ROOT = Path(__file__).parents[2]
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


# fork takes one thread: the threads axis collapses to 1, the chart's x axis with it.
COLLAPSING_SPEC = TINY_SPEC.replace("  size: [4KiB, 1MiB]\n", "  threads: [1, 2]\n").replace(
    "  ops: 4\n", "  ops: 4\n  workload: fork\n").replace("x: size", "x: threads")


def test_validate_warns_of_a_collapsed_axis_and_strict_refuses_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "collapsing.yaml"
    spec.write_text(COLLAPSING_SPEC)
    assert main(["validate", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{spec}: ok, 1 warning(s): tiny: 2 scenarios, 2 combinations")
    assert "  not measured: malloc threads=2: threads share the blocks" in out  # as before
    assert err.startswith(f"{spec}: warning: matrix.threads collapses to one value, 1 (so "
                          "charts[0]'s x axis has one point)") and err.count("\n") == 1
    assert main(["validate", "--strict", str(spec)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == (f"{spec}: refused: --strict counts its 1 warning(s) as "
                                    "errors")


def test_run_strict_refuses_a_spec_with_warnings_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "collapsing.yaml"
    spec.write_text(COLLAPSING_SPEC)
    assert main([*_run_args(tmp_path, spec), "--strict"]) == 2
    err = capsys.readouterr().err
    assert f"{spec}: warning: matrix.threads collapses" in err
    assert "--strict: the 1 warning(s) above count as errors, so nothing was run" in err
    assert not (tmp_path / "results").exists()


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
    assert "54 scenarios" in out and "1GiB" in out


def test_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((ROOT / "runner" / "spec" / "spec.schema.json").read_text())


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
    spec.write_text(TINY_SPEC.replace("title: touch", "title: first touch"))  # words only
    assert main(_run_args(tmp_path, spec)) == 0
    [run] = list_runs(tmp_path / "results")  # the same run, continued
    assert run.path == partial.path and run.finished
    assert "title: first touch" in run.manifest["spec_text"]
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
    assert main(_run_args(tmp_path, spec)) == 1  # stored and reported, and said in the status
    [run] = latest_runs(tmp_path / "results")
    statuses = {(s["label"], r.status) for r in run.records
                for s in run.manifest["scenarios"] if s["id"] == r.scenario_id}
    assert ("malloc 64MiB", "timeout") in statuses
    assert len(run.records) == 8 and run.finished
    assert "timeout" in (tmp_path / "reports" / "slow.html").read_text()


@pytest.mark.parametrize(("command", "option"), [
    ("compare", "--fail-above"), ("export", "--output"), ("import", "--results"),
    ("report", "--check")])
def test_help_explains_the_comparison_subcommands(
        command: str, option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert out.startswith(f"usage: alloclab {command}") and option in out
    assert len(out.splitlines()) > 8


@pytest.fixture
def compare_runs_dir(tmp_path: Path) -> Path:
    """Three synthetic runs of one experiment: a baseline, an A/A twin and a 20% slowdown."""
    spec = tmp_path / "cmp.yaml"
    spec.write_text(COMPARE_SPEC)
    results = tmp_path / "results"
    write_synthetic_run(results, spec, run_id="r1", noise=0.02, seed=1)
    write_synthetic_run(results, spec, run_id="r2", noise=0.02, seed=2)
    write_synthetic_run(results, spec, run_id="r3", noise=0.02, seed=3, scale=1.2)
    return results / "test-machine" / "cmp"


def test_compare_fails_above_the_threshold_only_on_a_regression(
        compare_runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, twin, slow = (str(compare_runs_dir / r) for r in ("r1", "r2", "r3"))
    assert main(["compare", base, twin, "--fail-above", "10%"]) == 0
    assert "✅ No regression above +10%." in capsys.readouterr().out
    markdown = tmp_path / "pr.md"
    assert main(["compare", base, slow, "--fail-above", "10%", "--markdown", str(markdown),
                 "--out", str(tmp_path / "cmp"), "--templates",
                 str(ROOT / "templates")]) == 1
    out, err = capsys.readouterr()
    assert "❌ **8 regression(s) above +10%:**" in out and out == markdown.read_text()
    assert "failing" in err and (tmp_path / "cmp" / "compare.html").exists()
    assert main(["compare", base, slow, "--fail-above", "25"]) == 0  # 20% is below 25%
    assert main(["compare", base, slow]) == 0  # no threshold, no gate


def test_a_regression_under_different_load_still_fails_the_gate_and_names_the_load(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "cmp.yaml"
    spec.write_text(COMPARE_SPEC)
    results = tmp_path / "results"
    runs = [str(write_synthetic_run(results, spec, run_id=run_id, noise=0.02, seed=seed,
                                    scale=scale, manifest_extra={"load": [load_session(cpus)]}))
            for run_id, seed, scale, cpus in (("r1", 1, 1.0, 1.07), ("r2", 2, 1.3, 0.02))]
    assert main(["compare", *runs, "--fail-above", "10%"]) == 1
    err = capsys.readouterr().err
    assert ("8 regression(s) above +10% (8 measured under different load: 1.07 vs 0.02 CPUs "
            "of other work; rerun both on a quiet machine to tell): failing") in err


def test_compare_takes_an_experiment_folder_as_its_latest_run(
        compare_runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(compare_runs_dir), "--baseline",
                 str(compare_runs_dir / "r1")]) == 0
    assert "Baseline `test-machine/cmp/r1` against `test-machine/cmp/r3`" in \
        capsys.readouterr().out


@pytest.mark.parametrize(("arguments", "message"), [
    (["--metric", "first_touch_ns_per_pages"], "did you mean first_touch_ns_per_page?"),
    (["--baseline", "RUN1"], "name at least one run besides the baseline"),
])
def test_compare_usage_errors_are_one_line_exit_2(
        compare_runs_dir: Path, capsys: pytest.CaptureFixture[str], arguments: list[str],
        message: str) -> None:
    run = str(compare_runs_dir / "r1")
    assert main(["compare", run, *[run if a == "RUN1" else a for a in arguments]]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_compare_refuses_a_folder_that_is_no_run(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_report_check_detects_a_modified_or_stale_report(
        tmp_path: Path, small_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_synthetic_run(tmp_path / "results", small_spec)
    paths = ["--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"),
             "--templates", str(ROOT / "templates")]
    assert main(["report", *paths]) == 0
    assert main(["report", "--check", *paths]) == 0
    assert "matches its results byte for byte" in capsys.readouterr().err
    page = tmp_path / "reports" / "small.html"
    page.write_text(page.read_text().replace("How do two", "How do three"))
    (tmp_path / "reports" / "old.html").write_text("gone")
    assert main(["report", "--check", *paths]) == 1
    out = capsys.readouterr().out
    assert f"{page}: differs" in out and "old.html: not produced by the results (stale)" in out
    assert "How do three" in page.read_text()  # --check writes nothing


def test_report_judges_again_with_edited_checks_and_not_with_a_changed_matrix(
        tmp_path: Path, small_spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An edited claim reaches the page through `report` alone, no run; --check finds a spec
    not yet judged with; a spec that measures more leaves the page as measured and says so."""
    write_synthetic_run(tmp_path / "results", small_spec)
    paths = ["--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"),
             "--templates", str(ROOT / "templates")]
    assert main(["report", str(small_spec), *paths]) == 0
    assert "judged again" not in capsys.readouterr().err  # the spec as run
    small_spec.write_text(small_spec.read_text().replace(
        "costs the same from mmap as from malloc", "costs mmap what it costs malloc"))
    assert main(["report", "--check", str(small_spec), *paths]) == 1
    assert (f"{small_spec}: its checks differ from those the runs of test-machine are judged "
            "with; `alloclab report` judges them again") in capsys.readouterr().out
    assert main(["report", "--as-run", "--check", *paths]) == 0  # the results alone: unchanged
    capsys.readouterr()
    assert main(["report", str(small_spec), *paths]) == 0
    assert (f"small: judged again with the checks of {small_spec} on test-machine (stored "
            "beside each run as judged-with.json)") in capsys.readouterr().err
    page = (tmp_path / "reports" / "small.html").read_text()
    assert "costs mmap what it costs malloc" in page and "Spec judged with" in page
    assert "costs the same from mmap as from malloc" in page  # the spec as run, kept below
    assert main(["report", "--check", str(small_spec), *paths]) == 0
    [run_dir] = (tmp_path / "results" / "test-machine" / "small").iterdir()
    assert len(list(run_dir.parent.iterdir())) == 1  # no new run folder
    small_spec.write_text(small_spec.read_text().replace("processes: 3", "processes: 4"))
    assert main(["report", str(small_spec), *paths]) == 0
    err = capsys.readouterr().err
    assert (f"small: {small_spec} measures something other than run "
            f"test-machine/small/{run_dir.name} (repetitions changed): its page shows the run "
            f"as measured; `alloclab run {small_spec}` measures the change") in err
    assert "costs mmap what it costs malloc" in (tmp_path / "reports" / "small.html").read_text()


def test_export_then_import_on_another_machine(tmp_path: Path, small_spec: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_synthetic_run(tmp_path / "theirs", small_spec, machine="laptop")
    archive_path = tmp_path / "laptop.tar.gz"
    assert main(["export", str(run_dir.parent), "-o", str(archive_path)]) == 0
    assert main(["import", str(archive_path), "--results", str(tmp_path / "ours")]) == 0
    assert "added:" in capsys.readouterr().err
    [run] = list_runs(tmp_path / "ours")
    assert run.machine == "laptop" and len(run.records) == 6 * 3
    assert main(["import", str(archive_path), "--results", str(tmp_path / "ours")]) == 0
    assert "already present" in capsys.readouterr().err


@pytest.mark.probe
def test_quick_profile_runs_fewer_repetitions_and_says_so(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.replace("processes: 2", "processes: 5"))
    assert main([*_run_args(tmp_path, spec), "--quick"]) == 0
    [run] = list_runs(tmp_path / "results")
    assert run.manifest["repetitions"] == {"processes": 2, "warmup": 0, "iterations": 1,
                                           "max_processes": 2, "extra_time": 1.0}
    assert run.manifest["adaptive"]["ending"] == "off"  # no extra rounds in a first look
    assert run.reduced and len(run.records) == 4 * 2
    assert "fewer repetitions than the spec asks for" in (
        tmp_path / "reports" / "tiny.html").read_text()


def test_run_ends_with_its_verdicts_wrapped_and_its_total_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from runner.measure import pipeline

    long_claim = "mmap reads a file in the page cache faster than read() " * 3
    verdicts = ("holds: mmap-anon 1 vs 1 at size=4KiB — pages fault once",
                f"does not hold: mmap-file 1.31× read-file [1.22–1.40] at size=4KiB — "
                f"{long_claim}")

    def fake_run(*_: object) -> list[pipeline.RunSummary]:
        return [pipeline.RunSummary("tiny", tmp_path, 8, 0, verdicts=verdicts,
                                    processes_skipped=2)]

    monkeypatch.setattr(pipeline, "run_experiments", fake_run)
    assert main([*_run_args(tmp_path, tmp_path / "tiny.yaml"), "--no-report"]) == 0
    lines = capsys.readouterr().err.splitlines()
    first = lines.index("tiny: verdict: holds: mmap-anon 1 vs 1 at size=4KiB — pages fault once")
    wrapped = lines[first + 1:-1]
    assert len(wrapped) == 3 and all(len(line) <= 120 for line in wrapped)
    assert wrapped[0].startswith("tiny: verdict: does not hold: mmap-file 1.31× read-file")
    assert all(line.startswith("    ") for line in wrapped[1:])  # continuations, indented
    assert " ".join(w.strip() for w in wrapped) == f"tiny: verdict: {verdicts[1]}".strip()
    # Skipped processes were never started: not counted as measured.
    assert re.fullmatch(r"measured 6 processes of 1 experiment in \d+ s", lines[-1])
def test_resume_hint_drops_fresh() -> None:
    from runner.cli.main import resume_command
    assert resume_command(["run", "--fresh", "x.yaml", "--processes", "2"]) == \
        "alloclab run x.yaml --processes 2"


@pytest.mark.parametrize("value", ["0", "-1", "many", "10001"])
def test_processes_must_be_a_positive_bounded_count(value: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "--processes", value, "x.yaml"])
    assert caught.value.code == 2
    assert "is not a number of processes from 1 to 10000" in capsys.readouterr().err


@pytest.mark.parametrize("label", ["..", ".", "../../x", "/abs", "", "a/b", "x\n", "-x",
                                   "a" * 65, "javascript:alert(7)", "a..b"])
def test_machine_labels_that_are_not_plain_names_are_refused(
        label: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    assert main(["run", str(spec), "--results", str(tmp_path / "results"),
                 f"--machine={label}", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a folder name alloclab accepts" in err
    assert not (tmp_path / "results").exists()
    assert not (tmp_path / "x").exists()


def test_alloclab_machine_is_checked_like_machine(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    monkeypatch.setenv("ALLOCLAB_MACHINE", "..")
    assert main(["run", str(spec), "--results", str(tmp_path / "r"), "--no-report"]) == 2
    assert "'..' (--machine or $ALLOCLAB_MACHINE)" in capsys.readouterr().err


def test_a_host_name_becomes_a_label() -> None:
    from runner.core.names import is_label, label_from_host
    assert label_from_host("build-01.example.org") == "build-01.example.org"
    assert label_from_host("..weird/host name") == "weird-host-name"
    assert label_from_host("") == "machine"
    assert is_label(label_from_host("x" * 300))


def test_a_missing_file_dir_is_refused_at_validate(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "files.yaml"
    spec.write_text("name: files\ntitle: t\nquestion: q\nmatrix:\n  size: 4KiB\nfixed:\n"
                    f"  backing: read-file\n  file_dir: {tmp_path}/missing\n")
    assert main(["validate", str(spec)]) == 2
    assert capsys.readouterr().err == (f"{spec}: file_dir: {tmp_path}/missing is not a "
                                       "directory on this machine (create it, or choose "
                                       "another)\n")


def test_processes_override_is_bounded_by_probe_runs(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text("name: many\ntitle: t\nquestion: q\nmatrix:\n  size: [" +
                    ", ".join(str(4096 * (i + 1)) for i in range(20)) + "]\n")
    assert main(["run", str(spec), "--processes", "10000", "--results",
                 str(tmp_path / "r"), "--machine", "m", "--no-report"]) == 2
    assert "20 scenarios x 10000 processes = 200000 probe runs; at most 100000" in \
        capsys.readouterr().err


def test_compare_fail_above_with_nothing_compared_fails(
        compare_runs_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = compare_runs_dir / "r4"
    spec = compare_runs_dir.parent.parent.parent / "cmp.yaml"
    write_synthetic_run(compare_runs_dir.parent.parent, spec, run_id="r4")
    (empty / "samples.jsonl").write_text("")
    base = str(compare_runs_dir / "r1")
    for pair in ([base, str(empty)], [str(empty), base]):  # an empty candidate or baseline
        assert main(["compare", *pair, "--fail-above", "10%"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--fail-above: nothing was compared" in err
    assert main(["compare", base, str(empty)]) == 0  # without a gate it is only a report


def test_reports_naming_a_file_is_one_line_exit_3(
        compare_runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("")
    assert main(["report", "--results", str(compare_runs_dir.parent.parent), "--reports",
                 str(a_file), "--templates", str(ROOT / "templates")]) == 3
    err = capsys.readouterr().err
    assert err == f"alloclab: {a_file}: File exists\n"


def test_export_to_a_directory_is_one_line_exit_3(
        compare_runs_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(compare_runs_dir / "r1"), "-o", str(tmp_path)]) == 3
    assert capsys.readouterr().err == f"alloclab: {tmp_path}: Is a directory\n"


def test_a_full_disk_during_a_run_is_one_line_exit_3_and_debug_shows_the_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import errno
    import os

    from runner.store import folders

    def full(run_dir: Path, records: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir / "samples.jsonl"))

    monkeypatch.setattr(folders, "append_records", full)
    monkeypatch.setattr(folders.RecordWriter, "append",
                        lambda self, record: full(self._path.parent, [record]))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    args = [*_run_args(tmp_path, spec), "--no-report"]
    assert main(args) == 3
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("alloclab: ")
    assert err.splitlines()[-1].endswith("samples.jsonl: No space left on device")
    assert main(["--debug", *args]) == 3
    assert "Traceback" in capsys.readouterr().err


# argcomplete too: it is imported only when a shell completes (tests/cli/test_completion.py).
HEAVY_MODULES = ("pandas", "numpy", "matplotlib", "scipy", "jinja2", "argcomplete")
IMPORTS_AFTER = """
import sys
from runner.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:  # --version
    pass
print(" ".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize("command", [["--version"], ["validate"], ["plan", "--force"],
                                     ["schema"]])
def test_commands_that_render_nothing_import_no_data_or_plotting_library(
        tmp_path: Path, command: list[str]) -> None:
    # pandas and matplotlib alone took ~2 s to import: `alloclab --version` and `validate`
    # must not pay for them.
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    argv = [*command, str(spec)] if command[0] in ("validate", "plan") else command
    done = subprocess.run([sys.executable, "-c", IMPORTS_AFTER.format(heavy=HEAVY_MODULES),
                           *argv], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "", f"imported: {done.stderr.splitlines()[-1]}"
    assert "alloclab" in done.stdout or "tiny" in done.stdout or "$schema" in done.stdout


def test_validate_checks_every_file_and_names_each_bad_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One bad spec does not hide the others: each is named with its error, the good ones
    are said ok, and the exit status says that some were bad."""
    good = ROOT / "experiments" / "zeroing.yaml"
    (tmp_path / "a.yaml").write_text(good.read_text())
    (tmp_path / "b.yaml").write_text(
        good.read_text().replace("repetitions:", "repetitons:"))
    (tmp_path / "c.yaml").write_text(
        good.read_text().replace("name: zeroing", "name: zeroing-two").replace(
            "size: [", "size: [12 parsecs, "))
    assert main(["validate", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"{tmp_path / 'a.yaml'}: ok: zeroing" in captured.out
    errors = captured.err.splitlines()
    assert errors[0].startswith(f"{tmp_path / 'b.yaml'}:") and "repetitions" in errors[0]
    assert errors[1].startswith(f"{tmp_path / 'c.yaml'}:") and "12 parsecs" in errors[1]
    assert errors[2:] == ["2 of 3 spec files are invalid"]


def _verdicts(lines: list[str]) -> list[str]:
    """The verdict lines printed, each joined again from its wrapped lines."""
    joined: list[str] = []
    for line in lines:
        if ": verdict: " in line:
            joined.append(line)
        elif line.startswith("    ") and joined:
            joined[-1] += " " + line.strip()
    return joined


CHECKED_SPEC = TINY_SPEC + """\
checks:
  - claim: mmap-anon faults each page once on first touch
    metric: first_touch_minor_faults_per_page
    expect: same
    value: 1
    candidate: {backing: mmap-anon}
  - claim: mmap-anon touches a page faster than malloc
    metric: first_touch_ns_per_page
    expect: lower
    candidate: {backing: mmap-anon}
    reference: {backing: malloc}
"""


@pytest.mark.probe
def test_a_run_says_its_numbers_and_an_unchanged_one_says_nothing_to_measure_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(CHECKED_SPEC)
    assert main([*_run_args(tmp_path, spec), "--no-report"]) == 0
    lines = capsys.readouterr().err.splitlines()
    verdicts = _verdicts(lines)
    # An exact check gives the sample ranges; a timing check of two processes a scenario its
    # ratio, without an interval.
    assert re.fullmatch(r"tiny: verdict: \w[\w ]*: mmap-anon [\d.–]+ vs 1 at size=4KiB; "
                        r"[\d.–]+ vs 1 at size=1MiB — mmap-anon faults each page once on first "
                        "touch", verdicts[0]), verdicts[0]
    assert re.fullmatch(r"tiny: verdict: inconclusive: mmap-anon (1/)?[\d.]+×? (of )?malloc "
                        r"\[no interval\] at size=4KiB; (1/)?[\d.]+×? \[no interval\] at "
                        "size=1MiB — mmap-anon touches a page faster than malloc "
                        r"\(2 of 2 pairs had too few processes for a 98.75% interval \(\d paired "
                        r"rounds\): run at least 8 per scenario\)", verdicts[1]), verdicts[1]
    assert "1 experiment, 8 processes, about " in "\n".join(lines)
    # Extra rounds for the undecided pairs follow the 8 base processes.
    assert re.fullmatch(r"measured (8|16|24) processes of 1 experiment in \d+ s", lines[-1])

    assert main([*_run_args(tmp_path, spec), "--no-report"]) == 0
    again = capsys.readouterr().err.splitlines()
    # Said before anything else would run, and no plan of processes that will not run.
    assert again[1].startswith("tiny: nothing to measure: run "), again
    assert not [line for line in again if "processes, about" in line or "[1/1]" in line]
    assert _verdicts(again) == verdicts
    assert again[-1].startswith("measured 0 processes of 1 experiment in ")


@pytest.mark.probe
def test_quick_says_what_it_left_out_in_one_line_and_lists_it_with_v(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.replace("[4KiB, 1MiB]", "[4KiB, 128MiB]").replace("ops: 4",
                                                                                "ops: 1"))
    assert main([*_run_args(tmp_path, spec), "--no-report", "--quick"]) == 0
    err = capsys.readouterr().err
    assert ("2 scenarios need more than 64MiB per process: left out of --quick "
            "(-v lists them)") in err.splitlines()
    assert "not measured" not in err and "1 experiment, 4 processes, about " in err
    assert main([*_run_args(tmp_path, spec), "--no-report", "--quick", "--fresh", "-v"]) == 0
    listed = [line for line in capsys.readouterr().err.splitlines() if "not measured" in line]
    assert listed == [f"tiny: not measured: {backing} 128MiB: left out of --quick: needs "
                      "128MiB per process (the quick profile measures up to 64MiB; a full run "
                      "measures it)" for backing in ("malloc", "mmap-anon")]
