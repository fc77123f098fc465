"""The native probe: building it (cached by content hash), its command line and its output.

The probe (the C files of runner/probe/, whose probe.c says what each holds) measures one
scenario and prints one JSON object. This module is the one place that knows how to compile
it, which arguments it takes (derived from PARAMETERS, so a new parameter needs no change
here) and what its output looks like (PROBE_VERSION and parse_probe_output). Running it is
runner/probe/execute.py's job.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.core.errors import ProbeBuildError
from runner.core.model import PHASES, Scenario
from runner.core.observations import OBSERVATIONS_BY_NAME
from runner.core.parameters import PARAMETERS

# 2: every iteration carries "observations"; --thp and --release; --populate is a choice.
# 3: --workload, --cache, --order, --sync, --grow_method, --grow_factor, --check_zero and
# --threads; backing write-file; the observations of those.
# 4: --history and --host_warm; --release=none; --workload=limits; the heap trace's and
# limits' observations, and nonzero_blocks; --advice and --read_buffer_bytes (read-file reads
# through a reused buffer unless 0, whole); protection exec, and protection for
# posix-memalign; an 8-accumulator read-all loop; the fork child writes before anything reads
# its memory; observations read_buffer_page_offset_bytes and <phase>_syscalls.
# 5: --workload=churn (the pair loop in allocate, the other slots empty); cycle's observations
# of allocate (mappings, VmSize, brk, alignment) are read after the second pass, not between
# allocate and first touch, and /proc/self/statm is read with one pread of a kept descriptor;
# --grow_steps and --touch_grown (resize: a chain of growths, each new part touched);
# --heap_pad (keep: mallopt no trimming and a batch-sized top pad, the batch grown once);
# thp blocks of whole 2 MiB the kernel returns aligned are kept (no map-and-trim), and thp
# scenarios report the <phase>_syscalls observations.
# 6: --write_buffer_bytes (write-file writes through a reused buffer, chunk by chunk, unless
# 0, whole).
# 7: --workload=reuse (madvise releases, then the blocks written again in the second_pass slot).
# 8: --fingerprint reads the disk under each file directory (device, driver and model,
# rotational, scheduler, read_ahead_kb) and how many page-cache pages one fault maps there;
# --workload=ipc and --backing=pipe (messages to a peer process through shared memory it
# opens by name, or a pipe); observations peer_sees_writes, peer_allocate_ns and
# peer_<phase>_minor_faults.
# --touch_share_ppm, --file_origin, --file_layout, --check_content and --file_open; cycle's
# file backings report touched_pages, cached_pages_added, resident_ppm_after and
# <phase>_io_read_bytes/<phase>_io_write_bytes (/proc/self/io read around each phase), and
# check_content the content and SIGBUS observations.
# access zero-then-write-all; backing dev-zero; --noreserve; --keep_every; the *-but-last
# releases with threads; observations blocks_mmapped, blocks_in_thread_arena,
# vm_pte_growth_bytes, exec_ran and exec_trapped; --pause_ms (cycle: an untimed sleep between
# allocate and first touch).
# any mapping a private anonymous block would join is made unjoinable (MADV_DONTDUMP), so the
# first block (every block of churn) is a mapping of its own at any size and protection; the
# fence page is PROT_READ for protection none; churn of mmap-anon reports joined_neighbour and
# writes plain mmap-anon pairs out (no allocate_blocks/release_blocks per pair).
# 9: --threads for workload churn (each thread its own ops pairs, started at one barrier; the
# allocate slot ends with the last thread), observation slowest_thread_ns (churn).
# 10: ALLOCLAB_MEMORY_CGROUP (memory_limit): the probe joins that cgroup first thing; reuse
# presses memory after the release there (released_zero_ppm), cycle's file backings report
# cgroup_cache_ppm.
# also 10: --latency (histogram: churn's pairs, cycle's first write of each page, one by one); an
# iteration may carry "latency", the histogram's buckets, and the observations latency_p50_ns,
# latency_p90_ns, latency_p99_ns, latency_p999_ns, latency_max_ns, latency_count and
# latency_clock_ns.
# also 10: observation malloc_from_allocator (every iteration): whether malloc is the library
# named by ALLOCLAB_ALLOCATOR_LIBRARY (LD_PRELOAD, parameter allocator) or, unnamed, the C
# library's.
# 11: --advice=dontfork and --advice=wipeonfork (MADV_DONTFORK, MADV_WIPEONFORK); workload
# fork reports child_reads_zero, child_read_faulted (a read of a block faulted in a checking
# child: MADV_DONTFORK left it unmapped there) and child_pte_bytes (the timed child's VmPTE
# right after fork); with dontfork the timed child writes nothing (the blocks are not mapped in
# it). Iterations record observations in a byte per observation, not a 64-bit mask.
# also 11: ALLOCLAB_HUGETLB_POOL (hugetlb_pool): cycle of mmap-hugetlb runs the pool alloclab
# reserved dry after the free phase (hugetlb_pool_pages, hugetlb_past_pool_refused,
# hugetlb_sigbus_at_pool_end); anon_huge_bytes is also reported for heap blocks of 2 MiB and up
# (did malloc's memory become transparent huge pages, e.g. with glibc.malloc.hugetlb=1).
# 12: --populate=mlock-onfault (mlock2 MLOCK_ONFAULT) and --memlock_limit_bytes (RLIMIT_MEMLOCK
# set at start, CAP_IPC_LOCK dropped; mlock refused by it is recorded, not skipped); cycle with
# either mlock reports locked_bytes, vm_locked_bytes and mlock_refused. --bystanders=N: threads
# that spin through the run (cycle, churn).
# 13: the heap trace reads VmSize after each call too (vm_grows, vm_step_median_bytes,
# vm_call_growth_median_bytes: address-space growth whatever the allocator maps it with), and
# fails when its fresh image runs another malloc than the timed iterations.
# 13 too: --free_pause_ms (cycle, heap backings, one thread): after the free phase, untimed,
# the program goes on calling its allocator for that long (every 10 ms 128 malloc/free pairs of
# 48 KiB, then a sleep; at the end the free of a block held throughout), and such iterations
# report rss_after_pause_bytes. The timed phases are unchanged.
# 14: --workload=fragment: a steady set of malloc'd blocks of mixed sizes (16 bytes to
# size_bytes), 4 x ops of them replaced at random in each touching phase, then freed but every
# keep_every-th; reports peak_live_bytes and kept_bytes.
# 14 too: --thread_turns (fragment): the threads take an iteration each in turn; fragment
# reports held_bytes, what the process holds after the free phase over what it held before its
# first iteration.
PROBE_VERSION = 14
# The probe's exit status when the machine refuses something the scenario needs (no free huge
# pages, an mlock limit): stderr says why in one line, and the process counts as skipped.
EXIT_SKIPPED = 4
# No -Werror: a newer compiler's new warning must not stop a user from measuring. The tests
# compile with -Werror to keep the source warning-free. -z now binds every libc symbol at
# start-up, so the first malloc/memset/mmap call in a timed phase does not pay for lazy
# symbol resolution (which would add microseconds and page faults to small scenarios).
# -pthread: the threads parameter (a no-op on glibc 2.34 and later, needed before).
CFLAGS: tuple[str, ...] = ("-std=c11", "-O2", "-Wall", "-Wextra", "-pthread", "-Wl,-z,now")
# The probe is every .c file of runner/probe/, compiled together; its content hash covers those
# and every header there (PROBE_SOURCE_SUFFIXES), so an edit to any of them rebuilds it.
PROBE_SOURCE_SUFFIXES = (".c", ".h")
PHASE_FIELDS = ("ns", "minor_faults", "major_faults", "rss_bytes")
OUTPUT_KEYS = ("probe_version", "libc", "page_size_bytes", "file_fs", "iterations")
ITERATION_KEYS = ("warmup", "rss_before_bytes", "checksum", "phases", "observations")
# Present only with latency histogram: the raw histogram behind the latency_* observations.
OPTIONAL_ITERATION_KEYS = ("latency",)
LATENCY_KEYS = ("sub_bucket_bits", "count", "max_ns", "buckets")
# Bits of precision per power of two of the probe's histogram (runner/probe/latency.h).
LATENCY_SUB_BUCKET_BITS = 7
TUNABLES_VARIABLE = "GLIBC_TUNABLES"
PRELOAD_VARIABLE = "LD_PRELOAD"
# The library the probe should find malloc in (observation malloc_from_allocator); unset: the C
# library's own.
ALLOCATOR_VARIABLE = "ALLOCLAB_ALLOCATOR_LIBRARY"
_COMPILER_TIMEOUT_S = 120.0
_ERROR_LINES = 8


@dataclass(frozen=True)
class ProbeBinary:
    """A compiled probe and what it was built from."""

    path: Path
    source_hash: str  # sha256 of the sources + flags + compiler version text, first 16 hex digits
    compiler: str  # first line of the compiler's --version
    flags: tuple[str, ...]


def find_compiler() -> tuple[list[str], str]:
    """The C compiler command (`$CC`, else `cc`) and its full `--version` text."""
    command = shlex.split(os.environ.get("CC", "").strip() or "cc")
    if not command or shutil.which(command[0]) is None:
        name = command[0] if command else "$CC"
        raise ProbeBuildError(
            f"no C compiler: '{name}' was not found (install one, e.g. `apt-get install gcc`, "
            "or set CC to a C compiler)")
    try:
        result = subprocess.run([*command, "--version"], capture_output=True, text=True,
                                timeout=_COMPILER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ProbeBuildError(f"cannot run the C compiler '{command[0]}': {error}") from error
    if result.returncode != 0 or not result.stdout.strip():
        raise ProbeBuildError(f"'{shlex.join(command)} --version' failed: is it a C compiler?")
    return command, result.stdout


def compile_c(compiler: Sequence[str], source: Path | Sequence[Path], output: Path,
              flags: Sequence[str]) -> None:
    """Compile one C file, or several together, to an executable; raise ProbeBuildError with
    the first error lines."""
    sources = [source] if isinstance(source, Path) else list(source)
    argv = [*compiler, *flags, "-o", str(output), *map(str, sources)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=_COMPILER_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ProbeBuildError(f"cannot run the C compiler '{compiler[0]}': {error}") from error
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()] or lines
        detail = " | ".join(errors[:_ERROR_LINES]) or f"exit status {result.returncode}"
        names = ", ".join(path.name for path in sources)
        raise ProbeBuildError(f"compiling {names} failed: {detail}")


def default_cache_dir() -> Path:
    """Where built probes are kept: `$XDG_CACHE_HOME/alloclab`, else `~/.cache/alloclab`."""
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "alloclab"


def probe_sources(directory: Path) -> list[Path]:
    """The probe's source files in `directory` (its .c files and headers), sorted by name."""
    return sorted(path for path in directory.iterdir()
                  if path.is_file() and path.suffix in PROBE_SOURCE_SUFFIXES)


def hash_sources(sources: Sequence[Path], flags: Sequence[str], version_text: str) -> str:
    """First 16 hex digits of the sha256 of every source (its name and bytes), the flags and
    the compiler's version text."""
    digest = hashlib.sha256()
    for path in sources:
        content = path.read_bytes()
        digest.update(f"{path.name}\0{len(content)}\0".encode() + content)
    digest.update(b"\0" + "\0".join(flags).encode() + b"\0" + version_text.encode())
    return digest.hexdigest()[:16]


def build_probe(cache_dir: Path | None = None) -> ProbeBinary:
    """Compile the probe, or reuse the binary built earlier from the same sources and compiler."""
    with importlib.resources.as_file(importlib.resources.files("runner.probe")) as directory:
        return _build_from(probe_sources(directory), cache_dir)


def _build_from(sources: Sequence[Path], cache_dir: Path | None) -> ProbeBinary:
    compiler, version_text = find_compiler()
    flags = CFLAGS
    if not any(path.suffix == ".c" for path in sources):
        raise ProbeBuildError("the probe's C sources are missing from runner/probe/ "
                              "(reinstall alloclab)")
    source_hash = hash_sources(sources, flags, version_text)
    binary = ProbeBinary(
        path=(cache_dir or default_cache_dir()) / f"probe-{source_hash}",
        source_hash=source_hash,
        compiler=version_text.splitlines()[0].strip(),
        flags=flags,
    )
    if binary.path.is_file() and os.access(binary.path, os.X_OK):
        return binary

    try:
        binary.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ProbeBuildError(f"cannot create the probe cache {binary.path.parent}: {error}") \
            from error
    # Compile to a private name, then rename: the rename is atomic, so a concurrent build of
    # the same hash, or a reader, sees either no binary or a complete one.
    fd, temp_name = tempfile.mkstemp(prefix=f".{binary.path.name}-", suffix=".tmp",
                                     dir=binary.path.parent)
    os.close(fd)
    temp_path = Path(temp_name)
    try:
        compile_c(compiler, [path for path in sources if path.suffix == ".c"], temp_path, flags)
        temp_path.chmod(0o755)
        os.replace(temp_path, binary.path)
    finally:
        temp_path.unlink(missing_ok=True)
    return binary


def probe_argv(binary: ProbeBinary, scenario: Scenario, warmup: int,
               iterations: int) -> list[str]:
    """The probe's full command line for one scenario: `--<field>=<value>` per parameter
    that is a probe option (the others reach it through probe_env)."""
    argv = [str(binary.path)]
    for parameter in PARAMETERS:
        if not parameter.probe_option:
            continue
        value = getattr(scenario, parameter.field)
        text = str(int(value)) if isinstance(value, bool) else str(value)
        argv.append(f"--{parameter.field}={text}")
    argv += [f"--warmup={warmup}", f"--iterations={iterations}"]
    return argv


def probe_env(scenario: Scenario, inherited: Mapping[str, str] | None = None,
              allocator_library: str | None = None) -> dict[str, str]:
    """The variables added to the probe's environment for one scenario.

    `allocator_library` (the scenario's allocator's, runner.machine.preconditions.allocator_library)
    goes first in LD_PRELOAD, before an inherited list, so its malloc is the one every call
    binds to, and the probe is told which library that should be (ALLOCATOR_VARIABLE).

    `inherited` are the allocator variables alloclab passes on from its own environment
    (runner.machine.system.allocator_env). The scenario's `tunables` are appended to an inherited
    GLIBC_TUNABLES, after a colon: glibc applies the list in order, so where both set the same
    tunable the scenario's value is the one in effect, and the inherited others still apply.
    """
    env = dict(inherited or {})
    if scenario.tunables:
        before = env.get(TUNABLES_VARIABLE, "")
        env[TUNABLES_VARIABLE] = f"{before}:{scenario.tunables}" if before else scenario.tunables
    if allocator_library is not None:
        before = env.get(PRELOAD_VARIABLE, "")
        env[PRELOAD_VARIABLE] = f"{allocator_library}:{before}" if before else allocator_library
        env[ALLOCATOR_VARIABLE] = allocator_library
    return env


def parse_probe_output(text: str) -> dict[str, Any]:
    """Parse and check the probe's stdout; raise ValueError saying what is off.

    The shape: {"probe_version", "libc": {"name", "version"}, "page_size_bytes", "file_fs"
    (str or null), "iterations": [{"warmup", "rss_before_bytes", "checksum",
    "phases": {<PHASES>: {<PHASE_FIELDS>: int}}, "observations": {<name>: int, ...},
    optionally "latency": {"sub_bucket_bits", "count", "max_ns", "buckets": [[lower_ns,
    count], ...]}}]}.
    Counts are whole numbers >= 0; observation names are those of runner.core.metrics.OBSERVATIONS,
    each present only when the scenario makes it meaningful.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        excerpt = text[:120] + ("…" if len(text) > 120 else "")
        raise ValueError(f"probe output is not JSON ({error}): {excerpt!r}") from error
    _check_keys(data, OUTPUT_KEYS, "probe output")
    if data["probe_version"] != PROBE_VERSION:
        raise ValueError(f"probe output has probe_version {data['probe_version']!r}, "
                         f"this alloclab reads version {PROBE_VERSION}")
    _check_keys(data["libc"], ("name", "version"), "libc")
    if not isinstance(data["libc"]["name"], str):
        raise ValueError("libc.name: expected a string")
    if not isinstance(data["libc"]["version"], str | None):
        raise ValueError("libc.version: expected a string or null")
    _check_count(data, "page_size_bytes", "", minimum=1)
    if not isinstance(data["file_fs"], str | None):
        raise ValueError("file_fs: expected a string or null")
    iterations = data["iterations"]
    if not isinstance(iterations, list) or not iterations:
        raise ValueError("iterations: expected a non-empty list")
    for index, iteration in enumerate(iterations):
        where = f"iterations[{index}]"
        _check_keys(iteration, ITERATION_KEYS, where, optional=OPTIONAL_ITERATION_KEYS)
        if "latency" in iteration:
            _check_latency(iteration["latency"], f"{where}.latency")
        if not isinstance(iteration["warmup"], bool):
            raise ValueError(f"{where}.warmup: expected true or false")
        _check_count(iteration, "rss_before_bytes", where)
        _check_count(iteration, "checksum", where)
        _check_keys(iteration["phases"], PHASES, f"{where}.phases")
        for phase in PHASES:
            _check_keys(iteration["phases"][phase], PHASE_FIELDS, f"{where}.phases.{phase}")
            for name in PHASE_FIELDS:
                _check_count(iteration["phases"][phase], name, f"{where}.phases.{phase}")
        _check_observations(iteration["observations"], f"{where}.observations")
    return data  # type: ignore[no-any-return]


def _check_observations(value: object, where: str) -> None:
    """Any subset of the known observations, each a whole number >= 0."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    unknown = [str(name) for name in value if name not in OBSERVATIONS_BY_NAME]
    if unknown:
        raise ValueError(f"{where}: unknown {', '.join(unknown)}")
    for name in value:
        _check_count(value, name, where)


def _check_latency(value: object, where: str) -> None:
    """The raw histogram: the probe's bucket scheme, non-empty buckets in rising order whose
    counts add up to `count`."""
    _check_keys(value, LATENCY_KEYS, where)
    assert isinstance(value, Mapping)
    for key in ("sub_bucket_bits", "count", "max_ns"):
        _check_count(value, key, where)
    if value["sub_bucket_bits"] != LATENCY_SUB_BUCKET_BITS:
        raise ValueError(f"{where}.sub_bucket_bits: {value['sub_bucket_bits']!r}, this alloclab "
                         f"reads histograms of {LATENCY_SUB_BUCKET_BITS}")
    buckets = value["buckets"]
    if not isinstance(buckets, list) or not all(
            isinstance(b, list) and len(b) == 2 and all(type(n) is int and n >= 0 for n in b)
            for b in buckets):
        raise ValueError(f"{where}.buckets: expected a list of [lower_ns, count] pairs of whole "
                         "numbers")
    lowers = [lower for lower, _ in buckets]
    if lowers != sorted(set(lowers)) or sum(count for _, count in buckets) != value["count"]:
        raise ValueError(f"{where}.buckets: expected rising lower bounds whose counts add up to "
                         f"count ({value['count']})")


def _check_keys(value: object, expected: tuple[str, ...], where: str,
                optional: tuple[str, ...] = ()) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    missing = [key for key in expected if key not in value]
    extra = [key for key in value if key not in expected and key not in optional]
    if missing or extra:
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + \
                   ([f"unexpected {', '.join(map(str, extra))}"] if extra else [])
        raise ValueError(f"{where}: {'; '.join(problems)}")


def _check_count(container: Mapping[str, Any], key: str, where: str, minimum: int = 0) -> None:
    value = container[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        path = f"{where}.{key}" if where else key
        raise ValueError(f"{path}: expected a whole number >= {minimum}, got {value!r}")


FINGERPRINT_ARGUMENT = "--fingerprint"


def fingerprint_argv(binary: ProbeBinary, file_dirs: Sequence[str]) -> list[str]:
    """The probe's command line that prints the machine's fingerprint (probe/fingerprint.c)."""
    return [str(binary.path), FINGERPRINT_ARGUMENT, *sorted(set(file_dirs))]


def parse_fingerprint_output(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The probe's --fingerprint JSON -> (fingerprint facts, precondition facts); ValueError
    saying what is off. The facts are runner.machine.system's FACTS the machine itself holds; the
    precondition facts are {"euid", "free_huge_pages"}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"fingerprint output is not JSON ({error}): {text[:120]!r}") from error
    _check_keys(data, ("probe_version", "fingerprint", "facts"), "fingerprint output")
    if data["probe_version"] != PROBE_VERSION:
        raise ValueError(f"fingerprint output has probe_version {data['probe_version']!r}, "
                         f"this alloclab reads version {PROBE_VERSION}")
    _check_keys(data["facts"], ("euid", "free_huge_pages"), "facts")
    return dict(data["fingerprint"]), dict(data["facts"])
