"""The C allocators a scenario can run its probe with: where each library is on this machine and
which version it is.

A named allocator (runner.core.choices.ALLOCATORS) is found by its soname, first in the
dynamic linker's cache (`ldconfig -p`, as `dlopen` would find it), then in the usual library
directories, multiarch ones included, so the lookup works on Debian, Fedora and Arch alike. Its
version comes from the package manager that owns the file (`dpkg-query`), else from the numbers of
the file the soname links to (libtcmalloc_minimal.so.4.5.10 -> 4.5.10). glibc is the C library's
own malloc: nothing is preloaded.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

GLIBC = "glibc"


@dataclass(frozen=True)
class AllocatorLibrary:
    """How a named allocator is found, and the Debian package that installs it."""

    name: str
    soname: str
    package: str  # Debian's (and Ubuntu's) package


LIBRARIES: Mapping[str, AllocatorLibrary] = {
    lib.name: lib for lib in (
        AllocatorLibrary("jemalloc", "libjemalloc.so.2", "libjemalloc2"),
        AllocatorLibrary("tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
        AllocatorLibrary("mimalloc", "libmimalloc.so.2", "libmimalloc2.0"),
    )
}
# Where a library is looked for when the linker's cache does not list it: the multiarch
# directory of this machine's triplet first (Debian), then lib64 (Fedora) and lib (Arch).
_LIBRARY_DIRS = ("/usr/lib/{triplet}", "/lib/{triplet}", "/usr/lib64", "/lib64", "/usr/lib",
                 "/lib", "/usr/local/lib")
_TIMEOUT_S = 10.0


def install_hint(name: str) -> str:
    """What to install for a named allocator, as a skip reason says it."""
    library = LIBRARIES[name]
    return (f"{name} is not installed: no {library.soname} in `ldconfig -p` or the library "
            f"directories (Debian: apt-get install {library.package})")


def find_libraries(names: Iterable[str] = tuple(LIBRARIES)) -> dict[str, str]:
    """Allocator name -> the path of its library on this machine, for those found."""
    cache = _ldconfig_cache()
    found: dict[str, str] = {}
    for name in names:
        path = find_library(LIBRARIES[name].soname, cache)
        if path is not None:
            found[name] = path
    return found


def find_library(soname: str, cache: Mapping[str, str] | None = None) -> str | None:
    """The path of a library by soname: the linker's cache, then the library directories."""
    listed = (cache if cache is not None else _ldconfig_cache()).get(soname)
    if listed is not None and os.path.isfile(listed):
        return listed
    triplet = _triplet()
    for pattern in _LIBRARY_DIRS:
        candidate = Path(pattern.format(triplet=triplet)) / soname
        if "{triplet}" in pattern and not triplet:
            continue
        if candidate.is_file():
            return str(candidate)
    return None


def describe_library(path: str) -> dict[str, str | None]:
    """A library's path, the file it resolves to, its version and where the version came from."""
    real = os.path.realpath(path)
    package = _dpkg_package(real) or _dpkg_package(path)
    version = _dpkg_version(package) if package else None
    if version is not None:
        return {"path": path, "file": real, "version": version,
                "version_from": f"dpkg-query: package {package}"}
    numbers = re.search(r"\.so\.([0-9][0-9.]*)$", real)
    return {"path": path, "file": real, "version": numbers.group(1) if numbers else None,
            "version_from": "the library's file name" if numbers else None}


def describe_allocators(names: Iterable[str]) -> dict[str, dict[str, str | None] | None]:
    """The fingerprint's `allocators`: for each allocator a run uses but glibc, its library
    (describe_library), or None where this machine has none (its scenarios are skipped)."""
    wanted = sorted(set(names) - {GLIBC})
    found = find_libraries([name for name in wanted if name in LIBRARIES])
    described: dict[str, dict[str, str | None] | None] = {}
    for name in wanted:
        path = found.get(name) if name in LIBRARIES else name
        described[name] = describe_library(path) if path and os.path.isfile(path) else None
    return described


def _ldconfig_cache() -> dict[str, str]:
    """soname -> path from `ldconfig -p`, for this machine's word size (an i386 copy of a
    library on an amd64 machine is listed too, and could not be preloaded into the probe)."""
    text = _run(["ldconfig", "-p"]) or _run(["/sbin/ldconfig", "-p"]) or ""
    is_64 = platform.architecture()[0] == "64bit"
    cache: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
        if match is None:
            continue
        soname, tags, path = match.groups()
        if ("64" in tags) == is_64:  # x86-64, AArch64...
            cache.setdefault(soname, path)
    return cache


def _triplet() -> str:
    """The multiarch triplet (x86_64-linux-gnu), from the compiler or the machine's name."""
    text = _run(["gcc", "-dumpmachine"]) or _run(["cc", "-dumpmachine"])
    return text.strip() if text else f"{platform.machine()}-linux-gnu"


def _dpkg_package(path: str) -> str | None:
    text = _run(["dpkg-query", "-S", path])
    return text.split(":", 1)[0].strip() if text and ":" in text else None


def _dpkg_version(package: str) -> str | None:
    text = _run(["dpkg-query", "-W", "-f=${Version}", package])
    return text.strip() or None if text else None


def _run(argv: list[str]) -> str | None:
    """A command's stdout, or None where it is missing or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None
