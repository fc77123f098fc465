"""Data files shared by the processes of a scenario: which share, names, room, removal, and
the real probe creating the file once and reusing it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runner.core.model import PHASES, ProcessRecord, Repetitions, Scenario
from runner.core.parameters import PARAMETERS
from runner.machine.preconditions import MachineFacts
from runner.measure import datafiles, schedule
from runner.probe import execute
from runner.probe.native import ProbeBinary, build_probe, probe_argv

FACTS = MachineFacts(free_huge_pages=0, memlock_limit_bytes=None, euid=0, thp_enabled="madvise",
                     max_map_count=65530, kernel=(6, 18))


def scenario(**fields: Any) -> Scenario:
    values: dict[str, Any] = {p.field: p.default for p in PARAMETERS}
    return Scenario(**{**values, "backing": "mmap-file", "access": "read-all", "ops": 1,
                       "size_bytes": 1 << 20, **fields})


@pytest.mark.parametrize(("fields", "shares"), [
    ({}, True),
    ({"backing": "read-file"}, True),
    ({"access": "write-page"}, True),  # a private mapping: copies on write, the file unchanged
    ({"sharing": "shared", "protection": "read"}, True),
    ({"sharing": "shared", "access": "write-all"}, False),
    ({"backing": "write-file", "access": "write-all"}, False),
    ({"workload": "limits", "access": "none"}, False),
    ({"backing": "mmap-anon"}, False),
])
def test_which_scenarios_share_a_data_file(fields: dict[str, Any], shares: bool) -> None:
    assert datafiles.can_share(scenario(**fields)) is shares


def test_names_say_experiment_run_runner_and_scenario(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "m" / "file-read" / "20260101T000000Z"
    s = scenario(file_dir=str(tmp_path))
    names = datafiles.name_files([s, s, scenario(backing="mmap-anon")], run_dir,
                                 {str(tmp_path): 1 << 40})
    assert names == {s.id: tmp_path / f"alloclab-file-read-20260101T000000Z-{os.getpid()}-"
                                      f"{s.id}.data"}


def test_only_files_that_fit_together_are_shared_the_largest_first(tmp_path: Path) -> None:
    run_dir = tmp_path / "e" / "r"
    sizes = [1 << 20, 4 << 20, 16 << 20, 64 << 20]
    scenarios = [scenario(size_bytes=size, file_dir="/data") for size in sizes]
    # 80% of 120 MiB = 96 MiB; one private file of 64 MiB kept free leaves 32 MiB to share:
    # the 16 MiB and 4 MiB files, then the 1 MiB file; the 64 MiB one makes its own.
    names = datafiles.name_files(scenarios, run_dir, {"/data": 120 << 20})
    assert set(names) == {s.id for s in scenarios[:3]}
    assert datafiles.name_files(scenarios, run_dir, {}) == {}  # free space unknown: none


def test_leftovers_of_this_run_only_are_removed(tmp_path: Path) -> None:
    run_dir = tmp_path / "e" / "r1"
    ours = tmp_path / "alloclab-e-r1-123-abc.data"
    others = [tmp_path / "alloclab-e-r2-123-abc.data", tmp_path / "alloclab-f-r1-123-abc.data",
              tmp_path / "alloclab-e-r1-123-abc.txt"]
    for path in [ours, *others]:
        path.write_bytes(b"x")
    datafiles.remove_leftovers(run_dir, [str(tmp_path), str(tmp_path / "missing")])
    assert not ours.exists()
    assert all(path.exists() for path in others)


# ---------------------------------------------------------------------------------------------
# With the real probe


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ProbeBinary:
    return build_probe(tmp_path_factory.mktemp("probe-cache"))


def _run(probe: ProbeBinary, s: Scenario, data_file: Path | None) -> ProcessRecord:
    env = {datafiles.VARIABLE: str(data_file)} if data_file else {}
    return execute.run_process(probe_argv(probe, s, 0, 1), scenario_id=s.id, process_index=0,
                               timeout_s=60, extra_env=env)


@pytest.mark.probe
@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_the_first_process_creates_the_file_later_ones_reuse_it(
        probe: ProbeBinary, tmp_path: Path, cache: str) -> None:
    s = scenario(file_dir=str(tmp_path), cache=cache, ops=3)
    path = tmp_path / "alloclab-e-r-1-x.data"
    first = _run(probe, s, path)
    assert first.status == "ok", first.stderr_tail
    made = path.stat()
    assert made.st_size == 3 << 20
    data = path.read_bytes()
    assert all(data[k] == k % 251 + 1 for k in range(0, len(data), 4093))  # the pattern
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left
    second = _run(probe, s, path)
    assert second.status == "ok", second.stderr_tail
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)  # not rewritten
    private = _run(probe, s, None)
    assert private.status == "ok"
    for record in (first, second, private):
        assert record.probe is not None
        (iteration,) = record.probe["iterations"]
        # Each process sets the cache state itself: all in (warm) or evicted (cold) before the
        # iteration, whoever made the file; and every one read the same bytes.
        resident = iteration["observations"]["resident_ppm_before"]
        assert resident == (1_000_000 if cache == "warm" else 0)
        assert iteration["checksum"] == first.probe["iterations"][0]["checksum"]  # type: ignore[index]
        assert set(iteration["phases"]) == set(PHASES)


@pytest.mark.probe
def test_a_file_of_the_wrong_length_or_a_writing_scenario_is_refused(
        probe: ProbeBinary, tmp_path: Path) -> None:
    path = tmp_path / "alloclab-e-r-1-x.data"
    path.write_bytes(b"\1" * 4096)
    wrong = _run(probe, scenario(file_dir=str(tmp_path)), path)
    assert wrong.status == "failed" and wrong.exit_code == 2
    assert "4096 bytes, not this scenario's data file of 1048576" in wrong.stderr_tail
    writer = scenario(file_dir=str(tmp_path), sharing="shared", access="write-all")
    refused = _run(probe, writer, tmp_path / "other.data")
    assert refused.exit_code == 2 and "cannot share one" in refused.stderr_tail
    assert not (tmp_path / "other.data").exists()


@pytest.mark.probe
def test_a_run_makes_each_file_once_and_removes_it_after_the_last_process(
        probe: ProbeBinary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = tmp_path / "files"
    files.mkdir()
    run_dir = tmp_path / "e" / "r"
    run_dir.mkdir(parents=True)
    (files / "alloclab-e-r-1-old.data").write_bytes(b"left by a killed runner")
    shared, own = scenario(file_dir=str(files)), scenario(
        file_dir=str(files), backing="write-file", access="write-all")
    seen: list[tuple[str, str | None, list[str]]] = []
    original = execute.run_process

    def spy(argv: list[str], **kwargs: Any) -> ProcessRecord:
        env = kwargs["extra_env"]
        seen.append((kwargs["scenario_id"], env.get(datafiles.VARIABLE),
                     sorted(p.name for p in files.iterdir())))
        return original(argv, **kwargs)

    monkeypatch.setattr(execute, "run_process", spy)
    records: list[ProcessRecord] = []
    schedule.run_jobs(schedule.order_jobs([shared, own], 3, seed=1), probe,
                      Repetitions(processes=3, warmup=0, iterations=1), 60, run_dir, set(),
                      lambda job, record: records.append(record), facts=FACTS)
    assert [r.status for r in records] == ["ok"] * 6, [r.stderr_tail for r in records]
    name = f"alloclab-e-r-{os.getpid()}-{shared.id}.data"
    assert {env for sid, env, _ in seen if sid == shared.id} == {str(files / name)}
    assert {env for sid, env, _ in seen if sid == own.id} == {None}
    # The leftover went before the first process; the shared file was there from the second
    # process of its scenario on; nothing is left after the run.
    assert seen[0][2] == []
    assert [listing for sid, _, listing in seen if sid == shared.id][1:] == [[name], [name]]
    assert list(files.iterdir()) == []


@pytest.mark.probe
def test_the_files_go_when_a_run_fails(probe: ProbeBinary, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "e" / "r"
    run_dir.mkdir(parents=True)
    s = scenario(file_dir=str(tmp_path))
    calls: list[int] = []

    def stop(job: schedule.Job, record: ProcessRecord) -> None:
        calls.append(job.process_index)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        schedule.run_jobs(schedule.order_jobs([s], 2, seed=1), probe,
                          Repetitions(processes=2, warmup=0, iterations=1), 60, run_dir, set(),
                          stop, facts=FACTS)
    assert calls == [0]
    assert not any(p.suffix == ".data" for p in tmp_path.iterdir())

