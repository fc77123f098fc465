"""Shared memory names a killed probe left are removed; a live probe's are kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from runner.measure import shm_names


def test_names_of_gone_probes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead_pid = _dead_pid()
    for name in (f"alloclab-{dead_pid}-0", f"alloclab-ipc-{dead_pid}-3",
                 f"alloclab-{os.getpid()}-1", "alloclab-notes", f"other-{dead_pid}-0"):
        (tmp_path / name).write_text("")
    assert shm_names.sweep(tmp_path) == [f"alloclab-{dead_pid}-0", f"alloclab-ipc-{dead_pid}-3"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"alloclab-{os.getpid()}-1", "alloclab-notes", f"other-{dead_pid}-0"]


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
