"""The facts of each file directory a run's data files live in: the mount and filesystem, the
block device under it and its queue, and how many page-cache pages one fault maps there
(observed by mapping a small file, not read from a setting). A file backing's cost turns on
them, so the fingerprint records them per directory."""

from __future__ import annotations

import mmap
import os
import resource
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runner.machine.kernel_files import int_or_none, read_text, selected_choice


def _unescape_mount(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


@dataclass(frozen=True)
class Mount:
    """The mount a directory is on, from one line of /proc/self/mountinfo."""

    point: str
    fs_type: str
    device_number: str  # "254:0": /sys/dev/block/<this> when a block device holds it
    source: str  # "/dev/vda", "tmpfs", "overlay"


def find_mount(directory: str, mountinfo: str) -> Mount | None:
    """The mount holding `directory`: the longest mount point prefix wins.

    `mountinfo` is the text of /proc/self/mountinfo; a later line on the same mount point is
    mounted over an earlier one, so it wins a tie.
    """
    path = os.path.realpath(directory)
    best: Mount | None = None
    for line in mountinfo.splitlines():
        fields = line.split()
        after = line.split(" - ", 1)[1].split() if " - " in line else []
        if len(fields) < 5 or len(after) < 2:
            continue
        mount_point = _unescape_mount(fields[4])
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) >= len(best.point)):
            best = Mount(mount_point, after[0], fields[2], _unescape_mount(after[1]))
    return best


NO_BLOCK_DEVICE = "none"


_SLAVE_DEPTH = 4  # device-mapper or md over device-mapper...: how far down to look for a disk


@dataclass(frozen=True)
class BlockDevice:
    """The block device a filesystem is on, and the facts of its queue that decide file I/O."""

    name: str  # vda, sda1, dm-0
    disk: str | None  # driver and model of the disk: "virtio_blk", "sd QEMU HARDDISK"
    rotational: bool | None
    scheduler: str | None
    read_ahead_kb: int | None


def _whole_disk(device: Path) -> Path:
    """A partition's queue and driver belong to the disk it is part of."""
    return device.parent if (device / "partition").exists() else device


def _disk_text(whole: Path, depth: int = 0) -> str | None:
    """"virtio_blk", "nvme Amazon Elastic Block Store": the driver of the device behind a
    disk (NVMe's sits one level further, behind its controller) and its model. A
    device-mapper or md device has no device of its own: the first disk it is made of."""
    device = whole / "device"
    if device.exists():
        driver = next((link.resolve().name for link in (device / "driver",
                                                        device / "device" / "driver")
                       if link.exists()), None)
        model = " ".join((read_text(device / "model") or "").split())
        return " ".join(part for part in (driver, model) if part) or None
    slaves = sorted((whole / "slaves").glob("*"))
    if slaves and depth < _SLAVE_DEPTH:
        return _disk_text(_whole_disk(slaves[0].resolve()), depth + 1)
    return None


def read_block_device(mount: Mount, sys_root: Path = Path("/sys")) -> BlockDevice | None:
    """The block device holding a mount's filesystem (by its device number, else by its source,
    as for btrfs, whose device numbers are not the disk's); None when it is on none (tmpfs,
    overlay, a network filesystem)."""
    path = sys_root / "dev" / "block" / mount.device_number
    if not path.exists() and mount.source.startswith("/dev/"):
        path = sys_root / "class" / "block" / Path(os.path.realpath(mount.source)).name
    if not path.exists():
        return None
    device = path.resolve()
    whole = _whole_disk(device)
    rotational = int_or_none(read_text(whole / "queue" / "rotational"))
    return BlockDevice(
        name=device.name, disk=_disk_text(whole),
        rotational=None if rotational is None else bool(rotational),
        scheduler=selected_choice(read_text(whole / "queue" / "scheduler")),
        read_ahead_kb=int_or_none(read_text(whole / "queue" / "read_ahead_kb")))


# The file mapped to count pages per fault, written in writes as large as the probe's data
# files' (FILL_CHUNK_BYTES in runner/probe/probe.h): the page cache's folios follow the writes.
PAGES_PER_FAULT_FILE_BYTES = 2 << 20


PAGES_PER_FAULT_WRITE_BYTES = 1 << 20


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _write_fully(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def mapped_pages_per_fault(directory: str) -> int | None:
    """Page-cache pages one minor fault maps in `directory`, rounded to a whole number.

    A file of PAGES_PER_FAULT_FILE_BYTES is written there (and unlinked at once), then read
    page by page through a private read-only mapping while its pages are cached: each fault
    maps the fault-around window (16 pages), or a whole large folio where the filesystem
    caches files in large folios (ext4 on recent kernels). None where no file can be written
    there. runner/probe/fingerprint.c does the same, so remote hosts record the same fact.
    """
    page = mmap.PAGESIZE
    try:
        fd, path = tempfile.mkstemp(prefix="alloclab-", dir=directory)
    except OSError:
        return None
    try:
        os.unlink(path)
        block = b"\x01" * PAGES_PER_FAULT_WRITE_BYTES
        for _ in range(PAGES_PER_FAULT_FILE_BYTES // PAGES_PER_FAULT_WRITE_BYTES):
            _write_fully(fd, block)
        offsets = range(0, PAGES_PER_FAULT_FILE_BYTES, page)
        with mmap.mmap(fd, PAGES_PER_FAULT_FILE_BYTES, flags=mmap.MAP_PRIVATE,
                       prot=mmap.PROT_READ) as mapping:
            before = _minor_faults()
            for offset in offsets:
                mapping[offset]
            faults = _minor_faults() - before
    except OSError:
        return None  # a full or read-only filesystem
    finally:
        os.close(fd)
    pages = PAGES_PER_FAULT_FILE_BYTES // page
    return (pages + faults // 2) // faults if faults > 0 else None


