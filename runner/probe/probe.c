/*
 * alloclab probe: measures ONE memory-allocation scenario and prints ONE JSON object.
 *
 * Each iteration runs four timed phases over `ops` blocks. Every phase is timed with
 * CLOCK_MONOTONIC around exactly the work; page faults (getrusage) and the resident set
 * (/proc/self/statm) are read just outside the timed window. What the four phase slots time
 * depends on the workload (--workload); this table is the one place it is defined (the
 * README repeats it):
 *
 *   cycle   allocate     allocate the blocks (malloc / mmap, then --advice and --populate;
 *                        read-file with --read_buffer_bytes=0: malloc + pread of each block;
 *                        read-file with a read buffer: nothing, the buffer exists already)
 *           first_touch  the access pattern over every block (read-file with a read buffer:
 *                        pread of each chunk of each block into the one buffer, then the
 *                        access pattern on that chunk); for write-file then pwrite of every
 *                        block to the file; with --sync then msync or fsync
 *           second_pass  the same again: on memory already faulted in, or for read-file with
 *                        a read buffer reading the file again
 *           free         give the blocks back (free, munmap, madvise... as --release says;
 *                        nothing for read-file with a read buffer)
 *   fork    allocate     allocate the blocks and write the access pattern (the parent's data)
 *           first_touch  fork(), as the parent sees it
 *           second_pass  the child writes the access pattern with another value, before
 *                        anything reads its memory (its page faults, copy-on-write for
 *                        private memory): ns and faults are the child's, sent back through a
 *                        pipe; rss_bytes is the parent's
 *           free         wait for the child to exit, then give the blocks back
 *   resize  allocate     allocate the blocks
 *           first_touch  the access pattern (the data that must survive)
 *           second_pass  grow every block to grow_factor times its size by realloc,
 *                        mremap(MREMAP_MAYMOVE) or copy (new block, memcpy, free the old)
 *           free         give the grown blocks back
 *
 * With --threads=N (cycle only) N threads share the blocks, and each phase is timed from the
 * barrier that starts them to the barrier the last of them reaches.
 *
 * Outside the phases an iteration records observations where the scenario makes them
 * meaningful: the blocks' alignment, how much became huge pages (thp, hugetlb), whether a
 * forbidden access faulted and what mprotect costs (protection read, exec or none), how far the
 * program break moved and how many blocks lie in the heap (heap backings), mappings and
 * address space after allocate, non-zero bytes found right after allocate (--check_zero), the
 * share of the data file in the page cache before the iteration (file backings), who sees
 * whose writes across fork and the PSS of both, whether resizing moved the blocks and kept
 * their data, the page offset read() copies to (read-file), and the system calls each phase
 * of a file backing issued (COUNT_SYSCALL). The Python side (runner/probe.py) builds this file, writes its command line and
 * reads its output; the output format is defined there and here, and PROBE_VERSION ties the
 * two; the observation names, units and meanings are declared in runner/metrics.py.
 *
 * Exit status: 0 with the JSON on stdout; 2 for a bad command line; 3 when a system call
 * fails (stderr names the call and the reason); 4 when the machine refuses something the
 * scenario needs, such as huge pages or an mlock limit (stderr: "probe: skipped: <reason>").
 *
 * The probe itself never calls malloc before printing its result: its own buffers come from
 * mmap, so glibc's heap (and its dynamic mmap threshold) is exactly that of a fresh program
 * when the first measured allocation happens. (With --threads above 1, creating the threads
 * lets glibc calloc their thread-local storage first.)
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

#define PROBE_VERSION 4
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

/* Most threads a scenario may ask for (runner/parameters.py MAX_THREADS). */
#define MAX_THREADS 256
#define MAX_GROW_FACTOR 64
/* read_buffer: whole 4 KiB units, at most 64 MiB (runner/parameters.py says the same). */
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
static atomic_uint_fast64_t syscall_count;
#define COUNT_SYSCALL() ((void)atomic_fetch_add_explicit(&syscall_count, 1, memory_order_relaxed))

/* ------------------------------------------------------------------------------------------ */
/* The command line                                                                           */

enum backing { BACKING_MALLOC, BACKING_CALLOC, BACKING_POSIX_MEMALIGN, BACKING_MMAP_ANON,
               BACKING_MMAP_FILE, BACKING_READ_FILE, BACKING_MEMFD, BACKING_SHM,
               BACKING_MMAP_HUGETLB, BACKING_WRITE_FILE, BACKING_COUNT };
static const char *const BACKING_NAMES[BACKING_COUNT] = {
    "malloc", "calloc", "posix-memalign", "mmap-anon", "mmap-file", "read-file", "memfd", "shm",
    "mmap-hugetlb", "write-file"};

enum access { ACCESS_NONE, ACCESS_WRITE_PAGE, ACCESS_WRITE_ALL, ACCESS_READ_PAGE,
              ACCESS_READ_ALL, ACCESS_COUNT };
static const char *const ACCESS_NAMES[ACCESS_COUNT] = {
    "none", "write-page", "write-all", "read-page", "read-all"};

enum sharing { SHARING_PRIVATE, SHARING_SHARED, SHARING_COUNT };
static const char *const SHARING_NAMES[SHARING_COUNT] = {"private", "shared"};

enum protection { PROTECTION_READ_WRITE, PROTECTION_READ, PROTECTION_NONE, PROTECTION_EXEC,
                  PROTECTION_COUNT };
static const char *const PROTECTION_NAMES[PROTECTION_COUNT] = {"read-write", "read", "none",
                                                               "exec"};
static const int PROTECTION_BITS[PROTECTION_COUNT] = {PROT_READ | PROT_WRITE, PROT_READ,
                                                      PROT_NONE, PROT_READ | PROT_EXEC};

enum populate { POPULATE_NONE, POPULATE_MAP_POPULATE, POPULATE_MADV_POPULATE_WRITE,
                POPULATE_MLOCK, POPULATE_COUNT };
static const char *const POPULATE_NAMES[POPULATE_COUNT] = {
    "none", "map-populate", "madv-populate-write", "mlock"};

/* madvise of every block of a mapping backing right after its mmap, inside allocate. */
enum advice { ADVICE_NONE, ADVICE_SEQUENTIAL, ADVICE_RANDOM, ADVICE_WILLNEED, ADVICE_DONTNEED,
              ADVICE_POPULATE_READ, ADVICE_COUNT };
static const char *const ADVICE_NAMES[ADVICE_COUNT] = {
    "none", "sequential", "random", "willneed", "dontneed", "madv-populate-read"};
static const int ADVICE_BITS[ADVICE_COUNT] = {MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM,
                                              MADV_WILLNEED, MADV_DONTNEED, MADV_POPULATE_READ};
static const char *const ADVICE_CALLS[ADVICE_COUNT] = {
    "MADV_NORMAL", "MADV_SEQUENTIAL", "MADV_RANDOM", "MADV_WILLNEED", "MADV_DONTNEED",
    "MADV_POPULATE_READ"};

enum thp { THP_DEFAULT, THP_HUGE, THP_NOHUGE, THP_COUNT };
static const char *const THP_NAMES[THP_COUNT] = {"default", "huge", "nohuge"};

/* RELEASE_AUTO is resolved while parsing: free for heap backings, munmap for mappings. */
/* The *_BUT_LAST releases keep the block allocated last (the top of a growing heap) through
 * the free phase and free it after, untimed: "many blocks freed, one kept". */
enum release { RELEASE_AUTO, RELEASE_FREE, RELEASE_MUNMAP, RELEASE_MADV_DONTNEED,
               RELEASE_MADV_FREE, RELEASE_MALLOC_TRIM, RELEASE_FREE_BUT_LAST,
               RELEASE_MALLOC_TRIM_BUT_LAST, RELEASE_COUNT };
static const char *const RELEASE_NAMES[RELEASE_COUNT] = {
    "auto", "free", "munmap", "madv-dontneed", "madv-free", "malloc-trim", "free-but-last",
    "malloc-trim-but-last"};

enum workload { WORKLOAD_CYCLE, WORKLOAD_FORK, WORKLOAD_RESIZE, WORKLOAD_COUNT };
static const char *const WORKLOAD_NAMES[WORKLOAD_COUNT] = {"cycle", "fork", "resize"};

enum cache { CACHE_WARM, CACHE_COLD, CACHE_COUNT };
static const char *const CACHE_NAMES[CACHE_COUNT] = {"warm", "cold"};

enum order { ORDER_SEQUENTIAL, ORDER_RANDOM, ORDER_COUNT };
static const char *const ORDER_NAMES[ORDER_COUNT] = {"sequential", "random"};

enum sync { SYNC_NONE, SYNC_MSYNC, SYNC_FSYNC, SYNC_COUNT };
static const char *const SYNC_NAMES[SYNC_COUNT] = {"none", "msync", "fsync"};

enum grow { GROW_REALLOC, GROW_MREMAP, GROW_COPY, GROW_COUNT };
static const char *const GROW_NAMES[GROW_COUNT] = {"realloc", "mremap", "copy"};

/* Argument names are the Scenario field names of runner/parameters.py (those that are probe
 * options), plus the repetitions. */
enum option { OPT_BACKING, OPT_SIZE_BYTES, OPT_SHARING, OPT_PROTECTION, OPT_POPULATE,
              OPT_ACCESS, OPT_OPS, OPT_FILE_DIR, OPT_THP, OPT_RELEASE, OPT_WORKLOAD, OPT_CACHE,
              OPT_ORDER, OPT_SYNC, OPT_GROW_METHOD, OPT_GROW_FACTOR, OPT_CHECK_ZERO,
              OPT_THREADS, OPT_ADVICE, OPT_READ_BUFFER_BYTES, OPT_WARMUP, OPT_ITERATIONS,
              OPT_COUNT };
static const char *const OPTION_NAMES[OPT_COUNT] = {
    "backing", "size_bytes", "sharing", "protection", "populate", "access", "ops", "file_dir",
    "thp", "release", "workload", "cache", "order", "sync", "grow_method", "grow_factor",
    "check_zero", "threads", "advice", "read_buffer_bytes", "warmup", "iterations"};

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
    int check_zero;        /* cycle only */
    size_t threads;        /* cycle only */
    enum advice advice;    /* mapping backings only */
    size_t read_buffer_bytes; /* read-file: the reused buffer; 0 for `whole` */
    size_t warmup;
    size_t iterations;
};

static void usage_error(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("probe: ", stderr);
    vfprintf(stderr, format, args);
    va_end(args);
    fputs("\nusage: probe --backing=B --size_bytes=N --sharing=S --protection=P --populate=P"
          " --access=A --ops=N --file_dir=DIR --thp=T --release=R --workload=W --cache=C"
          " --order=O --sync=S --grow_method=G --grow_factor=N --check_zero=0|1 --threads=N"
          " --advice=A --read_buffer_bytes=N --warmup=N --iterations=N\n",
          stderr);
    exit(EXIT_USAGE);
}

/* With threads, several may fail at once (each mlock past the limit, say): the first to
 * fail reports and exits, the others wait for the exit to end them, so stderr gets one line. */
static void claim_last_words(void)
{
    static atomic_flag claimed = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&claimed))
        for (;;)
            pause();
}

/* The machine refuses something the scenario needs: not a failure of the probe, a scenario
 * this machine cannot measure. The Python side records it as skipped, with this reason. */
static void skip(const char *format, ...) __attribute__((format(printf, 1, 2), noreturn));

static void skip(const char *format, ...)
{
    claim_last_words();
    va_list args;
    va_start(args, format);
    fputs("probe: skipped: ", stderr);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(EXIT_SKIPPED);
}

/* A failing system call ends the run: the Python side records the process as failed. */
static void system_error(const char *call) __attribute__((noreturn));

static void system_error(const char *call)
{
    int saved = errno;
    claim_last_words();
    fprintf(stderr, "probe: %s: %s\n", call, strerror(saved));
    exit(EXIT_SYSTEM);
}

/* PROT_EXEC is refused for files on a filesystem mounted noexec (/dev/shm often is) and by
 * some security policies: a scenario this machine cannot measure, not a failure. */
static void exec_refused(void) __attribute__((noreturn));

static void exec_refused(void)
{
    skip("PROT_EXEC refused (%s): the memory's filesystem is mounted noexec, or a security "
         "policy forbids executable mappings", strerror(errno));
}

static int parse_choice(enum option option, const char *text, const char *const *names,
                        int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    usage_error("--%s=%s is not a known value", OPTION_NAMES[option], text);
}

static size_t parse_count(enum option option, const char *text, size_t minimum)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    /* strtoull accepts "-1" and leading blanks; a count is plain decimal digits only. */
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno == ERANGE || value > SIZE_MAX)
        usage_error("--%s=%s is not a whole number", OPTION_NAMES[option], text);
    if (value < minimum)
        usage_error("--%s must be at least %zu", OPTION_NAMES[option], minimum);
    return (size_t)value;
}

static int is_file_backing(enum backing backing)
{
    return backing == BACKING_MMAP_FILE || backing == BACKING_READ_FILE ||
           backing == BACKING_WRITE_FILE;
}

/* Heap backings get their memory from malloc and friends; the others map one block each. */
static int is_heap_backing(enum backing backing)
{
    return backing == BACKING_MALLOC || backing == BACKING_CALLOC ||
           backing == BACKING_POSIX_MEMALIGN || backing == BACKING_READ_FILE ||
           backing == BACKING_WRITE_FILE;
}

/* runner/parameters.py refuses every combination that makes no sense; the probe refuses those
 * that would make it hand heap memory to munmap or mremap (or the reverse), flush what it
 * never wrote, or share out what threads cannot share. */
static void check_combination(struct scenario *s)
{
    int heap = is_heap_backing(s->backing);
    if (s->release == RELEASE_AUTO)
        s->release = heap ? RELEASE_FREE : RELEASE_MUNMAP;
    int keeps_last = s->release == RELEASE_FREE_BUT_LAST ||
                     s->release == RELEASE_MALLOC_TRIM_BUT_LAST;
    int heap_release = s->release == RELEASE_FREE || s->release == RELEASE_MALLOC_TRIM ||
                       keeps_last;
    if (heap != heap_release)
        usage_error("--release=%s does not apply to --backing=%s", RELEASE_NAMES[s->release],
                    BACKING_NAMES[s->backing]);
    if (keeps_last && (s->workload != WORKLOAD_CYCLE || s->threads != 1))
        usage_error("--release=%s needs --workload=cycle and --threads=1",
                    RELEASE_NAMES[s->release]);
    if (s->thp != THP_DEFAULT && s->backing != BACKING_MMAP_ANON)
        usage_error("--thp=%s applies to --backing=mmap-anon only", THP_NAMES[s->thp]);
    if (s->workload == WORKLOAD_RESIZE) {
        int anon = s->backing == BACKING_MMAP_ANON;
        if ((s->grow_method == GROW_REALLOC && !heap) ||
            (s->grow_method == GROW_MREMAP && !anon) ||
            (s->grow_method == GROW_COPY && !heap && !anon))
            usage_error("--grow_method=%s does not apply to --backing=%s",
                        GROW_NAMES[s->grow_method], BACKING_NAMES[s->backing]);
    }
    if (s->workload != WORKLOAD_CYCLE && (s->order != ORDER_SEQUENTIAL || s->sync != SYNC_NONE ||
                                          s->check_zero || s->threads != 1 ||
                                          s->backing == BACKING_WRITE_FILE))
        usage_error("--workload=%s takes none of --order, --sync, --check_zero, --threads and "
                    "--backing=write-file", WORKLOAD_NAMES[s->workload]);
    if (s->sync == SYNC_MSYNC && (s->backing != BACKING_MMAP_FILE || s->sharing != SHARING_SHARED))
        usage_error("--sync=msync needs --backing=mmap-file --sharing=shared");
    if (s->sync == SYNC_FSYNC && s->backing != BACKING_WRITE_FILE &&
        (s->backing != BACKING_MMAP_FILE || s->sharing != SHARING_SHARED))
        usage_error("--sync=fsync needs --backing=write-file or mmap-file --sharing=shared");
    if (s->cache == CACHE_COLD && !is_file_backing(s->backing))
        usage_error("--cache=cold needs a file backing");
    if (s->threads > MAX_THREADS || s->threads > s->ops)
        usage_error("--threads must be at most %d and at most --ops", MAX_THREADS);
    if (s->threads > 1 && (s->order != ORDER_SEQUENTIAL || s->sync != SYNC_NONE))
        usage_error("--threads above 1 takes neither --order=random nor --sync");
    if (s->protection != PROTECTION_READ_WRITE && heap && s->backing != BACKING_POSIX_MEMALIGN)
        usage_error("--protection=%s needs a mapping backing or --backing=posix-memalign",
                    PROTECTION_NAMES[s->protection]);
    if (s->advice != ADVICE_NONE && heap)
        usage_error("--advice=%s applies to mapping backings only", ADVICE_NAMES[s->advice]);
    if (s->backing == BACKING_READ_FILE && s->read_buffer_bytes != 0 &&
        (s->workload != WORKLOAD_CYCLE || s->check_zero || s->release != RELEASE_FREE))
        usage_error("--backing=read-file with a read buffer (--read_buffer_bytes above 0) needs "
                    "--workload=cycle, --check_zero=0 and --release=free");
}

/* Every option is required and given once as --name=value: a caller that forgets one gets
 * an error rather than a silently different experiment. */
static struct scenario parse_arguments(int argc, char **argv)
{
    const char *values[OPT_COUNT] = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *equals = strchr(arg, '=');
        if (strncmp(arg, "--", 2) != 0 || equals == NULL)
            usage_error("argument '%s' is not of the form --name=value", arg);
        size_t name_length = (size_t)(equals - arg - 2);
        int found = -1;
        for (int option = 0; option < OPT_COUNT; option++)
            if (strlen(OPTION_NAMES[option]) == name_length &&
                strncmp(arg + 2, OPTION_NAMES[option], name_length) == 0)
                found = option;
        if (found < 0)
            usage_error("unknown argument '%s'", arg);
        if (values[found] != NULL)
            usage_error("--%s given twice", OPTION_NAMES[found]);
        values[found] = equals + 1;
    }
    for (int option = 0; option < OPT_COUNT; option++)
        if (values[option] == NULL)
            usage_error("missing argument --%s", OPTION_NAMES[option]);

    struct scenario s;
    s.backing = (enum backing)parse_choice(OPT_BACKING, values[OPT_BACKING], BACKING_NAMES,
                                           BACKING_COUNT);
    s.size_bytes = parse_count(OPT_SIZE_BYTES, values[OPT_SIZE_BYTES], 1);
    s.sharing = (enum sharing)parse_choice(OPT_SHARING, values[OPT_SHARING], SHARING_NAMES,
                                           SHARING_COUNT);
    s.protection = (enum protection)parse_choice(OPT_PROTECTION, values[OPT_PROTECTION],
                                                 PROTECTION_NAMES, PROTECTION_COUNT);
    s.populate = (enum populate)parse_choice(OPT_POPULATE, values[OPT_POPULATE],
                                             POPULATE_NAMES, POPULATE_COUNT);
    s.access = (enum access)parse_choice(OPT_ACCESS, values[OPT_ACCESS], ACCESS_NAMES,
                                         ACCESS_COUNT);
    /* ops 0 means 'auto' in a spec; the runner resolves it before starting the probe. */
    s.ops = parse_count(OPT_OPS, values[OPT_OPS], 1);
    s.file_dir = values[OPT_FILE_DIR];
    s.thp = (enum thp)parse_choice(OPT_THP, values[OPT_THP], THP_NAMES, THP_COUNT);
    s.release = (enum release)parse_choice(OPT_RELEASE, values[OPT_RELEASE], RELEASE_NAMES,
                                           RELEASE_COUNT);
    s.workload = (enum workload)parse_choice(OPT_WORKLOAD, values[OPT_WORKLOAD], WORKLOAD_NAMES,
                                             WORKLOAD_COUNT);
    s.cache = (enum cache)parse_choice(OPT_CACHE, values[OPT_CACHE], CACHE_NAMES, CACHE_COUNT);
    s.order = (enum order)parse_choice(OPT_ORDER, values[OPT_ORDER], ORDER_NAMES, ORDER_COUNT);
    s.sync = (enum sync)parse_choice(OPT_SYNC, values[OPT_SYNC], SYNC_NAMES, SYNC_COUNT);
    s.grow_method = (enum grow)parse_choice(OPT_GROW_METHOD, values[OPT_GROW_METHOD],
                                            GROW_NAMES, GROW_COUNT);
    s.grow_factor = parse_count(OPT_GROW_FACTOR, values[OPT_GROW_FACTOR], 2);
    if (s.grow_factor > MAX_GROW_FACTOR)
        usage_error("--grow_factor must be at most %d", MAX_GROW_FACTOR);
    s.check_zero = (int)parse_count(OPT_CHECK_ZERO, values[OPT_CHECK_ZERO], 0);
    if (s.check_zero > 1)
        usage_error("--check_zero is 0 or 1");
    s.threads = parse_count(OPT_THREADS, values[OPT_THREADS], 1);
    s.advice = (enum advice)parse_choice(OPT_ADVICE, values[OPT_ADVICE], ADVICE_NAMES,
                                         ADVICE_COUNT);
    s.read_buffer_bytes = parse_count(OPT_READ_BUFFER_BYTES, values[OPT_READ_BUFFER_BYTES], 0);
    if (s.read_buffer_bytes != 0 &&
        (s.read_buffer_bytes % READ_BUFFER_UNIT_BYTES != 0 ||
         s.read_buffer_bytes > MAX_READ_BUFFER_BYTES))
        usage_error("--read_buffer_bytes is 0 (whole) or a multiple of %zu up to %zu",
                    READ_BUFFER_UNIT_BYTES, MAX_READ_BUFFER_BYTES);
    s.warmup = parse_count(OPT_WARMUP, values[OPT_WARMUP], 0);
    s.iterations = parse_count(OPT_ITERATIONS, values[OPT_ITERATIONS], 1);
    if (s.warmup > SIZE_MAX / 2 || s.iterations > SIZE_MAX / 2)
        usage_error("too many iterations");
    check_combination(&s);
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* Memory the probe needs for itself                                                          */

/* Anonymous memory for the probe's own bookkeeping, written once so that its page faults
 * happen now and never inside a timed phase. mmap rather than malloc: see the file comment. */
static void *map_scratch(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        system_error("mmap");
    memset(p, 0, bytes);
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* The file behind file backings                                                              */

/* Byte k of the file. Never zero (so reading it differs from reading fresh anonymous memory),
 * and with a prime period, so a block read from the wrong offset changes the checksum. */
static unsigned char pattern_byte(uint64_t offset)
{
    return (unsigned char)(offset % 251 + 1);
}

static void write_fully(int fd, const unsigned char *buffer, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, buffer, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            system_error("write");
        }
        buffer += written;
        length -= (size_t)written;
    }
}

/* Reads exactly `length` bytes at `offset`; pread may return less than asked for. */
static void read_fully(int fd, unsigned char *buffer, size_t length, off_t offset)
{
    while (length > 0) {
        COUNT_SYSCALL();
        ssize_t got = pread(fd, buffer, length, offset);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            system_error("pread");
        }
        if (got == 0) {
            errno = EIO; /* the file is shorter than this probe wrote it: say so, don't spin */
            system_error("pread (unexpected end of file)");
        }
        buffer += got;
        length -= (size_t)got;
        offset += got;
    }
}

/* Writes exactly `length` bytes at `offset`; pwrite may write less than asked for. */
static void pwrite_fully(int fd, const unsigned char *buffer, size_t length, off_t offset)
{
    while (length > 0) {
        COUNT_SYSCALL();
        ssize_t written = pwrite(fd, buffer, length, offset);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            system_error("pwrite");
        }
        buffer += written;
        length -= (size_t)written;
        offset += written;
    }
}

/* Creates the data file for file backings: unlinked at once (a crash leaves nothing behind),
 * filled with the known pattern, flushed, and read once so every page is in the page cache
 * before the first timed phase. */
static int create_data_file(const char *directory, uint64_t file_bytes)
{
    char path[4096];
    int length = snprintf(path, sizeof path, "%s/alloclab-XXXXXX", directory);
    if (length < 0 || (size_t)length >= sizeof path)
        usage_error("--file_dir is too long");
    int fd = mkstemp(path);
    if (fd < 0)
        system_error("mkstemp");
    if (unlink(path) != 0)
        system_error("unlink");

    unsigned char *chunk = map_scratch(FILL_CHUNK_BYTES);
    for (uint64_t done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < FILL_CHUNK_BYTES ? (size_t)(file_bytes - done)
                                                        : FILL_CHUNK_BYTES;
        for (size_t j = 0; j < n; j++)
            chunk[j] = pattern_byte(done + j);
        write_fully(fd, chunk, n);
        done += n;
    }
    if (fsync(fd) != 0)
        system_error("fsync");
    for (uint64_t done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < FILL_CHUNK_BYTES ? (size_t)(file_bytes - done)
                                                        : FILL_CHUNK_BYTES;
        read_fully(fd, chunk, n, (off_t)done);
        done += n;
    }
    if (munmap(chunk, FILL_CHUNK_BYTES) != 0)
        system_error("munmap");
    return fd;
}

/* The filesystem of `directory`, by name when it is one that matters on Linux machines. */
static const char *filesystem_name(const char *directory, char *buffer, size_t buffer_size)
{
    struct statfs info;
    if (statfs(directory, &info) != 0)
        system_error("statfs");
    switch ((unsigned long)info.f_type) {
    case 0xEF53UL: /* ext2, ext3 and ext4 share one magic number */
        return "ext4";
    case 0x01021994UL:
        return "tmpfs";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794C7630UL:
        return "overlayfs";
    default:
        snprintf(buffer, buffer_size, "0x%lx", (unsigned long)info.f_type);
        return buffer;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Allocate and free: one function per backing                                                */

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
    int fd; /* the data file, or -1 */
    /* order random: a fixed permutation of every page of every block (global page index
     * block * pages_per_block + page), and those pages located in the current blocks;
     * NULL for sequential order. */
    const uint64_t *order;
    struct page_ref *pages;
    size_t page_count;
    size_t pages_per_block;
    /* read-file with a read buffer: the one destination every pread fills, page-aligned and
     * written before the first phase (each thread has its own); NULL for read_buffer whole.
     * With order random, chunk_order is a fixed permutation of every chunk of every block
     * (global chunk index block * chunks_per_block + chunk), else NULL. */
    unsigned char *buffer;
    size_t buffer_bytes;
    const uint64_t *chunk_order;
    size_t chunk_count;
    size_t chunks_per_block;
};

static void allocate_malloc(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        b->at[i] = malloc(b->size_bytes);
        if (b->at[i] == NULL)
            system_error("malloc");
    }
}

static void allocate_calloc(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        b->at[i] = calloc(1, b->size_bytes);
        if (b->at[i] == NULL)
            system_error("calloc");
    }
}

/* Aligned to the page, so that no block shares a page with another block's header. With a
 * protection other than read-write the request is map_bytes, the size rounded up to whole
 * pages, so the block's pages hold nothing else (glibc keeps a chunk's header in the 16 bytes
 * before it, on the page before, and the next chunk's header right after it, on the page
 * after), and mprotect of those pages, here in the timed phase, is what asking for protected
 * heap memory costs. release_protection makes them read-write again before free. */
static void allocate_posix_memalign(const struct blocks *b, const struct scenario *s)
{
    int protect = s->protection != PROTECTION_READ_WRITE;
    for (size_t i = 0; i < b->ops; i++) {
        void *p;
        int error = posix_memalign(&p, b->page_bytes, protect ? b->map_bytes : b->size_bytes);
        if (error != 0) {
            errno = error;
            system_error("posix_memalign");
        }
        b->at[i] = p;
        if (protect) {
            COUNT_SYSCALL();
            if (mprotect(p, b->map_bytes, PROTECTION_BITS[s->protection]) != 0) {
                if (errno == EACCES && s->protection == PROTECTION_EXEC)
                    exec_refused();
                system_error("mprotect");
            }
        }
    }
}

/* The mmap flags of every block of a mapping backing. */
static int map_flags(const struct scenario *s)
{
    int flags = s->sharing == SHARING_SHARED ? MAP_SHARED : MAP_PRIVATE;
    if (s->populate == POPULATE_MAP_POPULATE)
        flags |= MAP_POPULATE;
    if (s->backing == BACKING_MMAP_ANON || s->backing == BACKING_MMAP_HUGETLB)
        flags |= MAP_ANONYMOUS;
    if (s->backing == BACKING_MMAP_HUGETLB)
        flags |= MAP_HUGETLB | MAP_HUGE_2MB;
    return flags;
}

static unsigned char *map_block(const struct blocks *b, const struct scenario *s, int flags,
                                int fd, off_t offset)
{
    COUNT_SYSCALL();
    void *p = mmap(NULL, b->map_bytes, PROTECTION_BITS[s->protection], flags, fd, offset);
    if (p == MAP_FAILED) {
        if (s->backing == BACKING_MMAP_HUGETLB && errno == ENOMEM)
            skip("mmap(MAP_HUGETLB): not enough free 2 MiB huge pages for %zu blocks of %zu "
                 "bytes (reserve them in /proc/sys/vm/nr_hugepages)", b->ops, b->map_bytes);
        if (s->backing == BACKING_MMAP_HUGETLB && errno == EINVAL)
            skip("mmap(MAP_HUGETLB): this kernel offers no 2 MiB huge pages");
        if (errno == EPERM && s->protection == PROTECTION_EXEC)
            exec_refused();
        system_error("mmap");
    }
    return p;
}

/* A block starting on a 2 MiB boundary, with its THP advice: map 2 MiB more than needed and
 * unmap the unaligned head and the rest of the tail, so the block is one mapping of exactly
 * map_bytes (which unmap_blocks unmaps like any other). */
static unsigned char *map_thp_block(const struct blocks *b, const struct scenario *s, int flags)
{
    size_t span = b->map_bytes + HUGE_PAGE_BYTES;
    COUNT_SYSCALL();
    unsigned char *raw = mmap(NULL, span, PROTECTION_BITS[s->protection], flags, -1, 0);
    if (raw == MAP_FAILED) {
        if (errno == EPERM && s->protection == PROTECTION_EXEC)
            exec_refused();
        system_error("mmap");
    }
    uintptr_t aligned = ((uintptr_t)raw + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
    unsigned char *block = (unsigned char *)aligned;
    size_t head = (size_t)(block - raw), tail = span - head - b->map_bytes;
    if (head > 0 && (COUNT_SYSCALL(), munmap(raw, head) != 0))
        system_error("munmap");
    if (tail > 0 && (COUNT_SYSCALL(), munmap(block + b->map_bytes, tail) != 0))
        system_error("munmap");
    int advice = s->thp == THP_HUGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
    COUNT_SYSCALL();
    if (madvise(block, b->map_bytes, advice) != 0) {
        if (errno == EINVAL)
            skip("madvise(MADV_%sHUGEPAGE): this kernel has no transparent huge pages",
                 s->thp == THP_HUGE ? "" : "NO");
        system_error("madvise");
    }
    return block;
}

/* advice: madvise of the block right after its mmap, inside allocate (before populate). */
static void advise_block(const struct scenario *s, unsigned char *p, size_t length)
{
    if (s->advice == ADVICE_NONE)
        return;
    COUNT_SYSCALL();
    if (madvise(p, length, ADVICE_BITS[s->advice]) != 0) {
        if (errno == EINVAL)
            skip("madvise(%s): not supported for this memory by this kernel%s",
                 ADVICE_CALLS[s->advice],
                 s->advice == ADVICE_POPULATE_READ ? " (Linux 5.14 or later has it)" : "");
        system_error("madvise");
    }
}

/* populate: madv-populate-write and mlock fault the block in after mmap, inside allocate
 * (map-populate is a flag of mmap itself). */
static void populate_block(const struct scenario *s, unsigned char *p, size_t length)
{
    if (s->populate == POPULATE_MADV_POPULATE_WRITE &&
        (COUNT_SYSCALL(), madvise(p, length, MADV_POPULATE_WRITE) != 0)) {
        if (errno == EINVAL)
            skip("madvise(MADV_POPULATE_WRITE): not supported here (Linux 5.14 or later has it)");
        system_error("madvise(MADV_POPULATE_WRITE)");
    }
    if (s->populate == POPULATE_MLOCK && (COUNT_SYSCALL(), mlock(p, length) != 0)) {
        int error = errno;
        struct rlimit limit;
        if ((error == ENOMEM || error == EPERM) && getrlimit(RLIMIT_MEMLOCK, &limit) == 0)
            skip("mlock: %s (RLIMIT_MEMLOCK is %llu bytes; raise `ulimit -l` or run as root)",
                 strerror(error), (unsigned long long)limit.rlim_cur);
        errno = error;
        system_error("mlock");
    }
}

/* mmap-anon, mmap-file and mmap-hugetlb differ only in the flags and the file. */
static void allocate_mmap(const struct blocks *b, const struct scenario *s)
{
    int flags = map_flags(s);
    for (size_t i = 0; i < b->ops; i++) {
        off_t offset =
            s->backing == BACKING_MMAP_FILE ? (off_t)((b->first + i) * b->stride_bytes) : 0;
        unsigned char *p = s->thp == THP_DEFAULT ? map_block(b, s, flags, b->fd, offset)
                                                 : map_thp_block(b, s, flags);
        advise_block(s, p, b->map_bytes);
        populate_block(s, p, b->map_bytes);
        b->at[i] = p;
    }
}

/* memfd and shm: a shared-memory file of its own per block, sized and mapped; the mapping
 * keeps the file alive, so the descriptor is closed at once. */
static unsigned char *map_memory_file(const struct blocks *b, const struct scenario *s,
                                      int flags, int fd)
{
    COUNT_SYSCALL();
    if (ftruncate(fd, (off_t)b->map_bytes) != 0)
        system_error("ftruncate");
    unsigned char *p = map_block(b, s, flags, fd, 0);
    advise_block(s, p, b->map_bytes);
    populate_block(s, p, b->map_bytes);
    COUNT_SYSCALL();
    if (close(fd) != 0)
        system_error("close");
    return p;
}

static void allocate_memfd(const struct blocks *b, const struct scenario *s)
{
    int flags = map_flags(s);
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        int fd = memfd_create("alloclab", MFD_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOSYS)
                skip("memfd_create: this kernel does not have it (Linux 3.17 or later has)");
            system_error("memfd_create");
        }
        b->at[i] = map_memory_file(b, s, flags, fd);
    }
}

/* POSIX shared memory: a name in /dev/shm, unlinked at once so a crash leaves nothing. */
static void allocate_shm(const struct blocks *b, const struct scenario *s)
{
    int flags = map_flags(s);
    long pid = (long)getpid();
    char name[64];
    for (size_t i = 0; i < b->ops; i++) {
        snprintf(name, sizeof name, "/alloclab-%ld-%zu", pid, b->first + i);
        COUNT_SYSCALL();
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            system_error("shm_open");
        COUNT_SYSCALL();
        if (shm_unlink(name) != 0)
            system_error("shm_unlink");
        b->at[i] = map_memory_file(b, s, flags, fd);
    }
}

/* A heap buffer filled by read(): the copy-from-page-cache alternative to a file mapping. */
static void allocate_read_file(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        b->at[i] = malloc(b->size_bytes);
        if (b->at[i] == NULL)
            system_error("malloc");
        read_fully(b->fd, b->at[i], b->size_bytes, (off_t)((b->first + i) * b->stride_bytes));
    }
}

/* Page k of the random order, in the blocks as they are now. */
static struct page_ref locate_page(const struct blocks *b, size_t k)
{
    size_t block = (size_t)(b->order[k] / b->pages_per_block);
    size_t offset = (size_t)(b->order[k] % b->pages_per_block) * b->page_bytes;
    struct page_ref ref = {
        .at = b->at[block] + offset,
        .length = b->size_bytes - offset < b->page_bytes ? b->size_bytes - offset : b->page_bytes,
        .file_offset = (off_t)((b->first + block) * b->stride_bytes + offset)};
    return ref;
}

/* order random: where the pages of the random order are in the blocks just allocated. Done
 * between allocate and first touch, untimed, so the timed loops only follow pointers. */
static void locate_pages(const struct blocks *b)
{
    for (size_t k = 0; k < b->page_count; k++)
        b->pages[k] = locate_page(b, k);
}

/* read-file in random order: the heap buffers first, then one pread per page, the pages of
 * every block in the fixed random order. */
static void allocate_read_file_pages(const struct blocks *b)
{
    allocate_malloc(b);
    for (size_t k = 0; k < b->page_count; k++) {
        struct page_ref ref = locate_page(b, k);
        read_fully(b->fd, ref.at, ref.length, ref.file_offset);
    }
}

static void free_heap(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++)
        free(b->at[i]);
}

/* Every block but the one allocated last, which stays and pins the top of the heap. */
static void free_heap_but_last(const struct blocks *b)
{
    for (size_t i = 0; i + 1 < b->ops; i++)
        free(b->at[i]);
}

static void unmap_blocks(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        if (munmap(b->at[i], b->map_bytes) != 0)
            system_error("munmap");
    }
}

/* MADV_DONTNEED / MADV_FREE: the pages go back (or may go back), the mappings stay. */
static void advise_blocks(const struct blocks *b, int advice, const char *name)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        if (madvise(b->at[i], b->map_bytes, advice) != 0) {
            if (errno == EINVAL)
                skip("madvise(%s): not supported for this memory by this kernel", name);
            system_error("madvise");
        }
    }
}

/* noinline: the work of a phase is one call between the two clock reads, so the compiler
 * cannot move any of it outside the timed window. The same holds for touch_blocks. */
static __attribute__((noinline)) void allocate_blocks(const struct blocks *b,
                                                      const struct scenario *s)
{
    switch (s->backing) {
    case BACKING_MALLOC:
    case BACKING_WRITE_FILE: /* a heap buffer, written to the file after each access pattern */
        allocate_malloc(b);
        break;
    case BACKING_CALLOC:
        allocate_calloc(b);
        break;
    case BACKING_POSIX_MEMALIGN:
        allocate_posix_memalign(b, s);
        break;
    case BACKING_MMAP_ANON:
    case BACKING_MMAP_FILE:
    case BACKING_MMAP_HUGETLB:
        allocate_mmap(b, s);
        break;
    case BACKING_READ_FILE:
        if (b->buffer != NULL)
            break; /* the reused buffer was made before timing: nothing to allocate */
        if (b->order != NULL)
            allocate_read_file_pages(b);
        else
            allocate_read_file(b);
        break;
    case BACKING_MEMFD:
        allocate_memfd(b, s);
        break;
    case BACKING_SHM:
        allocate_shm(b, s);
        break;
    case BACKING_COUNT:
        break;
    }
}

/* The free phase: whatever `release` says. For the madvise releases the mappings stay; the
 * caller unmaps them after the phase, untimed. */
static __attribute__((noinline)) void release_blocks(const struct blocks *b,
                                                     const struct scenario *s)
{
    if (b->buffer != NULL)
        return; /* read-file keeps its one buffer for the next iteration: nothing to free */
    switch (s->release) {
    case RELEASE_FREE:
        free_heap(b);
        break;
    case RELEASE_MALLOC_TRIM:
        free_heap(b);
        malloc_trim(0);
        break;
    case RELEASE_FREE_BUT_LAST:
        free_heap_but_last(b);
        break;
    case RELEASE_MALLOC_TRIM_BUT_LAST:
        free_heap_but_last(b);
        malloc_trim(0);
        break;
    case RELEASE_MUNMAP:
        unmap_blocks(b);
        break;
    case RELEASE_MADV_DONTNEED:
        advise_blocks(b, MADV_DONTNEED, "MADV_DONTNEED");
        break;
    case RELEASE_MADV_FREE:
        advise_blocks(b, MADV_FREE, "MADV_FREE");
        break;
    case RELEASE_AUTO: /* resolved by check_combination */
    case RELEASE_COUNT:
        break;
    }
}

/* After the free phase, untimed: what the release left for later (the mappings madvise
 * kept, the block a *_BUT_LAST release kept), so rss_bytes of the phase shows what the
 * release itself gave back. */
static void finish_release(const struct blocks *b, const struct scenario *s)
{
    switch (s->release) {
    case RELEASE_MADV_DONTNEED:
    case RELEASE_MADV_FREE:
        unmap_blocks(b);
        break;
    case RELEASE_FREE_BUT_LAST:
    case RELEASE_MALLOC_TRIM_BUT_LAST:
        if (b->ops > 0)
            free(b->at[b->ops - 1]);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Access patterns: one function per pattern                                                  */

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
static uint64_t sum_words(const unsigned char *p, size_t length)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    size_t words = length / sizeof(uint64_t), w = 0;
    for (; w + 8 <= words; w += 8) {
        const unsigned char *q = p + w * sizeof(uint64_t);
        s0 += load_word(q);
        s1 += load_word(q + 8);
        s2 += load_word(q + 16);
        s3 += load_word(q + 24);
        s4 += load_word(q + 32);
        s5 += load_word(q + 40);
        s6 += load_word(q + 48);
        s7 += load_word(q + 56);
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
 * write-all writes every byte (memset); read-all sums the words (offset is a multiple of 8,
 * so the words are the block's). Returns what was read. */
static uint64_t access_range(unsigned char *p, size_t length, size_t offset, size_t page,
                             enum access access, unsigned char value)
{
    size_t first = (page - offset % page) % page;
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

/* Applies the scenario's access pattern to every block, in block order; returns what was
 * read. noinline, like the phases' other work (see allocate_blocks). */
static __attribute__((noinline)) uint64_t apply_access(const struct blocks *b,
                                                       const struct scenario *s, size_t page,
                                                       unsigned char value)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < b->ops; i++)
        sum += access_range(b->at[i], b->size_bytes, 0, page, s->access, value);
    return sum;
}

/* read-file with a read buffer: the bytes of `block` from `offset` on, at most a buffer's
 * worth, read into the buffer by pread and given the access pattern right away. */
static uint64_t read_chunk(const struct blocks *b, const struct scenario *s, size_t block,
                           size_t offset, unsigned char value)
{
    size_t left = b->size_bytes - offset;
    size_t length = left < b->buffer_bytes ? left : b->buffer_bytes;
    read_fully(b->fd, b->buffer, length,
               (off_t)((b->first + block) * b->stride_bytes + offset));
    return access_range(b->buffer, length, offset, b->page_bytes, s->access, value);
}

/* read-file with a read buffer, first touch and second pass alike: every block read from the
 * file chunk by chunk into the one reused buffer, the access pattern applied to each chunk as
 * it arrives; with order random the chunks of every block in the fixed random order. */
static __attribute__((noinline)) uint64_t read_chunks(const struct blocks *b,
                                                      const struct scenario *s,
                                                      unsigned char value)
{
    uint64_t sum = 0;
    if (b->chunk_order != NULL) {
        for (size_t k = 0; k < b->chunk_count; k++) {
            size_t block = (size_t)(b->chunk_order[k] / b->chunks_per_block);
            size_t chunk = (size_t)(b->chunk_order[k] % b->chunks_per_block);
            sum += read_chunk(b, s, block, chunk * b->buffer_bytes, value);
        }
        return sum;
    }
    for (size_t i = 0; i < b->ops; i++)
        for (size_t offset = 0; offset < b->size_bytes; offset += b->buffer_bytes)
            sum += read_chunk(b, s, i, offset, value);
    return sum;
}

/* order random: the access pattern page by page, every page of every block once, in the
 * fixed random order (locate_pages found them before the phase). */
static __attribute__((noinline)) uint64_t visit_pages(const struct blocks *b,
                                                      const struct scenario *s,
                                                      unsigned char value)
{
    uint64_t sum = 0;
    switch (s->access) {
    case ACCESS_WRITE_PAGE:
        for (size_t k = 0; k < b->page_count; k++) {
            b->pages[k].at[0] = value;
            ESCAPE(b->pages[k].at);
        }
        break;
    case ACCESS_WRITE_ALL:
        for (size_t k = 0; k < b->page_count; k++) {
            memset(b->pages[k].at, value, b->pages[k].length);
            ESCAPE(b->pages[k].at);
        }
        break;
    case ACCESS_READ_PAGE:
        for (size_t k = 0; k < b->page_count; k++)
            sum += b->pages[k].at[0];
        break;
    case ACCESS_READ_ALL:
        for (size_t k = 0; k < b->page_count; k++)
            sum += sum_words(b->pages[k].at, b->pages[k].length);
        break;
    case ACCESS_NONE:
    case ACCESS_COUNT:
        break;
    }
    return sum;
}

/* write-file: every block to its place in the data file, one pwrite per block, or in random
 * order one pwrite per page in that order. */
static void write_out(const struct blocks *b)
{
    if (b->pages != NULL) {
        for (size_t k = 0; k < b->page_count; k++)
            pwrite_fully(b->fd, b->pages[k].at, b->pages[k].length, b->pages[k].file_offset);
        return;
    }
    for (size_t i = 0; i < b->ops; i++)
        pwrite_fully(b->fd, b->at[i], b->size_bytes, (off_t)((b->first + i) * b->stride_bytes));
}

/* sync: what was written reaches the disk before the phase ends. */
static void sync_out(const struct blocks *b, const struct scenario *s)
{
    if (s->sync == SYNC_MSYNC) {
        for (size_t i = 0; i < b->ops; i++)
            if ((COUNT_SYSCALL(), msync(b->at[i], b->map_bytes, MS_SYNC) != 0))
                system_error("msync");
    } else if ((COUNT_SYSCALL(), fsync(b->fd) != 0)) {
        system_error("fsync");
    }
}

/* The work of first_touch and second_pass in the cycle workload: the access pattern, then for
 * write-file the file writes, then the sync. Returns what was read. */
static __attribute__((noinline)) uint64_t touch_blocks(const struct blocks *b,
                                                       const struct scenario *s, size_t page,
                                                       unsigned char value)
{
    uint64_t sum = b->buffer != NULL  ? read_chunks(b, s, value)
                   : b->pages != NULL ? visit_pages(b, s, value)
                                      : apply_access(b, s, page, value);
    if (s->backing == BACKING_WRITE_FILE)
        write_out(b);
    if (s->sync != SYNC_NONE)
        sync_out(b, s);
    return sum;
}

/* 1 when every byte the access pattern writes holds `value` (one per page for write-page,
 * all of them for write-all): whether a write of this or another process is visible here. */
static uint64_t blocks_hold(const struct blocks *b, const struct scenario *s, size_t page,
                            unsigned char value)
{
    size_t step = s->access == ACCESS_WRITE_ALL ? 1 : page;
    for (size_t i = 0; i < b->ops; i++)
        for (size_t offset = 0; offset < b->size_bytes; offset += step)
            if (b->at[i][offset] != value)
                return 0;
    return 1;
}

/* order random: every page (or read-file chunk) index once, in an order fixed by a constant
 * seed, so that every process of a scenario visits them in the same order (xorshift64*,
 * Fisher-Yates). */
static void shuffle_pages(uint64_t *order, size_t count)
{
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    for (size_t i = count; i > 1; i--) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        size_t j = (size_t)((state * 0x2545F4914F6CDD1DULL) % i);
        uint64_t swap = order[i - 1];
        order[i - 1] = order[j];
        order[j] = swap;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Measuring a phase                                                                          */

enum phase { PHASE_ALLOCATE, PHASE_FIRST_TOUCH, PHASE_SECOND_PASS, PHASE_FREE, PHASE_COUNT };
static const char *const PHASE_NAMES[PHASE_COUNT] = {
    "allocate", "first_touch", "second_pass", "free"};

struct phase_result {
    uint64_t ns;
    uint64_t minor_faults;
    uint64_t major_faults;
    uint64_t rss_bytes;
    uint64_t syscalls; /* counted ones (COUNT_SYSCALL), reported as observations */
};

/* Observations: numbers about an iteration beside its phases, each reported only where the
 * scenario makes it meaningful. Names, units and meanings: OBSERVATIONS in runner/metrics.py. */
enum observation { OBS_ALIGNMENT_BYTES, OBS_ANON_HUGE_BYTES, OBS_HUGETLB_BYTES,
                   OBS_PROTECTION_ENFORCED, OBS_MPROTECT_NS, OBS_BRK_GROWTH_BYTES,
                   OBS_BLOCKS_IN_HEAP, OBS_MAPPINGS, OBS_VM_SIZE_GROWTH_BYTES,
                   OBS_NONZERO_BYTES_AT_ALLOCATE, OBS_RESIDENT_PPM_BEFORE,
                   OBS_CHILD_SEES_PARENT, OBS_PARENT_SEES_CHILD, OBS_PARENT_PSS_BYTES,
                   OBS_CHILD_PSS_BYTES, OBS_BLOCKS_MOVED, OBS_DATA_SURVIVED,
                   OBS_READ_BUFFER_PAGE_OFFSET_BYTES, OBS_ALLOCATE_SYSCALLS,
                   OBS_FIRST_TOUCH_SYSCALLS, OBS_SECOND_PASS_SYSCALLS, OBS_FREE_SYSCALLS,
                   OBS_COUNT };
static const char *const OBSERVATION_NAMES[OBS_COUNT] = {
    "alignment_bytes", "anon_huge_bytes", "hugetlb_bytes", "protection_enforced", "mprotect_ns",
    "brk_growth_bytes", "blocks_in_heap", "mappings", "vm_size_growth_bytes",
    "nonzero_bytes_at_allocate", "resident_ppm_before", "child_sees_parent",
    "parent_sees_child", "parent_pss_bytes", "child_pss_bytes", "blocks_moved",
    "data_survived", "read_buffer_page_offset_bytes", "allocate_syscalls",
    "first_touch_syscalls", "second_pass_syscalls", "free_syscalls"};

struct iteration_result {
    int warmup;
    uint64_t rss_before_bytes;
    uint64_t checksum; /* wrapping sum of every value read in first_touch and second_pass */
    struct phase_result phases[PHASE_COUNT];
    uint64_t observed[OBS_COUNT];
    uint64_t observed_mask; /* bit o: observed[o] was recorded */
};

static void observe(struct iteration_result *r, enum observation o, uint64_t value)
{
    r->observed[o] = value;
    r->observed_mask |= (uint64_t)1 << o;
}

struct phase_start {
    struct rusage usage;
    struct timespec time;
    uint64_t syscalls;
};

/* /proc/self/statm: sizes in pages, the address space first, the resident set second.
 * open/read on a stack buffer rather than stdio, which would malloc. */
static void read_statm(char *text, size_t size)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        system_error("open /proc/self/statm");
    ssize_t got = read(fd, text, size - 1);
    if (got < 0)
        system_error("read /proc/self/statm");
    close(fd);
    text[got] = '\0';
}

/* The resident set (statm's second field). */
static uint64_t resident_bytes(size_t page)
{
    char text[256];
    read_statm(text, sizeof text);
    char *field = strchr(text, ' ');
    if (field == NULL) {
        errno = EINVAL;
        system_error("parse /proc/self/statm");
    }
    return (uint64_t)strtoull(field + 1, NULL, 10) * page;
}

/* The address space, VmSize (statm's first field). */
static uint64_t virtual_bytes(size_t page)
{
    char text[256];
    read_statm(text, sizeof text);
    return (uint64_t)strtoull(text, NULL, 10) * page;
}

static uint64_t elapsed_ns(const struct timespec *start, const struct timespec *end)
{
    return (uint64_t)((int64_t)(end->tv_sec - start->tv_sec) * 1000000000LL +
                      (end->tv_nsec - start->tv_nsec));
}

static void start_phase(struct phase_start *start)
{
    if (getrusage(RUSAGE_SELF, &start->usage) != 0) /* before the clock starts */
        system_error("getrusage");
    start->syscalls = atomic_load_explicit(&syscall_count, memory_order_relaxed);
    clock_gettime(CLOCK_MONOTONIC, &start->time);
}

static void stop_phase(const struct phase_start *start, size_t page, struct phase_result *out)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    out->syscalls = atomic_load_explicit(&syscall_count, memory_order_relaxed) - start->syscalls;
    struct rusage usage; /* after the clock stops */
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        system_error("getrusage");
    out->ns = elapsed_ns(&start->time, &end);
    out->minor_faults = (uint64_t)(usage.ru_minflt - start->usage.ru_minflt);
    out->major_faults = (uint64_t)(usage.ru_majflt - start->usage.ru_majflt);
    out->rss_bytes = resident_bytes(page);
}

/* ------------------------------------------------------------------------------------------ */
/* Observations, taken between the phases                                                     */

/* The largest power of two dividing every block's address: 16 for large malloc'd blocks
 * (their header), the page for mmap, 2 MiB for thp blocks. */
static uint64_t block_alignment(const struct blocks *b)
{
    uintptr_t bits = 0;
    for (size_t i = 0; i < b->ops; i++)
        bits |= (uintptr_t)b->at[i];
    return (uint64_t)(bits & (0 - bits));
}

/* A "Key:   N kB" line of a /proc file, in bytes; `key` includes the newline before it and
 * the colon. open/read on a stack buffer: no stdio, which would malloc. */
static uint64_t proc_kib_field(const char *path, const char *key)
{
    char text[8192];
    text[0] = '\n'; /* so that the first line, too, follows a newline */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            skip("%s is missing (too old a kernel)", path);
        system_error(path);
    }
    size_t length = 1;
    for (ssize_t got = 1; got > 0 && length < sizeof text - 1; length += (size_t)got) {
        got = read(fd, text + length, sizeof text - 1 - length);
        if (got < 0)
            system_error(path);
    }
    close(fd);
    text[length] = '\0';
    const char *line = strstr(text, key);
    if (line == NULL)
        skip("%s has no%s line (too old a kernel)", path, key);
    return (uint64_t)strtoull(line + strlen(key), NULL, 10) * 1024;
}

/* Transparent huge pages of the process. The kernel walks every page table to produce
 * smaps_rollup, so it is read only for thp scenarios, and never inside a phase. */
static uint64_t anon_huge_bytes(void)
{
    return proc_kib_field("/proc/self/smaps_rollup", "\nAnonHugePages:");
}

/* hugetlb pages mapped by the process, which the resident set does not count. */
static uint64_t hugetlb_bytes(void)
{
    return proc_kib_field("/proc/self/status", "\nHugetlbPages:");
}

static uint64_t growth(uint64_t before, uint64_t after)
{
    return after > before ? after - before : 0;
}

/* The proportional set size: each resident page divided by the processes that map it. */
static uint64_t pss_bytes(void)
{
    return proc_kib_field("/proc/self/smaps_rollup", "\nPss:");
}

/* Lines of /proc/self/maps: the process's mappings. Adjacent anonymous mappings with the same
 * flags merge into one; blocks that are files of their own never do. */
static uint64_t count_mappings(void)
{
    char text[16384];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        system_error("open /proc/self/maps");
    uint64_t lines = 0;
    for (;;) {
        ssize_t got = read(fd, text, sizeof text);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            system_error("read /proc/self/maps");
        }
        if (got == 0)
            break;
        for (ssize_t i = 0; i < got; i++)
            lines += text[i] == '\n';
    }
    close(fd);
    return lines;
}

/* The program break: where the main heap (the [heap] mapping) ends. */
static uintptr_t current_brk(void)
{
    return (uintptr_t)sbrk(0);
}

/* Blocks that lie in the main heap, between the break at the probe's start and now: not in a
 * chunk glibc mapped for it alone, nor in another arena (threads get their own). */
static uint64_t blocks_in_heap(const struct blocks *b, uintptr_t heap_start)
{
    uintptr_t heap_end = current_brk();
    uint64_t count = 0;
    for (size_t i = 0; i < b->ops; i++) {
        uintptr_t p = (uintptr_t)b->at[i];
        count += p >= heap_start && p < heap_end;
    }
    return count;
}

/* Non-zero bytes in the blocks: what a program finds in memory it has not written yet. */
static uint64_t nonzero_bytes(const struct blocks *b)
{
    uint64_t count = 0;
    for (size_t i = 0; i < b->ops; i++)
        for (size_t j = 0; j < b->size_bytes; j++)
            count += b->at[i][j] != 0;
    return count;
}

/* A forbidden access raises SIGSEGV; the handler jumps back to the attempt, which reports
 * the fault instead of the process dying. */
static sigjmp_buf fault_jump;

static void on_fault(int signal_number)
{
    (void)signal_number;
    siglongjmp(fault_jump, 1);
}

/* 1 when writing to p faults. noinline and volatile: the store is attempted here, as written. */
static __attribute__((noinline)) int write_faults(volatile unsigned char *p)
{
    if (sigsetjmp(fault_jump, 1) != 0)
        return 1;
    *p = 0x5a;
    return 0;
}

static __attribute__((noinline)) int read_faults(const volatile unsigned char *p)
{
    if (sigsetjmp(fault_jump, 1) != 0)
        return 1;
    (void)*p;
    return 0;
}

/* Attempts every access the protection forbids on every block (a write; for none also a
 * read): 1 when each of them faulted. (exec forbids writing, like read; executing the
 * blocks' bytes is not attempted.) */
static uint64_t check_protection(const struct blocks *b, const struct scenario *s)
{
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous) != 0)
        system_error("sigaction");
    uint64_t enforced = 1;
    for (size_t i = 0; i < b->ops; i++) {
        if (!write_faults(b->at[i]))
            enforced = 0;
        if (s->protection == PROTECTION_NONE && !read_faults(b->at[i]))
            enforced = 0;
    }
    if (sigaction(SIGSEGV, &previous, NULL) != 0)
        system_error("sigaction");
    return enforced;
}

static __attribute__((noinline)) void protect_blocks(const struct blocks *b, int protection);

/* Heap blocks go back to free() read-write: glibc writes its free-list pointers into them.
 * Untimed, after the observations, before the free phase. */
static void release_protection(const struct blocks *b, const struct scenario *s)
{
    if (s->backing == BACKING_POSIX_MEMALIGN && s->protection != PROTECTION_READ_WRITE)
        protect_blocks(b, PROT_READ | PROT_WRITE);
}

static __attribute__((noinline)) void protect_blocks(const struct blocks *b, int protection)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        if (mprotect(b->at[i], b->map_bytes, protection) != 0) {
            if (errno == EACCES && protection == PROTECTION_BITS[PROTECTION_EXEC])
                exec_refused();
            system_error("mprotect");
        }
    }
}

/* The cost of protecting the blocks: mprotect of every block from read-write to the
 * scenario's protection, timed like a phase (making them read-write first is not timed). */
static uint64_t time_mprotect(const struct blocks *b, const struct scenario *s)
{
    protect_blocks(b, PROT_READ | PROT_WRITE);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    protect_blocks(b, PROTECTION_BITS[s->protection]);
    clock_gettime(CLOCK_MONOTONIC, &end);
    return elapsed_ns(&start, &end);
}

/* ------------------------------------------------------------------------------------------ */
/* The data file in the page cache                                                            */

/* cache cold: the file's pages leave the page cache, written back first (dirty pages are not
 * evicted). On tmpfs nothing leaves: its pages live only in the cache. */
static void evict_file(int fd)
{
    if (fdatasync(fd) != 0)
        system_error("fdatasync");
    int error = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (error != 0) {
        errno = error;
        system_error("posix_fadvise(POSIX_FADV_DONTNEED)");
    }
}

/* The share of the data file's pages in the page cache, in parts per million: mincore on a
 * mapping of the whole file made for the purpose, which faults nothing in. */
static uint64_t file_resident_ppm(int fd, size_t file_bytes, size_t page, unsigned char *vector)
{
    void *p = mmap(NULL, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        system_error("mmap (the data file, for mincore)");
    if (mincore(p, file_bytes, vector) != 0)
        system_error("mincore");
    uint64_t pages = (file_bytes + page - 1) / page, resident = 0;
    for (uint64_t i = 0; i < pages; i++)
        resident += vector[i] & 1;
    if (munmap(p, file_bytes) != 0)
        system_error("munmap");
    return resident * 1000000 / pages;
}

/* ------------------------------------------------------------------------------------------ */
/* Threads                                                                                    */

/* With --threads above 1, worker threads made once before the first iteration each own a
 * slice of the blocks. For each phase the main thread releases them all at one barrier and
 * waits at another until the last of them is done. */
struct crew {
    pthread_barrier_t start, done;
    const struct scenario *s;
    enum phase phase; /* what the workers do next */
    unsigned char value;
    size_t count;
    struct worker {
        struct crew *crew;
        pthread_t thread;
        struct blocks slice;
        uint64_t checksum;
    } workers[MAX_THREADS];
};

/* The work of one phase of the cycle workload on some blocks. */
static uint64_t cycle_work(const struct blocks *b, const struct scenario *s, enum phase phase,
                           unsigned char value)
{
    switch (phase) {
    case PHASE_ALLOCATE:
        allocate_blocks(b, s);
        return 0;
    case PHASE_FIRST_TOUCH:
    case PHASE_SECOND_PASS:
        return touch_blocks(b, s, b->page_bytes, value);
    case PHASE_FREE:
        release_blocks(b, s);
        return 0;
    case PHASE_COUNT:
        break;
    }
    return 0;
}

static void wait_at(pthread_barrier_t *barrier)
{
    int error = pthread_barrier_wait(barrier);
    if (error != 0 && error != PTHREAD_BARRIER_SERIAL_THREAD) {
        errno = error;
        system_error("pthread_barrier_wait");
    }
}

/* A worker: its slice's part of every phase, until the process exits. */
static void *run_worker(void *argument)
{
    struct worker *w = argument;
    struct crew *c = w->crew;
    for (;;) {
        wait_at(&c->start);
        w->checksum = cycle_work(&w->slice, c->s, c->phase, c->value);
        wait_at(&c->done);
    }
    return NULL;
}

/* One phase, shared out to the workers; returns the sum of what they read. */
static __attribute__((noinline)) uint64_t crew_work(struct crew *c, enum phase phase,
                                                    unsigned char value)
{
    c->phase = phase;
    c->value = value;
    wait_at(&c->start);
    wait_at(&c->done);
    uint64_t sum = 0;
    for (size_t t = 0; t < c->count; t++)
        sum += c->workers[t].checksum;
    return sum;
}

/* Thread t gets blocks [ops * t / threads, ops * (t + 1) / threads). */
static struct crew *start_crew(const struct blocks *b, const struct scenario *s)
{
    struct crew *c = map_scratch(sizeof *c);
    c->s = s;
    c->count = s->threads;
    if (pthread_barrier_init(&c->start, NULL, (unsigned)c->count + 1) != 0 ||
        pthread_barrier_init(&c->done, NULL, (unsigned)c->count + 1) != 0)
        system_error("pthread_barrier_init");
    for (size_t t = 0; t < c->count; t++) {
        struct worker *w = &c->workers[t];
        size_t first = b->ops * t / c->count, end = b->ops * (t + 1) / c->count;
        w->crew = c;
        w->slice = *b;
        w->slice.at = b->at + first;
        w->slice.ops = end - first;
        w->slice.first = first;
        if (b->buffer != NULL)
            w->slice.buffer = map_scratch(b->buffer_bytes);
        int error = pthread_create(&w->thread, NULL, run_worker, w);
        if (error != 0) {
            errno = error;
            system_error("pthread_create");
        }
    }
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Workloads: one function each, timing the four phase slots as the file comment says         */

/* What every iteration works with, set up once before the first (prepare_context). */
struct context {
    struct blocks blocks;
    struct crew *crew;        /* threads above 1, else NULL */
    uintptr_t heap_start;     /* the program break when the probe started */
    unsigned char **previous; /* resize: the blocks' addresses before growing */
    size_t file_bytes;        /* the data file's length; 0 without one */
    unsigned char *residency; /* mincore's vector: one byte per page of the data file */
};

/* Observations about the blocks just allocated, taken right after the allocate phase. */
static void observe_allocation(const struct context *c, const struct scenario *s,
                               uint64_t vm_before, uintptr_t brk_before,
                               struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    observe(out, OBS_MAPPINGS, count_mappings());
    observe(out, OBS_VM_SIZE_GROWTH_BYTES, growth(vm_before, virtual_bytes(b->page_bytes)));
    if (s->backing == BACKING_READ_FILE) {
        const unsigned char *destination = b->buffer != NULL ? b->buffer : b->at[0];
        observe(out, OBS_READ_BUFFER_PAGE_OFFSET_BYTES,
                (uint64_t)((uintptr_t)destination % b->page_bytes));
    }
    if (b->buffer != NULL)
        return; /* read-file with a read buffer: no blocks, nothing allocated */
    observe(out, OBS_ALIGNMENT_BYTES, block_alignment(b));
    if (is_heap_backing(s->backing)) {
        observe(out, OBS_BRK_GROWTH_BYTES, growth(brk_before, current_brk()));
        observe(out, OBS_BLOCKS_IN_HEAP, blocks_in_heap(b, c->heap_start));
    }
    if (s->check_zero)
        observe(out, OBS_NONZERO_BYTES_AT_ALLOCATE, nonzero_bytes(b));
}

/* cycle: the four phases, each timed around exactly its work, and the observations the
 * scenario calls for, taken between the phases. `value` makes the written bytes differ
 * between iterations, so no store is a constant the compiler could drop. */
static void run_cycle(const struct context *c, const struct scenario *s, unsigned char value,
                      struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    struct phase_start start;
    int thp = s->thp != THP_DEFAULT, hugetlb = s->backing == BACKING_MMAP_HUGETLB;
    uint64_t thp_before = thp ? anon_huge_bytes() : 0;
    uint64_t hugetlb_before = hugetlb ? hugetlb_bytes() : 0;
    uint64_t vm_before = virtual_bytes(page);
    uintptr_t brk_before = current_brk();
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    if (c->crew != NULL)
        crew_work(c->crew, PHASE_ALLOCATE, value);
    else
        allocate_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    observe_allocation(c, s, vm_before, brk_before, out);
    if (b->pages != NULL)
        locate_pages(b);

    start_phase(&start);
    uint64_t checksum = c->crew != NULL ? crew_work(c->crew, PHASE_FIRST_TOUCH, value)
                                        : touch_blocks(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);
    if (thp)
        observe(out, OBS_ANON_HUGE_BYTES, growth(thp_before, anon_huge_bytes()));
    if (hugetlb)
        observe(out, OBS_HUGETLB_BYTES, growth(hugetlb_before, hugetlb_bytes()));

    unsigned char again = (unsigned char)(value + 1);
    start_phase(&start);
    checksum += c->crew != NULL ? crew_work(c->crew, PHASE_SECOND_PASS, again)
                                : touch_blocks(b, s, page, again);
    stop_phase(&start, page, &out->phases[PHASE_SECOND_PASS]);
    if (s->protection != PROTECTION_READ_WRITE) {
        observe(out, OBS_PROTECTION_ENFORCED, check_protection(b, s));
        observe(out, OBS_MPROTECT_NS, time_mprotect(b, s));
        release_protection(b, s);
    }

    start_phase(&start);
    if (c->crew != NULL)
        crew_work(c->crew, PHASE_FREE, value);
    else
        release_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    finish_release(b, s);

    out->checksum = checksum;
    if (is_file_backing(s->backing)) {
        observe(out, OBS_ALLOCATE_SYSCALLS, out->phases[PHASE_ALLOCATE].syscalls);
        observe(out, OBS_FIRST_TOUCH_SYSCALLS, out->phases[PHASE_FIRST_TOUCH].syscalls);
        observe(out, OBS_SECOND_PASS_SYSCALLS, out->phases[PHASE_SECOND_PASS].syscalls);
        observe(out, OBS_FREE_SYSCALLS, out->phases[PHASE_FREE].syscalls);
    }
}

/* What the forked child sends back through its pipe. */
struct child_report {
    struct phase_result write; /* its write over every block: the second_pass slot */
    uint64_t pss_bytes;
};

/* fork, the child's part: write over the parent's data first thing (timed: its page faults,
 * copy-on-write for private memory), report, and stay until the parent has measured (it
 * closes the release pipe), so both PSS figures are taken while both processes map the
 * memory. The child reads nothing before its write: fork copies no page table entries of
 * shared mappings, so a read first would fault the pages in and the timed write would find
 * them mapped. Whether a child sees the parent's data is asked of another child
 * (check_in_child). */
static void run_child(const struct blocks *b, const struct scenario *s,
                      unsigned char parent_value, const int report_pipe[2],
                      const int release_pipe[2]) __attribute__((noreturn));

static void run_child(const struct blocks *b, const struct scenario *s,
                      unsigned char parent_value, const int report_pipe[2],
                      const int release_pipe[2])
{
    /* The parent's ends: with the write end of the release pipe open here too, the read
     * below would never see the end of the file. */
    close(report_pipe[0]);
    close(release_pipe[1]);
    int report_fd = report_pipe[1], release_fd = release_pipe[0];
    size_t page = b->page_bytes;
    struct child_report report;
    struct phase_start start;
    start_phase(&start);
    apply_access(b, s, page, (unsigned char)(parent_value + 1));
    stop_phase(&start, page, &report.write);
    report.pss_bytes = pss_bytes();
    write_fully(report_fd, (const unsigned char *)&report, sizeof report);
    char byte;
    while (read(release_fd, &byte, 1) < 0 && errno == EINTR)
        continue;
    _exit(0);
}

/* The child ended without its report, or not cleanly. Its own "skipped" or error line is
 * already on stderr; a skip stays a skip. */
static void child_failed(int status) __attribute__((noreturn));

static void child_failed(int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIPPED)
        exit(EXIT_SKIPPED);
    if (WIFSIGNALED(status))
        fprintf(stderr, "probe: the forked child was killed by signal %d\n", WTERMSIG(status));
    else
        fprintf(stderr, "probe: the forked child exited with status %d\n", WEXITSTATUS(status));
    exit(EXIT_SYSTEM);
}

static void read_report(int fd, pid_t child, struct child_report *report)
{
    unsigned char *p = (unsigned char *)report;
    size_t left = sizeof *report;
    while (left > 0) {
        ssize_t got = read(fd, p, left);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            system_error("read (the forked child's report)");
        }
        if (got == 0) {
            int status;
            if (waitpid(child, &status, 0) != child)
                system_error("waitpid");
            child_failed(status);
        }
        p += got;
        left -= (size_t)got;
    }
}

/* Whether a child forked now sees the blocks holding `value`: a child that only reads them
 * and answers by its exit status, so that the timed child never reads before it writes. */
static uint64_t check_in_child(const struct blocks *b, const struct scenario *s,
                               unsigned char value)
{
    pid_t child = fork();
    if (child < 0)
        system_error("fork");
    if (child == 0)
        _exit(blocks_hold(b, s, b->page_bytes, value) ? 0 : 1);
    int status;
    if (waitpid(child, &status, 0) != child)
        system_error("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        child_failed(status);
    return WEXITSTATUS(status) == 0;
}

/* fork: the parent writes, forks; the child writes (run_child); the parent checks whether it
 * sees the child's write, then waits for it and frees. Whether a child sees the parent's data
 * (child_sees_parent) is checked by a second child, untimed: for shared memory before the
 * timed fork, as fork copies nothing of shared mappings and the timed fork does the same
 * work either way (after it, the memory holds the child's write); for private memory after
 * the timed child has written, as the parent's copy is still its own, and a fork before would
 * write-protect the parent's page table entries for the timed fork. */
static void run_fork(const struct context *c, const struct scenario *s, unsigned char value,
                     struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    int report_pipe[2], release_pipe[2];
    if (pipe2(report_pipe, O_CLOEXEC) != 0 || pipe2(release_pipe, O_CLOEXEC) != 0)
        system_error("pipe2");
    struct phase_start start;
    out->rss_before_bytes = resident_bytes(page);
    int shared = s->sharing == SHARING_SHARED && !is_heap_backing(s->backing);

    start_phase(&start);
    allocate_blocks(b, s);
    apply_access(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    observe(out, OBS_ALIGNMENT_BYTES, block_alignment(b));
    if (shared)
        observe(out, OBS_CHILD_SEES_PARENT, check_in_child(b, s, value));

    start_phase(&start);
    pid_t child = fork();
    if (child == 0)
        run_child(b, s, value, report_pipe, release_pipe);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);
    if (child < 0)
        system_error("fork");
    close(report_pipe[1]);
    close(release_pipe[0]);

    struct child_report report;
    read_report(report_pipe[0], child, &report);
    out->phases[PHASE_SECOND_PASS] = report.write;
    out->phases[PHASE_SECOND_PASS].rss_bytes = resident_bytes(page); /* the parent's */
    observe(out, OBS_CHILD_PSS_BYTES, report.pss_bytes);
    observe(out, OBS_PARENT_PSS_BYTES, pss_bytes());
    observe(out, OBS_PARENT_SEES_CHILD, blocks_hold(b, s, page, (unsigned char)(value + 1)));
    if (!shared)
        observe(out, OBS_CHILD_SEES_PARENT, check_in_child(b, s, value));
    close(report_pipe[0]);
    close(release_pipe[1]); /* the child may exit now */

    int status;
    start_phase(&start);
    pid_t waited = waitpid(child, &status, 0);
    release_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    if (waited != child)
        system_error("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        child_failed(status);
    finish_release(b, s);
    out->checksum = 0;
}

/* resize, by realloc: glibc grows in place where the next chunk is free, moves a chunk it
 * mapped by mremap, and otherwise copies. */
static void grow_by_realloc(const struct blocks *b, const struct blocks *grown)
{
    for (size_t i = 0; i < b->ops; i++) {
        unsigned char *p = realloc(b->at[i], grown->size_bytes);
        if (p == NULL)
            system_error("realloc");
        b->at[i] = p;
    }
}

/* resize, by mremap: the kernel extends the mapping where the addresses after it are free,
 * and otherwise moves its page table entries, not the bytes. */
static void grow_by_mremap(const struct blocks *b, const struct blocks *grown)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        void *p = mremap(b->at[i], b->map_bytes, grown->map_bytes, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            system_error("mremap");
        b->at[i] = p;
    }
}

/* resize, by copying: a new block (malloc, or mmap for mmap-anon), memcpy, free the old. */
static void grow_by_copy(const struct blocks *b, const struct scenario *s,
                         const struct blocks *grown)
{
    int heap = is_heap_backing(s->backing);
    for (size_t i = 0; i < b->ops; i++) {
        unsigned char *p;
        if (heap) {
            p = malloc(grown->size_bytes);
            if (p == NULL)
                system_error("malloc");
        } else {
            p = map_block(grown, s, map_flags(s), -1, 0);
        }
        memcpy(p, b->at[i], b->size_bytes);
        if (heap)
            free(b->at[i]);
        else if ((COUNT_SYSCALL(), munmap(b->at[i], b->map_bytes) != 0))
            system_error("munmap");
        b->at[i] = p;
    }
}

static __attribute__((noinline)) void grow_blocks(const struct blocks *b,
                                                  const struct scenario *s,
                                                  const struct blocks *grown)
{
    switch (s->grow_method) {
    case GROW_REALLOC:
        grow_by_realloc(b, grown);
        break;
    case GROW_MREMAP:
        grow_by_mremap(b, grown);
        break;
    case GROW_COPY:
        grow_by_copy(b, s, grown);
        break;
    case GROW_COUNT:
        break;
    }
}

static uint64_t count_moved(const struct blocks *b, unsigned char *const *previous)
{
    uint64_t moved = 0;
    for (size_t i = 0; i < b->ops; i++)
        moved += b->at[i] != previous[i];
    return moved;
}

/* resize: allocate, write the data, grow every block, free the grown blocks. */
static void run_resize(const struct context *c, const struct scenario *s, unsigned char value,
                       struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    struct blocks grown = *b;
    grown.size_bytes = b->size_bytes * s->grow_factor;
    grown.map_bytes = b->map_bytes * s->grow_factor;
    struct phase_start start;
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    allocate_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    observe(out, OBS_ALIGNMENT_BYTES, block_alignment(b));

    start_phase(&start);
    apply_access(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);
    memcpy(c->previous, b->at, b->ops * sizeof *b->at);

    start_phase(&start);
    grow_blocks(b, s, &grown);
    stop_phase(&start, page, &out->phases[PHASE_SECOND_PASS]);
    observe(out, OBS_BLOCKS_MOVED, count_moved(b, c->previous));
    observe(out, OBS_DATA_SURVIVED, blocks_hold(b, s, page, value));

    start_phase(&start);
    release_blocks(&grown, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    finish_release(&grown, s);
    out->checksum = 0;
}

/* One iteration: for file backings first the file's residency (evicted before, for cache
 * cold), then the workload. */
static void run_iteration(const struct context *c, const struct scenario *s,
                          unsigned char value, struct iteration_result *out)
{
    if (c->file_bytes > 0) {
        if (s->cache == CACHE_COLD)
            evict_file(c->blocks.fd);
        observe(out, OBS_RESIDENT_PPM_BEFORE, file_resident_ppm(c->blocks.fd, c->file_bytes,
                                                                c->blocks.page_bytes,
                                                                c->residency));
    }
    switch (s->workload) {
    case WORKLOAD_CYCLE:
        run_cycle(c, s, value, out);
        break;
    case WORKLOAD_FORK:
        run_fork(c, s, value, out);
        break;
    case WORKLOAD_RESIZE:
        run_resize(c, s, value, out);
        break;
    case WORKLOAD_COUNT:
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */

static void print_json_string_or_null(const char *text)
{
    /* Only names this file produces reach here: no character needs escaping. */
    if (text == NULL)
        fputs("null", stdout);
    else
        printf("\"%s\"", text);
}

static void print_result(size_t page, const char *file_fs, const struct iteration_result *results,
                         size_t count)
{
#ifdef __GLIBC__
    const char *libc_name = "glibc", *libc_version = gnu_get_libc_version();
#else
    const char *libc_name = "unknown", *libc_version = NULL;
#endif
    printf("{\"probe_version\": %d, \"libc\": {\"name\": \"%s\", \"version\": ", PROBE_VERSION,
           libc_name);
    print_json_string_or_null(libc_version);
    printf("}, \"page_size_bytes\": %zu, \"file_fs\": ", page);
    print_json_string_or_null(file_fs);
    fputs(", \"iterations\": [", stdout);
    for (size_t i = 0; i < count; i++) {
        const struct iteration_result *r = &results[i];
        printf("%s{\"warmup\": %s, \"rss_before_bytes\": %" PRIu64 ", \"checksum\": %" PRIu64
               ", \"phases\": {",
               i ? ", " : "", r->warmup ? "true" : "false", r->rss_before_bytes, r->checksum);
        for (int p = 0; p < PHASE_COUNT; p++) {
            const struct phase_result *ph = &r->phases[p];
            printf("%s\"%s\": {\"ns\": %" PRIu64 ", \"minor_faults\": %" PRIu64
                   ", \"major_faults\": %" PRIu64 ", \"rss_bytes\": %" PRIu64 "}",
                   p ? ", " : "", PHASE_NAMES[p], ph->ns, ph->minor_faults, ph->major_faults,
                   ph->rss_bytes);
        }
        fputs("}, \"observations\": {", stdout);
        const char *separator = "";
        for (int o = 0; o < OBS_COUNT; o++) {
            if (r->observed_mask & ((uint64_t)1 << o)) {
                printf("%s\"%s\": %" PRIu64, separator, OBSERVATION_NAMES[o], r->observed[o]);
                separator = ", ";
            }
        }
        fputs("}}", stdout);
    }
    fputs("]}\n", stdout);
    if (fflush(stdout) != 0)
        system_error("write stdout");
}

/* ------------------------------------------------------------------------------------------ */
/* Setting up                                                                                 */

/* Everything the iterations share, made before the first of them: the block list, the data
 * file, the random order, the threads. `file_fs` gets the data file's filesystem. */
static struct context prepare_context(const struct scenario *s, size_t page,
                                      uintptr_t heap_start, char *fs_buffer, size_t fs_size,
                                      const char **file_fs)
{
    /* Blocks of a file backing sit one page-rounded stride apart, so that every mapping
     * offset is page-aligned as mmap requires. */
    size_t stride = (s->size_bytes + page - 1) / page * page;
    if (stride < s->size_bytes || s->ops > SIZE_MAX / stride ||
        s->ops * stride > (uint64_t)INT64_MAX)
        usage_error("--ops times --size_bytes is too large");

    /* A hugetlb block is whole huge pages; a thp block whole pages (its tail is unmapped at a
     * page boundary). Every other mapping is exactly size_bytes, as the kernel rounds it. */
    size_t map_bytes = s->size_bytes;
    if (s->backing == BACKING_MMAP_HUGETLB) {
        map_bytes = (s->size_bytes + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
        if (map_bytes < s->size_bytes || s->ops > SIZE_MAX / map_bytes)
            usage_error("--ops times --size_bytes is too large");
    } else if (s->thp != THP_DEFAULT ||
               (s->backing == BACKING_POSIX_MEMALIGN && s->protection != PROTECTION_READ_WRITE)) {
        map_bytes = stride;
    }
    /* resize: the grown blocks, all of them, must fit too. */
    if (s->workload == WORKLOAD_RESIZE && stride > SIZE_MAX / s->grow_factor / s->ops)
        usage_error("--ops times --size_bytes times --grow_factor is too large");

    struct context c = {.heap_start = heap_start};
    struct blocks *b = &c.blocks;
    *b = (struct blocks){.ops = s->ops, .size_bytes = s->size_bytes, .map_bytes = map_bytes,
                         .stride_bytes = stride, .page_bytes = page, .fd = -1};
    *file_fs = NULL;
    if (is_file_backing(s->backing)) {
        *file_fs = filesystem_name(s->file_dir, fs_buffer, fs_size);
        c.file_bytes = s->ops * stride;
        b->fd = create_data_file(s->file_dir, (uint64_t)c.file_bytes);
        c.residency = map_scratch(c.file_bytes / page);
    }
    b->at = map_scratch(s->ops * sizeof *b->at);
    if (s->backing == BACKING_READ_FILE && s->read_buffer_bytes != 0) {
        /* map_scratch writes it: its page faults happen here, never in a timed phase */
        b->buffer_bytes = s->read_buffer_bytes;
        b->buffer = map_scratch(b->buffer_bytes);
        if (s->order == ORDER_RANDOM) {
            b->chunks_per_block = (s->size_bytes + b->buffer_bytes - 1) / b->buffer_bytes;
            b->chunk_count = s->ops * b->chunks_per_block;
            uint64_t *order = map_scratch(b->chunk_count * sizeof *order);
            shuffle_pages(order, b->chunk_count);
            b->chunk_order = order;
        }
    } else if (s->order == ORDER_RANDOM) {
        b->pages_per_block = stride / page;
        b->page_count = s->ops * b->pages_per_block;
        uint64_t *order = map_scratch(b->page_count * sizeof *order);
        shuffle_pages(order, b->page_count);
        b->order = order;
        b->pages = map_scratch(b->page_count * sizeof *b->pages);
    }
    if (s->workload == WORKLOAD_RESIZE)
        c.previous = map_scratch(s->ops * sizeof *c.previous);
    if (s->threads > 1)
        c.crew = start_crew(b, s);
    return c;
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    uintptr_t heap_start = current_brk(); /* before anything can move it */
    struct scenario s = parse_arguments(argc, argv);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char fs_buffer[32];
    const char *file_fs;
    struct context c = prepare_context(&s, page, heap_start, fs_buffer, sizeof fs_buffer,
                                       &file_fs);
    size_t count = s.warmup + s.iterations;
    struct iteration_result *results = map_scratch(count * sizeof *results);

    /* A throwaway measurement, so the first real phase does not pay for the first use of the
     * clock, getrusage and /proc (vDSO page, dentry lookups) in faults. */
    struct phase_start start;
    struct phase_result ignored;
    start_phase(&start);
    stop_phase(&start, page, &ignored);

    for (size_t i = 0; i < count; i++) {
        results[i].warmup = i < s.warmup;
        run_iteration(&c, &s, (unsigned char)(1 + (2 * i) % 254), &results[i]);
    }

    print_result(page, file_fs, results, count);
    return 0;
}
