"""Synthetic stored runs whose every number is known, for tests of everything after the probe."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from runner.core.model import PHASES, ProcessRecord, Scenario
from runner.spec import load, matrix
from runner.store import folders

PAGE_BYTES = 4096
FINGERPRINT = {"cpu_model": "Test CPU", "cpu_count": 2, "kernel": "6.0.0-test",
               "libc": "glibc 2.36", "memory_bytes": 8 << 30, "page_size_bytes": PAGE_BYTES,
               "thp_enabled": "madvise"}
PROBE_INFO = {"source_hash": "0123456789abcdef", "compiler": "cc (Test) 1.0",
              "flags": ["-O2"]}


def fake_probe_output(scenario: Scenario, process_index: int, iterations: int = 1,
                      warmup: int = 0, scale: float = 1.0) -> dict[str, Any]:
    """What the probe would print, with times proportional to pages and a known ±2% jitter.

    `scale` multiplies every time (a synthetic regression or noise); counts stay exact.
    """
    pages = max(1, -(-scenario.size_bytes // PAGE_BYTES)) * scenario.ops
    jitter = (1.0 + 0.02 * ((process_index % 3) - 1)) * scale
    results = []
    for index in range(warmup + iterations):
        rss = 8 << 20
        phases = {}
        for phase, ns_per_page, faults_per_page, rss_pages in (
                ("allocate", 10, 0, 0), ("first_touch", 250, 1, pages),
                ("second_pass", 20, 0, 0), ("free", 40, 0, -pages)):
            rss += rss_pages * PAGE_BYTES
            phases[phase] = {"ns": int(pages * ns_per_page * jitter), "rss_bytes": rss,
                             "minor_faults": pages * faults_per_page, "major_faults": 0}
        assert list(phases) == list(PHASES)
        results.append({"warmup": index < warmup, "rss_before_bytes": 8 << 20, "checksum": 0,
                        "phases": phases})
    return {"probe_version": 1, "libc": {"name": "glibc", "version": "2.36"},
            "page_size_bytes": PAGE_BYTES, "file_fs": None, "iterations": results}


def write_synthetic_run(results_dir: Path, spec_path: Path, *, machine: str = "test-machine",
                        run_id: str = "20260101T000000Z",
                        crash: tuple[str, int] | None = None, scale: float = 1.0,
                        noise: float = 0.0, seed: int = 0,
                        fingerprint: dict[str, Any] | None = None,
                        manifest_extra: dict[str, Any] | None = None) -> Path:
    """Store a whole run of `spec_path` with fake probe output; `crash` names (label, process).

    Times are multiplied by `scale` and, per process, by a lognormal factor of sigma `noise`
    drawn from `seed` (two seeds: an A/A pair); `fingerprint` replaces FINGERPRINT;
    `manifest_extra` adds manifest keys the pipeline would write ("profile", "load").
    """
    rng = random.Random(seed)
    experiment = load.load_spec(spec_path)
    plan = matrix.expand(experiment)
    reps = experiment.repetitions
    run_dir = folders.run_path(results_dir, machine, experiment.name, run_id)
    manifest = folders.build_manifest(
        plan, spec_text=spec_path.read_text(), probe_info=PROBE_INFO,
        fingerprint=FINGERPRINT if fingerprint is None else fingerprint,
        machine=machine, run_id=run_id, repetitions=reps, seed=1,
        started_utc="2026-01-01T00:00:00Z", command="alloclab run") | (manifest_extra or {})
    folders.write_manifest(run_dir, manifest)
    for process_index in range(reps.processes):
        for scenario in plan.scenarios:
            if crash == (scenario.label(plan.label_keys), process_index):
                record = ProcessRecord(scenario.id, process_index, "crashed", None, "SIGSEGV",
                                       0.01, "probe: touching block 0\n", None)
            else:
                factor = scale * math.exp(rng.gauss(0.0, noise)) if noise else scale
                record = ProcessRecord(scenario.id, process_index, "ok", 0, None, 0.01, "",
                                       fake_probe_output(scenario, process_index,
                                                         reps.iterations, reps.warmup, factor))
            folders.append_record(run_dir, record)
    folders.write_manifest(run_dir, {**manifest, "finished_utc": "2026-01-01T00:01:00Z"})
    return run_dir


SMALL_SPEC = """\
name: small
title: A small synthetic experiment
question: How do two backings compare at three sizes?
matrix:
  backing: [malloc, mmap-anon]
  size: [4KiB, 64KiB, 1MiB]
fixed:
  access: write-page
  ops: 8
repetitions:
  processes: 3
  warmup: 1
  iterations: 2
charts:
  - title: First touch per page
    metric: first_touch_ns_per_page
    x: size
    series: backing
    log_x: true
checks:
  - claim: The first touch of a page costs the same from mmap as from malloc
    metric: first_touch_ns_per_page
    expect: same
    candidate: {backing: mmap-anon}
    reference: {backing: malloc}
  - claim: From 64 KiB up, the first touch of an mmap page faults exactly once
    metric: first_touch_minor_faults_per_page
    expect: same
    value: 1
    candidate: {backing: mmap-anon}
    where: {size: {from: 64KiB}}
"""


COMPARE_SPEC = """\
name: cmp
title: A synthetic experiment to compare
question: Did anything change between two runs?
matrix:
  backing: [malloc, mmap-anon]
  size: [4KiB, 64KiB, 1MiB, 16MiB]
fixed:
  access: write-page
  ops: 2
repetitions:
  processes: 10
  iterations: 1
charts:
  - title: First touch per page
    metric: first_touch_ns_per_page
    x: size
    series: backing
    log_x: true
"""


def load_session(other_work_cpus: float, *, seconds: float = 10.0, cpus: int = 2,
                 own_cpu_s: float = 9.0, steal_jiffies: int = 0) -> dict[str, Any]:
    """A manifest "load" session (runner.machine.system.read_load before and after) in which
    other work kept `other_work_cpus` CPUs busy besides alloclab's `own_cpu_s`."""
    total = int(seconds * 100 * cpus)
    busy = round((own_cpu_s + other_work_cpus * seconds) * 100)
    before = {"loadavg_1m": 1.0, "own_cpu_s": 0.0, "cpus": cpus, "busy_jiffies": 0,
              "idle_jiffies": 0, "steal_jiffies": 0, "total_jiffies": 0}
    after = {**before, "own_cpu_s": own_cpu_s, "busy_jiffies": busy,
             "idle_jiffies": total - busy - steal_jiffies, "steal_jiffies": steal_jiffies,
             "total_jiffies": total}
    return {"before": before, "after": after}
