"""The fingerprint: one registry, read here, merged with what a run records, compared."""

from __future__ import annotations

from pathlib import Path

from runner import machine
from runner.machine import (
    FACTS,
    allocator_env,
    confounding_differences,
    filesystem_type,
    format_fact,
    read_fingerprint,
    read_load,
    run_facts,
)

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24731708k
40 27 0:30 / /mnt/with\\040space rw - xfs /dev/vdb rw
41 27 0:31 / /tmp rw - ext4 /dev/vdc rw
42 41 0:32 / /tmp rw - tmpfs tmpfs rw
"""


def test_every_machine_fact_is_read_and_nothing_undeclared() -> None:
    fingerprint = read_fingerprint()
    assert list(fingerprint) == [f.key for f in FACTS if f.source == "machine"]
    assert len({f.key for f in FACTS}) == len(FACTS)  # each key declared once
    assert all(f.description for f in FACTS)


def test_the_listed_confounders_are_flagged() -> None:
    flagged = {f.key for f in FACTS if f.confounds}
    assert {"kernel", "libc", "thp_enabled", "cpu_model", "allocator_env", "page_size_bytes",
            "overcommit_memory", "compiler", "file_fs"} <= flagged
    assert not {"python", "git_commit", "memory_bytes", "alloclab_version"} & flagged


def test_fingerprint_reads_this_linux_machine(tmp_path: Path) -> None:
    fingerprint = read_fingerprint(file_dirs=["/proc", str(tmp_path)],
                                   environ={"GLIBC_TUNABLES": "glibc.malloc.check=0",
                                            "MALLOC_ARENA_MAX": "1", "HOME": "/root"})
    assert fingerprint["kernel"] and fingerprint["page_size_bytes"] >= 4096
    assert fingerprint["file_fs"]["/proc"] == "proc"
    assert fingerprint["allocator_env"] == {"GLIBC_TUNABLES": "glibc.malloc.check=0",
                                            "MALLOC_ARENA_MAX": "1"}
    assert fingerprint["libraries"]["numpy"]
    assert fingerprint["hypervisor"]  # "none" on bare metal, a name in a VM


def test_git_commit_of_the_spec_and_its_dirty_flag(tmp_path: Path) -> None:
    outside = tmp_path / "spec.yaml"
    outside.write_text("name: x\n")
    fingerprint = read_fingerprint(spec_path=outside)
    assert (fingerprint["git_commit"], fingerprint["git_dirty"]) == (None, None)
    inside = read_fingerprint(spec_path=Path(__file__))
    assert inside["git_commit"] is None or len(inside["git_commit"]) == 40


def test_filesystem_is_the_longest_mount_prefix_and_the_last_mount_on_top() -> None:
    assert filesystem_type("/dev/shm", MOUNTINFO) == "tmpfs"
    assert filesystem_type("/dev/shm/deeper", MOUNTINFO) == "tmpfs"
    assert filesystem_type("/devices", MOUNTINFO) == "ext4"  # not under /dev
    assert filesystem_type("/mnt/with space/x", MOUNTINFO) == "xfs"
    assert filesystem_type("/tmp", MOUNTINFO) == "tmpfs"  # mounted over the ext4 /tmp


def test_allocator_env_takes_only_what_changes_the_allocator() -> None:
    environ = {"LD_PRELOAD": "libjemalloc.so", "MALLOC_TOP_PAD_": "0", "PATH": "/bin",
               "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096", "LANG": "C"}
    assert list(allocator_env(environ)) == ["GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_TOP_PAD_"]


def test_run_facts_add_the_manifest_and_probe_and_keep_unknown_keys() -> None:
    manifest = {"fingerprint": {"kernel": "6.1", "from_the_future": 1}, "alloclab_version": "9",
                "spec_hash": "abc", "probe": {"compiler": "gcc 12", "flags": ["-O2", "-g"],
                                              "source_hash": "f00"}}
    facts = run_facts(manifest, {"libc": {"name": "glibc", "version": "2.36"}})
    assert list(facts) == ["kernel", "alloclab_version", "spec_hash", "compiler",
                           "compiler_flags", "probe_hash", "probe_libc", "from_the_future"]
    assert facts["compiler_flags"] == "-O2 -g" and facts["probe_libc"] == "glibc 2.36"
    assert "probe_libc" not in run_facts(manifest, None)


def test_confounding_differences_ignore_unknowns_and_other_experiments_dirs() -> None:
    old = {"kernel": "6.1", "thp_enabled": "madvise", "file_fs": {"/tmp": "ext4"},
           "python": "3.11"}
    assert confounding_differences(old, {**old, "python": "3.12"}) == []
    assert confounding_differences(old, {**old, "thp_enabled": "always"}) == ["thp_enabled"]
    assert confounding_differences(old, {"kernel": "6.1"}) == []  # not recorded: unknown
    more_dirs = {**old, "file_fs": {"/tmp": "ext4", "/dev/shm": "tmpfs"}}
    assert confounding_differences(old, more_dirs) == []
    assert confounding_differences(old, {**old, "file_fs": {"/tmp": "tmpfs"}}) == ["file_fs"]


def test_facts_format_for_tables() -> None:
    assert format_fact("memory_bytes", 8 << 30) == "8 GiB"
    assert format_fact("page_size_bytes", 4096) == "4096"
    assert format_fact("allocator_env", {}) == "none"
    assert format_fact("file_fs", {"/tmp": "ext4"}) == "/tmp=ext4"
    assert format_fact("git_dirty", True) == "yes"
    assert format_fact("cpu_governor", None) == "–"


def test_load_snapshot_counts_jiffies() -> None:
    first, second = read_load(), read_load()
    assert first["cpus"] and first["cpus"] >= 1
    assert second["total_jiffies"] >= first["total_jiffies"] > 0
    assert first["busy_jiffies"] + first["idle_jiffies"] + first["steal_jiffies"] \
        <= first["total_jiffies"]


def test_by_key_matches_the_registry() -> None:
    assert list(machine.BY_KEY) == [f.key for f in FACTS]
