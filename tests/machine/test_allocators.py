"""Finding allocator libraries by soname, and what the fingerprint says of them."""

from __future__ import annotations

from pathlib import Path

from runner.machine import allocators
from runner.machine.system import format_fact


def test_the_linkers_cache_comes_first(tmp_path: Path) -> None:
    library = tmp_path / "libjemalloc.so.2"
    library.write_bytes(b"\x7fELF")
    assert allocators.find_library("libjemalloc.so.2", {"libjemalloc.so.2": str(library)}) \
        == str(library)


def test_a_cache_entry_whose_file_is_gone_is_not_found() -> None:
    assert allocators.find_library("libnone-alloclab.so.9",
                                   {"libnone-alloclab.so.9": "/nonexistent/libnone.so.9"}) is None


def test_a_version_from_the_file_name_where_no_package_owns_it(tmp_path: Path) -> None:
    real = tmp_path / "libtcmalloc_minimal.so.4.5.10"
    real.write_bytes(b"\x7fELF")
    link = tmp_path / "libtcmalloc_minimal.so.4"
    link.symlink_to(real.name)
    described = allocators.describe_library(str(link))
    assert described == {"path": str(link), "file": str(real), "version": "4.5.10",
                         "version_from": "the library's file name"}


def test_glibc_is_not_described_and_a_missing_path_is_null() -> None:
    assert allocators.describe_allocators(["glibc", "/nonexistent/libx.so"]) \
        == {"/nonexistent/libx.so": None}


def test_the_fact_reads_as_one_line() -> None:
    value = {"jemalloc": {"path": "/lib/libjemalloc.so.2", "file": "/usr/lib/libjemalloc.so.2",
                          "version": "5.3.0-1", "version_from": "dpkg-query: package x"},
             "mimalloc": None}
    assert format_fact("allocators", value) == (
        "jemalloc 5.3.0-1: /usr/lib/libjemalloc.so.2 (version from dpkg-query: package x); "
        "mimalloc: not installed")
    assert format_fact("allocators", {}) == "none preloaded"
