"""What the probe's tests share: the probe built once per module, scenarios from PARAMETERS'
defaults, running one probe process and reading its iterations, and the raw command line.

Physical facts the probe's tests rely on (Linux, 4 KiB pages, THP not `always`): the first write
to an untouched private anonymous page takes one minor fault and makes it resident;
MAP_POPULATE takes those faults inside mmap; reading untouched anonymous memory maps the shared
zero page (faults, no RSS); glibc serves a 64 MiB malloc from its own mapping and unmaps it on
free; read() from a file in the page cache takes no major faults.
"""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.core.model import ProcessRecord, Scenario
from runner.core.parameters import PARAMETERS
from runner.machine import memcg
from runner.measure.schedule import run_limited
from runner.probe.execute import run_process
from runner.probe.native import (
    ProbeBinary,
    build_probe,
    probe_argv,
    probe_env,
)

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1 << 20
N_PAGES = 4096  # 16 MiB of 4 KiB pages
PROBE_DIR = Path(__file__).resolve().parents[2] / "runner" / "probe"
C_SOURCES = sorted(PROBE_DIR.glob("*.c"))


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> ProbeBinary:
    return build_probe(tmp_path_factory.mktemp("probe-cache"))


def scenario(**fields: Any) -> Scenario:
    """A scenario from PARAMETERS' defaults, with ops=1 unless given."""
    values: dict[str, Any] = {p.field: p.default for p in PARAMETERS}
    values["ops"] = 1
    values.update(fields)
    return Scenario(**values)


def measure(probe: ProbeBinary, s: Scenario, warmup: int = 0, iterations: int = 1,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    record = run_process(probe_argv(probe, s, warmup, iterations), scenario_id=s.id,
                         process_index=0, timeout_s=60, extra_env=probe_env(s, env))
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    return record.probe


def one_iteration(probe: ProbeBinary, s: Scenario, library: str | None = None, *,
                  warmup: int = 0, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The one measured iteration of a fresh process, after `warmup` warm-ups, with `library`
    preloaded as the scenario's allocator (None: the C library's own malloc) and `env` added."""
    record = run_process(probe_argv(probe, s, warmup, 1), scenario_id=s.id, process_index=0,
                         timeout_s=60, extra_env={**probe_env(s, None, library), **(env or {})})
    assert record.status == "ok", record.stderr_tail
    assert record.probe is not None
    return dict(next(i for i in record.probe["iterations"] if not i["warmup"]))


def measured(probe: ProbeBinary, s: Scenario, iterations: int = 1,
             env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The non-warm-up iterations."""
    return [i for i in measure(probe, s, 0, iterations, env)["iterations"] if not i["warmup"]]


def pattern_sums(size: int, ops: int) -> tuple[int, int]:
    """(read-all, read-page) sums over `ops` blocks of the probe's file pattern, one pass."""
    stride = -(-size // PAGE) * PAGE
    words = size // 8
    read_all = read_page = 0
    for block in range(ops):
        data = bytes((k % 251) + 1 for k in range(block * stride, block * stride + size))
        read_all += sum(int.from_bytes(data[8 * w:8 * w + 8], "little") for w in range(words))
        read_all += sum(data[8 * words:])
        read_page += sum(data[offset] for offset in range(0, size, PAGE))
    return read_all % 2**64, read_page


@pytest.fixture
def mlock_allowed(request: pytest.FixtureRequest) -> None:
    """populate mlock of 16 MiB needs root or an RLIMIT_MEMLOCK that large."""
    if request.node.callspec.params.get("populate") != "mlock":
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and soft < N_PAGES * PAGE:
        pytest.skip(f"mlock of 16 MiB is past RLIMIT_MEMLOCK ({soft} bytes) and not root")


@pytest.fixture
def no_thp_always() -> None:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if path.exists() and "[always]" in path.read_text():
        pytest.skip("THP is 'always': anonymous memory may come in 2 MiB pages, one fault each")


def is_tmpfs(path: Path) -> bool:
    """Whether the filesystem holding `path` is tmpfs: its longest mount point in /proc."""
    resolved, best, fs_type = path.resolve(), "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mount_point, kind, *_ = line.split()
        if (resolved == Path(mount_point) or Path(mount_point) in resolved.parents) and \
                len(mount_point) >= len(best):
            best, fs_type = mount_point, kind
    return fs_type == "tmpfs"


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """A directory on a filesystem that evicts clean pages (not tmpfs)."""
    if is_tmpfs(tmp_path):
        pytest.skip(f"{tmp_path} is tmpfs: nothing can be evicted there")
    return tmp_path


LIMIT = 64 * MIB  # the memory cgroup limit of the pressure tests


@pytest.fixture(scope="module")
def hierarchy() -> memcg.Hierarchy:
    """Where a run would make memory cgroups; the test is skipped, with why, where it cannot."""
    found = memcg.read_hierarchy()
    problem = memcg.find_problem(found)
    if problem is not None or found is None:
        pytest.skip(f"no memory cgroup here: {problem}")
    return found


def run_in_limit(probe: ProbeBinary, hierarchy: memcg.Hierarchy, s: Scenario,
                 limit_bytes: int = LIMIT) -> ProcessRecord:
    """One probe process (one iteration) in a memory cgroup of its own, made the way a run
    makes it (runner.measure.schedule.run_limited)."""
    before = set(hierarchy.parent.iterdir())
    record = run_limited(run_process, probe_argv(probe, s, 0, 1), limit_bytes, hierarchy,
                         scenario_id=s.id, process_index=0, timeout_s=120,
                         extra_env=probe_env(s))
    # Nothing outlives the process: its cgroup is gone once the record is written.
    assert set(hierarchy.parent.iterdir()) == before
    return record


def good_args(**overrides: str) -> list[str]:
    args = {"backing": "malloc", "size_bytes": "4096", "sharing": "private",
            "protection": "read-write", "populate": "none", "access": "write-page", "ops": "1",
            "file_dir": "/tmp", "thp": "default", "release": "auto", "workload": "cycle",
            "cache": "warm", "order": "sequential", "sync": "none", "grow_method": "realloc",
            "grow_factor": "2", "check_zero": "0", "threads": "1", "history": "fresh",
            "host_warm": "0", "advice": "none", "read_buffer_bytes": "1048576",
            "write_buffer_bytes": "1048576", "grow_steps": "1", "touch_grown": "0",
            "heap_pad": "default", "touch_share_ppm": "1000000", "file_origin": "existing",
            "file_layout": "whole", "check_content": "0", "file_open": "once", "noreserve": "0",
            "keep_every": "0", "pause_ms": "0", "latency": "off", "memlock_limit_bytes": "0",
            "bystanders": "0", "free_pause_ms": "0", "thread_turns": "0", "warmup": "0",
            "iterations": "1", **overrides}
    return [f"--{k}={v}" for k, v in args.items()]


def run_raw(probe: ProbeBinary, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(probe.path), *args], capture_output=True, text=True,
                          timeout=30, check=False)
