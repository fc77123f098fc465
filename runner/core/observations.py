"""What the probe may report beside its phases, and the metric column each becomes.

An observation is a named whole number the probe reports for an iteration when the scenario
makes it meaningful (how much memory became transparent huge pages only when `thp` is set).
OBSERVATIONS declares each once, with its unit, its sentence and short name, and how its metric
divides it; the probe's output is checked against it (runner.probe.native) and each becomes one
metric column (runner.analysis.frame), empty where not reported. A `Metric` is such a column:
runner.core.metrics lists them all, the phases' own included (runner.core.observation_types
declares what the two are).
"""

from __future__ import annotations

from collections.abc import Mapping

from runner.core.model import PHASES
from runner.core.observation_types import Observation

PHASE_TITLES = {
    "allocate": "allocate",
    "first_touch": "first touch",
    "second_pass": "second pass",
    "free": "free",
}


_SYSCALLS_DOC = ("Each call counted, a short read's retry too (mlock as well); calls inside libc, "
                 "such as malloc's, are not seen, so heap and anonymous backings do not report "
                 "them. \"mmap saves system calls\" is a claim about these numbers.")
_IO_READ_DOC = ("A cold pread and a cold mapped read alike, read-ahead included; nothing for a "
                "page found cached.")
_IO_WRITE_DOC = ("So a phase shows what its dirty pages owe whether or not sync writes them "
                 "inside it; the flusher threads' writeback and fsync's own I/O are not counted "
                 "again.")

OBSERVATIONS: tuple[Observation, ...] = (
    Observation("alignment_bytes", "bytes",
                "alignment of the blocks: the largest power of two dividing every block's "
                "address",
                short_name="block alignment",
                doc="16 for a large malloc, the page for posix-memalign and mmap."),
    Observation("anon_huge_bytes", "bytes",
                "anonymous memory in transparent huge pages after first touch (AnonHugePages "
                "growth; reported when thp is huge or nohuge, and for heap blocks of 2 MiB and up)",
                short_name="transparent huge page memory", per_op=True),
    Observation("hugetlb_bytes", "bytes",
                "hugetlb memory mapped after first touch, which the resident set does not "
                "count (HugetlbPages growth; reported for mmap-hugetlb)",
                short_name="hugetlb memory", per_op=True),
    Observation("protection_enforced", "0 or 1",
                "1 when every forbidden access (a write; for protection none also a read) "
                "faulted (reported for protection read, exec and none)",
                short_name="protection enforced",
                doc="The probe catches the SIGSEGV itself."),
    Observation("mprotect_ns", "ns",
                "time of mprotect from read-write to the scenario's protection (reported for "
                "protection read, exec and none)",
                short_name="mprotect time", per_op=True,
                doc="Timed apart from the phases."),
    Observation("brk_growth_bytes", "bytes",
                "how far allocate moved the program break (sbrk(0)), the main heap's end "
                "(reported for heap backings, workload cycle)",
                short_name="program break growth", per_op=True),
    Observation("blocks_in_heap", "blocks",
                "blocks lying in the main heap (between the program break at start and after "
                "allocate), not in a mapping of their own or another thread's arena (reported "
                "for heap backings, workload cycle)",
                short_name="blocks in the main heap",
                per_op=True,
                doc=("Across iterations it shows glibc's dynamic mmap threshold: a freed 1 MiB "
                     "mapped chunk raises it, and the next 1 MiB block comes from the heap.")),
    Observation("mappings", "mappings",
                "lines of /proc/self/maps after allocate (read after the second pass, which adds "
                "none): the process's mappings, adjacent private anonymous ones with equal "
                "flags merged (workload cycle)",
                short_name="mappings after allocate",
                doc="A file mapping per block never merges."),
    Observation("vm_size_growth_bytes", "bytes",
                "address space (VmSize) taken by allocate, resident or not (workload cycle)",
                short_name="address space growth",
                per_op=True),
    Observation("nonzero_bytes_at_allocate", "bytes",
                "non-zero bytes read right after allocate, before anything is written "
                "(reported with check_zero: true)",
                short_name="non-zero bytes at allocate", per_op=True,
                doc="Fresh calloc and mmap give 0, recycled malloc chunks do not."),
    Observation("resident_ppm_before", "fraction",
                "share of the data file's pages in the page cache before the iteration, by "
                "mincore (file backings; for cache cold 0 means really cold, near 1 means the "
                "filesystem did not evict, as on tmpfs)",
                short_name="share of the file cached before", per_million=True,
                doc=("Not reported with file_origin new, which has no file before the "
                     "iteration.")),
    Observation("child_sees_parent", "0 or 1",
                "1 when the forked child read every byte the parent wrote before fork "
                "(workload fork)",
                short_name="child sees the parent's writes",
                doc=("The child always sees the parent's data. It is asked of a second child, "
                     "untimed, which only reads, so that the timed child writes memory nothing "
                     "has read (fork copies no page table entries of shared mappings, so a read "
                     "would fault them in): for shared memory forked before the timed child, "
                     "for private memory after the timed child wrote (the parent's copy is "
                     "unchanged, and an earlier fork would write-protect the parent's page "
                     "tables for the timed one).")),
    Observation("child_reads_zero", "0 or 1",
                "1 when a forked child read 0 wherever the parent wrote before fork: "
                "MADV_WIPEONFORK (workload fork)",
                short_name="child reads zeros",
                doc="Asked of the same checking child as child_sees_parent."),
    Observation("child_read_faulted", "0 or 1",
                "1 when a forked child's read of a block raised SIGSEGV, caught: the block is "
                "not mapped in the child, MADV_DONTFORK (workload fork)",
                short_name="child's read faulted",
                doc="Asked of child_sees_parent's checking child, which then reads no more."),
    Observation("child_pte_bytes", "bytes",
                "page tables of the child right after fork, before its write (VmPTE; workload "
                "fork): what fork copied, the tables of the probe's own memory included",
                short_name="child's page tables after fork",
                doc=("fork copies the page tables of private memory that has pages: 8 bytes per "
                     "4 KiB page touched (1/512), so they grow with the touched heap; none of "
                     "shared mappings (the child faults them in), of MADV_DONTFORK blocks or of "
                     "MADV_WIPEONFORK ones.")),
    Observation("parent_sees_child", "0 or 1",
                "1 when the parent read every byte the child wrote after fork: shared memory "
                "(workload fork)",
                short_name="parent sees the child's writes",
                doc="Private memory keeps the child's writes in the child's copy."),
    Observation("parent_pss_bytes", "bytes",
                "proportional set size of the parent after the child wrote, while both run "
                "(smaps_rollup Pss; workload fork)",
                short_name="parent's PSS",
                doc="Shared pages count half in each process."),
    Observation("child_pss_bytes", "bytes",
                "proportional set size of the child after it wrote, while both run "
                "(smaps_rollup Pss; workload fork)",
                short_name="child's PSS",
                doc="Shared pages count half in each process."),
    Observation("blocks_moved", "blocks",
                "blocks whose address after growing (the last step) differs from the one "
                "allocate gave (workload resize)",
                short_name="blocks moved by growing", per_op=True),
    Observation("data_survived", "0 or 1",
                "1 when every byte written before growing was still there after (with "
                "touch_grown, also every byte the growth steps wrote; workload resize)",
                short_name="data survived growing"),
    Observation("nonzero_blocks", "blocks",
                "blocks with at least one non-zero byte right after allocate, before anything "
                "is written (reported with check_zero: true)",
                short_name="non-zero blocks at allocate", per_op=True,
                doc=("A recycled malloc chunk counts as dirty for its free-list pointers alone; "
                     "calloc and mappings give 0.")),
    Observation("brk_moves", "calls",
                "allocation calls that moved the program break, one call at a time in a fresh "
                "image of the probe after the timed iterations (heap backings, workload cycle, "
                "one thread)",
                short_name="calls moving the break", per_op=True,
                doc=("This is the heap trace: after the timed iterations the probe runs itself "
                     "again (/proc/self/exe, same arguments and environment) and allocates the "
                     "blocks one call at a time, reading sbrk(0) and malloc_usable_size after "
                     "each, which the timed phases never do; every iteration of a process "
                     "carries the same trace figures. A process's first malloc moves the break "
                     "once (glibc sets up its per-thread cache) even when the blocks themselves "
                     "are mapped.")),
    Observation("brk_step_median_bytes", "bytes",
                "median move of the program break among the calls that moved it, in the same "
                "trace (absent when no call moved it)",
                short_name="median move of the break",
                doc="glibc grows the heap by the request plus a 128 KiB top pad, page-rounded."),
    Observation("usable_bytes", "bytes",
                "usable size malloc granted (malloc_usable_size), in the same trace",
                short_name="usable size",
                per_op=True,
                doc="A 64-byte request gets 72."),
    Observation("vm_grows", "calls",
                "allocation calls that grew the address space (VmSize), in the same trace: "
                "by the program break or by a mapping, whatever the allocator uses",
                short_name="calls growing the address space", per_op=True,
                doc=("VmSize (/proc/self/statm) is read after each call of the trace, so it "
                     "sees jemalloc and mimalloc, which never move the break, and tcmalloc, "
                     "which moves it and maps too. A call after which VmSize is smaller or "
                     "equal grew nothing.")),
    Observation("vm_step_median_bytes", "bytes",
                "median growth of the address space among the calls that grew it, in the same "
                "trace (absent when no call grew it)",
                short_name="median growth of the address space",
                doc=("An allocator that maps in large steps and carves blocks out of them "
                     "shows a step many times the request; one that maps each block on its "
                     "own, the request rounded up to pages.")),
    Observation("vm_call_growth_median_bytes", "bytes",
                "median growth of the address space over every call of the same trace, the "
                "calls that grew nothing counted as 0 (the lower median: at least half the "
                "calls grew by it)",
                short_name="median growth of the address space per call",
                doc=("0 unless most calls grew the address space: the folk claim \"a malloc "
                     "call grows the memory by what it asks\" read call by call. Mappings "
                     "are not counted instead: adjacent anonymous mappings merge into one "
                     "line of /proc/self/maps, so a count would say neither how many mmaps "
                     "nor how many blocks.")),
    Observation("mappings_until_refused", "mappings",
                "blocks mapped one after another before mmap refused one (workload limits)",
                short_name="mappings until mmap refused"),
    Observation("map_errno", "errno",
                "the error of the refused mmap: 12 is ENOMEM (workload limits)",
                short_name="errno of the refused mmap",
                doc="ENOMEM for the map count, the address space and overcommit alike."),
    Observation("max_map_count", "mappings",
                "vm.max_map_count, the most mappings a process may have (workload limits)",
                short_name="vm.max_map_count"),
    Observation("mappings_at_refusal_ppm", "fraction",
                "every mapping of the process when mmap refused (lines of /proc/self/maps) as "
                "a share of vm.max_map_count: near 1 when the map count was the limit "
                "(workload limits)",
                short_name="mappings at refusal, share of the most", per_million=True),
    Observation("rlimit_as_enforced", "0 or 1",
                "1 when, with RLIMIT_AS set to the address space in use plus N bytes, a "
                "mapping of 1.5 N was refused and one of N/2 granted (workload limits)",
                short_name="RLIMIT_AS enforced",
                doc=("Asked after the free phase; N is twice the page-rounded block, and both "
                     "mappings are read-only.")),
    Observation("read_buffer_page_offset_bytes", "bytes",
                "how far into its page read() copies to: the reused buffer's start (0: "
                "page-aligned), or for read_buffer whole the first block's (backing read-file, "
                "workload cycle)",
                short_name="read buffer's offset in its page",
                doc=("16 for a large malloc'd block (read_buffer whole). On some CPUs copying "
                     "to a destination 8 or 16 bytes into a page is several times slower.")),
    Observation("blocks_mmapped", "blocks",
                "blocks whose chunk glibc mapped on its own (the IS_MMAPPED bit of the chunk's "
                "size field): malloc of a block past the mmap threshold is one mmap (heap "
                "backings, workload cycle, glibc's malloc)",
                short_name="blocks glibc mapped on their own", per_op=True,
                doc=("Read right after allocate: 0 below the mmap threshold, 1 for a 1 MiB "
                     "block in a fresh process. Not reported where another allocator is "
                     "preloaded, or on glibc before 2.34.")),
    Observation("blocks_in_thread_arena", "blocks",
                "blocks whose chunk lies in a thread arena, a heap glibc carved out of a "
                "mapping of its own (the NON_MAIN_ARENA bit; heap backings, workload cycle, "
                "glibc's malloc)",
                short_name="blocks in a thread arena", per_op=True,
                doc=("A thread arena is a 64 MiB mapping outside [heap], so blocks_in_heap is 0 "
                     "for these blocks, though they are heap memory.")),
    Observation("vm_pte_growth_bytes", "bytes",
                "page tables (VmPTE) grown from before allocate to after the touching phases "
                "(workload cycle)",
                short_name="page table growth", per_op=True,
                doc=("VmPTE of /proc/self/status, read after the second pass, which adds none: "
                     "8 bytes per 4 KiB page touched (1/512 of the memory), 0 for a mapping "
                     "never touched. THP does not shrink it: the kernel keeps a page table in "
                     "reserve with every huge page, to split it later.")),
    Observation("exec_ran", "0 or 1",
                "1 when a tiny function copied into every block ran there and returned what it "
                "should (protection exec; mapping backings and posix-memalign, x86-64 and "
                "aarch64)",
                short_name="code ran in the blocks",
                doc=("The function is mov eax, imm32; ret (x86-64) or movz w0, #imm; ret "
                     "(aarch64). Each block is made writable by mprotect for the copy, the "
                     "instruction cache cleared and the protection given back; its first bytes "
                     "are put back after (for mmap-file shared, the data file's, written back "
                     "at once). Untimed, before the free phase, which then finds that page of "
                     "each block written; workload cycle.")),
    Observation("exec_trapped", "0 or 1",
                "1 when calling into every block faulted: no code runs in memory without "
                "PROT_EXEC (protection read-write and read with an access other than none; "
                "mapping backings and posix-memalign, x86-64 and aarch64)",
                short_name="executing the blocks faulted",
                doc=("The probe catches the SIGSEGV: the NX bit of the block's first page "
                     "refuses the fetch, and nothing is written into the blocks. Not asked with "
                     "access none: on x86-64 a fetch from a page not yet mapped first faults it "
                     "in (for a file or shared memory, a resident page the free phase would "
                     "then unmap), and only the retried fetch meets the NX bit; workload cycle.")),
    Observation("joined_neighbour", "0 or 1",
                "1 when a block, allocated and released as the loop does it (after the loop), "
                "joined a neighbouring mapping instead of becoming a mapping of its own, so "
                "that each mmap extended that mapping and each munmap split it (mmap-anon, "
                "workload churn)",
                short_name="joined a neighbouring mapping",
                doc=("Untimed. A joining pair costs more (an untouched 4 KiB pair about a "
                     "quarter more); the probe keeps it 0 by fencing its own memory with a "
                     "PROT_NONE page before the first iteration.")),
    Observation("slowest_thread_ns", "ns",
                "time the slowest thread took for its own ops allocate-use-release pairs "
                "(workload churn; with one thread, the allocate phase)",
                short_name="slowest thread's pair time", per_thread_op=True,
                doc=("Each thread reads the clock around its own loop, after the barrier that "
                     "starts them all; the allocate phase runs from that barrier until the last "
                     "thread is done, so with threads its per-op time is the process's time per "
                     "pair (all threads' pairs together), and this one the time per pair one "
                     "thread saw: a pair's latency under contention.")),
    *(Observation(f"latency_{name}_ns", "ns",
                  f"{title} latency of one operation, from the histogram of latency: histogram "
                  "(workload churn: an allocate-use-release pair; workload cycle: the first "
                  "write of a page)",
                  short_name=f"{short} latency",
                  doc=("Nearest rank, read as its bucket's middle (within 0.4%); each latency "
                       "includes about one clock read (latency_clock_ns)." if name != "max"
                       else "Exact, not bucketed: the slowest operation of the iteration."))
      for name, title, short in (("p50", "median", "p50"), ("p90", "90th percentile", "p90"),
                                 ("p99", "99th percentile", "p99"),
                                 ("p999", "99.9th percentile", "p99.9"),
                                 ("max", "largest", "max"))),
    Observation("latency_count", "operations",
                "operations the latency histogram recorded in the iteration: ops pairs per "
                "thread (workload churn), or every page of every block (workload cycle)",
                short_name="operations timed one by one"),
    Observation("latency_clock_ns", "ns",
                "two back-to-back CLOCK_MONOTONIC reads with nothing between them, the median "
                "of 255, read after the timed phase (latency: histogram): the clock's share of "
                "each recorded latency",
                short_name="clock read cost",
                doc=("Reported, not subtracted: subtracting a typical value from single "
                     "intervals would bias the fastest ones.")),
    Observation("malloc_from_allocator", "0 or 1",
                "1 when the malloc the probe calls is the scenario's allocator's: defined in "
                "the library preloaded for it, or for glibc in the C library (every scenario)",
                short_name="malloc is the allocator's",
                doc=("Read once per process with dladdr on malloc, the address every call binds "
                     "to, and realpath of both files. The dynamic loader skips a library it "
                     "cannot preload with a warning, so 0 means the process measured another "
                     "allocator than asked.")),
    *(Observation(f"{phase}_syscalls", "calls",
                  f"system calls the probe issued in the {PHASE_TITLES[phase]} phase (pread, "
                  "pwrite, mmap, munmap, madvise, mprotect, msync, fsync...; file backings, "
                  "and mmap-anon with thp huge or nohuge, workload cycle)",
                  short_name=f"{PHASE_TITLES[phase]} system calls", per_op=True,
                  doc=_SYSCALLS_DOC)
      for phase in PHASES),
    Observation("peer_sees_writes", "0 or 1",
                "1 when the peer read exactly the bytes the probe wrote into every message (the "
                "sum of each matched): shared mappings and pipes; 0 for private mappings, whose "
                "writes stay the writer's (workload ipc)",
                short_name="peer sees the writes"),
    Observation("peer_allocate_ns", "ns",
                "time the peer took to open and map the channel it was told of, after the "
                "probe's allocate (workload ipc)",
                short_name="peer's open-and-map time",
                doc=("Opening and mapping is shm_open, or open of the /proc path, then mmap and "
                     "close.")),
    Observation("peer_first_touch_minor_faults", "faults",
                "minor page faults the peer took receiving the first touch's messages (workload "
                "ipc)",
                short_name="peer's first-touch minor faults", per_op=True,
                doc=("Reading shared memory takes about one fault per 16 pages (tmpfs "
                     "fault-around), a pipe's buffer one per page, on the first message only.")),
    Observation("peer_second_pass_minor_faults", "faults",
                "minor page faults the peer took receiving the second pass's messages (workload "
                "ipc)",
                short_name="peer's second-pass minor faults", per_op=True,
                doc=("Reading shared memory takes about one fault per 16 pages (tmpfs "
                     "fault-around), a pipe's buffer one per page, on the first message only.")),
    Observation("touched_pages", "pages",
                "pages one pass visits: those the access pattern visits in the blocks (a share "
                "of each block's with touch_share below 100%; none for access none on a "
                "mapping), or for read-file and write-file those pread or pwrite transfers "
                "(workload cycle: file backings, and any backing with touch_share below 100%)",
                short_name="pages one pass visits",
                per_op=True),
    Observation("cached_pages_added", "pages",
                "pages of the data file that became resident in the page cache from the start "
                "of the iteration to the end of first touch (mincore before allocate and after "
                "first touch, both untimed): what reading brought in, read-ahead included (file "
                "backings, workload cycle)",
                short_name="pages added to the page cache", per_op=True,
                doc="A file created by file_origin new had none."),
    Observation("resident_ppm_after", "fraction",
                "share of the data file's pages in the page cache after first touch, by mincore "
                "(file backings, workload cycle)",
                short_name="share of the file cached after", per_million=True),
    *(Observation(f"{phase}_io_{way}_bytes", "bytes",
                  f"bytes the process caused to be {done} storage in the {PHASE_TITLES[phase]} "
                  f"phase (/proc/self/io {way}_bytes, read around the phase, untimed; "
                  f"{when}file backings, workload cycle)",
                  short_name=f"{PHASE_TITLES[phase]} bytes {short}", per_op=True, doc=doc)
      for way, done, when, doc, short in (
          ("read", "fetched from", "", _IO_READ_DOC, "read from storage"),
          ("write", "sent to", "counted when pages are dirtied, not when written back; ",
           _IO_WRITE_DOC, "owed to storage"))
      for phase in PHASES),
    Observation("content_matches", "0 or 1",
                "1 when every byte of the blocks that the file holds (before its end, outside "
                "holes) reads as the file's known pattern, after the second pass (check_content, "
                "mmap-file)",
                short_name="content matches the file"),
    Observation("tail_zero", "0 or 1",
                "1 when every byte past the end of the file in its last, partial page reads 0 "
                "(check_content, file_layout short)",
                short_name="tail past the end reads 0"),
    Observation("sigbus_beyond_eof", "0 or 1",
                "1 when reading the first page wholly past the end of the file raised SIGBUS "
                "(check_content, file_layout short)",
                short_name="SIGBUS past the end of file"),
    Observation("holes_zero", "0 or 1",
                "1 when every byte of every hole reads 0 and every data page reads as the file's "
                "pattern (check_content, file_layout holes)",
                short_name="holes read 0"),
    Observation("sigbus_after_truncate", "0 or 1",
                "1 when, after another process truncated the file under the mapping, reading "
                "the first page past the new end raised SIGBUS (check_content, file_layout "
                "truncated)",
                short_name="SIGBUS after truncation"),
    Observation("released_zero_ppm", "fraction",
                "share of the blocks' pages that read all zero after the release and memory "
                "pressure (workload reuse with memory_limit: an anonymous region as large as "
                "the blocks written, untimed): pages the kernel discarded",
                short_name="released pages reading 0", per_million=True,
                doc=("MADV_DONTNEED'd pages always read zero; MADV_FREE'd ones only where "
                     "reclaim took them, which needs the pressure: without memory_limit the "
                     "probe neither presses nor reports this.")),
    Observation("cgroup_cache_ppm", "fraction",
                "page cache charged to the scenario's memory cgroup after first touch "
                "(memory.stat file on v2, cache on v1), as a share of the data file's bytes "
                "(file backings, workload cycle, memory_limit)",
                short_name="page cache charged to the cgroup", per_million=True,
                doc=("A cold file read under the limit is charged to the reader's cgroup; 1 "
                     "means all of it, less means reclaim took some (or it was cached before, "
                     "charged elsewhere).")),
    Observation("hugetlb_pool_pages", "pages",
                "free 2 MiB pages in the hugetlb pool alloclab reserved, seen after the free "
                "phase with the blocks gone (hugetlb_pool: it equals the pool)",
                short_name="hugetlb pool"),
    Observation("hugetlb_past_pool_refused", "0 or 1",
                "1 when a MAP_HUGETLB mapping one page larger than the free pool was refused "
                "at mmap with ENOMEM: the kernel reserves a hugetlb mapping's pages when it is "
                "made (hugetlb_pool, untimed, after the free phase)",
                short_name="mmap past the pool refused"),
    Observation("hugetlb_sigbus_at_pool_end", "0 or 1",
                "1 when the same mapping made with MAP_NORESERVE was granted, writing one byte "
                "to each of the pool's pages succeeded and the write to the page past them "
                "raised SIGBUS: without a reservation the pool runs dry at a fault (hugetlb_pool, "
                "untimed)",
                short_name="SIGBUS where the pool ran dry",
                doc=("The probe catches the SIGBUS and reports it; the process goes on. A "
                     "private hugetlb mapping shared with a fork child runs dry the same way "
                     "at its copy-on-write fault.")),
    Observation("locked_bytes", "bytes",
                "memory locked in RAM after first touch (smaps_rollup's Locked; populate mlock "
                "or mlock-onfault, workload cycle): every page of an mlock'd range, only the "
                "pages that faulted of an MLOCK_ONFAULT one",
                short_name="locked memory", per_op=True),
    Observation("vm_locked_bytes", "bytes",
                "locked ranges as RLIMIT_MEMLOCK counts them after first touch (status's "
                "VmLck; populate mlock or mlock-onfault, workload cycle): whole ranges, "
                "touched or not",
                short_name="locked ranges (VmLck)", per_op=True),
    Observation("mlock_refused", "blocks",
                "blocks whose mlock the memlock_limit refused (ENOMEM, or EPERM with a limit "
                "of 0; populate mlock or mlock-onfault, workload cycle)",
                short_name="mlock refused", per_op=True),
    Observation("rss_after_pause_bytes", "bytes",
                "resident set at the end of free_pause_ms, after the free phase: the free "
                "phase's, less the anonymous memory given back since",
                short_name="resident set after the pause",
                doc=("Anonymous memory alone changes it: code run for the first time after the "
                     "free phase maps in program text, which is no heap memory. See "
                     "pause_returned_fraction.")),
    Observation("peak_live_bytes", "bytes",
                "the most bytes the blocks of workload fragment asked for at once, from "
                "allocate to the end of second pass (with threads, each thread's highest, "
                "summed)",
                short_name="peak live bytes",
                doc="Requested sizes, not what the allocator granted: rss_per_live_byte divides "
                    "the memory the program holds by this."),
    Observation("kept_bytes", "bytes",
                "bytes the blocks workload fragment kept after its free phase asked for (every "
                "keep_every-th slot's; 0 without keep_every)",
                short_name="kept bytes",
                doc="See retained_per_kept_byte."),
    Observation("held_bytes", "bytes",
                "resident set after workload fragment's free phase over the process's before "
                "its first iteration: what the program holds, every thread's share together, "
                "once this iteration has freed its blocks",
                short_name="held after free",
                doc="See held_per_live_byte."),
)
OBSERVATIONS_BY_NAME: Mapping[str, Observation] = {o.name: o for o in OBSERVATIONS}
