"""How processes ended, as a value checks judge: oom_killed (frame.with_outcomes)."""

from __future__ import annotations

import json
from pathlib import Path

from runner.analysis import verdict
from runner.analysis.frame import build_frame, measured, with_outcomes
from runner.spec import load
from runner.store.folders import SAMPLES, load_run
from tests.synthetic import write_synthetic_run

SPEC = """\
name: ended
title: How processes end
question: Is the mapping's process OOM-killed where malloc's is not?
matrix:
  backing: [malloc, mmap-anon]
  size: [4KiB, 64KiB]
fixed:
  access: write-page
  ops: 2
repetitions:
  processes: 3
  iterations: 2
checks:
  - claim: A mapping's process is OOM-killed where malloc's runs to its end
    metric: oom_killed
    expect: higher
    candidate: {backing: mmap-anon}
    reference: {backing: malloc}
  - claim: No malloc process is OOM-killed
    metric: oom_killed
    expect: same
    value: 0
    candidate: {backing: malloc}
"""


def _run_with_oom(tmp_path: Path, ended: set[tuple[str, int]]) -> Path:
    """A synthetic run of SPEC whose processes (size, process index) of mmap-anon the OOM
    killer ended, as the scheduler records them."""
    spec = tmp_path / "ended.yaml"
    spec.write_text(SPEC)
    run_dir = write_synthetic_run(tmp_path / "results", spec)
    ids = {s["id"]: s["params"] for s in json.loads((run_dir / "manifest.json").read_text())
           ["scenarios"]}
    lines = []
    for line in (run_dir / SAMPLES).read_text().splitlines():
        record = json.loads(line)
        params = ids[record["scenario_id"]]
        if params["backing"] == "mmap-anon" and (
                (params["size_bytes"], record["process_index"]) in ended):
            record |= {"status": "oom", "signal": "SIGKILL", "probe": None, "exit_code": None,
                       "stderr_tail": "alloclab: OOM-killed in its memory cgroup\n"}
        lines.append(json.dumps(record))
    (run_dir / SAMPLES).write_text("\n".join(lines) + "\n")
    return run_dir


def _verdicts(run_dir: Path, spec_text: str = SPEC) -> list[verdict.Verdict]:
    run = load_run(run_dir)
    spec = run_dir / "spec.yaml"
    spec.write_text(spec_text)
    return verdict.run_verdicts(run, load.load_spec(spec), measured(build_frame(run)))


def test_each_oom_killed_process_is_one_row_of_oom_killed_and_the_others_are_zero(
        tmp_path: Path) -> None:
    run = load_run(_run_with_oom(tmp_path, {(4096, 0), (65536, 2)}))
    samples = with_outcomes(measured(build_frame(run)), run)
    ended = samples[samples["oom_killed"] == 1]
    assert sorted(ended["process_index"]) == [0, 2]
    assert ended["first_touch_ns_per_page"].isna().all()  # no sample of another metric
    # 4 scenarios x 3 processes x 2 iterations, less the two ended processes' samples
    assert (samples["oom_killed"] == 0).sum() == 4 * 3 * 2 - 2 * 2


def test_a_check_judges_how_processes_ended(tmp_path: Path) -> None:
    every = {(size, p) for size in (4096, 65536) for p in range(3)}
    killed, none_killed = _verdicts(_run_with_oom(tmp_path, every))
    assert killed.status == "holds", killed.text
    assert [c.candidate_median for c in killed.comparisons] == [1.0, 1.0]
    assert none_killed.status == "holds", none_killed.text


def test_one_process_that_ran_to_its_end_keeps_the_claim_from_holding(tmp_path: Path) -> None:
    """Every process counts: a scenario where the killer spared one process is not one whose
    processes are OOM-killed (undecided there), and where none was killed it contradicts."""
    spared_one = {(4096, 0), (4096, 1)}
    killed, _ = _verdicts(_run_with_oom(tmp_path, spared_one))
    outcomes = {c.where: c.outcome for c in killed.comparisons}
    assert outcomes == {"size=4KiB": "undecided", "size=64KiB": "contradicts"}
    assert killed.status == "does not hold", killed.text
