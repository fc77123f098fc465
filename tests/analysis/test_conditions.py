"""The machine conditions that decide a verdict, and labels as configurations of a machine,
from synthetic fingerprints."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runner.analysis.conditions import (
    ALLOCATOR_VARIABLES,
    BLOCK_DEVICE,
    C_LIBRARY,
    DISK,
    FILESYSTEM,
    MEMLOCK,
    PAGES_PER_FAULT,
    READ_AHEAD,
    ROTATIONAL,
    THP_DEFRAG,
    THP_ENABLED,
    THP_SHMEM,
    VIRTUAL_DISK,
    WHY,
    Configuration,
    configuration_name,
    decisive_conditions,
    describe_conditions,
    is_configuration_of,
    is_virtual_disk,
    machine_configurations,
    same_machine,
)
from runner.report.site import render_reports
from tests.synthetic import FINGERPRINT, write_synthetic_run

TEMPLATES = Path(__file__).parents[2] / "templates"

# This machine's kind: /tmp ext4 on a virtio disk reading 8 MiB ahead, /dev/shm tmpfs.
VM: dict[str, Any] = {
    "libc": "glibc 2.36", "thp_enabled": "madvise", "thp_defrag": "madvise",
    "thp_shmem_enabled": "never", "overcommit_memory": 0, "max_map_count": 65530,
    "memlock_limit_bytes": 8 << 20, "allocator_env": {},
    "file_fs": {"/tmp": "ext4", "/dev/shm": "tmpfs"},
    "file_device": {"/tmp": "vda", "/dev/shm": "none"},
    "file_disk": {"/tmp": "virtio_blk", "/dev/shm": None},
    "file_rotational": {"/tmp": True, "/dev/shm": None},
    "file_scheduler": {"/tmp": "mq-deadline", "/dev/shm": None},
    "file_read_ahead_kb": {"/tmp": 8192, "/dev/shm": None},
    "file_pages_per_fault": {"/tmp": 30, "/dev/shm": 16},
}


def _scenario(backing: str, **params: Any) -> dict[str, Any]:
    """A scenario's parameters as a manifest holds them (only those conditions look at)."""
    return {"backing": backing, "file_dir": "/tmp", "cache": "warm", "sync": "none",
            "workload": "cycle", "populate": "none", **params}


def _named(facts: dict[str, Any], *scenarios: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(c.name, c.value) for c in decisive_conditions(facts, scenarios)]


def test_a_cold_file_mapping_depends_on_the_disk_its_read_ahead_and_the_page_cache() -> None:
    scenarios = [_scenario("mmap-file", cache="cold"), _scenario("read-file", cache="cold")]
    conditions = decisive_conditions(VM, scenarios)
    assert [(c.name, c.value) for c in conditions] == [
        (FILESYSTEM, "ext4"), (BLOCK_DEVICE, "vda"), (DISK, "virtio_blk"),
        (VIRTUAL_DISK, True), (ROTATIONAL, True), (READ_AHEAD, 8192), (PAGES_PER_FAULT, 30),
        (THP_ENABLED, "madvise"), (THP_DEFRAG, "madvise"), (C_LIBRARY, "glibc 2.36"),
        (ALLOCATOR_VARIABLES, "none")]
    assert [c.file_dir for c in conditions[:7]] == ["/tmp"] * 7
    assert all(c.file_dir == "" for c in conditions[7:])
    assert all(c.why == WHY[c.name] and c.why for c in conditions)
    assert describe_conditions(conditions) == (
        "on ext4 on a rotational virtual disk (virtio_blk, vda), read_ahead_kb 8192, page "
        "cache mapped 30 pages per fault; THP enabled madvise, defrag madvise; glibc 2.36 "
        "with no allocator variables")


def test_a_warm_file_mapping_does_not_depend_on_the_disk() -> None:
    # Warm pages are read from the page cache: the disk and its read-ahead decide nothing.
    assert _named(VM, _scenario("mmap-file"), _scenario("mmap-anon")) == [
        (FILESYSTEM, "ext4"), (PAGES_PER_FAULT, 30), (THP_ENABLED, "madvise"),
        (THP_DEFRAG, "madvise")]


def test_synced_writes_depend_on_the_disk_but_not_its_read_ahead() -> None:
    names = [name for name, _ in _named(VM, _scenario("write-file", sync="fsync"))]
    assert names[:5] == [FILESYSTEM, BLOCK_DEVICE, DISK, VIRTUAL_DISK, ROTATIONAL]
    assert READ_AHEAD not in names and PAGES_PER_FAULT not in names


def test_tmpfs_is_on_no_disk_and_each_directory_is_named_when_there_are_two() -> None:
    scenarios = [_scenario("mmap-file", cache="cold"),
                 _scenario("mmap-file", cache="cold", file_dir="/dev/shm")]
    conditions = decisive_conditions(VM, scenarios)
    shm = [(c.name, c.value) for c in conditions if c.file_dir == "/dev/shm"]
    assert shm == [(FILESYSTEM, "tmpfs"), (BLOCK_DEVICE, "none"), (PAGES_PER_FAULT, 16)]
    assert describe_conditions(conditions) == (
        "/dev/shm on tmpfs (in memory, on no block device), page cache mapped 16 pages per "
        "fault; /tmp on ext4 on a rotational virtual disk (virtio_blk, vda), read_ahead_kb "
        "8192, page cache mapped 30 pages per fault")


def test_heap_memory_depends_on_the_c_library_the_probe_ran_with_and_its_variables() -> None:
    facts = {**VM, "probe_libc": "glibc 2.39",
             "allocator_env": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}}
    conditions = decisive_conditions(facts, [_scenario("malloc"), _scenario("calloc")])
    assert [(c.name, c.value) for c in conditions] == [
        (THP_ENABLED, "madvise"), (THP_DEFRAG, "madvise"), (C_LIBRARY, "glibc 2.39"),
        (ALLOCATOR_VARIABLES, "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")]
    assert describe_conditions(conditions) == (
        "THP enabled madvise, defrag madvise; glibc 2.39 with "
        "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")


def test_shared_memory_limits_and_locking_have_their_own_conditions() -> None:
    assert _named(VM, _scenario("memfd")) == [(THP_SHMEM, "never")]
    assert _named(VM, _scenario("mmap-hugetlb")) == []
    assert describe_conditions(decisive_conditions(VM, [_scenario("mmap-hugetlb")])) == ""
    limited = decisive_conditions(VM, [_scenario("mmap-anon", workload="limits",
                                                 populate="mlock")])
    assert describe_conditions(limited) == (
        "THP enabled madvise, defrag madvise; overcommit_memory 0, max_map_count 65530, "
        f"{MEMLOCK} 8 MiB")


def test_what_an_older_run_did_not_record_is_said_to_be_unknown() -> None:
    older = {"libc": "glibc 2.36", "thp_enabled": "madvise", "file_fs": {"/tmp": "ext4"}}
    conditions = decisive_conditions(older, [_scenario("mmap-file", cache="cold")])
    assert [c.name for c in conditions if c.value is None] == [
        BLOCK_DEVICE, DISK, VIRTUAL_DISK, ROTATIONAL, READ_AHEAD, PAGES_PER_FAULT]
    assert describe_conditions(conditions) == (
        "on ext4; not recorded: block device, disk, virtual disk, rotational, read_ahead_kb, "
        "page-cache pages per mapping fault")


@pytest.mark.parametrize(("disk", "virtual"), [
    ("virtio_blk", True), ("vbd", True), ("sd QEMU HARDDISK", True),
    ("sd VMware Virtual disk", True), ("sd Msft Virtual Disk", True),
    ("nvme Amazon Elastic Block Store", True), ("sd PersistentDisk", True),
    ("nvme Samsung SSD 980 PRO 1TB", False), ("sd ST1000DM003-1CH162", False),
    (None, None), ("", None)])
def test_virtual_disks_are_told_by_driver_or_model(disk: str | None,
                                                   virtual: bool | None) -> None:
    assert is_virtual_disk(disk) is virtual


# Two labels of this machine as results/ holds them: one run with a tunable, one without.
BOOT = "9e7de8b0-2610-460f-a8b5-89c079064561"
PLAIN = {"boot_id": BOOT, "cpu_model": "Intel(R) Xeon(R) Processor", "kernel": "6.18.44",
         "libc": "glibc 2.36", "thp_enabled": "madvise", "memory_bytes": 24 << 30,
         "allocator_env": {}}
HUGETLB = {**PLAIN, "allocator_env": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}}


def test_a_configuration_is_named_by_its_allocator_variables() -> None:
    assert configuration_name(PLAIN) == ""
    assert configuration_name({}) == ""  # an older run: no variables recorded
    assert configuration_name(HUGETLB) == "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
    both = {"allocator_env": {"MALLOC_ARENA_MAX": "1", "LD_PRELOAD": "libjemalloc.so.2"}}
    assert configuration_name(both) == "LD_PRELOAD=libjemalloc.so.2 MALLOC_ARENA_MAX=1"


def test_one_machine_is_one_boot_or_the_same_hardware_and_system() -> None:
    rebooted = {**HUGETLB, "boot_id": "another", "memory_bytes": (24 << 30) - (8 << 20)}
    assert is_configuration_of(HUGETLB, PLAIN) and is_configuration_of(rebooted, PLAIN)
    assert not is_configuration_of(PLAIN, PLAIN)  # the same configuration
    epyc = {**HUGETLB, "boot_id": "another", "cpu_model": "AMD EPYC 7B13 64-Core Processor"}
    assert not same_machine(epyc, PLAIN) and not is_configuration_of(epyc, PLAIN)
    newer_kernel = {**rebooted, "kernel": "6.19.1"}
    assert not same_machine(newer_kernel, PLAIN)
    # Too little recorded to tell two machines apart is not one machine.
    assert not same_machine({"allocator_env": {}}, {"allocator_env": {}})
    # Within one boot nothing else can differ: it is one machine whatever was recorded.
    assert same_machine({"boot_id": BOOT}, {"boot_id": BOOT, "kernel": "6.18.44"})


def test_a_tunable_label_is_a_configuration_of_the_plain_label_of_its_machine() -> None:
    epyc = {**PLAIN, "boot_id": "other", "cpu_model": "AMD EPYC 7B13 64-Core Processor"}
    epyc_jemalloc = {**epyc, "allocator_env": {"LD_PRELOAD": "libjemalloc.so.2"}}
    lonely = {**epyc, "boot_id": "third", "cpu_model": "Ampere Altra",
              "allocator_env": {"MALLOC_ARENA_MAX": "1"}}
    found = machine_configurations({
        "vm": PLAIN, "vm-glibc-malloc-hugetlb": HUGETLB, "vm-epyc": epyc,
        "vm-epyc-jemalloc": epyc_jemalloc, "arm": lonely})
    assert found == {
        "arm": Configuration("arm", "MALLOC_ARENA_MAX=1"),  # no plain label of its machine
        "vm": Configuration("vm", ""),
        "vm-epyc": Configuration("vm-epyc", ""),
        "vm-epyc-jemalloc": Configuration("vm-epyc", "LD_PRELOAD=libjemalloc.so.2"),
        "vm-glibc-malloc-hugetlb": Configuration("vm", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1"),
    }
    assert found["vm"].describe() == "vm"
    assert found["vm-glibc-malloc-hugetlb"].describe() == (
        "vm, configuration GLIBC_TUNABLES=glibc.malloc.hugetlb=1")


COLD_SPEC = """\
name: cold
title: Cold reads
question: Does a mapping read a cold file faster than read()?
matrix:
  backing: [mmap-file, read-file]
  size: [64KiB, 1MiB]
fixed:
  access: read-all
  cache: cold
  file_dir: /tmp
repetitions:
  processes: 3
  iterations: 1
charts:
  - title: First touch
    metric: first_touch_ns_per_page
    x: size
    series: backing
checks:
  - claim: A mapping reads a cold file faster than read()
    metric: first_touch_ns_per_page
    expect: lower
    candidate: {backing: mmap-file}
    reference: {backing: read-file}
"""


def test_verdicts_json_says_the_conditions_of_each_verdict(tmp_path: Path) -> None:
    spec_path = tmp_path / "cold.yaml"
    spec_path.write_text(COLD_SPEC)
    write_synthetic_run(tmp_path / "results", spec_path,
                        fingerprint={**FINGERPRINT, **VM, "libc": "glibc 2.99"})
    render_reports(tmp_path / "results", tmp_path / "reports", TEMPLATES)
    [record] = json.loads((tmp_path / "reports" / "verdicts.json").read_text())["verdicts"]
    # The C library is the one the probe reported (glibc 2.36), not Python's.
    assert record["conditions"]["text"] == (
        "on ext4 on a rotational virtual disk (virtio_blk, vda), read_ahead_kb 8192, page "
        "cache mapped 30 pages per fault; THP enabled madvise, defrag madvise; glibc 2.36 "
        "with no allocator variables")
    facts = record["conditions"]["facts"]
    assert {"name": READ_AHEAD, "value": 8192, "file_dir": "/tmp",
            "why": WHY[READ_AHEAD]} in facts


def test_the_index_names_a_tunable_label_as_a_configuration_of_its_machine(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm", fingerprint={**FINGERPRINT, **PLAIN})
    write_synthetic_run(results, small_spec, machine="vm-glibc-malloc-hugetlb",
                        fingerprint={**FINGERPRINT, **HUGETLB})
    render_reports(results, tmp_path / "reports", TEMPLATES)
    index = (tmp_path / "reports" / "index.html").read_text()
    configured = "vm, configuration GLIBC_TUNABLES=glibc.malloc.hugetlb=1"
    # its own column in the grid, beside the machine's, a cell for each of its two verdicts
    assert ("<th>vm</th><th>vm-glibc-malloc-hugetlb<br><span class=\"muted\">vm with "
            "GLIBC_TUNABLES=glibc.malloc.hugetlb=1</span></th>") in index
    assert len(re.findall(r'title="vm, configuration GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1: ',
                          index)) == 2
    assert f"{configured}</a> (20260101T000000Z)" in index
    # The counts are the machine's own two verdicts; the configuration's are counted apart.
    assert sum(int(n) for n in re.findall(r'<span class="verdict [a-z-]+">(\d+) ', index)) == 2
    assert f"counted apart: 2 verdicts of {configured}" in index
