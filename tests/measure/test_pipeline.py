"""run_plan with a fake probe: reuse of unchanged scenarios, load snapshots, allocator env."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from runner.cli import commands
from runner.core.model import ProcessRecord
from runner.measure import pipeline
from runner.probe import execute, native
from runner.report import site
from runner.store import folders
from runner.store.folders import load_run
from tests.synthetic import SMALL_SPEC, fake_probe_output, write_synthetic_run

TEMPLATES = Path(__file__).parents[2] / "templates"

SPEC = """\
name: reuse
title: Reuse
question: Does a spec change rerun only what it changed?
matrix:
  backing: [malloc, mmap-anon]
  size: [4KiB, 64KiB]
fixed:
  access: write-page
  ops: 2
repetitions:
  processes: 3
charts:
  - title: touch
    metric: first_touch_ns_per_page
    x: size
    series: backing
"""
BINARY = native.ProbeBinary(Path("/bin/true"), "feedfacefeedface", "cc (Test) 1.0", ("-O2",))


@dataclass
class FakeProbe:
    """Stands in for execute.run_process: records each call, answers with synthetic output."""

    spec: Path
    slow_first: float = 1.0
    calls: list[tuple[str, int]] = field(default_factory=list)
    envs: list[Mapping[str, str] | None] = field(default_factory=list)

    def __call__(self, argv: list[str], *, scenario_id: str, process_index: int,
                 timeout_s: float, extra_env: Mapping[str, str] | None = None) -> ProcessRecord:
        [plan] = pipeline.load_plans([self.spec])
        scenario = {s.id: s for s in plan.scenarios}[scenario_id]
        self.calls.append((scenario_id, process_index))
        self.envs.append(extra_env)
        scale = self.slow_first if process_index == 0 else 1.0
        return ProcessRecord(scenario_id, process_index, "ok", 0, None, 0.01, "",
                             fake_probe_output(scenario, process_index, scale=scale))


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "reuse.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture
def fake(spec: Path, monkeypatch: pytest.MonkeyPatch) -> FakeProbe:
    fake_probe = FakeProbe(spec)
    monkeypatch.setattr(execute, "run_process", fake_probe)
    for name in ("GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_ARENA_MAX"):
        monkeypatch.delenv(name, raising=False)
    return fake_probe


def _run(spec: Path, tmp_path: Path, **options: Any) -> pipeline.RunSummary:
    [plan] = pipeline.load_plans([spec])
    run_options = pipeline.RunOptions(results_dir=tmp_path / "results", machine="m",
                                      command="alloclab run", seed=1, **options)
    return pipeline.run_plan(plan, BINARY, run_options, lambda _: None)


def test_a_new_run_records_load_around_it_and_measures_everything(
        spec: Path, tmp_path: Path, fake: FakeProbe) -> None:
    summary = _run(spec, tmp_path)
    run = load_run(summary.run_dir)
    assert len(fake.calls) == 4 * 3 and summary.reused == 0
    assert run.manifest["reused_from"] == {}
    [session] = run.manifest["load"]
    assert session["after"]["total_jiffies"] >= session["before"]["total_jiffies"]
    # A synthetic run is steady; the machine's load is not the test's to judge.
    assert not [w for w in summary.warnings if "varies" in w or "first process" in w]


def test_a_spec_change_reruns_only_the_scenarios_it_changed(
        spec: Path, tmp_path: Path, fake: FakeProbe) -> None:
    first = load_run(_run(spec, tmp_path).run_dir)
    spec.write_text(SPEC.replace("[4KiB, 64KiB]", "[4KiB, 64KiB, 1MiB]"))
    fake.calls.clear()
    summary = _run(spec, tmp_path)
    second = load_run(summary.run_dir)
    assert second.path != first.path and summary.reused == 4
    new_ids = {s["id"] for s in second.manifest["scenarios"]} - {
        s["id"] for s in first.manifest["scenarios"]}
    assert {sid for sid, _ in fake.calls} == new_ids and len(fake.calls) == 2 * 3
    assert set(second.manifest["reused_from"].values()) == {first.run_id}
    assert set(second.manifest["reused_from"]) == {s["id"] for s in first.manifest["scenarios"]}
    copied = [r for r in second.records if r.scenario_id in second.manifest["reused_from"]]
    assert sorted(copied, key=lambda r: (r.scenario_id, r.process_index)) == sorted(
        first.records, key=lambda r: (r.scenario_id, r.process_index))

    # An edit to a check leaves the data to copy, and a new run judges it by the new check;
    # it names the run that measured each scenario, not the one that copied it.
    fake.calls.clear()
    spec.write_text(SPEC.replace("[4KiB, 64KiB]", "[4KiB, 64KiB, 1MiB]").replace(
        "title: touch", "title: first touch"))
    third = load_run(_run(spec, tmp_path).run_dir)
    assert fake.calls == [] and third.path not in (first.path, second.path)
    assert third.manifest["reused_from"] == {
        sid: second.manifest["reused_from"].get(sid, second.run_id)
        for sid in third.manifest["reused_from"]}
    assert len(third.manifest["reused_from"]) == 6


def test_an_unchanged_spec_already_measured_makes_no_copy_of_its_run(
        spec: Path, tmp_path: Path, fake: FakeProbe) -> None:
    """Same spec, probe, repetitions, conditions, boot: nothing to measure or judge anew, and
    a copy would show the same data under another run's time, load and commit."""
    first = _run(spec, tmp_path)
    fake.calls.clear()
    said: list[str] = []
    [plan] = pipeline.load_plans([spec])
    again = pipeline.run_plan(plan, BINARY, pipeline.RunOptions(
        results_dir=tmp_path / "results", machine="m", command="alloclab run", seed=1),
        said.append)
    assert fake.calls == [] and again.run_dir == first.run_dir and again.processes_run == 0
    assert again.verdicts == first.verdicts
    assert len(list(first.run_dir.parent.iterdir())) == 1
    assert any("nothing to measure" in line and first.run_dir.name in line for line in said)
    # --fresh measures it all again, in a run of its own.
    fresh = _run(spec, tmp_path, resume=False, reuse=False)
    assert len(fake.calls) == 12 and fresh.run_dir != first.run_dir


def test_fresh_measures_everything_again(spec: Path, tmp_path: Path, fake: FakeProbe) -> None:
    _run(spec, tmp_path)
    fake.calls.clear()
    summary = _run(spec, tmp_path, resume=False, reuse=False)
    assert len(fake.calls) == 12 and summary.reused == 0


def test_nothing_is_reused_across_a_confounding_change_or_other_repetitions(
        spec: Path, tmp_path: Path, fake: FakeProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    _run(spec, tmp_path)
    fake.calls.clear()
    assert _run(spec, tmp_path, processes=2).reused == 0
    assert len(fake.calls) == 4 * 2
    fake.calls.clear()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4096")
    summary = _run(spec, tmp_path)
    assert summary.reused == 0 and len(fake.calls) == 12


def test_allocator_variables_reach_the_probe_and_the_fingerprint(
        spec: Path, tmp_path: Path, fake: FakeProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "1")
    run = load_run(_run(spec, tmp_path).run_dir)
    assert all(env == {"MALLOC_ARENA_MAX": "1"} for env in fake.envs)
    assert run.manifest["fingerprint"]["allocator_env"] == {"MALLOC_ARENA_MAX": "1"}


def test_noise_warnings_come_back_with_the_summary(spec: Path, tmp_path: Path,
                                                  fake: FakeProbe) -> None:
    fake.slow_first = 3.0
    summary = _run(spec, tmp_path)
    assert any("the first process was at least 1.5× slower" in w for w in summary.warnings)


def test_nothing_is_reused_from_another_boot(
        spec: Path, tmp_path: Path, fake: FakeProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh copy of the machine with the same host name measures: it is another boot."""
    first = load_run(_run(spec, tmp_path).run_dir)
    manifest = dict(first.manifest)
    manifest["fingerprint"] = {**manifest["fingerprint"], "boot_id": "another-boot"}
    folders.write_manifest(first.path, manifest)
    fake.calls.clear()
    summary = _run(spec, tmp_path)
    assert summary.reused == 0 and len(fake.calls) == 12


def test_the_summary_carries_each_checks_verdict(spec: Path, tmp_path: Path,
                                                 fake: FakeProbe) -> None:
    spec.write_text(SPEC + """\
checks:
  - claim: a page faults once on first touch
    metric: first_touch_minor_faults_per_page
    expect: same
    value: 1
    candidate: {backing: mmap-anon}
  - claim: mmap-anon is faster
    metric: first_touch_ns_per_page
    expect: lower
    candidate: {backing: mmap-anon}
    reference: {backing: malloc}
""")
    summary = _run(spec, tmp_path)
    # The fake probe's samples agree: exact ranges collapse to one value, and two processes
    # a scenario give no interval.
    assert summary.verdicts == (
        "holds: mmap-anon 1 vs 1 at size=4KiB; 1 vs 1 at size=64KiB — a page faults once on "
        "first touch",
        "inconclusive: mmap-anon 1× malloc [no interval] at size=4KiB; 1× [no interval] at "
        "size=64KiB — mmap-anon is faster (2 of 2 pairs had too few processes for a 98.75% "
        "interval (6 paired rounds): run at least 8 per scenario)")


def test_the_quick_profile_leaves_large_scenarios_out_and_says_so() -> None:
    from runner.spec.load import parse_spec
    from runner.spec.matrix import expand

    plan = expand(parse_spec("name: q\ntitle: t\nquestion: q\nmatrix:\n  backing: malloc\n"
                             "  size: [4KiB, 64MiB, 1GiB]\nfixed:\n  ops: 1\n", "q.yaml"))
    quick = pipeline.RunOptions(results_dir=Path("r"), machine="m", command="", quick=True)
    [kept] = pipeline.profile_plans([plan], quick)
    assert [s.size_bytes for s in kept.scenarios] == [4096, 64 << 20]
    assert [dict(d.params)["size"] for d in kept.dropped] == [1 << 30]
    assert "left out of --quick: needs 1GiB per process" in kept.dropped[0].reason
    full = pipeline.RunOptions(results_dir=Path("r"), machine="m", command="")
    assert pipeline.profile_plans([plan], full) == [plan]


def test_a_new_run_renders_its_experiments_page_and_the_index_only(
        spec: Path, tmp_path: Path, fake: FakeProbe, monkeypatch: pytest.MonkeyPatch) -> None:
    results, reports = tmp_path / "results", tmp_path / "reports"
    other = tmp_path / "small.yaml"
    other.write_text(SMALL_SPEC)
    write_synthetic_run(results, other)
    _run(spec, tmp_path)
    commands.render(results, reports, TEMPLATES)
    kept = (reports / "small.html").read_bytes()
    rendered: list[str] = []
    render_page = site._render_experiment_page
    monkeypatch.setattr(site, "_render_experiment_page",
                        lambda job: rendered.append(job.name) or render_page(job))
    # What `alloclab run --fresh reuse.yaml` stores before rendering.
    second = _run(spec, tmp_path, resume=False, reuse=False)
    commands.render(results, reports, TEMPLATES)
    assert rendered == ["reuse"]
    assert (reports / "small.html").read_bytes() == kept
    assert second.run_dir.name in (reports / "index.html").read_text()


def test_a_run_summary_says_what_was_measured_skipped_and_already_there() -> None:
    def said(**counts: int) -> str:
        return pipeline.RunSummary("x", Path("r"), **counts).describe()
    assert said(processes_run=12, processes_failed=0) == "x: 12 processes run -> r"
    # Skipped processes were never started: not counted as run.
    assert said(processes_run=12, processes_failed=1, processes_skipped=6) == (
        "x: 6 processes run, 6 skipped (not measurable here), 1 did not finish -> r")
    assert said(processes_run=0, processes_failed=0, reused=4) == (
        "x: nothing run, all 4 scenarios already measured -> r")


def test_scenarios_this_machine_skips_take_no_time_in_the_estimate(
        spec: Path, tmp_path: Path) -> None:
    [plan] = pipeline.load_plans([spec])
    options = pipeline.RunOptions(results_dir=tmp_path / "results", machine="m", command="")
    every = pipeline.duration_estimate(plan, options)
    first = plan.scenarios[0]
    fewer = pipeline.duration_estimate(plan, options, skipped={first.id})
    assert fewer.per_process_s[first.id] == 0.0 and fewer.scenarios == every.scenarios - 1
    assert fewer.seconds == pytest.approx(
        every.seconds - plan.spec.repetitions.processes * every.per_process_s[first.id])


def test_what_was_measured_whole_is_known_before_the_run(
        spec: Path, tmp_path: Path, fake: FakeProbe) -> None:
    """run_experiments says "nothing to measure" before its plan: the same decision as
    run_plan's, made ahead (and a look at the manifests alone when no run can qualify)."""
    from runner.measure import reuse

    first = _run(spec, tmp_path)

    def found() -> Path | None:
        [plan] = pipeline.load_plans([spec])
        source = reuse.already_measured(plan, tmp_path / "results", "m",
                                        plan.spec.repetitions, BINARY.source_hash, resume=True)
        return None if source is None else source.path

    assert found() == first.run_dir
    assert reuse.nothing_to_measure("reuse", load_run(first.run_dir)).startswith(
        f"reuse: nothing to measure: run {first.run_dir.name} measured all of this spec")
    spec.write_text(SPEC.replace("title: touch", "title: first touch"))  # words only: a new run
    assert found() is None
    spec.write_text(SPEC)
    manifest = dict(load_run(first.run_dir).manifest)
    manifest["fingerprint"] = {**manifest["fingerprint"], "boot_id": "another-boot"}
    folders.write_manifest(first.run_dir, manifest)
    assert found() is None
