"""runner.machine.hugetlb_pool against a fake /proc and /sys in a folder: the pool set for the
body and given back however it ends, and a killed runner's change restored by the next run."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from runner.machine import hugetlb_pool
from runner.machine.hugetlb_pool import Paths, PoolError

BOOT = "boot-1"


def fake(tmp_path: Path, nr: int = 2, free: int = 2, resv: int = 0) -> Paths:
    """A kernel whose pool follows nr_hugepages: pages beyond those held are free."""
    paths = Paths(nr_hugepages=tmp_path / "nr_hugepages", hugepages_dir=tmp_path / "sys",
                  record=tmp_path / "run" / "hugetlb-pool.json", boot_id=tmp_path / "boot_id")
    paths.hugepages_dir.mkdir()
    paths.boot_id.write_text(BOOT + "\n")
    paths.nr_hugepages.write_text(f"{nr}\n")
    (paths.hugepages_dir / "free_hugepages").write_text(f"{free}\n")
    (paths.hugepages_dir / "resv_hugepages").write_text(f"{resv}\n")
    return paths


class FollowingPool:
    """Makes free_hugepages follow writes to nr_hugepages, as the kernel does, with `held`
    pages in use by other programs."""

    def __init__(self, paths: Paths, held: int, short_by: int = 0) -> None:
        self.paths, self.held, self.short_by = paths, held, short_by

    def settle(self) -> None:
        nr = int(self.paths.nr_hugepages.read_text())
        free = max(0, nr - self.held - self.short_by)
        (self.paths.hugepages_dir / "free_hugepages").write_text(f"{free}\n")


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_reserved_sets_exactly_the_pool_beside_others_pages_and_gives_it_back(
        tmp_path: Path) -> None:
    paths = fake(tmp_path, nr=3, free=1)  # another program holds 2 pages
    pool = FollowingPool(paths, held=2)
    original_write = Path.write_text

    def write_and_settle(self: Path, text: str, *args: object, **kwargs: object) -> int:
        written = original_write(self, text)
        if self == paths.nr_hugepages:
            pool.settle()
        return written

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "write_text", write_and_settle)
        with hugetlb_pool.reserved(5, paths):
            assert paths.nr_hugepages.read_text() == "7\n"
            assert hugetlb_pool.available_pages(paths) == 5
            record = json.loads(paths.record.read_text())
            assert record == {"runner_pid": os.getpid(), "original_pages": 3, "boot_id": BOOT}
    assert paths.nr_hugepages.read_text() == "3\n"
    assert not paths.record.exists()


def test_reserved_gives_the_pool_back_when_the_body_is_interrupted(tmp_path: Path) -> None:
    paths = fake(tmp_path, nr=0, free=0)
    with pytest.raises(KeyboardInterrupt), pytest.MonkeyPatch.context() as patch:
        patch.setattr(hugetlb_pool, "available_pages",
                      lambda p=paths: 0 if p.nr_hugepages.read_text() == "0\n" else 4)
        with hugetlb_pool.reserved(4, paths):
            raise KeyboardInterrupt
    assert paths.nr_hugepages.read_text() == "0\n"
    assert not paths.record.exists()


def test_a_pool_the_kernel_cannot_fill_is_an_error_and_given_back(tmp_path: Path) -> None:
    paths = fake(tmp_path, nr=0, free=0)  # the kernel grants nothing: free stays 0
    with (pytest.raises(PoolError, match="asked for 4 free 2 MiB pages, the kernel gave 0"),
          hugetlb_pool.reserved(4, paths)):
        pytest.fail("the body must not run")
    assert paths.nr_hugepages.read_text() == "0\n"


def test_sweep_restores_what_a_killed_runner_changed(tmp_path: Path) -> None:
    paths = fake(tmp_path, nr=64, free=64)
    paths.record.parent.mkdir()
    paths.record.write_text(json.dumps({"runner_pid": dead_pid(), "original_pages": 2,
                                        "boot_id": BOOT}))
    said = hugetlb_pool.sweep(paths)
    assert said is not None and "restored" in said and "to 2" in said
    assert paths.nr_hugepages.read_text() == "2\n"
    assert not paths.record.exists()


def test_sweep_drops_a_record_of_an_earlier_boot_and_leaves_a_live_runner_s(
        tmp_path: Path) -> None:
    paths = fake(tmp_path, nr=64, free=64)
    paths.record.parent.mkdir()
    paths.record.write_text(json.dumps({"runner_pid": dead_pid(), "original_pages": 2,
                                        "boot_id": "boot-0"}))
    said = hugetlb_pool.sweep(paths)
    assert said is not None and "earlier boot" in said
    assert paths.nr_hugepages.read_text() == "64\n"
    paths.record.write_text(json.dumps({"runner_pid": os.getppid(), "original_pages": 2,
                                        "boot_id": BOOT}))
    assert hugetlb_pool.sweep(paths) is None
    assert paths.nr_hugepages.read_text() == "64\n"
    with (pytest.raises(PoolError, match=f"another alloclab run \\(pid {os.getppid()}\\)"),
          hugetlb_pool.reserved(1, paths)):
        pytest.fail("the body must not run")


def test_sweep_with_no_record_does_nothing(tmp_path: Path) -> None:
    assert hugetlb_pool.sweep(fake(tmp_path)) is None
