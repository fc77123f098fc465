"""The words a scenario's parameters take, and the groups of them the rules speak of.

runner.core.parameters declares each parameter with these choices; runner.core.combinations and
the probe's callers use the groups (which backings are files, which accesses write, which
releases a heap takes) so that each is written once.
"""

from __future__ import annotations

from collections.abc import Mapping

BACKINGS = ("malloc", "calloc", "posix-memalign", "mmap-anon", "mmap-file", "read-file",
            "memfd", "shm", "mmap-hugetlb", "write-file", "pipe", "dev-zero")
# Backings whose memory comes from the C heap: no sharing, populate or advice applies, nor a
# protection (but for posix-memalign, whose blocks can be whole pages), and it goes back with
# free().
HEAP_BACKINGS = ("malloc", "calloc", "posix-memalign", "read-file", "write-file")
# Backings that are one mapping per block: mmap flags, protection, populate and madvise apply.
MAPPING_BACKINGS = ("mmap-anon", "mmap-file", "memfd", "shm", "mmap-hugetlb", "dev-zero")
# Mapping backings whose private mappings are anonymous memory (MADV_FREE works on them): a
# private mapping of /dev/zero is anonymous memory, a shared one a shared-memory object.
ANONYMOUS_BACKINGS = ("mmap-anon", "dev-zero")
# Backings that need a file: the probe creates it (outside the timed phases) in `file_dir`.
FILE_BACKINGS = ("mmap-file", "read-file", "write-file")
ACCESSES = ("none", "write-page", "write-all", "read-page", "read-all", "zero-then-write-all")
WRITING_ACCESSES = ("write-page", "write-all", "zero-then-write-all")
# What one iteration of a probe process does; the meaning of the four phases of each is in
# runner/probe/probe.c's header comment and in docs/guide/writing-an-experiment.md.
WORKLOADS = ("cycle", "fork", "resize", "limits", "churn", "reuse", "ipc", "fragment")
# What each workload's allocate phase holds, in one sentence: `alloclab plan` prints it for the
# workloads of a plan and each experiment page under a run's header, so that a reader knows
# whether allocate_ns_per_op is a batch's or a pair's.
WORKLOAD_MEASURES: Mapping[str, str] = {
    "cycle": "allocate is a batch: ops blocks allocated together (for heap backings with the "
             "heap's growth, unless heap_pad: keep), then touched, touched again and freed, "
             "each its own phase",
    "churn": "allocate is ops pairs back to back, each one block allocated, touched and "
             "released (per thread, with threads); the other phases are empty",
    "fork": "allocate is a batch of ops blocks written by the parent; first touch is fork(), "
            "second pass the child's writes (copy-on-write)",
    "resize": "allocate is a batch of ops blocks, first touch writes them, second pass grows "
              "every block by grow_method",
    "limits": "allocate maps untouched blocks until mmap refuses one; per op is per block "
              "mapped",
    "reuse": "allocate and first touch are a batch of ops blocks; free releases them by madvise "
             "and second pass, timed after it, writes them again",
    "ipc": "allocate opens the channel; first touch and second pass each send ops messages of "
           "size bytes to a peer process",
    "fragment": "allocate fills ops slots (per thread) with blocks of sizes from 16 bytes to "
                "size; first touch and second pass each replace 4 x ops blocks drawn at random "
                "with blocks of new sizes; free frees all but every keep_every-th",
}
# What workload ipc passes its messages through: memory an unrelated process maps by a name
# (shm_open's, or a path: the memfd's and the data file's in /proc/<pid>/fd), or a pipe.
IPC_BACKINGS = ("shm", "memfd", "mmap-file", "pipe")
# The control page before workload ipc's message in its shared object (a page: 4 KiB here).
IPC_CONTROL_BYTES = 4096
# The smallest block workload fragment draws (the probe's too): its sizes run from it to size.
FRAGMENT_SMALLEST_BYTES = 16
# Releases that end a block of workload churn right after its access pattern.
CHURN_RELEASES = ("auto", "free", "malloc-trim", "munmap")
# Backings workload limits can map until refused: one untouched mapping per block.
LIMITS_BACKINGS = ("mmap-anon", "mmap-file")
GROW_METHODS = ("realloc", "mremap", "copy")
SYNCS = ("none", "msync", "fsync")
# Most growth steps of workload resize (the probe's limit too).
MAX_GROW_STEPS = 30
# Most milliseconds of pause_ms (the probe's limit too).
MAX_PAUSE_MS = 60_000
# Most worker threads a scenario may ask for (the probe's limit too).
MAX_THREADS = 256
# GLIBC_TUNABLES syntax: name=value pairs joined by colons, names like glibc.malloc.x.
_TUNABLE = r"glibc\.[a-z0-9_]+\.[a-z0-9_]+=[^:=\s]+"
TUNABLES_PATTERN = rf"{_TUNABLE}(:{_TUNABLE})*"
# The C allocators the probe can run with (LD_PRELOAD; glibc: none preloaded), or a library
# by its absolute path: runner.machine.allocators finds each by its soname.
ALLOCATORS = ("glibc", "jemalloc", "tcmalloc", "mimalloc")
ALLOCATOR_PATTERN = r"glibc|jemalloc|tcmalloc|mimalloc|/[^\s:]*\.so(\.[0-9]+)*"
POPULATES = ("none", "map-populate", "madv-populate-write", "mlock", "mlock-onfault")
PROTECTIONS = ("read-write", "read", "none", "exec")
# Protections that forbid writing (exec is PROT_READ|PROT_EXEC).
READ_ONLY_PROTECTIONS = ("read", "exec")
ADVICES = ("none", "sequential", "random", "willneed", "dontneed", "madv-populate-read",
           "dontfork", "wipeonfork")
# Advice that changes only what a forked child inherits (workload fork).
FORK_ADVICES = ("dontfork", "wipeonfork")
THP_MODES = ("default", "huge", "nohuge")
RELEASES = ("auto", "free", "munmap", "madv-dontneed", "madv-free", "malloc-trim",
            "free-but-last", "malloc-trim-but-last", "none")
# How heap memory and mappings can be given back (`auto` picks free or munmap).
HEAP_RELEASES = ("free", "malloc-trim", "free-but-last", "malloc-trim-but-last")
MAPPING_RELEASES = ("munmap", "madv-dontneed", "madv-free")
HISTORIES = ("fresh", "recycled")
# Where the data file comes from: written and synced before timing, or created inside
# allocate (sparse), per iteration.
FILE_ORIGINS = ("existing", "new")
# What the data file of mmap-file holds under the blocks' mappings (see file_layout's help).
FILE_LAYOUTS = ("whole", "short", "holes", "truncated")
# Layouts whose mappings reach past the end of the file: touching those pages raises SIGBUS.
PAST_EOF_LAYOUTS = ("short", "truncated")
# The smallest block of a layout other than whole: a page of data and one past it (or a hole),
# in 4 KiB pages (the probe checks against its real page size).
LAYOUT_MIN_BYTES = 2 * 4096
FILE_OPENS = ("once", "per-block")
LATENCIES = ("off", "histogram")
# Accesses that leave the blocks (and a shared mapping's file) as they found them.
READING_ACCESSES = ("none", "read-page", "read-all")
HEAP_PADS = ("default", "keep")
# hugetlb blocks take whole huge pages of this size (MAP_HUGE_2MB); THP aligns to it too.
HUGE_PAGE_BYTES = 2 << 20
# read_buffer and write_buffer whole (a heap block as large as the block) as the Scenario
# fields hold them.
WHOLE_READ_BUFFER = 0
WHOLE_WRITE_BUFFER = 0
# The parameter that means something for one backing alone (every other holds its default).
BACKING_ONLY = {"read_buffer": "read-file", "write_buffer": "write-file"}
