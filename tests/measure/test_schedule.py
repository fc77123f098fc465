"""The order of probe processes: complete, round by round, reproducible from the seed."""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from runner.core.model import ProcessRecord, Repetitions, Scenario, Status
from runner.machine import memcg
from runner.machine.preconditions import MachineFacts
from runner.measure.schedule import order_jobs, run_jobs, run_limited
from runner.probe.native import ProbeBinary
from runner.store import folders
from runner.store.folders import SAMPLES


def _scenario(size_bytes: int) -> Scenario:
    return Scenario(backing="malloc", size_bytes=size_bytes, sharing="private",
                    protection="read-write", populate="none", access="write-page", ops=1,
                    file_dir="/tmp", thp="default", release="auto")


SCENARIOS = [_scenario(4096 << i) for i in range(6)]


def test_every_pair_once_in_rounds() -> None:
    jobs = order_jobs(SCENARIOS, processes=3, seed=1)
    assert len(jobs) == 18
    assert {(j.scenario.id, j.process_index) for j in jobs} == {
        (s.id, p) for s in SCENARIOS for p in range(3)}
    # Round k holds process k of every scenario, so drift spreads evenly.
    for k in range(3):
        assert {j.process_index for j in jobs[6 * k:6 * k + 6]} == {k}


def test_same_seed_same_order_other_seed_other_order() -> None:
    ids = lambda seed: [j.scenario.id for j in order_jobs(SCENARIOS, 3, seed)]  # noqa: E731
    assert ids(7) == ids(7)
    assert ids(7) != ids(8)
    # Rounds are shuffled independently: not every round repeats the first one.
    first = ids(7)
    assert first[0:6] != first[6:12] or first[6:12] != first[12:18]


def test_scenarios_the_machine_cannot_measure_are_stored_as_skipped(tmp_path: Path) -> None:
    """A hugetlb scenario without free huge pages: recorded with the reason, never started."""
    hugetlb = replace(_scenario(2 << 20), backing="mmap-hugetlb")
    facts = MachineFacts(free_huge_pages=0, memlock_limit_bytes=None, euid=0,
                         thp_enabled="madvise", max_map_count=65530, kernel=(6, 18))
    missing = ProbeBinary(path=tmp_path / "no-probe-here", source_hash="0" * 16,
                          compiler="cc", flags=())
    seen: list[ProcessRecord] = []
    run_jobs(order_jobs([hugetlb], processes=2, seed=1), missing, Repetitions(), 10.0,
             tmp_path, done={(hugetlb.id, 0)}, on_record=lambda job, r: seen.append(r),
             facts=facts)
    assert [(r.scenario_id, r.process_index, r.status) for r in seen] == [
        (hugetlb.id, 1, "skipped")]
    (record,) = load_run_records(tmp_path)
    assert record == seen[0]
    assert record.exit_code is None and record.probe is None
    assert record.skip_reason is not None and record.skip_reason.startswith("needs 1 free")
    assert record.stderr_tail == ("alloclab: skipped: needs 1 free 2 MiB huge pages, the machine "
                                  "has 0 (reserve them as root: echo 1 > "
                                  "/proc/sys/vm/nr_hugepages)\n")


def load_run_records(run_dir: Path) -> list[ProcessRecord]:
    lines = (run_dir / SAMPLES).read_text().splitlines()
    return [ProcessRecord(**json.loads(line)) for line in lines]


def test_records_are_synced_to_disk_once_a_round(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hugetlb = [replace(_scenario(2 << 20), backing="mmap-hugetlb", ops=n) for n in (1, 2, 3)]
    facts = MachineFacts(free_huge_pages=0, memlock_limit_bytes=None, euid=0,
                         thp_enabled="madvise", max_map_count=65530, kernel=(6, 18))
    missing = ProbeBinary(path=tmp_path / "no-probe-here", source_hash="0" * 16,
                          compiler="cc", flags=())
    synced: list[int] = []
    seen: list[ProcessRecord] = []
    monkeypatch.setattr(folders.os, "fsync", lambda fd: synced.append(len(seen)))
    run_jobs(order_jobs(hugetlb, processes=4, seed=1), missing, Repetitions(), 10.0,
             tmp_path, done=set(), on_record=lambda job, r: seen.append(r), facts=facts)
    assert len(seen) == 12
    assert synced == [2, 5, 8, 11]  # after the 3rd, 6th, 9th and 12th record, before on_record
    assert len(load_run_records(tmp_path)) == 12


# --- memory_limit: a process in a memory cgroup of its own ---------------------------------

def _fake_start(kills: int, status: str, signal: str | None) -> Callable[..., ProcessRecord]:
    """A run_process stand-in: the process 'ends' as told, the cgroup counting `kills`."""
    def start(argv: list[str], *, scenario_id: str, process_index: int, timeout_s: float,
              extra_env: dict[str, str]) -> ProcessRecord:
        folder = Path(extra_env[memcg.JOIN_VARIABLE])
        (folder / "memory.oom_control").write_text(f"oom_kill {kills}\n")
        return ProcessRecord(scenario_id, process_index, cast(Status, status), None, signal,
                             0.1, "", None)
    return start


@pytest.mark.parametrize(("kills", "status", "signal", "expected"), [
    (1, "crashed", "SIGKILL", "oom"),      # the OOM killer ended it: the outcome
    (0, "crashed", "SIGKILL", "crashed"),  # killed by someone else: a crash as before
    (1, "crashed", "SIGSEGV", "crashed"),  # another process of the cgroup was the victim
    (1, "ok", None, "ok"),
])
def test_only_a_sigkill_the_cgroup_counted_is_recorded_as_oom(
        tmp_path: Path, kills: int, status: str, signal: str | None, expected: str) -> None:
    record = run_limited(_fake_start(kills, status, signal), ["probe"], 64 << 20,
                         memcg.Hierarchy(1, tmp_path), scenario_id="s", process_index=0,
                         timeout_s=1.0, extra_env={})
    assert record.status == expected
    assert ("OOM-killed in its memory cgroup (limit 64MiB" in record.stderr_tail) == \
           (expected == "oom")


def test_a_cgroup_that_cannot_be_made_is_a_failed_record_saying_why(tmp_path: Path) -> None:
    missing = memcg.Hierarchy(1, tmp_path / "no-such-folder")
    record = run_limited(_fake_start(0, "ok", None), ["probe"], 64 << 20, missing,
                         scenario_id="s", process_index=0, timeout_s=1.0, extra_env={})
    assert record.status == "failed"
    assert f"cannot make a memory cgroup in {missing.parent}" in record.stderr_tail
