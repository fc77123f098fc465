"""The machine's fingerprint: what besides the code shapes the numbers, recorded with every run."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _bracketed(text: str | None) -> str | None:
    """The selected mode of a sysfs choice file: 'always [madvise] never' -> 'madvise'."""
    if text is None:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


def _cpuinfo_field(name: str) -> str | None:
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _meminfo_bytes(name: str) -> int | None:
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0]) * 1024
    return None


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def default_machine_label() -> str:
    """A stable folder name for this machine: $ALLOCLAB_MACHINE, else the host name."""
    label = os.environ.get("ALLOCLAB_MACHINE") or socket.gethostname() or "machine"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in label)


def read_fingerprint() -> dict[str, Any]:
    """Facts about this machine that change allocation behaviour or its cost."""
    libc_name, libc_version = platform.libc_ver()
    thp = "/sys/kernel/mm/transparent_hugepage"
    return {
        "cpu_model": _cpuinfo_field("model name"),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _meminfo_bytes("MemTotal"),
        "swap_bytes": _meminfo_bytes("SwapTotal"),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "libc": f"{libc_name} {libc_version}".strip() or None,
        "page_size_bytes": os.sysconf("SC_PAGE_SIZE"),
        "thp_enabled": _bracketed(_read(f"{thp}/enabled")),
        "thp_defrag": _bracketed(_read(f"{thp}/defrag")),
        "thp_shmem_enabled": _bracketed(_read(f"{thp}/shmem_enabled")),
        "overcommit_memory": _int_or_none(_read("/proc/sys/vm/overcommit_memory")),
        "nr_hugepages": _int_or_none(_read("/proc/sys/vm/nr_hugepages")),
        "max_map_count": _int_or_none(_read("/proc/sys/vm/max_map_count")),
        "python": platform.python_version(),
    }
