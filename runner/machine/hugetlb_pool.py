"""Reserved hugetlb pools for scenarios with hugetlb_pool: setting vm.nr_hugepages around a probe
process, giving the previous value back, and restoring what a killed runner left.

A scenario with `hugetlb_pool: N` gets exactly N free 2 MiB pages in the kernel's pool for each of
its probe processes: just before the process starts, the runner writes
/proc/sys/vm/nr_hugepages so that N pages are free beside whatever other programs hold, and
writes the previous value back as soon as the process has ended, however it ended (a Python
`finally`, which Ctrl-C, SIGTERM and SIGHUP reach through runner.measure.interrupt). The probe
is told the pool is alloclab's (POOL_VARIABLE), so it may run the pool dry on purpose
(runner/probe/hugetlb.c).

A runner killed by SIGKILL cannot give the pool back. So before it changes anything it writes the
original value, its pid and the boot's id to RECORD (under /run, which is emptied at boot, as the
kernel's pool is) and removes the record after restoring. The next run's `sweep` finds a record
whose runner is gone, writes its original value back and says so; a record from an earlier boot
is dropped (the pool was reset by the reboot). Setting the pool needs root; without it the
scenario is a recorded skip naming the command (runner.machine.preconditions).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.machine import processes
from runner.machine.kernel_files import read_text

NR_HUGEPAGES = Path("/proc/sys/vm/nr_hugepages")
HUGEPAGES_DIR = Path("/sys/kernel/mm/hugepages/hugepages-2048kB")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
RECORD = Path("/run/alloclab/hugetlb-pool.json")
# Tells the probe the free pool is alloclab's, of this many pages (runner/probe/hugetlb.c).
POOL_VARIABLE = "ALLOCLAB_HUGETLB_POOL"


class PoolError(Exception):
    """The pool could not be set as asked; the message says what was found."""


@dataclass(frozen=True)
class Paths:
    """The files the pool is read from and written to; tests point them at a folder."""

    nr_hugepages: Path = NR_HUGEPAGES
    hugepages_dir: Path = HUGEPAGES_DIR
    record: Path = RECORD
    boot_id: Path = BOOT_ID


@dataclass(frozen=True)
class PoolRecord:
    """What RECORD holds while a runner has the pool changed."""

    runner_pid: int
    original_pages: int
    boot_id: str


def command(pages: int) -> str:
    """The shell command that reserves `pages` huge pages, as a skip reason names it."""
    return f"echo {pages} > {NR_HUGEPAGES}"


def available_pages(paths: Paths = Paths()) -> int | None:
    """Free pages no mapping has reserved yet; None where the kernel has no 2 MiB pool."""
    free = _int(read_text(paths.hugepages_dir / "free_hugepages"))
    if free is None:
        return None
    reserved = _int(read_text(paths.hugepages_dir / "resv_hugepages")) or 0
    return max(0, free - reserved)


@contextlib.contextmanager
def reserved(pages: int, paths: Paths = Paths()) -> Iterator[None]:
    """A pool with exactly `pages` pages free for the body, the previous nr_hugepages back after,
    however the body ends. PoolError when the pool cannot be set (it is then already restored)."""
    original = _int(read_text(paths.nr_hugepages))
    available = available_pages(paths)
    if original is None or available is None:
        raise PoolError(f"{paths.nr_hugepages}: this kernel offers no 2 MiB hugetlb pages")
    _write_record(paths, PoolRecord(os.getpid(), original, _boot_id(paths)))
    try:
        # The pages others hold stay theirs: the pool grows or shrinks around them.
        _write_pages(paths, original - available + pages)
        got = available_pages(paths) or 0
        if got != pages:
            raise PoolError(f"{paths.nr_hugepages}: asked for {pages} free 2 MiB pages, the "
                            f"kernel gave {got} (memory too fragmented, or another program "
                            "took some)")
        yield
    finally:
        _write_pages(paths, original)
        with contextlib.suppress(FileNotFoundError):
            paths.record.unlink()


def sweep(paths: Paths = Paths()) -> str | None:
    """Give back the pool a killed runner left changed (from its RECORD); what was done, in one
    line, or None when there was nothing to do. A live runner's record is left alone."""
    record = _read_record(paths)
    if record is None or processes.alive(record.runner_pid):
        return None
    if record.boot_id == _boot_id(paths):
        _write_pages(paths, record.original_pages)
        done = (f"restored {paths.nr_hugepages} to {record.original_pages}, the value a killed "
                f"alloclab run (pid {record.runner_pid}) had changed")
    else:
        done = (f"dropped {paths.record}: it came from an earlier boot, which reset "
                f"{paths.nr_hugepages}")
    paths.record.unlink()
    return done


def _write_pages(paths: Paths, pages: int) -> None:
    try:
        paths.nr_hugepages.write_text(f"{pages}\n")
    except OSError as error:
        raise PoolError(f"cannot write {pages} to {paths.nr_hugepages}: {error.strerror}") \
            from error


def _write_record(paths: Paths, record: PoolRecord) -> None:
    """Written whole or not at all (a new file renamed over the old): a kill mid-write leaves
    the last record."""
    earlier = _read_record(paths)
    if (earlier is not None and earlier.runner_pid != os.getpid()
            and processes.alive(earlier.runner_pid)):
        raise PoolError(f"another alloclab run (pid {earlier.runner_pid}) holds the hugetlb "
                        f"pool ({paths.record}); run one pool scenario at a time")
    paths.record.parent.mkdir(parents=True, exist_ok=True)
    partial = paths.record.with_suffix(".partial")
    partial.write_text(json.dumps({"runner_pid": record.runner_pid,
                                   "original_pages": record.original_pages,
                                   "boot_id": record.boot_id}) + "\n")
    partial.replace(paths.record)


def _read_record(paths: Paths) -> PoolRecord | None:
    text = read_text(paths.record)
    if text is None:
        return None
    try:
        data = json.loads(text)
        return PoolRecord(int(data["runner_pid"]), int(data["original_pages"]),
                          str(data["boot_id"]))
    except (ValueError, KeyError, TypeError):
        return None


def _boot_id(paths: Paths) -> str:
    return (read_text(paths.boot_id) or "").strip()


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None
