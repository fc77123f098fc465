"""The probe's command line and exit statuses, building it (cached by content hash, -Werror),
and its output contract (what parse_probe_output accepts)."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from runner.core.errors import ProbeBuildError
from runner.core.model import PHASES
from runner.core.parameters import PARAMETERS
from runner.probe.native import (
    CFLAGS,
    PROBE_VERSION,
    ProbeBinary,
    build_probe,
    find_compiler,
    hash_sources,
    parse_probe_output,
    probe_argv,
    probe_env,
    probe_sources,
)
from tests.probe.running import C_SOURCES, PROBE_DIR, good_args, run_raw, scenario

# --- the command line and exit statuses -----------------------------------------------------


@pytest.mark.probe
def test_good_arguments_print_one_json_line(probe: ProbeBinary) -> None:
    result = run_raw(probe, good_args())
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("}\n") and result.stdout.count("\n") == 1
    parse_probe_output(result.stdout)


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    [],
    good_args()[1:],  # missing --backing
    [*good_args(), "--ops=2"],  # given twice
    [*good_args(), "--colour=blue"],
    good_args(backing="sbrk"),
    good_args(size_bytes="4k"),
    good_args(size_bytes="-1"),
    good_args(ops="0"),  # 'auto' must be resolved before the probe runs
    good_args(populate="yes"),
    good_args(populate="1"),  # the probe takes the choice; true/false are spec aliases only
    good_args(iterations="0"),
    good_args(release="munmap"),  # heap memory must never reach munmap
    good_args(backing="mmap-anon", release="malloc-trim"),
    good_args(thp="huge"),  # thp is for mmap-anon
    good_args(thp="always"),
    good_args(threads="0"),
    good_args(threads="2"),  # more threads than blocks
    good_args(grow_factor="1"),
    good_args(check_zero="2"),
    good_args(workload="fork", order="random"),
    good_args(workload="resize", backing="mmap-anon", release="munmap"),  # realloc of a map
    good_args(workload="resize", grow_method="mremap"),  # mremap of heap memory
    good_args(sync="msync"),
    good_args(backing="write-file", sync="msync"),
    good_args(cache="cold"),
    good_args(history="used"),
    good_args(history="recycled", backing="read-file"),  # the pattern would meet the file
    good_args(host_warm="2"),
    good_args(workload="limits", backing="malloc", access="none"),
    good_args(workload="limits", backing="mmap-anon", release="munmap"),  # touches pages
    good_args(workload="limits", backing="memfd", access="none", release="munmap"),
    [*good_args(), "--trace_heap=1"],  # the trace's own argument has no value
    good_args(protection="read"),  # malloc gives no control over protection
    good_args(backing="calloc", protection="exec"),
    good_args(advice="willneed"),  # advice is for mappings
    good_args(advice="hugepage"),
    good_args(read_buffer_bytes="1000"),  # whole 4 KiB units
    good_args(read_buffer_bytes=str(128 << 20)),
    good_args(write_buffer_bytes="1000"),
    good_args(backing="write-file", write_buffer_bytes="4096", check_zero="1"),
    good_args(backing="read-file", workload="resize"),  # a read buffer keeps no blocks
    good_args(backing="read-file", check_zero="1"),
    good_args(grow_steps="0"),
    good_args(grow_steps="31"),
    good_args(touch_grown="2"),
    good_args(workload="resize", grow_factor="64", grow_steps="30"),  # 64^30 overflows
    good_args(heap_pad="always"),
    good_args(heap_pad="keep", backing="mmap-anon", release="munmap"),  # no heap
    good_args(heap_pad="keep", release="malloc-trim"),
    good_args(heap_pad="keep", threads="2", ops="2"),
    good_args(workload="churn", release="none"),  # churn ends each block at once
    good_args(workload="churn", backing="mmap-anon", release="madv-dontneed"),
    good_args(workload="churn", backing="posix-memalign", protection="read",
               access="read-page"),
    good_args(workload="churn", backing="read-file", threads="2", ops="2"),  # one data file
    good_args(workload="fork", threads="2", ops="2"),
    good_args(workload="churn", backing="write-file"),
    # reuse writes again what madvise released: no other release, no other memory
    good_args(workload="reuse", backing="mmap-anon", release="munmap"),
    good_args(workload="reuse", backing="memfd", release="madv-free"),
    good_args(workload="reuse", backing="mmap-anon", sharing="shared", release="madv-free"),
    ["backing=malloc"],
])
def test_bad_arguments_exit_2(probe: ProbeBinary, args: list[str]) -> None:
    result = run_raw(probe, args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("probe: ")


@pytest.mark.probe
def test_failing_system_call_exits_3_naming_it(probe: ProbeBinary, tmp_path: Path) -> None:
    result = run_raw(probe, good_args(backing="read-file", file_dir=str(tmp_path / "nope")))
    assert result.returncode == 3
    assert "statfs: No such file or directory" in result.stderr
    huge = run_raw(probe, good_args(size_bytes=str(1 << 46)))  # 64 TiB: more than any VM
    assert huge.returncode == 3
    assert "malloc: Cannot allocate memory" in huge.stderr


@pytest.mark.probe
def test_probe_argv_names_every_parameter_field(probe: ProbeBinary) -> None:
    s = scenario(backing="mmap-anon", populate="map-populate", ops=7, size_bytes=8192,
                 check_zero=True, tunables="glibc.malloc.mmap_threshold=4096",
                 history="recycled", host_warm=True)
    argv = probe_argv(probe, s, warmup=2, iterations=3)
    assert argv[0] == str(probe.path)
    options = [p for p in PARAMETERS if p.probe_option]
    assert [p.field for p in PARAMETERS if not p.probe_option] == [
        "tunables", "memory_limit_bytes", "hugetlb_pool", "allocator"]
    assert argv[1:] == [f"--{p.field}={v}" for p, v in zip(options, [
        "mmap-anon", "8192", "private", "read-write", "map-populate", "write-page", "7", "/tmp",
        "default", "auto", "cycle", "warm", "sequential", "none", "realloc", "2", "1", "1",
        "none", "1048576", "1048576", "recycled", "1", "1", "0", "default", "1000000",
        "existing", "whole", "0", "once", "0", "0", "0", "off", "0", "0", "0", "0"],
        strict=True)] + ["--warmup=2", "--iterations=3"]


@pytest.mark.parametrize(("field", "choice"), [
    (p.field, choice) for p in PARAMETERS if p.kind == "choice" and p.probe_option
    for choice in p.choices])
def test_every_choice_of_every_option_is_a_name_the_probe_knows(
        probe: ProbeBinary, field: str, choice: str) -> None:
    # The probe keeps its own tables of choice names (options.c): a choice PARAMETERS offers
    # and the probe does not know would pass validation and fail every process. Whether the
    # rest of the command line makes sense does not matter here, only that the name parses.
    result = run_raw(probe, good_args(**{field: choice}))
    assert "is not a known value" not in result.stderr, result.stderr
    unknown = run_raw(probe, good_args(**{field: choice + "-not"}))
    assert unknown.returncode == 2 and "is not a known value" in unknown.stderr


# --- building -------------------------------------------------------------------------------

@pytest.mark.probe
def test_source_compiles_without_warnings(tmp_path: Path) -> None:
    compiler, _ = find_compiler()
    result = subprocess.run([*compiler, *CFLAGS, "-Werror", "-o", str(tmp_path / "p"),
                             *map(str, C_SOURCES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_probe_sources_are_every_c_file_and_header() -> None:
    names = [path.name for path in probe_sources(PROBE_DIR)]
    assert "probe.c" in names and "probe.h" in names and len(names) > 5
    assert names == sorted(path.name for path in PROBE_DIR.iterdir()
                           if path.suffix in (".c", ".h"))


def test_content_hash_covers_every_source_file(tmp_path: Path) -> None:
    for name in ("a.c", "b.c", "p.h"):
        (tmp_path / name).write_text(f"/* {name} */\n")
    sources = probe_sources(tmp_path)
    before = hash_sources(sources, CFLAGS, "cc 1")
    assert hash_sources(sources, CFLAGS, "cc 1") == before
    for name in ("a.c", "b.c", "p.h"):
        (tmp_path / name).write_text(f"/* {name}, edited */\n")
        after = hash_sources(sources, CFLAGS, "cc 1")
        assert after != before, name
        before = after
    assert hash_sources(sources, CFLAGS, "cc 2") != before
    assert hash_sources(sources[:2], CFLAGS, "cc 1") != before  # a file fewer


@pytest.mark.probe
def test_build_is_cached_by_content_hash(probe: ProbeBinary) -> None:
    before = probe.path.stat().st_mtime_ns
    again = build_probe(probe.path.parent)
    assert again == probe
    assert probe.path.stat().st_mtime_ns == before
    assert probe.path.name == f"probe-{probe.source_hash}" and len(probe.source_hash) == 16
    assert probe.flags == CFLAGS and probe.compiler


@pytest.mark.probe
def test_concurrent_builds_leave_one_working_binary(tmp_path: Path) -> None:
    results: list[ProbeBinary] = []
    threads = [threading.Thread(target=lambda: results.append(build_probe(tmp_path)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and len({r.path for r in results}) == 1
    assert [p.name for p in tmp_path.iterdir()] == [results[0].path.name]  # no temp files
    assert run_raw(results[0], good_args()).returncode == 0


def test_missing_compiler_is_a_build_error(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-alloclab")
    with pytest.raises(ProbeBuildError, match=r"no-such-compiler-alloclab.*(install|set CC)"):
        build_probe(tmp_path)


def test_compile_failure_reports_the_compiler_errors(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    fake = tmp_path / "fakecc"
    fake.write_text('#!/bin/sh\nif [ "$1" = --version ]; then echo "fakecc 1.0"; exit 0; fi\n'
                    'echo "probe.c:1:1: error: the compiler says no" >&2\nexit 1\n')
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(ProbeBuildError, match="error: the compiler says no"):
        build_probe(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # the temp file was removed


# --- the output contract --------------------------------------------------------------------

def _sample_output() -> dict[str, Any]:
    phase = {"ns": 10, "minor_faults": 1, "major_faults": 0, "rss_bytes": 4096}
    return {"probe_version": PROBE_VERSION, "libc": {"name": "glibc", "version": "2.36"},
            "page_size_bytes": 4096, "file_fs": None,
            "iterations": [{"warmup": False, "rss_before_bytes": 0, "checksum": 2**64 - 1,
                            "phases": {p: dict(phase) for p in PHASES},
                            "observations": {"alignment_bytes": 16, "mprotect_ns": 0}}]}


def test_probe_env_appends_the_scenarios_tunables_to_the_inherited_ones() -> None:
    inherited = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=1", "MALLOC_ARENA_MAX": "2"}
    s = scenario(tunables="glibc.malloc.mmap_threshold=4096")
    assert probe_env(s, inherited) == {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=4096",
        "MALLOC_ARENA_MAX": "2"}
    assert probe_env(s) == {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"}
    assert probe_env(scenario(), inherited) == inherited
    assert inherited["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=1"  # not changed in place


def test_parse_accepts_the_documented_shape() -> None:
    assert parse_probe_output(json.dumps(_sample_output())) == _sample_output()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d.pop("libc"), "missing libc"),
    (lambda d: d.update(extra=1), "unexpected extra"),
    (lambda d: d.update(probe_version=0), "probe_version 0"),
    (lambda d: d.update(iterations=[]), "non-empty"),
    (lambda d: d.update(file_fs=3), "file_fs"),
    (lambda d: d["iterations"][0].update(warmup=0), r"iterations\[0\].warmup"),
    (lambda d: d["iterations"][0]["phases"].pop("free"), "missing free"),
    (lambda d: d["iterations"][0]["phases"]["free"].update(ns=-1),
     r"iterations\[0\].phases.free.ns: expected a whole number >= 0, got -1"),
    (lambda d: d["iterations"][0]["phases"]["allocate"].update(minor_faults=1.5), "1.5"),
    (lambda d: d["iterations"][0].update(checksum=True), "checksum"),
    (lambda d: d["iterations"][0].pop("observations"), "missing observations"),
    (lambda d: d["iterations"][0].update(observations=[]), "observations: expected an object"),
    (lambda d: d["iterations"][0]["observations"].update(colour=1), "unknown colour"),
    (lambda d: d["iterations"][0]["observations"].update(mprotect_ns=-5),
     r"observations.mprotect_ns: expected a whole number >= 0, got -5"),
])
def test_parse_rejects_anything_off(mutate: Any, message: str) -> None:
    data = _sample_output()
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_probe_output(json.dumps(data))


def test_parse_rejects_text_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_probe_output("Segmentation fault\n")
