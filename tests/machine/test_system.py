"""The fingerprint: one registry, read here, merged with what a run records, compared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.machine import file_dirs, system
from runner.machine.file_dirs import (
    BlockDevice,
    Mount,
    find_mount,
    mapped_pages_per_fault,
    read_block_device,
)
from runner.machine.system import (
    FACTS,
    allocator_env,
    confounding_differences,
    format_fact,
    parse_load,
    parse_times_s,
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
    assert {"kernel", "libc", "thp_enabled", "thp_defrag", "thp_shmem_enabled", "cpu_model",
            "allocator_env", "page_size_bytes", "overcommit_memory", "compiler", "file_fs",
            "file_read_ahead_kb", "file_rotational", "file_pages_per_fault"} <= flagged
    assert not {"python", "git_commit", "memory_bytes", "alloclab_version",
                "file_device"} & flagged


def test_every_per_directory_fact_names_the_same_directories(tmp_path: Path) -> None:
    dirs = ["/proc", str(tmp_path), str(tmp_path / "missing")]
    fingerprint = read_fingerprint(file_dirs=dirs)
    per_dir = [f.key for f in FACTS if f.per_file_dir]
    assert per_dir[0] == "file_fs" and len(per_dir) == 7
    assert all(list(fingerprint[key]) == sorted(dirs) for key in per_dir)
    # /proc holds no file and is on no disk: every fact of it says so.
    assert fingerprint["file_device"]["/proc"] == file_dirs.NO_BLOCK_DEVICE
    assert [fingerprint[key]["/proc"] for key in per_dir[2:]] == [None] * 5
    assert fingerprint["file_pages_per_fault"][str(tmp_path / "missing")] is None


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
    def fs_type(directory: str) -> str | None:
        mount = find_mount(directory, MOUNTINFO)
        return mount.fs_type if mount else None

    assert fs_type("/dev/shm") == "tmpfs"
    assert fs_type("/dev/shm/deeper") == "tmpfs"
    assert fs_type("/devices") == "ext4"  # not under /dev
    assert fs_type("/mnt/with space/x") == "xfs"
    assert fs_type("/tmp") == "tmpfs"  # mounted over the ext4 /tmp


def test_the_mount_gives_its_device_number_and_source() -> None:
    assert find_mount("/tmp/x", MOUNTINFO) == Mount("/tmp", "tmpfs", "0:32", "tmpfs")
    assert find_mount("/etc", MOUNTINFO) == Mount("/", "ext4", "254:0", "/dev/vda")
    assert find_mount("/mnt/with space", MOUNTINFO) == Mount("/mnt/with space", "xfs", "0:30",
                                                             "/dev/vdb")


def _link(link: Path, target: Path) -> None:
    """A sysfs-like relative symbolic link to a folder (made when missing)."""
    target.mkdir(parents=True, exist_ok=True)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(target, link.parent))


def _disk(sys_root: Path, where: str, *, read_ahead_kb: int = 128, rotational: int = 0,
          scheduler: str = "[none] mq-deadline", driver: str | None = None,
          model: str | None = None, device_driver: str | None = None) -> Path:
    """A disk's folder as sysfs lays it out: queue facts, and a device with a driver (NVMe:
    the controller's device has it) and a model."""
    disk = sys_root / "devices" / where
    (disk / "queue").mkdir(parents=True)
    for name, value in (("read_ahead_kb", read_ahead_kb), ("rotational", rotational),
                        ("scheduler", scheduler)):
        (disk / "queue" / name).write_text(f"{value}\n")
    if driver or model or device_driver:
        device = sys_root / "devices" / f"{disk.name}-device"
        device.mkdir(parents=True)
        _link(disk / "device", device)
        if model:
            (device / "model").write_text(model)
        if driver:
            _link(device / "driver", sys_root / "bus" / "drivers" / driver)
        if device_driver:
            _link(device / "device" / "driver", sys_root / "bus" / "drivers" / device_driver)
    return disk


def _partition(disk: Path, name: str) -> Path:
    part = disk / name
    part.mkdir()
    (part / "partition").write_text("1\n")
    return part


def test_block_device_of_a_whole_virtio_disk(tmp_path: Path) -> None:
    vda = _disk(tmp_path, "virtio1/block/vda", read_ahead_kb=8192, rotational=1,
                scheduler="none [mq-deadline] kyber", driver="virtio_blk")
    _link(tmp_path / "dev" / "block" / "254:0", vda)
    mount = Mount("/", "ext4", "254:0", "/dev/vda")
    assert read_block_device(mount, tmp_path) == BlockDevice("vda", "virtio_blk", True,
                                                             "mq-deadline", 8192)


def test_a_partition_takes_its_disks_queue_and_driver(tmp_path: Path) -> None:
    sda = _disk(tmp_path, "scsi/block/sda", driver="sd", model="QEMU HARDDISK   \n")
    _link(tmp_path / "dev" / "block" / "8:1", _partition(sda, "sda1"))
    device = read_block_device(Mount("/data", "xfs", "8:1", "/dev/sda1"), tmp_path)
    assert device == BlockDevice("sda1", "sd QEMU HARDDISK", False, "none", 128)


def test_nvme_names_the_driver_behind_its_controller(tmp_path: Path) -> None:
    nvme = _disk(tmp_path, "nvme/nvme0/nvme0n1", model="Amazon Elastic Block Store",
                 device_driver="nvme")
    _link(tmp_path / "dev" / "block" / "259:0", nvme)
    device = read_block_device(Mount("/", "ext4", "259:0", "/dev/nvme0n1"), tmp_path)
    assert device is not None and device.disk == "nvme Amazon Elastic Block Store"


def test_device_mapper_reads_its_own_queue_and_the_disk_it_is_made_of(tmp_path: Path) -> None:
    vda = _disk(tmp_path, "virtio1/block/vda", driver="virtio_blk")
    dm = _disk(tmp_path, "virtual/block/dm-0", read_ahead_kb=4096, scheduler="none")
    _link(dm / "slaves" / "vda2", _partition(vda, "vda2"))
    _link(tmp_path / "dev" / "block" / "253:0", dm)
    device = read_block_device(Mount("/", "ext4", "253:0", "/dev/mapper/root"), tmp_path)
    assert device == BlockDevice("dm-0", "virtio_blk", False, "none", 4096)


def test_btrfs_is_found_by_its_source_and_tmpfs_is_on_no_device(tmp_path: Path) -> None:
    sdb = _disk(tmp_path, "scsi/block/sdb", driver="sd", model="Samsung SSD")
    _link(tmp_path / "class" / "block" / "sdb", sdb)
    # btrfs reports an anonymous device number (0:45), not the disk's.
    device = read_block_device(Mount("/home", "btrfs", "0:45", "/dev/sdb"), tmp_path)
    assert device is not None and (device.name, device.disk) == ("sdb", "sd Samsung SSD")
    assert read_block_device(Mount("/dev/shm", "tmpfs", "0:23", "tmpfs"), tmp_path) is None
    assert read_block_device(Mount("/", "overlay", "0:50", "overlay"), tmp_path) is None


def test_pages_per_fault_is_observed_and_leaves_no_file(tmp_path: Path) -> None:
    pages = mapped_pages_per_fault(str(tmp_path))
    # At least one page per fault, at most the whole 2 MiB file in one.
    assert pages is not None and 1 <= pages <= file_dirs.PAGES_PER_FAULT_FILE_BYTES // 4096
    assert list(tmp_path.iterdir()) == []
    assert mapped_pages_per_fault(str(tmp_path / "missing")) is None
    assert mapped_pages_per_fault("/proc") is None


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm")
def test_tmpfs_maps_its_pages_by_fault_around() -> None:
    # tmpfs without huge pages caches a file in single pages: a fault maps the fault-around
    # window (64 KiB by default) at most, never the whole file.
    if "huge=" in Path("/proc/self/mounts").read_text().split(" /dev/shm ", 1)[-1].split("\n")[0]:
        pytest.skip("/dev/shm is mounted with huge pages")
    pages = mapped_pages_per_fault("/dev/shm")
    assert pages is not None and 1 <= pages <= 16


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
    read_ahead = {**old, "file_read_ahead_kb": {"/tmp": 8192}}
    assert confounding_differences(read_ahead, {**read_ahead, "file_read_ahead_kb": {
        "/tmp": 8192, "/dev/shm": None}}) == []
    assert confounding_differences(read_ahead, {**read_ahead, "file_read_ahead_kb": {
        "/tmp": 128}}) == ["file_read_ahead_kb"]


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



def test_a_load_snapshot_parses_the_texts_a_target_sends() -> None:
    stat = "cpu  10 1 5 100 4 2 3 7 0 0\ncpu0 5 0 2 50 2 1 1 3 0 0\ncpu1 5 1 3 50 2 1 2 4 0 0\n"
    snapshot = parse_load("0.52 0.40 0.30 1/100 42\n", stat, 1.23456)
    assert snapshot == {"loadavg_1m": 0.52, "own_cpu_s": 1.235, "cpus": 2,
                        "busy_jiffies": 10 + 1 + 5 + 2 + 3, "idle_jiffies": 104,
                        "steal_jiffies": 7, "total_jiffies": 132}
    unknown = parse_load("", "", None)
    assert set(unknown) == set(snapshot) and set(unknown.values()) == {None}


def test_shell_times_add_up_the_shell_and_its_children() -> None:
    dash = "0m0.004000s 0m0.008000s\n1m2.500000s 0m0.250000s\n"
    bash = "0m0.004s 0m0.008s\n1m2.500s 0m0.250s\n"
    assert parse_times_s(dash) == parse_times_s(bash) == pytest.approx(62.762)
    assert parse_times_s("") == 0


def test_by_key_matches_the_registry() -> None:
    assert list(system.BY_KEY) == [f.key for f in FACTS]
