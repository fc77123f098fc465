"""Which combinations of parameters make no physical sense, and why: find_conflict and its rules.

Only the physics of a combination counts here (a heap block cannot be MAP_POPULATEd, a
read-only mapping cannot be written); what this machine lacks is
runner.machine.preconditions' business, skipped at run time rather than refused. Every refusal
says what was found and what to use instead. The probe refuses the same combinations in its
check_combination."""

from __future__ import annotations

from collections.abc import Mapping

from runner.core.choices import (
    ANONYMOUS_BACKINGS,
    CHURN_RELEASES,
    FILE_BACKINGS,
    FORK_ADVICES,
    FRAGMENT_SMALLEST_BYTES,
    HEAP_BACKINGS,
    HEAP_RELEASES,
    IPC_BACKINGS,
    LIMITS_BACKINGS,
    MAPPING_BACKINGS,
    MAPPING_RELEASES,
    READ_ONLY_PROTECTIONS,
    WRITING_ACCESSES,
)
from runner.core.file_combinations import (
    CYCLE_FILE_KEYS,
    file_conflict,
    file_io_conflict,
    io_buffer_conflict,
    reused_buffer,
)
from runner.core.kinds import Value
from runner.core.parameters import BY_KEY, DEFAULTS
from runner.core.units import PPM


def find_conflict(params: Mapping[str, Value]) -> str | None:
    """Why this combination of parameters cannot be measured, or None when it can.

    Only the physics of the combination counts here; what this machine lacks (huge pages, an
    mlock limit) is runner.machine.preconditions' business, and is skipped at run time, not refused.
    """
    backing = params["backing"]
    if backing in HEAP_BACKINGS:
        for key in ("sharing", "populate", "advice", "noreserve"):
            if params[key] != DEFAULTS[key]:
                return (f"backing {backing} takes memory from the C heap, so "
                        f"{key}: {BY_KEY[key].format(params[key])} cannot apply "
                        f"(use an mmap backing, or {key}: {BY_KEY[key].format(DEFAULTS[key])})")
        if params["protection"] != "read-write" and backing != "posix-memalign":
            return (f"backing {backing} gives no control over the protection of its memory: "
                    f"its blocks share pages with other chunks and their headers, so protection "
                    f"{params['protection']} cannot apply (use backing posix-memalign, which "
                    "gets whole pages, or an mmap backing)")
    reason = (_limits_conflict(params) or io_buffer_conflict(params)
              or _thp_conflict(params) or _release_conflict(params) or file_conflict(params)
              or file_io_conflict(params)
              or _workload_conflict(params) or _threads_conflict(params)
              or _history_conflict(params) or _host_warm_conflict(params)
              or _advice_conflict(params) or _heap_pad_conflict(params)
              or _keep_every_conflict(params) or _pause_conflict(params)
              or _latency_conflict(params) or _allocator_conflict(params)
              or _hugetlb_pool_conflict(params))
    if reason is not None:
        return reason
    if params["populate"] == "madv-populate-write" and params["protection"] != "read-write":
        instead = ("map-populate or mlock" if params["protection"] in READ_ONLY_PROTECTIONS
                   else "map-populate")
        return (f"MADV_POPULATE_WRITE faults pages in for writing, which protection "
                f"{params['protection']} forbids (use populate: {instead})")
    if params["bystanders"] and params["workload"] not in ("cycle", "churn"):
        return (f"bystanders spin beside workload cycle's or churn's phases, and this is "
                f"workload {params['workload']} (use workload: cycle or churn)")
    if params["memlock_limit"] and params["populate"] not in ("mlock", "mlock-onfault"):
        return ("memlock_limit sets the limit mlock counts against, and nothing here calls "
                "mlock (use populate: mlock or mlock-onfault, or memlock_limit: none)")
    if params["protection"] == "none" and params["populate"] == "mlock":
        return ("mlock faults the pages in, which protection none forbids: the kernel refuses "
                "it (use populate: map-populate, or protection: read)")
    if params["protection"] == "none" and params["access"] != "none":
        return (f"protection none forbids every access, so access {params['access']} would "
                "crash (use access: none)")
    if params["protection"] in READ_ONLY_PROTECTIONS and params["access"] in WRITING_ACCESSES:
        return (f"protection {params['protection']} forbids writing, so access "
                f"{params['access']} would crash (use access: read-page, read-all or none)")
    if params["check_zero"] and params["protection"] == "none":
        return ("check_zero reads every block, which protection none forbids (use protection: "
                "read or read-write)")
    if (params["order"] == "random" and params["access"] == "none"
            and reused_buffer(params) is None):
        return ("order random is the order in which the access pattern visits pages, and access "
                "none visits none (use access: write-page, write-all, read-page or read-all)")
    return None


# What workload limits takes as it is given: the blocks, their file, the probe's environment.
_LIMITS_FREE_KEYS = ("backing", "size", "sharing", "file_dir", "ops", "workload", "access",
                     "release", "tunables", "noreserve")


def _limits_conflict(params: Mapping[str, Value]) -> str | None:
    if params["workload"] != "limits":
        return None
    backing = params["backing"]
    if backing not in LIMITS_BACKINGS:
        return (f"workload limits maps blocks until mmap refuses one, and backing {backing} is "
                "not a plain mapping (use backing mmap-anon or mmap-file)")
    if params["access"] != "none":
        return (f"workload limits never touches its blocks, so that tens of thousands of them "
                f"take no memory, and access {params['access']} would (use access: none)")
    if params["release"] not in ("auto", "munmap"):
        return (f"workload limits unmaps its blocks in the free phase (use release: munmap or "
                f"auto, not {params['release']})")
    for key, value in params.items():
        if key not in _LIMITS_FREE_KEYS and value != DEFAULTS[key]:
            return (f"workload limits maps untouched blocks that alternate between read-write "
                    f"and read-only, so {key}: {BY_KEY[key].format(value)} cannot apply (leave "
                    f"{key} out; it takes backing, size, sharing, file_dir, noreserve and "
                    "tunables)")
    return None


def _history_conflict(params: Mapping[str, Value]) -> str | None:
    if params["history"] == "fresh":
        return None
    if params["workload"] != "cycle" or int(params["threads"]) != 1:
        return ("history recycled reuses the blocks of the iteration's own allocate, which "
                "needs workload cycle with one thread (another thread allocates from an arena "
                "of its own) (use workload: cycle and threads: 1, or history: fresh)")
    if params["backing"] in FILE_BACKINGS:
        return (f"history recycled writes a pattern into every byte, which backing "
                f"{params['backing']} would write to (or read over from) its data file (use a "
                "backing without a file, or history: fresh)")
    if params["protection"] != "read-write":
        return (f"history recycled writes a pattern into every byte, which protection "
                f"{params['protection']} forbids (use protection: read-write)")
    return None


def _heap_pad_conflict(params: Mapping[str, Value]) -> str | None:
    if params["heap_pad"] == "default":
        return None
    key = reused_buffer(params)
    if params["backing"] not in HEAP_BACKINGS or key:
        return (f"heap_pad keep keeps the C heap grown, and backing {params['backing']} "
                "allocates no heap blocks (use a heap backing; "
                f"{params['backing'] if key else 'read-file'} with {key or 'read_buffer'}: "
                "whole)")
    if params["workload"] not in ("cycle", "churn") or int(params["threads"]) != 1:
        return ("heap_pad keep grows the main heap once for the batch, which needs workload "
                "cycle or churn with one thread (another thread allocates from an arena of its "
                "own) (use heap_pad: default)")
    if str(params["release"]).startswith("malloc-trim"):
        return (f"release {params['release']} trims the heap that heap_pad keep keeps grown "
                "(use release: free)")
    return None


def _allocator_conflict(params: Mapping[str, Value]) -> str | None:
    """glibc's own controls do nothing to another allocator: they would configure a malloc the
    probe no longer calls."""
    allocator = str(params["allocator"])
    if not allocator:
        return "allocator is empty (use glibc, jemalloc, tcmalloc, mimalloc or a library's path)"
    if allocator == "glibc":
        return None
    if params["heap_pad"] != "default":
        return (f"heap_pad keep sets glibc's trim threshold and top pad (mallopt), which "
                f"allocator {allocator} does not read (use heap_pad: default)")
    if "glibc.malloc." in str(params["tunables"]):
        return (f"glibc.malloc tunables configure glibc's malloc, which allocator {allocator} "
                "replaces (leave tunables out, or use allocator: glibc)")
    return None


def _pause_conflict(params: Mapping[str, Value]) -> str | None:
    if int(params["pause_ms"]) and params["workload"] != "cycle":
        return (f"pause_ms sleeps between allocate and first touch of workload cycle, and this "
                f"is workload {params['workload']} (use workload: cycle, or leave pause_ms out)")
    return _free_pause_conflict(params) if int(params["free_pause_ms"]) else None


def _free_pause_conflict(params: Mapping[str, Value]) -> str | None:
    """free_pause_ms watches the allocator keep or give back what free gave it, in the calls
    of the one thread that goes on (jemalloc's decay ticks that thread's arena alone)."""
    backing, key = params["backing"], reused_buffer(params)
    if backing not in HEAP_BACKINGS:
        return (f"free_pause_ms watches what the allocator gives back after free, and backing "
                f"{backing} maps its blocks (use backing malloc, calloc or posix-memalign, or "
                "leave free_pause_ms out)")
    if key:
        return (f"free_pause_ms watches what the allocator gives back after free, and backing "
                f"{backing} with {key} {BY_KEY[key].format(params[key])} reuses one buffer and "
                f"frees no block (use {key}: whole, or leave free_pause_ms out)")
    needs: dict[str, Value] = {"workload": "cycle", "threads": 1}
    for need, value in needs.items():
        if params[need] != value:
            return (f"free_pause_ms follows workload cycle's free phase with the calls of one "
                    f"thread, and {need} is {BY_KEY[need].format(params[need])} (use {need}: "
                    f"{BY_KEY[need].format(value)}, or leave free_pause_ms out)")
    if params["release"] == "none":
        return ("free_pause_ms watches what the allocator gives back of the freed blocks, and "
                "release none frees none (use release: free or malloc-trim)")
    return None


def _latency_conflict(params: Mapping[str, Value]) -> str | None:
    """latency histogram: churn's pairs, or cycle's first write of each page, one by one."""
    if params["latency"] == "off" or params["workload"] == "churn":
        return None
    if params["workload"] != "cycle":
        return (f"latency: histogram times each pair of workload churn or each page's first "
                f"write in workload cycle, and this is workload {params['workload']} (use "
                "workload: churn or cycle, or leave latency out)")
    needs: dict[str, Value] = {"access": "write-page", "order": "sequential", "touch_share": PPM,
                               "threads": 1}
    for key, value in needs.items():
        if params[key] != value:
            return (f"latency: histogram in workload cycle times the first write of every page "
                    f"in order, one byte each, by one thread, and {key} is "
                    f"{BY_KEY[key].format(params[key])} (use {key}: "
                    f"{BY_KEY[key].format(value)})")
    if params["backing"] in FILE_BACKINGS:
        return (f"latency: histogram in workload cycle times first writes to memory without a "
                f"data file, and backing {params['backing']} has one (use mmap-anon, a heap "
                "backing, memfd, shm or dev-zero)")
    return None


def _keep_every_conflict(params: Mapping[str, Value]) -> str | None:
    """keep_every: heap blocks, some freed and some kept, by a free phase that frees."""
    every = int(params["keep_every"])
    if every == 0:
        return None
    key = reused_buffer(params)
    if params["backing"] not in HEAP_BACKINGS or key:
        return (f"keep_every {every} keeps some heap blocks allocated among freed ones, and "
                f"backing {params['backing']} allocates no heap blocks (use a heap backing; "
                f"{params['backing'] if key else 'read-file'} with {key or 'read_buffer'}: "
                "whole)")
    if params["workload"] not in ("cycle", "fragment"):
        return (f"keep_every {every} changes the free phase of workload cycle or fragment, and "
                f"this is workload {params['workload']} (use workload: cycle or fragment, or "
                "leave keep_every out)")
    if params["release"] not in ("auto", "free", "malloc-trim"):
        return (f"keep_every {every} frees all blocks but one in {every}, and release "
                f"{params['release']} frees otherwise (use release: free or malloc-trim)")
    return None


def _host_warm_conflict(params: Mapping[str, Value]) -> str | None:
    if not params["host_warm"]:
        return None
    if params["backing"] == "mmap-hugetlb":
        return ("hugetlb pages come from the reserved pool, not from the ordinary pages "
                "host_warm writes (use host_warm: false, or backing mmap-anon with thp: huge)")
    return None


def _hugetlb_pool_conflict(params: Mapping[str, Value]) -> str | None:
    pool = params["hugetlb_pool"]
    if not pool:
        return None
    if params["backing"] != "mmap-hugetlb":
        return (f"hugetlb_pool {pool} reserves 2 MiB pages for MAP_HUGETLB mappings, and backing "
                f"{params['backing']} maps none (use backing mmap-hugetlb, or leave "
                "hugetlb_pool out)")
    if params["workload"] != "cycle":
        return (f"hugetlb_pool {pool} runs its pool dry after workload cycle's phases, and this "
                f"is workload {params['workload']} (use workload: cycle, or leave hugetlb_pool "
                "out)")
    return None


def _advice_conflict(params: Mapping[str, Value]) -> str | None:
    advice = params["advice"]
    if advice in FORK_ADVICES:
        return _fork_advice_conflict(params)
    if advice == "madv-populate-read" and params["protection"] == "none":
        return ("MADV_POPULATE_READ faults the pages in for reading, which protection none "
                "forbids (use protection: read, or advice: willneed)")
    if advice == "dontneed" and params["populate"] == "map-populate":
        return ("MADV_DONTNEED right after mmap throws away the pages MAP_POPULATE just faulted "
                "in (use populate: madv-populate-write or mlock, which come after the advice)")
    return None


def _fork_advice_conflict(params: Mapping[str, Value]) -> str | None:
    advice = params["advice"]
    if params["workload"] != "fork":
        return (f"advice {advice} changes only what a forked child inherits, and workload "
                f"{params['workload']} forks none (use workload: fork)")
    if advice == "wipeonfork" and (params["backing"] != "mmap-anon"
                                   or params["sharing"] != "private"):
        return (f"MADV_WIPEONFORK applies to private anonymous memory only (the kernel refuses "
                f"it for backing {params['backing']}, sharing {params['sharing']}): use backing "
                "mmap-anon with sharing private, or advice dontfork")
    return None


def _thp_conflict(params: Mapping[str, Value]) -> str | None:
    if params["thp"] == "default":
        return None
    if params["backing"] != "mmap-anon":
        return (f"thp {params['thp']} asks for (or against) transparent huge pages of anonymous "
                f"memory, which backing {params['backing']} is not (use backing mmap-anon, or "
                "thp: default)")
    if params["populate"] == "map-populate":
        return ("MAP_POPULATE faults the pages in inside mmap, before madvise can ask for huge "
                f"pages, so thp {params['thp']} would not apply (use populate: "
                "madv-populate-write or mlock)")
    return None


def _release_conflict(params: Mapping[str, Value]) -> str | None:
    backing, release = params["backing"], params["release"]
    if backing in HEAP_BACKINGS and release in MAPPING_RELEASES:
        return (f"release {release} works on mappings, and backing {backing} takes memory from "
                "the C heap (use release: free, malloc-trim or auto)")
    if backing in MAPPING_BACKINGS and release in HEAP_RELEASES:
        return (f"release {release} gives memory back to the C heap, and backing {backing} is a "
                "mapping (use release: munmap, madv-dontneed, madv-free or auto)")
    if release == "madv-free" and (backing not in ANONYMOUS_BACKINGS
                                   or params["sharing"] != "private"):
        return ("MADV_FREE works only on private anonymous memory (use backing mmap-anon or "
                "dev-zero with sharing: private, or release: madv-dontneed)")
    if str(release).endswith("-but-last") and params["workload"] != "cycle":
        return (f"release {release} keeps the block allocated last (by each thread), which "
                "needs workload cycle (use release: free or malloc-trim)")
    if release in ("madv-dontneed", "madv-free") and params["populate"] == "mlock":
        return (f"locked pages cannot be released by madvise, so release {release} fails "
                "after populate mlock (use release: munmap)")
    return None


def _reuse_conflict(params: Mapping[str, Value]) -> str | None:
    """What workload reuse cannot do: use memory again that was unmapped or freed (only
    madvise keeps the mappings), or release shared or file memory by MADV_FREE (the kernel
    takes it for private anonymous memory only)."""
    if params["release"] not in ("madv-dontneed", "madv-free"):
        return (f"workload reuse writes the blocks again after the release, and release "
                f"{params['release']} takes the mappings away (use release: madv-dontneed or "
                "madv-free)")
    if params["backing"] not in ANONYMOUS_BACKINGS or params["sharing"] != "private":
        return (f"workload reuse releases by madvise the memory MADV_FREE works on, private "
                f"anonymous memory, and this is {params['sharing']} {params['backing']} (use "
                "backing: mmap-anon or dev-zero with sharing: private)")
    if int(params["threads"]) != 1 or params["protection"] != "read-write":
        return ("workload reuse writes the blocks from one thread, read-write (use threads: 1 "
                "and protection: read-write)")
    return None


def _ipc_conflict(params: Mapping[str, Value]) -> str | None:
    """What workload ipc cannot do: pass messages through memory another process cannot open
    by name, write less than the whole message, or map the channel other than read-write and
    plainly (the first message faults it in: that is first touch)."""
    backing = params["backing"]
    if backing not in IPC_BACKINGS:
        return (f"workload ipc passes messages to a second process that opens the channel by "
                f"name, and backing {backing} has none it could open (use backing shm, memfd, "
                "mmap-file or pipe)")
    if params["access"] != "write-all":
        return (f"workload ipc writes every byte of each message and its peer reads every byte, "
                f"so access {params['access']} cannot apply (use access: write-all)")
    if params["release"] not in ("auto", "munmap"):
        return (f"workload ipc ends its channel by unmapping and closing it, so release "
                f"{params['release']} cannot apply (use release: auto or munmap)")
    for key in ("protection", "populate", "advice"):
        if params[key] != DEFAULTS[key]:
            return (f"workload ipc maps its channel read-write and plainly on both sides, so "
                    f"{key}: {BY_KEY[key].format(params[key])} cannot apply (leave {key} out)")
    if backing == "pipe" and params["sharing"] != DEFAULTS["sharing"]:
        return ("a pipe is not a mapping, so sharing: shared cannot apply (use backing shm, "
                "memfd or mmap-file for shared memory, or leave sharing out)")
    if params["cache"] != "warm":
        return ("workload ipc writes its data file's pages before anything reads them, so cache "
                f"{params['cache']} has nothing to measure (use cache: warm)")
    return None


def _workload_conflict(params: Mapping[str, Value]) -> str | None:
    workload, backing = params["workload"], params["backing"]
    if params["thread_turns"] and workload != "fragment":
        return (f"thread_turns has the threads of workload fragment take its iterations in "
                f"turn, and this is workload {workload} (use workload: fragment, or leave "
                "thread_turns out)")
    if backing == "pipe" and workload != "ipc":
        return (f"backing pipe carries the messages of workload ipc between two processes, and "
                f"this is workload {workload} (use workload: ipc, or a backing with memory)")
    if workload != "resize":
        for key in ("grow_method", "grow_factor", "grow_steps", "touch_grown"):
            if params[key] != DEFAULTS[key]:
                return (f"{key} says how workload resize grows the blocks, and this is workload "
                        f"{workload} (use workload: resize, or leave {key} out)")
    if workload in ("cycle", "limits"):  # limits: _limits_conflict
        return None
    for key in ("order", "sync", "check_zero", *CYCLE_FILE_KEYS):
        if params[key] != DEFAULTS[key]:
            return (f"{key}: {BY_KEY[key].format(params[key])} applies to workload cycle only "
                    f"(use workload: cycle, or leave {key} out)")
    if backing == "write-file":
        return ("write-file writes its blocks to the file in the touching phases of workload "
                f"cycle, which workload {workload} does not have (use backing read-file or "
                "malloc)")
    if workload == "churn":
        return _churn_conflict(params)
    if workload == "reuse":
        return _reuse_conflict(params)
    if workload == "ipc":
        return _ipc_conflict(params)
    if workload == "fragment":
        return _fragment_conflict(params)
    if params["access"] not in WRITING_ACCESSES:
        return (f"workload {workload} writes a pattern to check it afterwards, and access "
                f"{params['access']} writes nothing (use access: write-page or write-all)")
    if workload == "fork":
        if backing == "mmap-hugetlb" and params["sharing"] == "private":
            return ("the child's copy-on-write of private hugetlb pages needs huge pages that "
                    "the parent's reservation does not cover, and the kernel kills a child it "
                    "cannot give them (use sharing: shared)")
        return None
    method = params["grow_method"]
    if method == "realloc" and backing not in HEAP_BACKINGS:
        return (f"realloc grows heap memory, and backing {backing} is a mapping (use "
                "grow_method: mremap or copy with backing mmap-anon)")
    if method == "mremap" and backing != "mmap-anon":
        return (f"grow_method mremap grows anonymous mappings here, and backing {backing} is "
                "not one (use backing mmap-anon, or grow_method: realloc or copy for heap "
                "backings)")
    if method == "copy" and backing not in (*HEAP_BACKINGS, "mmap-anon"):
        return (f"grow_method copy makes the new block with malloc or an anonymous mmap, and "
                f"backing {backing} is neither (use a heap backing or mmap-anon)")
    return None


def _churn_conflict(params: Mapping[str, Value]) -> str | None:
    release = params["release"]
    if release not in CHURN_RELEASES:
        return (f"workload churn releases each block right after touching it, and release "
                f"{release} does not end a block (use release: auto, free, malloc-trim or "
                "munmap)")
    if params["backing"] == "posix-memalign" and params["protection"] != "read-write":
        return (f"workload churn frees each posix-memalign block at once, and protection "
                f"{params['protection']} would need an mprotect back first (use protection: "
                "read-write, or workload cycle)")
    return None


def _fragment_conflict(params: Mapping[str, Value]) -> str | None:
    """What workload fragment cannot do: it replaces malloc'd blocks of sizes it draws, each
    written as it is allocated, and frees them with free()."""
    if params["backing"] not in ("malloc", "calloc"):
        return (f"workload fragment allocates blocks of sizes it draws with malloc or calloc, "
                f"and backing {params['backing']} is neither (use backing: malloc or calloc)")
    if params["access"] not in WRITING_ACCESSES:
        return (f"workload fragment writes each block as it is allocated, so that its pages are "
                f"resident, and access {params['access']} writes nothing (use access: "
                "write-page or write-all)")
    if params["release"] not in ("auto", "free", "malloc-trim"):
        return (f"workload fragment frees its blocks, and release {params['release']} does "
                "not (use release: free or malloc-trim)")
    if int(params["size"]) < FRAGMENT_SMALLEST_BYTES:
        return (f"workload fragment draws its blocks' sizes from {FRAGMENT_SMALLEST_BYTES} "
                f"bytes up to size, and size is {BY_KEY['size'].format(params['size'])} (use "
                f"size: {FRAGMENT_SMALLEST_BYTES}B or more)")
    return None


def _threads_conflict(params: Mapping[str, Value]) -> str | None:
    threads = int(params["threads"])
    if threads == 1:
        return None
    workload = params["workload"]
    if workload == "churn":
        if params["backing"] in FILE_BACKINGS:
            return (f"threads of workload churn each run pairs of their own, and backing "
                    f"{params['backing']} would have them all map or read the same blocks of "
                    "one data file at once (use threads: 1, or a backing without a file)")
        return None
    if workload == "fragment":
        return None
    if workload != "cycle":
        return (f"threads share the blocks of workload cycle, run pairs of their own in "
                f"workload churn or keep blocks of their own in workload fragment, and this is "
                f"workload {workload} (use threads: 1)")
    if threads > int(params["ops"]):
        return (f"{threads} threads share {params['ops']} blocks, and each thread needs at least "
                "one (raise ops or lower threads)")
    for key in ("order", "sync", *CYCLE_FILE_KEYS):
        if params[key] != DEFAULTS[key]:
            return (f"{key}: {BY_KEY[key].format(params[key])} is measured with one thread "
                    "(use threads: 1)")
    return None
