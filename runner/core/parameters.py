"""The vocabulary of a scenario: every parameter a spec may set, declared once.

The spec validator, the JSON Schema, `plan`, the probe's command line, the stored records and
the reference pages all derive from PARAMETERS, so adding a parameter is one entry here plus its
meaning in the probe. Which combinations make no physical sense is runner.core.combinations'.
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.core.choices import (
    ACCESSES,
    ADVICES,
    ALLOCATOR_PATTERN,
    BACKING_ONLY,
    BACKINGS,
    FILE_LAYOUTS,
    FILE_OPENS,
    FILE_ORIGINS,
    GROW_METHODS,
    HEAP_PADS,
    HISTORIES,
    LATENCIES,
    MAX_GROW_STEPS,
    MAX_PAUSE_MS,
    MAX_THREADS,
    POPULATES,
    PROTECTIONS,
    RELEASES,
    SYNCS,
    THP_MODES,
    TUNABLES_PATTERN,
    WORKLOADS,
)
from runner.core.kinds import Parameter, Value
from runner.core.units import (
    PPM,
)

PARAMETERS: tuple[Parameter, ...] = (
    Parameter("backing", "backing", "choice", "malloc",
              "where the memory comes from: the C heap, an anonymous or file mapping (or a "
              "mapping of /dev/zero: dev-zero), or a heap buffer filled by read() from a file; "
              "for workload ipc, pipe: messages through a pipe instead of shared memory",
              BACKINGS,
              doc=("The C heap: malloc, calloc, posix-memalign (aligned to the page); read-file "
                   "(the file read with pread() into a buffer, see read_buffer) and write-file "
                   "(the file written with pwrite() from a buffer, see write_buffer). Mappings, "
                   "one per block: mmap-anon, mmap-file, memfd (memfd_create + ftruncate + "
                   "mmap), shm (shm_open, unlinked at once), mmap-hugetlb (MAP_HUGETLB, whole 2 "
                   "MiB pages; skipped without enough free huge pages), dev-zero (mmap of "
                   "/dev/zero, opened once before timing: private is anonymous memory, shared a "
                   "shared-memory object of its own per block; every mapping rule applies, "
                   "madv-free and workload reuse private only). pipe is for workload ipc alone.")),
    Parameter("size", "size_bytes", "size", 4096,
              "bytes per allocated block (workload fragment: the largest block; each block's "
              "size is drawn from 16 bytes up to it)"),
    Parameter("sharing", "sharing", "choice", "private",
              "MAP_PRIVATE or MAP_SHARED (mapping backings only)", ("private", "shared")),
    Parameter("protection", "protection", "choice", "read-write",
              "PROT_READ|PROT_WRITE, PROT_READ, PROT_NONE or PROT_READ|PROT_EXEC (exec; skipped "
              "where the filesystem is mounted noexec) for mapping backings and posix-memalign; "
              "posix-memalign then asks for whole pages and calls mprotect inside allocate, "
              "timed, which is what protecting heap memory costs", PROTECTIONS,
              doc=("For any protection but read-write the probe also tries the forbidden "
                   "accesses and times mprotect (protection_enforced, mprotect_ns_per_op). "
                   "posix-memalign asks for the size rounded up to whole pages, so that a "
                   "block's pages hold no other chunk's header, and makes its blocks read-write "
                   "again, untimed, before free. Not malloc or calloc: their blocks share pages "
                   "with other chunks.")),
    Parameter("populate", "populate", "choice", "none",
              "fault every page in during the allocate phase (mapping backings only): not at "
              "all, by MAP_POPULATE, by madvise(MADV_POPULATE_WRITE) (Linux 5.14+) or by mlock "
              "(pins the pages; skipped past RLIMIT_MEMLOCK unless root); mlock-onfault locks "
              "the range with mlock2(MLOCK_ONFAULT), each page as it faults, faulting none in; "
              "true and false mean map-populate and none",
              POPULATES, aliases=((True, "map-populate"), (False, "none")), keyed_label=True,
              doc="The populate call comes after advice's madvise."),
    Parameter("access", "access", "choice", "write-page",
              "what the first-touch and second-pass phases do to each block: nothing, one byte "
              "per page, every byte (memset), read them, or zero-then-write-all: memset to 0, "
              "then every byte written (malloc followed by memset, then used: compare with "
              "calloc and write-all)", ACCESSES,
              doc=("The values in that order: none, write-page, write-all, read-page (one byte "
                   "per page), read-all (every byte), zero-then-write-all, whose memset and "
                   "writes fall in the same phase: compare malloc with it against calloc with "
                   "write-all on single_pass_ns_per_op.")),
    Parameter("ops", "ops", "count", 0,
              "blocks allocated per timed phase, so short operations rise above the clock; "
              "'auto' picks enough blocks to cover at least 16 MiB (at most 65536 blocks); "
              "for workload ipc the messages of size bytes each touching phase sends (auto: "
              "enough to move 16 MiB)",
              doc=("For auto, a hugetlb block counts as its whole huge pages. Workload limits "
                   "does not use ops.")),
    Parameter("file_dir", "file_dir", "path", "/tmp",
              "directory of the file behind file backings (its filesystem changes the results: "
              "tmpfs and disk differ)",
              doc="It must exist (validate, plan and run check)."),
    Parameter("thp", "thp", "choice", "default",
              "transparent huge pages for mmap-anon: as the system decides, or each block "
              "aligned to 2 MiB and madvise(MADV_HUGEPAGE) or madvise(MADV_NOHUGEPAGE); the "
              "memory that really became huge is reported as anon_huge_bytes_per_op",
              THP_MODES, keyed_label=True,
              doc=("Skipped where THP is never. A block of whole 2 MiB is mapped as it is and "
                   "kept where the kernel placed it on a 2 MiB boundary (Linux 6.7 and later "
                   "do): one mmap and one madvise; any other block is mapped 2 MiB larger and "
                   "its unaligned head and tail unmapped (allocate_syscalls_per_op shows "
                   "which).")),
    Parameter("release", "release", "choice", "auto",
              "how the free phase gives memory back: auto (free for heap backings, munmap for "
              "mappings), free, free then malloc_trim(0), munmap, or madvise(MADV_DONTNEED) or "
              "madvise(MADV_FREE), whose mappings are unmapped after the phase, untimed; "
              "free-but-last and malloc-trim-but-last keep the block allocated last (the top "
              "of the heap; with threads, each thread's last) through the phase and free it "
              "after, untimed; none gives nothing "
              "back: every iteration leaks its blocks until the process exits",
              RELEASES, keyed_label=True,
              doc=("The madvise of madv-dontneed and madv-free is timed and the munmap after it "
                   "is not, so the free phase's RSS shows what the advice gave back. "
                   "malloc_trim(0) walks every arena; under another allocator (parameter "
                   "allocator) the malloc-trim releases call its own equivalent: jemalloc's "
                   "purge of every arena, tcmalloc's MallocExtension_ReleaseFreeMemory, "
                   "mimalloc's mi_collect(true). free-but-last and malloc-trim-but-last "
                   "free many blocks and keep one, which pins the top of the heap. With none, "
                   "the resident set adds up from iteration to iteration.")),
    Parameter("workload", "workload", "choice", "cycle",
              "what one iteration does: cycle (allocate, touch, touch again, free), fork "
              "(the parent writes, forks, the child writes: visibility, copy-on-write and PSS) "
              "or resize (write, then grow every block by grow_method), or limits (mmap-anon "
              "or mmap-file: map untouched blocks one after another until mmap refuses one, "
              "then unmap them; ops is not used), or churn (ops times: allocate one block, "
              "apply the access pattern, release it, back to back in one timed window, the "
              "allocate phase: the latency of an allocate-use-release pair; in each thread "
              "with threads), or reuse "
              "(mmap-anon or dev-zero, private: allocate, touch, release by madvise, which "
              "keeps the mappings, then the access pattern again on the released blocks, "
              "timed as second_pass), or ipc (shm, memfd, mmap-file or pipe: ops messages of "
              "size bytes per touching phase from the probe to a second process that opens "
              "the channel by name, every byte written, read and acknowledged), or fragment "
              "(malloc or calloc: ops live blocks of mixed sizes, from 16 bytes up to size, "
              "in each thread; first touch and second pass each replace 4 x ops of them drawn "
              "at random with blocks of new sizes, written as they are allocated; free frees "
              "all but every keep_every-th: a long-running program's heap)",
              WORKLOADS),
    Parameter("cache", "cache", "choice", "warm",
              "the data file of file backings before each iteration: warm (in the page cache) "
              "or cold (fdatasync, then posix_fadvise(POSIX_FADV_DONTNEED); the share still "
              "cached is reported as resident_fraction_before, as eviction does not work on "
              "every filesystem)", ("warm", "cold"), keyed_label=True,
              doc=("Eviction is checked, not assumed: on tmpfs resident_fraction_before stays "
                   "near 1. The data file holds a fixed pattern, written and synced once per "
                   "scenario and run by its first process and shared by the others; a scenario "
                   "that writes to its file (write-file, mmap-file shared with a writing "
                   "access, workload ipc) or lays it out otherwise than whole makes its own in "
                   "every process (file_origin new: inside allocate). Every process reads the "
                   "file in whole before timing and sets the cache state itself.")),
    Parameter("order", "order", "choice", "sequential",
              "the order in which the access pattern visits pages: sequential, or a fixed "
              "random permutation of every page of every block (prepared before timing); "
              "random also makes read-file and write-file do one pread/pwrite per page in "
              "that order", ("sequential", "random"), keyed_label=True,
              doc=("The permutation's seed is fixed. One pread or pwrite per page is for "
                   "read_buffer or write_buffer whole; with a sized buffer, read-file and "
                   "write-file read or write their chunks in a random order instead (workload "
                   "cycle).")),
    Parameter("sync", "sync", "choice", "none",
              "what ends each touching phase after the access pattern: nothing, "
              "msync(MS_SYNC) of every block (mmap-file shared) or fsync of the data file "
              "(mmap-file shared, write-file)", SYNCS, keyed_label=True),
    Parameter("grow_method", "grow_method", "choice", "realloc",
              "workload resize: how each block grows to grow_factor times its size: realloc "
              "(heap backings), mremap(MREMAP_MAYMOVE) (mmap-anon), or copy: a new block "
              "(malloc, or mmap for mmap-anon), memcpy and free/munmap of the old one",
              GROW_METHODS, keyed_label=True),
    Parameter("grow_factor", "grow_factor", "whole", 2,
              "workload resize: the grown block's size as a multiple of size", minimum=2,
              maximum=64, keyed_label=True),
    Parameter("check_zero", "check_zero", "bool", False,
              "count the non-zero bytes of every block right after allocate (workload cycle; "
              "reported as nonzero_bytes_at_allocate_per_op, and the share of blocks with any "
              "as nonzero_blocks_per_op). Reading faults the pages in, "
              "which changes first touch's faults and RSS, so it is off by default"),
    Parameter("threads", "threads", "whole", 1,
              "worker threads, started together at a barrier; a phase is timed from that "
              "barrier to the one the last of them reaches. Workload cycle: they share the ops "
              "blocks, each allocating, touching and freeing its share; workload churn: each "
              "runs ops pairs of its own (no file backing), and _per_op metrics are per pair "
              "of all threads together (wall time / (ops x threads)); slowest_thread_ns_per_op "
              "is the slowest thread's own time per pair; workload fragment: each keeps ops "
              "blocks of its own", maximum=MAX_THREADS,
              keyed_label=True),
    Parameter("advice", "advice", "choice", "none",
              "madvise of every block right after its mmap, inside allocate (mapping backings "
              "only): none, MADV_SEQUENTIAL, MADV_RANDOM, MADV_WILLNEED, MADV_DONTNEED or "
              "MADV_POPULATE_READ (madv-populate-read, Linux 5.14+: faults the pages in for "
              "reading); for workload fork, MADV_DONTFORK (dontfork: the child gets no mapping "
              "there) or MADV_WIPEONFORK (wipeonfork, private mmap-anon: the child's is empty "
              "and reads 0)", ADVICES, keyed_label=True,
              doc=("Timed with allocate. madv-populate-read is skipped where refused; for a "
                   "read-only file mapping it maps the cached pages, no copies. It comes before "
                   "populate's madvise or mlock. fork copies no page tables of dontfork and "
                   "wipeonfork blocks (child_pte_bytes); with dontfork the timed child writes "
                   "nothing, as a write there would kill it, and a checking child's read faults "
                   "(child_read_faulted).")),
    Parameter("read_buffer", "read_buffer_bytes", "size", 1 << 20,
              "backing read-file: the buffer read() copies into, page-aligned, made and written "
              "before timing and reused for every pread of up to its size; first touch and "
              "second pass read each block chunk by chunk and apply the access pattern to each "
              "chunk as it arrives (allocate and free do nothing). whole: a heap block as large "
              "as the block, filled by pread in allocate (read-file before probe version 4)",
              keyed_label=True, words=(("whole", 0),), size_minimum=4096,
              size_maximum=64 << 20, size_unit=4096,
              hint="a size from 4KiB to 64MiB in whole 4KiB, or whole",
              doc=("With a sized buffer, access none reads only, and order random reads the "
                   "chunks of every block in a fixed-seed random order, one pread each. With "
                   "whole, order random reads one pread per page, and the block is then touched "
                   "like malloc's; workload fork or resize, check_zero and releases other than "
                   "free need it. Stored read-file runs from before read_buffer read as whole "
                   "and keep their scenario ids; a sized buffer gives new ids.")),
    Parameter("write_buffer", "write_buffer_bytes", "size", 1 << 20,
              "backing write-file: the buffer write() copies from, page-aligned, made and "
              "written before timing and reused for every chunk of up to its size; first touch "
              "and second pass make each chunk of each block in it with the access pattern and "
              "pwrite it to its place in the file, as fio writes (allocate and free do "
              "nothing). whole: a heap block as large as the block, given the access pattern, "
              "then written by one pwrite (write-file before probe version 6)",
              keyed_label=True, words=(("whole", 0),), size_minimum=4096,
              size_maximum=64 << 20, size_unit=4096,
              hint="a size from 4KiB to 64MiB in whole 4KiB, or whole",
              doc=("With a sized buffer, order random writes the chunks in a fixed-seed random "
                   "order. With whole, the block is written by one pwrite (one per page with "
                   "order random), so the write also pays for touching it; check_zero and "
                   "releases other than free need it. Stored write-file runs from before "
                   "write_buffer read as whole and keep their scenario ids; a sized buffer "
                   "gives new ids.")),
    Parameter("tunables", "tunables", "text", "",
              "glibc tunables for the probe, e.g. glibc.malloc.mmap_threshold=131072 (name=value "
              "pairs joined by ':'); appended to an inherited GLIBC_TUNABLES, so where both set a "
              "tunable this value wins", pattern=TUNABLES_PATTERN,
              hint="empty or glibc tunables like glibc.malloc.mmap_threshold=131072 (joined "
                   "by ':')", keyed_label=True, probe_option=False,
              doc=("A tunable this machine's glibc does not know is skipped with the reason "
                   "(glibc would ignore it silently).")),
    Parameter("history", "history", "choice", "fresh",
              "the memory allocate gets (workload cycle): fresh, as the process finds it (a "
              "pristine heap in a fresh process's first iteration), or recycled: before each "
              "iteration, untimed, the same blocks are allocated the same way, every byte "
              "written non-zero, and freed (or unmapped)", HISTORIES, keyed_label=True,
              doc=("With warmup 0 and iterations 1, fresh is a pristine heap. recycled writes "
                   "0xA5 into every byte, so the timed allocate gets memory the process has "
                   "used; it needs one thread, no file backing and protection read-write.")),
    Parameter("host_warm", "host_warm", "bool", False,
              "before the first iteration, untimed, map an anonymous region as large as the "
              "scenario's blocks, write every page and unmap it, so the pages the kernel hands "
              "out next are likely already backed by a virtual machine's host (best effort: "
              "the measured blocks are still untouched)",
              doc=("On a virtual machine that reports free memory to its host, first touch of a "
                   "page the host took back pays a host fault too; the pages just freed are "
                   "backed, and the kernel likely (not surely) hands them out next, so the "
                   "phases measure the guest kernel's own fault path. First touch still faults "
                   "every page of the blocks. Not for mmap-hugetlb.")),
    Parameter("grow_steps", "grow_steps", "whole", 1,
              "workload resize: how many times every block grows by grow_factor, one step "
              "after another in the second pass (1 MiB to 1 GiB by doubling: size 1MiB, "
              "grow_factor 2, grow_steps 10)", maximum=MAX_GROW_STEPS, keyed_label=True,
              doc=("A block ends at size x grow_factor^grow_steps; the memory estimate counts "
                   "the last step's old and grown blocks together.")),
    Parameter("touch_grown", "touch_grown", "bool", False,
              "workload resize: after each growth step, apply the access pattern to the part "
              "the step added (timed, in the second pass), as a growing buffer is filled; "
              "data_survived then checks those bytes too"),
    Parameter("heap_pad", "heap_pad", "choice", "default",
              "the C heap around a batch (heap backings, workload cycle or churn, one thread): "
              "default, glibc as configured (the heap grows by brk inside allocate, with its "
              "fresh pages' faults, and free trims its top back past 128 KiB, so every batch "
              "pays again), or keep: trimming off and a top pad as large as the batch "
              "(mallopt M_TRIM_THRESHOLD -1, M_TOP_PAD) and, before the first iteration, "
              "untimed, the batch allocated once and freed, so the timed phases cost the "
              "allocator alone (this also fixes the mmap threshold at 128 KiB)", HEAP_PADS,
              keyed_label=True,
              doc=("With default, a batch of small blocks the free lists cannot serve grows the "
                   "heap by brk inside allocate, in steps of the request plus the 128 KiB top "
                   "pad, and malloc writes each chunk's header on a fresh page, so allocate "
                   "counts those faults; free then trims the top back past the 128 KiB trim "
                   "threshold, so every iteration grows and faults again (a batch of 4 KiB "
                   "blocks then costs about a hundred times a reused chunk). With keep, "
                   "mallopt(M_TRIM_THRESHOLD, -1) and mallopt(M_TOP_PAD, ops x size) before the "
                   "first allocation, so no timed phase moves the break "
                   "(brk_growth_bytes_per_op 0) or faults a fresh heap page; blocks from the "
                   "mmap threshold on are still mapped per call, as the threshold no longer "
                   "moves. The tunables glibc.malloc.trim_threshold and glibc.malloc.top_pad "
                   "set the same two values, without the untimed first growth. Not with release "
                   "malloc-trim.")),
    Parameter("touch_share", "touch_share_ppm", "share", PPM,
              "the share of each block's pages the access pattern visits (workload cycle, one "
              "thread), e.g. 1%: that many distinct pages of each block (rounded up, at least "
              "one), drawn with the probe's fixed seed; with order random visited once each in "
              "random order, with order sequential in ascending order. read-file and "
              "write-file with a buffer read or write that share of each block's chunks. "
              "Per-page metrics still divide by every page of a block (touched_pages_per_op "
              "says how many were visited)",
              doc=("The pages chosen are the first of each block's pages in the order random "
                   "permutation. With read_buffer 4KiB, one pread per chosen page: a database's "
                   "sparse 4 KiB reads; with a buffer whole, one pread or pwrite per chosen "
                   "page. Not with access none (but for a buffer's reads). 100% visits every "
                   "page, as every scenario did before touch_share; stored in parts per "
                   "million.")),
    Parameter("file_origin", "file_origin", "choice", "existing",
              "the data file of mmap-file and write-file (workload cycle): existing, written "
              "and synced before timing, or new: created inside allocate (open O_CREAT|O_TRUNC, "
              "and for mmap-file ftruncate to its full length: sparse, no data) before the "
              "blocks are mapped; write-file's pwrites then extend it. After the free phase, "
              "untimed, the file is closed and unlinked: each iteration starts with none",
              FILE_ORIGINS, keyed_label=True,
              doc=("One thread only. The new file is <file_dir>/alloclab-new-<pid>; with sync, "
                   "the writeback its dirty pages owe falls inside first touch. Not read-file "
                   "(nothing to read), cache cold (nothing to evict) or file_open per-block.")),
    Parameter("file_layout", "file_layout", "choice", "whole",
              "what the data file of mmap-file holds under the mappings (workload cycle, with "
              "check_content; blocks of at least two pages): whole; short, the file ends half "
              "a page into the second-to-last page of the last block, so that page's tail lies "
              "past the end and the last page wholly beyond it; holes, every other page of "
              "each block (the second, fourth...) a hole never written; truncated, right after "
              "allocate, untimed, a forked child truncates the file to half of the last "
              "block's range (rounded down to a page)", FILE_LAYOUTS, keyed_label=True,
              doc=("With short the other blocks are whole; holes makes a sparse file, synced; "
                   "truncated's child is vforked, and the file is made whole again after the "
                   "free phase. short and truncated take access none, populate none and no "
                   "madv-populate-read: a timed phase must never touch a page past the end "
                   "(SIGBUS); holes also takes read-page and read-all. Such files are never "
                   "shared between processes.")),
    Parameter("check_content", "check_content", "bool", False,
              "mmap-file, workload cycle: after the second pass, untimed, compare every mapped "
              "byte the file holds with the file's known pattern (content_matches), and for "
              "file_layout short, holes and truncated what lies past the end or in the holes "
              "(tail_zero, sigbus_beyond_eof, holes_zero, sigbus_after_truncate); reading "
              "faults every page in before the free phase",
              doc=("It needs file_origin existing, an access that writes nothing and a readable "
                   "protection. SIGBUS is caught as the protection checks catch SIGSEGV; as "
                   "reading faults every page in, the free phase unmaps resident pages.")),
    Parameter("file_open", "file_open", "choice", "once",
              "the data file's descriptor (workload cycle): once, one for the whole run, or "
              "per-block: mmap-file's allocate opens the file by name for each block, maps the "
              "block's range and closes it; read-file opens it, preads the block and closes it "
              "for each block (timed): the idiom of reading a small file once",
              FILE_OPENS, keyed_label=True,
              doc=("One thread only. mmap-file opens read-write only where a shared read-write "
                   "mapping needs it; read-file's preads of a block's chunks fall in the "
                   "touching phases (with read_buffer whole, in allocate), its opening and "
                   "closing timed and counted with them. A private data file then keeps its "
                   "name until the probe exits. read-file needs order sequential and "
                   "touch_share 100%; mmap-file no sync fsync (no descriptor is left to sync).")),
    Parameter("noreserve", "noreserve", "bool", False,
              "mapping backings: add MAP_NORESERVE to every mmap, so the kernel does not "
              "count the mapping against the memory it promises (overcommit heuristic, mode "
              "0: a writable private mapping larger than memory and swap is then granted; "
              "mode 2 ignores the flag)",
              doc=("Workloads cycle and limits among others. Without it, a writable private "
                   "mapping larger than memory and swap is refused at once. A cycle scenario "
                   "whose noreserve blocks nothing touches (access none, no populate, advice, "
                   "check_zero, recycling, host_warm or exec) counts as needing no memory, so "
                   "the memory guard lets it run however large it is.")),
    Parameter("pause_ms", "pause_ms", "whole", 0,
              "workload cycle: an untimed sleep of this many milliseconds between allocate and "
              "first touch — the other work a program does between preparing memory and using "
              "it, during which what allocate started goes on (MADV_WILLNEED's read-ahead of a "
              "file); 0: none", minimum=0, maximum=MAX_PAUSE_MS, keyed_label=True,
              doc=("MADV_WILLNEED reads a cold file in as far as the device's read-ahead window "
                   "reaches (read_ahead_kb), so the first touch after the pause reads that much "
                   "less from storage.")),
    Parameter("keep_every", "keep_every", "whole", 0,
              "heap backings, workload cycle or fragment: the free phase frees every block but "
              "every keep_every-th, which stays allocated until the process exits (long-lived "
              "objects among short-lived ones); the next iteration's blocks can fill the "
              "holes, and retained_per_requested_byte shows the fragmentation (ideally "
              "1/keep_every; fragment: retained_per_kept_byte, ideally 1). 0: every block is "
              "freed", minimum=0, keyed_label=True,
              doc=("It needs release free or malloc-trim. The blocks kept (N-1, 2N-1... for "
                   "keep_every N) leak across iterations; with iterations above 1 the next "
                   "batch can fill the holes.")),

    Parameter("memory_limit", "memory_limit_bytes", "size", 0,
              "run the probe process in a memory cgroup of its own with this limit and no "
              "swap (none: no cgroup): reclaim then takes clean file pages and MADV_FREE'd "
              "pages, and touched anonymous memory past the limit is OOM-killed, recorded as "
              "the scenario's outcome (status oom); needs root or a writable cgroup, else "
              "skipped", keyed_label=True, words=(("none", 0),), size_minimum=4 << 20,
              size_unit=4096, probe_option=False,
              hint="a size of at least 4MiB in whole 4KiB, or none",
              doc=("cgroup v2 (memory.max, memory.swap.max 0) where the machine has it, else "
                   "v1 (memory.limit_in_bytes, memory.memsw.limit_in_bytes); the cgroup is "
                   "made below the runner's own and removed after the process. With it, "
                   "workload reuse presses after the release (an anonymous region as large as "
                   "the blocks touched, untimed) and reports released_zero_fraction; cycle's "
                   "file backings report cgroup_cache_fraction. Measured on this machine "
                   "only (skipped with --host).")),
    Parameter("hugetlb_pool", "hugetlb_pool", "whole", 0,
              "backing mmap-hugetlb, workload cycle: alloclab reserves exactly this many free 2 "
              "MiB pages in the kernel's pool (vm.nr_hugepages) for each probe process and "
              "gives the previous value back after; the probe then also maps past the pool, "
              "untimed, to see where it runs dry (hugetlb_past_pool_refused, "
              "hugetlb_sigbus_at_pool_end). 0: none, the machine's pool as it is. Needs root, "
              "else skipped with the command to run", minimum=0, keyed_label=True,
              probe_option=False,
              doc=("The pool is set just before each process starts and restored as soon as it "
                   "ends, however it ends; the original value is recorded in "
                   "/run/alloclab/hugetlb-pool.json meanwhile, and a run killed by SIGKILL has "
                   "it restored by the next run ([running safely](../guide/running-safely.md"
                   "#huge-page-pools-set-and-given-back)). The blocks must fit the pool "
                   "(ops x the block's whole huge pages), else the scenario is skipped. Measured "
                   "on this machine only (skipped with --host).")),
    Parameter("latency", "latency", "choice", "off",
              "record each operation's latency in a histogram, reported as percentiles (p50, "
              "p90, p99, p99.9, max): workload churn each allocate-use-release pair (each "
              "thread's, merged), workload cycle each page's first write in first touch "
              "(access write-page); off: none", LATENCIES, keyed_label=True,
              doc=("Each operation lies between two CLOCK_MONOTONIC reads of its own and goes "
                   "into a log-bucketed histogram (HdrHistogram's idea: 128 buckets per power of "
                   "two, so a percentile is within 0.4% of the exact one; no allocation or "
                   "system call while recording). The clock reads are inside the timed phase "
                   "and inside each latency: a histogram scenario's phase times (allocate for "
                   "churn, first touch for cycle) include about two reads per operation, and its "
                   "percentiles about one read each, which latency_clock_ns reports (not "
                   "subtracted). Compare phase times between scenarios with latency off, and "
                   "percentiles between scenarios with it on. Cycle needs access write-page, "
                   "order sequential, touch_share 100%, one thread and a backing without a "
                   "data file. The histogram's buckets are kept in each stored sample.")),
    Parameter("allocator", "allocator", "text", "glibc",
              "the C allocator behind malloc, calloc and free in the probe: glibc (the C "
              "library's own), jemalloc, tcmalloc (tcmalloc_minimal) or mimalloc, loaded with "
              "LD_PRELOAD, or a shared library by its absolute path; skipped where it is not "
              "installed", pattern=ALLOCATOR_PATTERN, probe_option=False,
              hint="glibc, jemalloc, tcmalloc, mimalloc or an absolute path to a shared library "
                   "(/usr/lib/x86_64-linux-gnu/libjemalloc.so.2)",
              doc=("Found by soname (libjemalloc.so.2, libtcmalloc_minimal.so.4, "
                   "libmimalloc.so.2) in `ldconfig -p`, else in the multiarch library "
                   "directories; Debian's packages libjemalloc2, libtcmalloc-minimal4 and "
                   "libmimalloc2.0. The fingerprint records each library's path and version, "
                   "and malloc_from_allocator proves which library's malloc the probe called. "
                   "glibc's own controls need glibc: heap_pad keep and glibc.malloc tunables "
                   "(the malloc-trim releases call each allocator's own trim); glibc's chunk "
                   "observations (blocks_mmapped, "
                   "blocks_in_thread_arena) are not reported under another allocator.")),
    Parameter("memlock_limit", "memlock_limit_bytes", "size", 0,
              "RLIMIT_MEMLOCK of the probe process (populate mlock or mlock-onfault), with "
              "CAP_IPC_LOCK dropped so that root is limited too: an mlock past it is refused "
              "and counted (mlock_refused), not skipped; none: the process's own limit",
              keyed_label=True, words=(("none", 0),), size_unit=4096,
              hint="a size in whole 4KiB, or none",
              doc=("Set by the probe before it maps anything. The limit counts each locked "
                   "range whole at the call (VmLck), touched or not, MLOCK_ONFAULT's too; "
                   "only the pages that faulted are locked in memory (smaps_rollup's "
                   "Locked).")),
    Parameter("bystanders", "bystanders", "whole", 0,
              "threads of the probe process that spin through the whole run, touching none of "
              "the scenario's memory (workload cycle or churn): each holds the process's "
              "address space on a CPU of its own, so every munmap and MADV_DONTNEED must flush "
              "its TLB too; 0: none", minimum=0, maximum=MAX_THREADS, keyed_label=True,
              doc=("They isolate the TLB shootdown from the lock contention of threads that "
                   "allocate too (parameter threads). A bystander needs a CPU of its own to "
                   "show this: on a machine with as many busy CPUs as threads it shares the "
                   "measuring thread's.")),
    Parameter("free_pause_ms", "free_pause_ms", "whole", 0,
              "heap backings, workload cycle, one thread: after the free phase, untimed, the "
              "program goes on for this many milliseconds, calling its allocator (every 10 ms "
              "128 malloc/free pairs of 48 KiB, then a sleep; at the end the free of a 132 KiB "
              "block held throughout), and the resident set is read again "
              "(rss_after_pause_bytes, pause_returned_fraction); 0: none",
              minimum=0, maximum=MAX_PAUSE_MS,
              doc=("The calls give jemalloc and mimalloc their chance: both give freed memory "
                   "back late, from inside their own calls (jemalloc's decay, ticked by calls "
                   "above its 32 KiB thread cache; mimalloc's decommit of a segment's freed "
                   "spans, when one of its pages is freed after decommit_delay), which a "
                   "sleeping program never makes; why each size: runner/probe/allocator.c. "
                   "The timed phases do not change; the resident set after the pause counts "
                   "anonymous memory's change alone (rss_after_pause_bytes).")),
    Parameter("thread_turns", "thread_turns", "bool", False,
              "workload fragment with threads: the threads take turns, an iteration each in "
              "order (iteration i is thread i mod threads' alone, the others idle), as a "
              "pool's threads take requests one after another; false: every thread works at "
              "once on blocks of its own", keyed_label=True,
              doc=("What one thread's turn freed stays where its allocator put it: in glibc, "
                   "that thread's arena and cache, which the next thread does not use "
                   "(held_bytes, held_per_live_byte). With warm-up iterations at least the "
                   "threads, every thread has had a turn before the first measured one.")),
)

BY_KEY: Mapping[str, Parameter] = {p.key: p for p in PARAMETERS}
DEFAULTS: Mapping[str, Value] = {p.key: p.default for p in PARAMETERS}


def applies(key: str, params: Mapping[str, Value]) -> bool:
    """Whether a parameter means anything for this scenario, so labels can leave it out:
    read_buffer is read-file's alone, write_buffer write-file's (BACKING_ONLY)."""
    return key not in BACKING_ONLY or params["backing"] == BACKING_ONLY[key]
