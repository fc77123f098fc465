"""Memory cgroups for memory_limit: which hierarchy, why none can be made, OOM kills read back,
and leftovers swept (runner.measure.schedule.run_limited's records: tests/measure)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runner.machine import memcg

V1_CGROUP = "4:memory:/session/abc\n1:cpu:/\n0::/\n"
V1_MOUNTS = ("cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
             "cgroup2 {unified} cgroup2 rw,relatime 0 0\n")


def test_v1_memory_is_used_where_the_unified_hierarchy_has_no_memory_controller(
        tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("cpu io\n")
    found = memcg.find_hierarchy(V1_CGROUP, V1_MOUNTS.format(unified=unified))
    assert found == memcg.Hierarchy(1, Path("/sys/fs/cgroup/memory/session/abc"))


def test_v2_is_used_where_the_unified_hierarchy_has_memory(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    found = memcg.find_hierarchy("0::/user.slice/me\n",
                                 f"cgroup2 {tmp_path} cgroup2 rw 0 0\n")
    assert found == memcg.Hierarchy(2, tmp_path / "user.slice" / "me")


def test_no_memory_controller_is_a_reason_to_skip() -> None:
    assert memcg.find_hierarchy("0::/\n", "proc /proc proc rw 0 0\n") is None
    assert "no memory cgroup controller" in str(memcg.find_problem(None))


def test_v2_without_memory_for_the_children_says_what_to_enable(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    problem = memcg.find_problem(memcg.Hierarchy(2, tmp_path))
    assert problem is not None and "+memory" in problem and str(tmp_path) in problem
    (tmp_path / "cgroup.subtree_control").write_text("cpu memory\n")
    assert memcg.find_problem(memcg.Hierarchy(2, tmp_path)) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_without_write_access_the_reason_names_the_folder_and_root(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    problem = memcg.find_problem(memcg.Hierarchy(1, tmp_path))
    assert problem is not None and str(tmp_path) in problem and "root" in problem


@pytest.mark.parametrize(("version", "name"), [(1, "memory.oom_control"),
                                                (2, "memory.events")])
def test_oom_kills_are_read_from_the_versions_file(tmp_path: Path, version: memcg.Version,
                                                   name: str) -> None:
    group = memcg.MemoryCgroup(tmp_path, version, 64 << 20)
    assert group.oom_kills() == 0  # no file yet: nothing counted
    (tmp_path / name).write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
                                 if version == 1 else "low 0\noom 4\noom_kill 3\n")
    assert group.oom_kills() == 3


def test_sweep_removes_the_cgroups_of_dead_runners_only(tmp_path: Path) -> None:
    dead_pid = subprocess.Popen(["true"])  # a runner that is gone
    dead_pid.wait()
    left = tmp_path / f"alloclab-{dead_pid.pid}-0"
    live = tmp_path / f"alloclab-{os.getpid()}-0"
    other = tmp_path / "someone-else"
    for path in (left, live, other):
        path.mkdir()
    assert memcg.sweep(memcg.Hierarchy(1, tmp_path)) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])
