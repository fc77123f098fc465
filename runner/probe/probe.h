#ifndef ALLOCLAB_PROBE_H
#define ALLOCLAB_PROBE_H

/* Every file of the probe includes this header first. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <gnu/libc-version.h>
#endif

#include "latency.h"

#define PROBE_VERSION 14
#define EXIT_USAGE 2
#define EXIT_SYSTEM 3
#define EXIT_SKIPPED 4

/* hugetlb blocks are whole 2 MiB pages; THP blocks start on a 2 MiB boundary. */
#define HUGE_PAGE_BYTES ((size_t)2 << 20)
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << MAP_HUGE_SHIFT)
#endif

/* The file behind file backings is written in chunks of this size from an mmap'd buffer. */
#define FILL_CHUNK_BYTES ((size_t)1 << 20)

/* Most threads a scenario may ask for (runner/core/parameters.py MAX_THREADS). */
#define MAX_THREADS 256
#define MAX_GROW_FACTOR 64
#define MAX_GROW_STEPS 30
/* pause_ms and free_pause_ms: at most a minute (runner/core/choices.py MAX_PAUSE_MS). */
#define MAX_PAUSE_MS 60000
/* read_buffer and write_buffer: whole 4 KiB units, at most 64 MiB (runner/core/parameters.py says
 * the same). */
#define READ_BUFFER_UNIT_BYTES ((size_t)4096)
#define MAX_READ_BUFFER_BYTES ((size_t)64 << 20)

/* Keeps `p` and everything reachable from it alive: the compiler must assume the empty
 * assembly reads that memory, so stores before it (a memset right before free) stay. */
#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

/* The system calls the probe makes for the scenario (pread, pwrite, mmap, munmap, madvise,
 * mprotect, msync, fsync...), counted where it makes them, so that each timed phase can say
 * how many it issued. A relaxed atomic add, because worker threads count at once; it costs a
 * few nanoseconds beside a call's hundreds. Calls made inside libc (malloc's brk and mmap)
 * are not seen, which is why only file backings report the counts. */
extern atomic_uint_fast64_t syscall_count; /* phase.c */
#define COUNT_SYSCALL() ((void)atomic_fetch_add_explicit(&syscall_count, 1, memory_order_relaxed))

/* ------------------------------------------------------------------------------------------ */
/* The scenario, as the command line gives it (options.c)                                     */

enum backing { BACKING_MALLOC, BACKING_CALLOC, BACKING_POSIX_MEMALIGN, BACKING_MMAP_ANON,
               BACKING_MMAP_FILE, BACKING_READ_FILE, BACKING_MEMFD, BACKING_SHM,
               BACKING_MMAP_HUGETLB, BACKING_WRITE_FILE, BACKING_PIPE, BACKING_DEV_ZERO,
               BACKING_COUNT };

/* zero-then-write-all: memset(0) of the block, then write-all: malloc followed by memset,
 * then used (what calloc saves, if anything). */
enum access { ACCESS_NONE, ACCESS_WRITE_PAGE, ACCESS_WRITE_ALL, ACCESS_READ_PAGE,
              ACCESS_READ_ALL, ACCESS_ZERO_THEN_WRITE_ALL, ACCESS_COUNT };

enum sharing { SHARING_PRIVATE, SHARING_SHARED, SHARING_COUNT };

enum protection { PROTECTION_READ_WRITE, PROTECTION_READ, PROTECTION_NONE, PROTECTION_EXEC,
                  PROTECTION_COUNT };

enum populate { POPULATE_NONE, POPULATE_MAP_POPULATE, POPULATE_MADV_POPULATE_WRITE,
                POPULATE_MLOCK, POPULATE_MLOCK_ONFAULT, POPULATE_COUNT };

/* madvise of every block of a mapping backing right after its mmap, inside allocate. */
enum advice { ADVICE_NONE, ADVICE_SEQUENTIAL, ADVICE_RANDOM, ADVICE_WILLNEED, ADVICE_DONTNEED,
              ADVICE_POPULATE_READ, ADVICE_DONTFORK, ADVICE_WIPEONFORK, ADVICE_COUNT };

enum thp { THP_DEFAULT, THP_HUGE, THP_NOHUGE, THP_COUNT };

/* RELEASE_AUTO is resolved while parsing: free for heap backings, munmap for mappings. */
/* The *_BUT_LAST releases keep the block allocated last (the top of a growing heap) through
 * the free phase and free it after, untimed: "many blocks freed, one kept". */
/* RELEASE_NONE gives nothing back: every iteration leaks its blocks until the process exits. */
enum release { RELEASE_AUTO, RELEASE_FREE, RELEASE_MUNMAP, RELEASE_MADV_DONTNEED,
               RELEASE_MADV_FREE, RELEASE_MALLOC_TRIM, RELEASE_FREE_BUT_LAST,
               RELEASE_MALLOC_TRIM_BUT_LAST, RELEASE_NONE, RELEASE_COUNT };

enum workload { WORKLOAD_CYCLE, WORKLOAD_FORK, WORKLOAD_RESIZE, WORKLOAD_LIMITS,
                WORKLOAD_CHURN, WORKLOAD_REUSE, WORKLOAD_IPC, WORKLOAD_FRAGMENT,
                WORKLOAD_COUNT };

enum cache { CACHE_WARM, CACHE_COLD, CACHE_COUNT };

enum order { ORDER_SEQUENTIAL, ORDER_RANDOM, ORDER_COUNT };

enum sync { SYNC_NONE, SYNC_MSYNC, SYNC_FSYNC, SYNC_COUNT };

enum grow { GROW_REALLOC, GROW_MREMAP, GROW_COPY, GROW_COUNT };

enum history { HISTORY_FRESH, HISTORY_RECYCLED, HISTORY_COUNT };

/* heap_pad keep: the C heap neither grows nor shrinks inside the timed phases (history.c). */
enum heap_pad { HEAP_PAD_DEFAULT, HEAP_PAD_KEEP, HEAP_PAD_COUNT };

/* new: the data file is created inside allocate, per iteration (cycle.c). */
enum file_origin { FILE_ORIGIN_EXISTING, FILE_ORIGIN_NEW, FILE_ORIGIN_COUNT };

/* What the data file holds under the mappings of mmap-file (content.c). */
enum file_layout { FILE_LAYOUT_WHOLE, FILE_LAYOUT_SHORT, FILE_LAYOUT_HOLES, FILE_LAYOUT_TRUNCATED,
                   FILE_LAYOUT_COUNT };

/* per-block: each block opens the data file by name and closes it again, timed. */
enum file_open { FILE_OPEN_ONCE, FILE_OPEN_PER_BLOCK, FILE_OPEN_COUNT };

/* touch_share: parts per million of each block's pages (or chunks) one pass visits. */
#define PPM 1000000

/* Argument names are the Scenario field names of runner/core/parameters.py (those that are probe
 * options), plus the repetitions. */
enum option { OPT_BACKING, OPT_SIZE_BYTES, OPT_SHARING, OPT_PROTECTION, OPT_POPULATE,
              OPT_ACCESS, OPT_OPS, OPT_FILE_DIR, OPT_THP, OPT_RELEASE, OPT_WORKLOAD, OPT_CACHE,
              OPT_ORDER, OPT_SYNC, OPT_GROW_METHOD, OPT_GROW_FACTOR, OPT_CHECK_ZERO,
              OPT_THREADS, OPT_HISTORY, OPT_HOST_WARM, OPT_ADVICE, OPT_READ_BUFFER_BYTES,
              OPT_WRITE_BUFFER_BYTES,
              OPT_GROW_STEPS, OPT_TOUCH_GROWN, OPT_HEAP_PAD, OPT_TOUCH_SHARE_PPM,
              OPT_FILE_ORIGIN, OPT_FILE_LAYOUT, OPT_CHECK_CONTENT, OPT_FILE_OPEN, OPT_NORESERVE,
              OPT_KEEP_EVERY, OPT_PAUSE_MS, OPT_LATENCY, OPT_MEMLOCK_LIMIT_BYTES,
              OPT_BYSTANDERS, OPT_FREE_PAUSE_MS, OPT_THREAD_TURNS, OPT_WARMUP, OPT_ITERATIONS,
              OPT_COUNT };

/* The last argument of the heap trace's fresh image (history.c), and of workload ipc's peer
 * (ipc.c). */
extern const char TRACE_HEAP_ARGUMENT[];
extern const char IPC_PEER_ARGUMENT[];
/* As first argument: print the machine's fingerprint instead (fingerprint.c). */
#define FINGERPRINT_ARGUMENT "--fingerprint"

struct scenario {
    enum backing backing;
    size_t size_bytes;
    enum sharing sharing;       /* mapping backings only */
    enum protection protection; /* mapping backings and posix-memalign */
    enum populate populate;     /* mapping backings only */
    enum access access;
    size_t ops;
    const char *file_dir; /* file backings only */
    enum thp thp;         /* mmap-anon only */
    enum release release; /* never RELEASE_AUTO once parsed */
    enum workload workload;
    enum cache cache;      /* file backings only */
    enum order order;      /* cycle only */
    enum sync sync;        /* cycle, mmap-file shared or write-file */
    enum grow grow_method; /* resize only */
    size_t grow_factor;    /* resize only */
    size_t grow_steps;     /* resize only: growths one after another, each by grow_factor */
    int touch_grown;       /* resize only: the access pattern over what each step added */
    enum heap_pad heap_pad; /* heap backings, cycle or churn, one thread */
    int check_zero;        /* cycle only */
    size_t threads;        /* cycle (sharing the blocks) or churn (pairs each) */
    enum history history;  /* cycle only; recycled: one thread, no file backing */
    int host_warm;         /* not limits */
    enum advice advice;    /* mapping backings only */
    size_t read_buffer_bytes; /* read-file: the reused buffer; 0 for `whole` */
    size_t write_buffer_bytes; /* write-file: the reused buffer; 0 for `whole` */
    size_t touch_share_ppm;    /* cycle, one thread: PPM visits every page */
    enum file_origin file_origin; /* cycle, mmap-file or write-file */
    enum file_layout file_layout; /* cycle, mmap-file with check_content */
    int check_content;            /* cycle, mmap-file */
    enum file_open file_open;     /* cycle, mmap-file or read-file */
    int noreserve;         /* mapping backings: MAP_NORESERVE */
    size_t keep_every;     /* heap backings, cycle: free keeps every keep_every-th block; 0 none */
    size_t pause_ms;       /* cycle: untimed sleep between allocate and first touch */
    size_t memlock_limit_bytes; /* RLIMIT_MEMLOCK set at start, CAP_IPC_LOCK dropped; 0: as is */
    size_t bystanders;     /* threads spinning through the run (bystanders.c); cycle, churn */
    size_t free_pause_ms;  /* cycle, heap, one thread: the program going on after free (cycle.c) */
    int thread_turns;      /* fragment: the threads take an iteration each in turn (fragment.c) */
    enum latency latency;  /* churn: each pair's time; cycle: each page's first write */
    size_t warmup;
    size_t iterations;
};

/* ------------------------------------------------------------------------------------------ */
/* The blocks (backings.c)                                                                    */

/* One page of a block, as the random order visits it: where it is in memory, how much of it
 * the block uses (the last page of a block may be partial) and where it is in the data file. */
struct page_ref {
    unsigned char *at;
    size_t length;
    off_t file_offset;
};

/* The blocks of one phase and what they need to know. With threads, each thread gets a
 * slice: `at` and `ops` of its share, `first` the index of its first block. */
struct blocks {
    unsigned char **at; /* ops pointers, in scratch memory */
    size_t ops;
    size_t first; /* index of at[0] among all blocks: its place in the data file, its name */
    size_t size_bytes;
    size_t map_bytes;    /* length of each block's mapping: size_bytes, rounded up for hugetlb
                            (whole huge pages) and thp (whole pages) */
    size_t stride_bytes; /* block i's offset in the data file is i * stride_bytes */
    size_t page_bytes;
    int fd; /* the data file, /dev/zero for dev-zero, or -1 */
    const char *path; /* file_open per-block: the data file's name, opened for each block */
    /* order random: a fixed permutation of every page of every block (global page index
     * block * pages_per_block + page), and those pages located in the current blocks;
     * NULL for sequential order. With touch_share below 100% only the pages chosen (in
     * ascending order for sequential order, which then has a list too). */
    const uint64_t *order;
    struct page_ref *pages;
    size_t page_count;
    size_t pages_per_block;
    /* read-file with a read buffer: the one destination every pread fills, page-aligned and
     * written before the first phase (each thread has its own); NULL for read_buffer whole.
     * With order random, chunk_order is a fixed permutation of every chunk of every block
     * (global chunk index block * chunks_per_block + chunk), else NULL; with touch_share the
     * chunks chosen, as for pages. */
    unsigned char *buffer;
    size_t buffer_bytes;
    const uint64_t *chunk_order;
    size_t chunk_count;
    size_t chunks_per_block;
    /* workload fragment: each slot's block size and the draw of the next (fragment.c) */
    struct slot_sizes *sizes;
};

/* ------------------------------------------------------------------------------------------ */
/* Phases and observations (phase.c)                                                          */

enum phase { PHASE_ALLOCATE, PHASE_FIRST_TOUCH, PHASE_SECOND_PASS, PHASE_FREE, PHASE_COUNT };

struct phase_result {
    uint64_t ns;
    uint64_t minor_faults;
    uint64_t major_faults;
    uint64_t rss_bytes;
    uint64_t syscalls; /* counted ones (COUNT_SYSCALL), reported as observations */
    uint64_t io_read_bytes;  /* /proc/self/io over the phase, where account_io() asked */
    uint64_t io_write_bytes;
};

/* Observations: numbers about an iteration beside its phases, each reported only where the
 * scenario makes it meaningful. Names, units and meanings: OBSERVATIONS in
 * runner/core/metrics.py. */
enum observation { OBS_ALIGNMENT_BYTES, OBS_ANON_HUGE_BYTES, OBS_HUGETLB_BYTES,
                   OBS_PROTECTION_ENFORCED, OBS_MPROTECT_NS, OBS_BRK_GROWTH_BYTES,
                   OBS_BLOCKS_IN_HEAP, OBS_MAPPINGS, OBS_VM_SIZE_GROWTH_BYTES,
                   OBS_NONZERO_BYTES_AT_ALLOCATE, OBS_RESIDENT_PPM_BEFORE,
                   OBS_CHILD_SEES_PARENT, OBS_PARENT_SEES_CHILD, OBS_PARENT_PSS_BYTES,
                   OBS_CHILD_PSS_BYTES, OBS_BLOCKS_MOVED, OBS_DATA_SURVIVED,
                   OBS_NONZERO_BLOCKS, OBS_BRK_MOVES, OBS_BRK_STEP_MEDIAN_BYTES,
                   OBS_USABLE_BYTES, OBS_VM_GROWS, OBS_VM_STEP_MEDIAN_BYTES,
                   OBS_VM_CALL_GROWTH_MEDIAN_BYTES, OBS_MAPPINGS_UNTIL_REFUSED, OBS_MAP_ERRNO,
                   OBS_MAX_MAP_COUNT, OBS_MAPPINGS_AT_REFUSAL_PPM, OBS_RLIMIT_AS_ENFORCED,
                   OBS_READ_BUFFER_PAGE_OFFSET_BYTES,
                   /* one per phase, in phase order */
                   OBS_ALLOCATE_SYSCALLS, OBS_FIRST_TOUCH_SYSCALLS, OBS_SECOND_PASS_SYSCALLS,
                   OBS_FREE_SYSCALLS,
                   OBS_TOUCHED_PAGES, OBS_CACHED_PAGES_ADDED, OBS_RESIDENT_PPM_AFTER,
                   /* one per phase, in phase order */
                   OBS_ALLOCATE_IO_READ_BYTES, OBS_FIRST_TOUCH_IO_READ_BYTES,
                   OBS_SECOND_PASS_IO_READ_BYTES, OBS_FREE_IO_READ_BYTES,
                   OBS_ALLOCATE_IO_WRITE_BYTES, OBS_FIRST_TOUCH_IO_WRITE_BYTES,
                   OBS_SECOND_PASS_IO_WRITE_BYTES, OBS_FREE_IO_WRITE_BYTES,
                   OBS_CONTENT_MATCHES, OBS_TAIL_ZERO, OBS_SIGBUS_BEYOND_EOF, OBS_HOLES_ZERO,
                   OBS_SIGBUS_AFTER_TRUNCATE, OBS_PEER_SEES_WRITES, OBS_PEER_ALLOCATE_NS,
                   OBS_PEER_FIRST_TOUCH_MINOR_FAULTS, OBS_PEER_SECOND_PASS_MINOR_FAULTS,
                   OBS_BLOCKS_MMAPPED, OBS_BLOCKS_IN_THREAD_ARENA, OBS_VM_PTE_GROWTH_BYTES,
                   OBS_EXEC_RAN, OBS_EXEC_TRAPPED, OBS_JOINED_NEIGHBOUR, OBS_SLOWEST_THREAD_NS,
                   OBS_RELEASED_ZERO_PPM, OBS_CGROUP_CACHE_PPM, OBS_MALLOC_FROM_ALLOCATOR,
                   OBS_CHILD_READS_ZERO, OBS_CHILD_READ_FAULTED, OBS_CHILD_PTE_BYTES,
                   OBS_HUGETLB_POOL_PAGES, OBS_HUGETLB_PAST_POOL_REFUSED,
                   OBS_HUGETLB_SIGBUS_AT_POOL_END, OBS_LOCKED_BYTES, OBS_VM_LOCKED_BYTES,
                   OBS_MLOCK_REFUSED, OBS_RSS_AFTER_PAUSE_BYTES, OBS_PEAK_LIVE_BYTES,
                   OBS_KEPT_BYTES, OBS_HELD_BYTES, OBS_COUNT };

struct iteration_result {
    int warmup;
    uint64_t rss_before_bytes;
    uint64_t checksum; /* wrapping sum of every value read in first_touch and second_pass */
    struct phase_result phases[PHASE_COUNT];
    uint64_t observed[OBS_COUNT];
    unsigned char recorded[OBS_COUNT]; /* 1: observed[o] was recorded */
    struct latency_histogram *latency; /* --latency=histogram: this iteration's; else NULL */
    uint64_t latency_clock_ns;         /* clock_overhead_ns after the timed phase */
};

struct phase_start {
    struct rusage usage;
    struct timespec time;
    uint64_t syscalls;
    uint64_t io_read_bytes;
    uint64_t io_write_bytes;
};

/* ------------------------------------------------------------------------------------------ */
/* The heap trace (history.c) and what every iteration works with (probe.c)                   */

/* What the heap trace's fresh image sends back through its pipe. */
struct heap_trace {
    uint64_t brk_moves;             /* allocation calls after which sbrk(0) had changed */
    uint64_t brk_step_median_bytes; /* the median change among those; 0 when none moved it */
    uint64_t usable_bytes;          /* malloc_usable_size summed over the blocks */
    /* The address space (VmSize), whatever the allocator maps it with (brk or mmap): */
    uint64_t vm_grows;              /* allocation calls after which it was larger */
    uint64_t vm_step_median_bytes;  /* the median growth among those; 0 when none grew it */
    uint64_t vm_call_growth_median_bytes; /* the median growth over every call (0 counted) */
    uint64_t from_allocator;        /* malloc_from_allocator() in the fresh image */
};

struct crew; /* threads.c */

/* Workload ipc's peer (ipc.c): a fresh image of the probe, its orders and its replies. */
struct ipc_peer {
    pid_t pid;
    int order_fd; /* the peer's stdin */
    int reply_fd; /* the peer's stdout */
};

/* What every iteration works with, set up once before the first (prepare_context). */
struct context {
    struct blocks blocks;
    struct crew *crew;        /* threads above 1, else NULL */
    uintptr_t heap_start;     /* the program break when the probe started */
    unsigned char **previous; /* resize: the blocks' addresses before growing */
    size_t file_bytes;        /* the data file's length; 0 without one */
    unsigned char *residency; /* mincore's vector: one byte per page of the data file */
    unsigned char *residency_after; /* the same after first touch (cycle) */
    size_t touched_pages;     /* pages one pass visits (touched_pages) */
    char *new_path;           /* file_origin new: the name the file is created under */
    size_t limits_capacity;   /* limits: room for this many blocks in blocks.at */
    uint64_t max_map_count;   /* limits: vm.max_map_count, 0 when unknown */
    struct ipc_peer peer;     /* ipc: the other process; pid 0 otherwise */
    /* heap backings: glibc's chunk headers can be read (glibc_malloc_in_use), asked before
     * the first iteration, as dladdr faults in pages of libc's symbol table */
    int chunk_flags;
};

/* ------------------------------------------------------------------------------------------ */
/* The access patterns, inline: every loop that touches memory uses them (access.c, churn.c) */

/* Byte k of the data file. Never zero (so reading it differs from reading fresh anonymous
 * memory, or a hole), and with a prime period, so a block read from the wrong offset changes
 * the checksum. */
static inline unsigned char pattern_byte(uint64_t offset)
{
    return (unsigned char)(offset % 251 + 1);
}

/* One native-endian 8-byte word at any alignment: memcpy is a plain load at -O2. */
static inline uint64_t load_word(const unsigned char *p)
{
    uint64_t word;
    memcpy(&word, p, sizeof word);
    return word;
}

/* Sums native-endian 8-byte words, then the tail bytes. Eight independent accumulators over
 * 64 bytes per step, so that no addition waits for the one before (gcc -O2 turns them into
 * vector adds): the loop runs many times faster than memory delivers, so a read-all phase
 * measures memory and page faults, not this loop. With one accumulator every add waits for
 * the previous one and the loop was slower than memory. (Eight separate loads, not a
 * memcpy of eight words, which gcc copies through the stack.) */
static inline uint64_t sum_words(const unsigned char *p, size_t length)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    size_t words = length / sizeof(uint64_t), w = 0;
    /* Two cache lines a step: fewer loop instructions per byte, which matters when data
     * comes from cache (the shared zero page) rather than from memory. */
    for (; w + 16 <= words; w += 16) {
        const unsigned char *q = p + w * sizeof(uint64_t);
        s0 += load_word(q) + load_word(q + 64);
        s1 += load_word(q + 8) + load_word(q + 72);
        s2 += load_word(q + 16) + load_word(q + 80);
        s3 += load_word(q + 24) + load_word(q + 88);
        s4 += load_word(q + 32) + load_word(q + 96);
        s5 += load_word(q + 40) + load_word(q + 104);
        s6 += load_word(q + 48) + load_word(q + 112);
        s7 += load_word(q + 56) + load_word(q + 120);
    }
    for (; w < words; w++)
        s0 += load_word(p + w * sizeof(uint64_t));
    for (size_t tail = words * sizeof(uint64_t); tail < length; tail++)
        s0 += p[tail];
    return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

/* The access pattern over `length` bytes at p that lie `offset` bytes into their block: the
 * bytes a pass over the whole block touches there. write-page and read-page touch one byte
 * per page, at block offsets 0, page, 2*page... (byte 0 of a block smaller than a page);
 * write-all writes every byte (memset); zero-then-write-all zeroes every byte, then writes
 * every byte; read-all sums the words (offset is a multiple of 8, so the words are the
 * block's). Returns what was read. */
static inline __attribute__((always_inline)) uint64_t access_range(
    unsigned char *p, size_t length, size_t offset, size_t page, enum access access,
    unsigned char value)
{
    /* No division for a whole block (offset 0, folded where inlined): a churn pair of a
     * 16-byte malloc lasts about as long as a division by a variable. */
    size_t into = offset % page, first = into == 0 ? 0 : page - into;
    uint64_t sum = 0;
    switch (access) {
    case ACCESS_WRITE_PAGE:
        for (size_t o = first; o < length; o += page)
            p[o] = value;
        ESCAPE(p);
        break;
    case ACCESS_WRITE_ALL:
        memset(p, value, length);
        ESCAPE(p);
        break;
    case ACCESS_ZERO_THEN_WRITE_ALL:
        /* ESCAPE between the two: the compiler must assume the zeroes are read, so it can
         * neither drop the first memset as overwritten nor merge the two. */
        memset(p, 0, length);
        ESCAPE(p);
        memset(p, value, length);
        ESCAPE(p);
        break;
    case ACCESS_READ_PAGE:
        for (size_t o = first; o < length; o += page)
            sum += p[o];
        break;
    case ACCESS_READ_ALL:
        sum = sum_words(p, length);
        break;
    case ACCESS_NONE:
    case ACCESS_COUNT:
        break;
    }
    return sum;
}

/* options.c */
extern const int PROTECTION_BITS[PROTECTION_COUNT];
extern const int ADVICE_BITS[ADVICE_COUNT];
extern const char *const ADVICE_CALLS[ADVICE_COUNT];

/* phase.c */
extern const char *const PHASE_NAMES[PHASE_COUNT];
extern const char *const OBSERVATION_NAMES[OBS_COUNT];

/* access.c */
int is_writing_access(enum access access);
__attribute__((noinline)) uint64_t apply_access(const struct blocks *b, const struct scenario *s,
                                                size_t page, unsigned char value);
__attribute__((noinline)) uint64_t touch_blocks(const struct blocks *b, const struct scenario *s,
                                                size_t page, unsigned char value);
uint64_t blocks_hold(const struct blocks *b, const struct scenario *s, size_t page,
                     unsigned char value);
void shuffle_pages(uint64_t *order, size_t count);
size_t choose_units(uint64_t *order, size_t count, size_t per_block, size_t share_ppm,
                    int ascending);

/* backings.c */
void allocate_malloc(const struct blocks *b);
void allocate_calloc(const struct blocks *b);
void allocate_posix_memalign(const struct blocks *b, const struct scenario *s);
int map_flags(const struct scenario *s);
int open_dev_zero(void);
unsigned char *map_block(const struct blocks *b, const struct scenario *s, int flags, int fd,
                         off_t offset);
void locate_pages(const struct blocks *b);
void free_heap(const struct blocks *b);
void unmap_blocks(const struct blocks *b);
__attribute__((noinline)) void allocate_blocks(const struct blocks *b, const struct scenario *s);
__attribute__((noinline)) void allocate_in_new_file(struct blocks *b, const struct scenario *s,
                                                    const char *path, size_t file_bytes);
void remove_new_file(struct blocks *b, const char *path);
int open_block_file(const struct blocks *b, const struct scenario *s, int flags);
void close_block_file(const struct scenario *s, int fd);
__attribute__((noinline)) void release_blocks(const struct blocks *b, const struct scenario *s);
void finish_release(const struct blocks *b, const struct scenario *s);

/* churn.c */
void run_churn(const struct context *c, const struct scenario *s, unsigned char value,
               struct iteration_result *out);
uint64_t churn_thread(const struct blocks *b, const struct scenario *s, unsigned char value,
                      uint64_t *ns, struct latency_histogram *latency);
void run_reuse(const struct context *c, const struct scenario *s, unsigned char value,
               struct iteration_result *out);

/* fragment.c */
struct slot_sizes *new_slot_sizes(size_t ops, size_t largest_bytes, size_t thread);
uint64_t peak_live_bytes(const struct blocks *b);
uint64_t fragment_work(const struct blocks *b, const struct scenario *s, enum phase phase,
                       unsigned char value);
void run_fragment(const struct context *c, const struct scenario *s, unsigned char value,
                  struct iteration_result *out);

/* content.c */
size_t layout_file_bytes(const struct scenario *s, size_t ops, size_t stride, size_t page);
void fill_holes_file(int fd, uint64_t file_bytes, size_t stride, size_t page);
void truncate_under_mappings(const struct blocks *b);
void restore_data_file(const struct blocks *b, size_t file_bytes);
void observe_content(const struct blocks *b, const struct scenario *s, size_t file_bytes,
                     struct iteration_result *out);

/* cycle.c */
void run_cycle(const struct context *c, const struct scenario *s, unsigned char value,
               struct iteration_result *out);
void pause_for(size_t milliseconds);

/* datafile.c */
void write_fully(int fd, const unsigned char *buffer, size_t length);
int read_exactly(int fd, unsigned char *buffer, size_t length, const char *what);
void read_fully(int fd, unsigned char *buffer, size_t length, off_t offset);
void pwrite_fully(int fd, const unsigned char *buffer, size_t length, off_t offset);
extern const char DATA_FILE_VARIABLE[];
int open_data_file(const struct scenario *s, uint64_t file_bytes, size_t stride, size_t page,
                   const char **path);
void fill_pattern(unsigned char *chunk, uint64_t offset, size_t length);
char *name_new_file(const char *directory);
const char *filesystem_name(const char *directory, char *buffer, size_t buffer_size);
void evict_file(int fd);
uint64_t file_resident_ppm(int fd, size_t file_bytes, size_t page, unsigned char *vector);
uint64_t pages_added(const unsigned char *before, const unsigned char *after, size_t pages);

/* fork.c */
void run_fork(const struct context *c, const struct scenario *s, unsigned char value,
              struct iteration_result *out);

/* history.c */
uint64_t dirty_blocks(const struct blocks *b);
void recycle_blocks(const struct blocks *b, const struct scenario *s);
size_t scenario_bytes(const struct blocks *b, const struct scenario *s);
void keep_heap(const struct scenario *s, size_t batch_bytes);
void grow_heap_once(const struct blocks *b, const struct scenario *s);
void warm_host(size_t bytes, size_t page, int huge);
void run_heap_trace(const struct scenario *s, size_t page) __attribute__((noreturn));
struct heap_trace trace_heap(int argc, char **argv);
void observe_heap_trace(const struct heap_trace *trace, struct iteration_result *results,
                        size_t count);

/* ipc.c */
struct ipc_peer start_ipc_peer(int argc, char **argv);
void stop_ipc_peer(const struct ipc_peer *peer);
void run_ipc(const struct context *c, const struct scenario *s, unsigned char value,
             struct iteration_result *out);
void run_ipc_peer(const struct scenario *s, size_t page) __attribute__((noreturn));

/* limits.c */
void run_limits(const struct context *c, const struct scenario *s, struct iteration_result *out);
void prepare_limits(struct context *c, const struct scenario *s, char *fs_buffer, size_t fs_size,
                    const char **file_fs);

/* observe.c */
uint64_t block_alignment(const struct blocks *b);
uint64_t anon_huge_bytes(void);
uint64_t hugetlb_bytes(void);
uint64_t growth(uint64_t before, uint64_t after);
uint64_t pss_bytes(void);
/* A line of /proc/self/maps: the range, "rw-p" and the like, and whether it is anonymous
 * memory without a name (no file, no [heap] or [anon:...]). */
struct mapping_line {
    uintptr_t start, end;
    char perms[5];
    int anonymous;
};
void visit_mappings(void (*visit)(const struct mapping_line *line, void *context),
                    void *context);
uint64_t count_mappings(void);
uintptr_t current_brk(void);
uint64_t blocks_in_heap(const struct blocks *b, uintptr_t heap_start);
int glibc_malloc_in_use(void);
int malloc_from_allocator(void);
void count_chunk_kinds(const struct blocks *b, uint64_t *mmapped, uint64_t *thread_arena);
uint64_t page_table_bytes(void);
int exec_code_available(void);
int reads_imply_exec(void);
uint64_t check_exec_runs(const struct blocks *b, const struct scenario *s);
uint64_t check_exec_traps(const struct blocks *b);
void rehearse_fault_checks(size_t page);
uint64_t nonzero_bytes(const struct blocks *b);
uint64_t check_protection(const struct blocks *b, const struct scenario *s);
void release_protection(const struct blocks *b, const struct scenario *s);
uint64_t time_mprotect(const struct blocks *b, const struct scenario *s);
int read_raises(const unsigned char *p, int signal_number);

/* cgroup.c */
extern const char MEMORY_CGROUP_VARIABLE[];
int in_memory_cgroup(void);

/* hugetlb.c */
void observe_hugetlb_pool(struct iteration_result *out);
void join_memory_cgroup(void);
uint64_t cgroup_cache_bytes(void);
void press_memory(size_t bytes, size_t page);
uint64_t zero_pages_ppm(const struct blocks *b);

/* tether.c */
extern const char RUNNER_PID_VARIABLE[];
extern const char TIME_LIMIT_VARIABLE[];
void tie_to_runner(int traced);
void tie_to_probe(void);

/* allocator.c */
void allocator_trim(void);
void allocator_go_on(size_t milliseconds);

/* observe.c: a "<key> <n> kB" field of a /proc file, in bytes */
uint64_t proc_kib_field(const char *path, const char *key);

/* bystanders.c */
void start_bystanders(size_t count);

/* memlock.c */
void apply_memlock_limit(const struct scenario *s);
void count_mlock_refusal(void);
uint64_t mlock_refusals(void);
uint64_t locked_bytes(void);
uint64_t vm_locked_bytes(void);

/* options.c */
void usage_error(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
int is_file_backing(enum backing backing);
int is_heap_backing(enum backing backing);
int is_anonymous_backing(enum backing backing);
size_t io_buffer_bytes(const struct scenario *s);
void check_combination(struct scenario *s);
struct scenario parse_arguments(int argc, char **argv);

/* output.c */
void skip(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));
void system_error(const char *call) __attribute__((noreturn));
void exec_refused(void) __attribute__((noreturn));
void child_failed(const char *who, int status) __attribute__((noreturn));
/* fingerprint.c: --fingerprint [DIR...], the machine's facts as JSON; returns the exit status. */
int print_fingerprint(int count, char **directories);
void print_result(size_t page, const char *file_fs, const struct iteration_result *results,
                  size_t count);

/* phase.c */
void observe(struct iteration_result *r, enum observation o, uint64_t value);
uint64_t resident_bytes(size_t page);
uint64_t virtual_bytes(size_t page);
uint64_t anonymous_bytes(size_t page);
uint64_t elapsed_ns(const struct timespec *start, const struct timespec *end);
void forget_statm(void);
void account_io(void);
void start_phase(struct phase_start *start);
void stop_phase(const struct phase_start *start, size_t page, struct phase_result *out);

/* probe.c */
void *map_scratch(size_t bytes);

/* resize.c */
void run_resize(const struct context *c, const struct scenario *s, unsigned char value,
                struct iteration_result *out);

/* threads.c */
__attribute__((noinline)) uint64_t crew_work(struct crew *c, enum phase phase, unsigned char value);
uint64_t crew_turn(struct crew *c, size_t worker, enum phase phase, unsigned char value);
size_t crew_size(const struct crew *c);
uint64_t crew_slowest_ns(const struct crew *c);
uint64_t crew_peak_live_bytes(const struct crew *c, size_t only);
void crew_latency(struct crew *c, struct latency_histogram *into);
struct crew *start_crew(const struct blocks *b, const struct scenario *s);

#endif
