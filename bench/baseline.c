/*
 * The plain-C side of bench/fidelity.py: each piece of work alloclab's probe times, written
 * again from scratch in the idiom of the classic microbenchmarks (lmbench's bw_mem and
 * bw_file_rd, will-it-scale's page_fault1), so that the benchmark compares the probe with
 * independent code and can disagree with it. Nothing here is taken from the probe.
 *
 *   baseline first-touch SIZE       fresh private anonymous mapping; time one store per
 *                                   page (will-it-scale page_fault1)
 *   baseline memset SIZE            mapping faulted in by one store per page; time libc
 *                                   memset over all of it (lmbench bw_mem bzero)
 *   baseline read-all SIZE          mapping faulted in by one store per page; time summing
 *                                   every 64-bit word with four independent accumulators
 *                                   (lmbench bw_mem rd, every word instead of a stride;
 *                                   SIZE a multiple of 128 bytes)
 *   baseline malloc-free SIZE OPS   OPS back-to-back pairs: malloc(SIZE), store a byte into
 *                                   it, free it (will-it-scale malloc1, with the store)
 *   baseline malloc-free-threads SIZE OPS THREADS
 *                                   THREADS threads made first, released together by one
 *                                   flag they spin on, each OPS back-to-back malloc(SIZE) +
 *                                   store + free pairs; timed from the release until every
 *                                   thread is joined (will-it-scale's threads mode)
 *   baseline mmap-munmap SIZE OPS   OPS back-to-back pairs: a private anonymous mapping of
 *                                   SIZE, a store into its first page, munmap (lmbench
 *                                   lat_mmap, will-it-scale mmap1); each mapping one of its
 *                                   own (see guard_mappings)
 *   baseline mmap-munmap-untouched SIZE OPS
 *                                   the same pairs without the store: the two system calls
 *                                   alone, no page fault
 *   baseline map-file FILE SIZE     the SIZE-byte FILE, read once so it is in the page cache,
 *                                   mapped read-only; time summing every 64-bit word through
 *                                   the mapping (its page faults included; the mmap call
 *                                   itself is not timed)
 *   baseline read-file FILE SIZE CHUNK
 *                                   the SIZE-byte FILE, read once so it is in the page
 *                                   cache; time read() of CHUNK bytes
 *                                   at a time into one reused page-aligned buffer until end
 *                                   of file (lmbench bw_file_rd, io_only)
 *   baseline write-file DIR SIZE CHUNK
 *                                   a SIZE-byte file of its own in DIR (unlinked at once),
 *                                   written, flushed and read back so it is clean in the page
 *                                   cache; time, CHUNK bytes at a time, filling one reused
 *                                   page-aligned buffer with memset and pwrite()-ing it to its
 *                                   place until the file is rewritten (fio's write, a
 *                                   program writing its output through a buffer)
 *   baseline populate SIZE          time one mmap of SIZE bytes of private anonymous memory
 *                                   with MAP_POPULATE: the kernel faults every page in inside
 *                                   the call (fio's and databases' pre-faulted buffers)
 *   baseline malloc-touch SIZE      malloc(SIZE) (glibc maps it: above its mmap threshold);
 *                                   time one store per page from the returned pointer on
 *                                   (will-it-scale page_fault1 over a malloc'd buffer)
 *   baseline thp-touch SIZE         posix_memalign to 2 MiB, madvise(MADV_HUGEPAGE) of the
 *                                   SIZE bytes; time one store per 4 KiB page (each 2 MiB
 *                                   takes one fault, a huge page zeroed whole)
 *   baseline map-file-cold FILE SIZE
 *                                   the SIZE-byte FILE (clean: written and flushed before),
 *                                   dropped from the page cache by posix_fadvise(DONTNEED)
 *                                   (fio's invalidate=1) and mapped read-only; time loading
 *                                   one byte per page through the mapping (fio's mmap engine
 *                                   reading, page by page)
 *   baseline malloc-touch-free SIZE OPS
 *                                   OPS back-to-back rounds: malloc(SIZE), one store per page,
 *                                   free (will-it-scale malloc1 with the buffer used)
 *   baseline grow-mremap SIZE STEPS a SIZE-byte private anonymous mapping, written page by
 *                                   page; time STEPS doublings by mremap(MREMAP_MAYMOVE), each
 *                                   followed by one store per page of the part it added (a
 *                                   growing buffer filled as it grows)
 *   baseline grow-realloc SIZE STEPS
 *                                   the same with malloc and realloc
 *   baseline warm SIZE              untimed, prints nothing: write one byte per page of a
 *                                   fresh SIZE-byte mapping and exit, so that in a virtual
 *                                   machine reporting free memory to its host the memory
 *                                   handed out next is backed (bench/fidelity.py runs it
 *                                   before each sample of a large first-touch family)
 *
 * FILE is the data file bench/fidelity.py writes and flushes once per family and hands to
 * both sides (the probe's through ALLOCLAB_DATA_FILE), so the two read the same blocks of
 * the same file: what each side does with it is its own.
 *
 * The read-all mapping is faulted in by writing, so every page is a page of memory of its
 * own, as the probe's read-all scenario leaves it (populate madv-populate-write): the sum
 * reads memory, not the kernel's one shared zero page, which would stay in cache.
 *
 * Prints one JSON line: {"ns": timed nanoseconds, "minor_faults": during the timed loop,
 * "checksum": what the loop computed (printed so the loop's result stays live),
 * "buffer_page_offset": the destination's offset into its page (read-file; 0 elsewhere),
 * "resident_ppm_before": the share of the file in the page cache right before the timed loop,
 * by mincore, in parts per million (map-file-cold; -1 elsewhere), "joined_neighbour": 1 when a
 * mapping made right before the loop joined a neighbouring one, 0 when it was one of its own
 * (mmap-munmap and mmap-munmap-untouched; -1 elsewhere)}.
 * Compiled by bench/fidelity.py with the probe's compiler and flags. Exit status 2 for a bad
 * command line, 3 when a system call fails.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The compiler must assume the memory behind `p` is read here: stores before it stay. */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

struct timed {
    struct timespec start;
    long faults_at_start;
};

/* What the mmap loops found before timing (guard_mappings); -1: not an mmap loop. */
static int joined_neighbour = -1;

static void die(const char *call)
{
    fprintf(stderr, "baseline: %s: %s\n", call, strerror(errno));
    exit(3);
}

static long minor_faults(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        die("getrusage");
    return usage.ru_minflt;
}

static void begin(struct timed *t)
{
    t->faults_at_start = minor_faults();
    clock_gettime(CLOCK_MONOTONIC, &t->start);
}

/* Stops the clock, then prints the result line (resident_ppm -1: not a cold file). */
static void end_with(const struct timed *t, uint64_t checksum, size_t page_offset,
                     long resident_ppm)
{
    struct timespec stop;
    clock_gettime(CLOCK_MONOTONIC, &stop);
    long faults = minor_faults() - t->faults_at_start;
    long long ns = (long long)(stop.tv_sec - t->start.tv_sec) * 1000000000LL +
                   (long long)(stop.tv_nsec - t->start.tv_nsec);
    printf("{\"ns\": %lld, \"minor_faults\": %ld, \"checksum\": %llu, "
           "\"buffer_page_offset\": %zu, \"resident_ppm_before\": %ld, "
           "\"joined_neighbour\": %d}\n",
           ns, faults, (unsigned long long)checksum, page_offset, resident_ppm,
           joined_neighbour);
}

static void end(const struct timed *t, uint64_t checksum, size_t page_offset)
{
    end_with(t, checksum, page_offset, -1);
}

static unsigned char *fresh_mapping(size_t bytes)
{
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        die("mmap");
    return m;
}

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static int first_touch(size_t bytes)
{
    size_t page = page_size();
    unsigned char *base = fresh_mapping(bytes);
    unsigned char *const stop = base + bytes;
    struct timed t;
    begin(&t);
    for (unsigned char *p = base; p < stop; p += page)
        *p = 1;
    KEEP(base);
    end(&t, 0, 0);
    return 0;
}

static int memset_faulted(size_t bytes)
{
    size_t page = page_size();
    unsigned char *base = fresh_mapping(bytes);
    for (size_t at = 0; at < bytes; at += page) /* fault every page in, untimed */
        base[at] = 1;
    KEEP(base);
    struct timed t;
    begin(&t);
    memset(base, 0x5a, bytes);
    KEEP(base);
    end(&t, 0, 0);
    return 0;
}

/* lmbench's rd, every word: four independent sums, so no add waits for the one before, and
 * a body unrolled to 16 words (two cache lines) per step, as lmbench unrolls rd, so the loop's
 * own overhead does not limit it when the data comes from cache. A function of its own, as in
 * lmbench: inlined into main, gcc -O2 leaves it scalar; on its own it is vectorised. */
static __attribute__((noinline)) uint64_t rd(const uint64_t *p, size_t words)
{
    const uint64_t *const last = p + words / 16 * 16;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    while (p < last) {
        s0 += p[0];
        s1 += p[1];
        s2 += p[2];
        s3 += p[3];
        s0 += p[4];
        s1 += p[5];
        s2 += p[6];
        s3 += p[7];
        s0 += p[8];
        s1 += p[9];
        s2 += p[10];
        s3 += p[11];
        s0 += p[12];
        s1 += p[13];
        s2 += p[14];
        s3 += p[15];
        p += 16;
    }
    return s0 + s1 + s2 + s3;
}

static int read_all(size_t bytes)
{
    if (bytes % (16 * sizeof(uint64_t)) != 0) {
        fputs("baseline: read-all SIZE must be a multiple of 128 bytes\n", stderr);
        return 2;
    }
    size_t page = page_size();
    unsigned char *base = fresh_mapping(bytes);
    /* Fault every page in by a store, so each is memory of its own (a zero byte: the
     * mapping's contents stay as the kernel gave them). */
    for (size_t at = 0; at < bytes; at += page)
        ((volatile unsigned char *)base)[at] = 0;
    KEEP(base);

    struct timed t;
    begin(&t);
    uint64_t sum = rd((const uint64_t *)(void *)base, bytes / sizeof(uint64_t));
    end(&t, sum, 0);
    return 0;
}

/* The data file bench/fidelity.py made for the family (written and flushed once, shared by
 * both sides and every round, as alloclab's processes of one scenario share one): opened
 * read-only, its length checked. */
static int open_file(const char *path, size_t bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open");
    struct stat info;
    if (fstat(fd, &info) != 0)
        die("fstat");
    if (!S_ISREG(info.st_mode) || (size_t)info.st_size != bytes) {
        fprintf(stderr, "baseline: %s: %lld bytes, not %zu\n", path, (long long)info.st_size,
                bytes);
        exit(2);
    }
    return fd;
}

/* The file, read once so every page is in the page cache. */
static int warm_file(const char *path, size_t bytes, unsigned char *buffer, size_t chunk)
{
    int fd = open_file(path, bytes);
    ssize_t n;
    while ((n = read(fd, buffer, chunk)) != 0)
        if (n < 0 && errno != EINTR)
            die("read");
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek");
    return fd;
}

static int read_file(const char *path, size_t bytes, size_t chunk)
{
    size_t page = page_size();
    unsigned char *buffer = fresh_mapping(chunk); /* page-aligned; faulted in by warm_file */
    int fd = warm_file(path, bytes, buffer, chunk);

    size_t total = 0;
    ssize_t n;
    struct timed t;
    begin(&t);
    while ((n = read(fd, buffer, chunk)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        total += (size_t)n;
    }
    KEEP(buffer);
    end(&t, total, (size_t)((uintptr_t)buffer % page));
    if (total != bytes) {
        fprintf(stderr, "baseline: read %zu bytes of a %zu-byte file\n", total, bytes);
        return 3;
    }
    return 0;
}

static int write_file(const char *dir, size_t bytes, size_t chunk)
{
    size_t page = page_size();
    char path[4096];
    snprintf(path, sizeof path, "%s/baseline-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp");
    if (unlink(path) != 0)
        die("unlink");
    unsigned char *buffer = fresh_mapping(chunk);
    for (size_t done = 0; done < bytes; done += chunk) { /* the file's first contents */
        memset(buffer, (int)(done / chunk) & 0xff, chunk);
        if (pwrite(fd, buffer, chunk, (off_t)done) != (ssize_t)chunk)
            die("pwrite");
    }
    if (fsync(fd) != 0)
        die("fsync");
    for (size_t done = 0; done < bytes; done += chunk) /* and cached, as the probe leaves it */
        if (pread(fd, buffer, chunk, (off_t)done) != (ssize_t)chunk)
            die("pread");

    size_t written = 0;
    struct timed t;
    begin(&t);
    for (off_t offset = 0; (size_t)offset < bytes; offset += (off_t)chunk) {
        memset(buffer, 0x5a, chunk);
        ssize_t n = pwrite(fd, buffer, chunk, offset);
        if (n != (ssize_t)chunk)
            die("pwrite");
        written += (size_t)n;
    }
    KEEP(buffer);
    end(&t, written, (size_t)((uintptr_t)buffer % page));
    close(fd);
    return 0;
}

static int malloc_free(size_t bytes, size_t ops)
{
    struct timed t;
    begin(&t);
    for (size_t i = 0; i < ops; i++) {
        unsigned char *p = malloc(bytes);
        if (p == NULL)
            die("malloc");
        p[0] = (unsigned char)i;
        KEEP(p); /* the pair must happen: gcc may drop a malloc whose memory nobody reads */
        free(p);
    }
    end(&t, 0, 0);
    return 0;
}

/* malloc-free-threads: each worker waits for the flag, then runs its pairs. */
struct pairs {
    size_t bytes, ops;
    atomic_int *go;
};

static void *pairs_worker(void *argument)
{
    const struct pairs *w = argument;
    while (!atomic_load_explicit(w->go, memory_order_acquire))
        ; /* spin, as will-it-scale's workers do: no wake-up latency inside the window */
    for (size_t i = 0; i < w->ops; i++) {
        unsigned char *p = malloc(w->bytes);
        if (p == NULL)
            die("malloc");
        p[0] = (unsigned char)i;
        KEEP(p);
        free(p);
    }
    return NULL;
}

static int malloc_free_threads(size_t bytes, size_t ops, size_t threads)
{
    enum { MOST_THREADS = 64 };
    if (threads < 1 || threads > MOST_THREADS) {
        fprintf(stderr, "baseline: THREADS must be 1 to %d\n", MOST_THREADS);
        return 2;
    }
    atomic_int go = 0;
    struct pairs work = {bytes, ops, &go};
    pthread_t workers[MOST_THREADS];
    for (size_t i = 0; i < threads; i++) {
        errno = pthread_create(&workers[i], NULL, pairs_worker, &work);
        if (errno != 0)
            die("pthread_create");
    }
    struct timed t;
    begin(&t);
    atomic_store_explicit(&go, 1, memory_order_release);
    for (size_t i = 0; i < threads; i++) {
        errno = pthread_join(workers[i], NULL);
        if (errno != 0)
            die("pthread_join");
    }
    end(&t, 0, 0);
    return 0;
}

/* Lines of /proc/self/maps: one per mapping. */
static long count_maps(void)
{
    char text[8192];
    long lines = 0;
    int fd = open("/proc/self/maps", O_RDONLY);
    if (fd < 0)
        die("open /proc/self/maps");
    ssize_t n;
    while ((n = read(fd, text, sizeof text)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += text[i] == '\n';
    close(fd);
    return lines;
}

/* A fresh mapping goes to the top of the highest gap it fits in, and it joins the mapping
 * right above it when that one is anonymous with the same protection. In a fresh process a
 * small one lands in the hole that ld.so's unmapped cache file left, right below ld.so's own
 * anonymous page, and joins it: mmap then extends ld.so's mapping and munmap splits it again,
 * other kernel work than making and removing a mapping (an untouched 4 KiB pair costs a
 * quarter more). lmbench's lat_mmap (a file mapping) and will-it-scale's mmap1 (128 MiB,
 * placed 2 MiB-aligned) time mappings of their own. So a PROT_NONE guard page is mapped
 * first, as glibc puts one at the end of each thread's stack: the loop's mappings go right
 * below it, and nothing joins a PROT_NONE page. Then one mapping like the loop's, made and
 * removed untimed, must add a line to /proc/self/maps; whether it did is printed, and the
 * bench fails a family whose two sides disagree. */
static void guard_mappings(size_t bytes)
{
    if (mmap(NULL, page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
        die("mmap");
    long before = count_maps();
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap");
    joined_neighbour = count_maps() != before + 1;
    if (munmap(p, bytes) != 0)
        die("munmap");
}

static int mmap_munmap(size_t bytes, size_t ops, int store)
{
    guard_mappings(bytes);
    struct timed t;
    begin(&t);
    for (size_t i = 0; i < ops; i++) {
        unsigned char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap");
        if (store)
            p[0] = (unsigned char)i;
        KEEP(p);
        if (munmap(p, bytes) != 0)
            die("munmap");
    }
    end(&t, 0, 0);
    return 0;
}

static int map_file(const char *path, size_t bytes)
{
    size_t chunk = (size_t)1 << 20;
    unsigned char *buffer = fresh_mapping(chunk);
    int fd = warm_file(path, bytes, buffer, chunk);
    const uint64_t *words = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (words == MAP_FAILED)
        die("mmap");
    struct timed t;
    begin(&t);
    uint64_t sum = rd(words, bytes / sizeof(uint64_t));
    end(&t, sum, 0);
    return 0;
}

static int populate(size_t bytes)
{
    struct timed t;
    begin(&t);
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (m == MAP_FAILED)
        die("mmap");
    KEEP(m);
    end(&t, 0, 0);
    return 0;
}

static int malloc_touch(size_t bytes)
{
    size_t page = page_size();
    unsigned char *buf = malloc(bytes);
    if (buf == NULL)
        die("malloc");
    struct timed t;
    begin(&t);
    for (size_t i = 0; i < bytes; i += page)
        buf[i] = 1;
    KEEP(buf);
    end(&t, 0, 0);
    return 0;
}

static int thp_touch(size_t bytes)
{
    size_t page = page_size(), huge = (size_t)2 << 20;
    void *m;
    int error = posix_memalign(&m, huge, bytes);
    if (error != 0) {
        errno = error;
        die("posix_memalign");
    }
    if (madvise(m, bytes, MADV_HUGEPAGE) != 0)
        die("madvise(MADV_HUGEPAGE)");
    unsigned char *base = m;
    struct timed t;
    begin(&t);
    for (size_t i = 0; i < bytes; i += page)
        base[i] = 1;
    KEEP(base);
    end(&t, 0, 0);
    return 0;
}

/* The share of the file's pages in the page cache, in parts per million (mincore through a
 * mapping of its own, which faults nothing in). */
static long cached_ppm(int fd, size_t bytes)
{
    size_t page = page_size(), pages = (bytes + page - 1) / page, cached = 0;
    void *m = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    unsigned char *vector = fresh_mapping(pages);
    if (m == MAP_FAILED)
        die("mmap");
    if (mincore(m, bytes, vector) != 0)
        die("mincore");
    for (size_t i = 0; i < pages; i++)
        cached += vector[i] & 1;
    munmap(m, bytes);
    munmap(vector, pages);
    return (long)(cached * 1000000 / pages);
}

static int map_file_cold(const char *path, size_t bytes)
{
    size_t page = page_size();
    int fd = open_file(path, bytes);
    int error = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (error != 0) {
        errno = error;
        die("posix_fadvise");
    }
    const volatile unsigned char *file = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED)
        die("mmap");
    long resident = cached_ppm(fd, bytes);
    uint64_t sum = 0;
    struct timed t;
    begin(&t);
    for (size_t i = 0; i < bytes; i += page)
        sum += file[i];
    end_with(&t, sum, 0, resident);
    return 0;
}

static int malloc_touch_free(size_t bytes, size_t ops)
{
    size_t page = page_size();
    struct timed t;
    begin(&t);
    for (size_t n = 0; n < ops; n++) {
        unsigned char *buf = malloc(bytes);
        if (buf == NULL)
            die("malloc");
        for (size_t i = 0; i < bytes; i += page)
            buf[i] = (unsigned char)n;
        KEEP(buf);
        free(buf);
    }
    end(&t, 0, 0);
    return 0;
}

/* One store per page of [from, to) of buf. */
static void fill_pages(unsigned char *buf, size_t from, size_t to, size_t page)
{
    for (size_t i = from; i < to; i += page)
        buf[i] = 1;
    KEEP(buf);
}

static int grow(size_t bytes, size_t steps, int by_realloc)
{
    size_t page = page_size(), have = bytes;
    unsigned char *buf = by_realloc ? malloc(bytes) : fresh_mapping(bytes);
    if (buf == NULL)
        die("malloc");
    fill_pages(buf, 0, bytes, page);
    struct timed t;
    begin(&t);
    for (size_t step = 0; step < steps; step++) {
        size_t want = have * 2;
        void *m = by_realloc ? realloc(buf, want) : mremap(buf, have, want, MREMAP_MAYMOVE);
        if (m == NULL || m == MAP_FAILED)
            die(by_realloc ? "realloc" : "mremap");
        buf = m;
        fill_pages(buf, have, want, page);
        have = want;
    }
    end(&t, 0, 0);
    return 0;
}

static int warm_memory(size_t bytes, int huge)
{
    size_t page = page_size();
    unsigned char *base = fresh_mapping(bytes);
    if (huge && madvise(base, bytes, MADV_HUGEPAGE) != 0)
        die("madvise(MADV_HUGEPAGE)");
    for (size_t i = 0; i < bytes; i += page)
        base[i] = 1;
    KEEP(base);
    return 0;
}

static size_t parse_bytes(const char *text)
{
    char *rest;
    errno = 0;
    unsigned long long value = strtoull(text, &rest, 10);
    if (errno != 0 || *rest != '\0' || value == 0) {
        fprintf(stderr, "baseline: '%s' is not a byte count\n", text);
        exit(2);
    }
    return (size_t)value;
}

int main(int argc, char **argv)
{
    /* The first calls of these fault in the vDSO data and stack pages: not in a timed window. */
    struct timed warm;
    begin(&warm);
    if (argc == 3 && strcmp(argv[1], "first-touch") == 0)
        return first_touch(parse_bytes(argv[2]));
    if (argc == 3 && strcmp(argv[1], "memset") == 0)
        return memset_faulted(parse_bytes(argv[2]));
    if (argc == 3 && strcmp(argv[1], "read-all") == 0)
        return read_all(parse_bytes(argv[2]));
    if (argc == 5 && strcmp(argv[1], "read-file") == 0)
        return read_file(argv[2], parse_bytes(argv[3]), parse_bytes(argv[4]));
    if (argc == 5 && strcmp(argv[1], "write-file") == 0)
        return write_file(argv[2], parse_bytes(argv[3]), parse_bytes(argv[4]));
    if (argc == 4 && strcmp(argv[1], "malloc-free") == 0)
        return malloc_free(parse_bytes(argv[2]), parse_bytes(argv[3]));
    if (argc == 5 && strcmp(argv[1], "malloc-free-threads") == 0)
        return malloc_free_threads(parse_bytes(argv[2]), parse_bytes(argv[3]),
                                   parse_bytes(argv[4]));
    if (argc == 4 && strcmp(argv[1], "mmap-munmap") == 0)
        return mmap_munmap(parse_bytes(argv[2]), parse_bytes(argv[3]), 1);
    if (argc == 4 && strcmp(argv[1], "mmap-munmap-untouched") == 0)
        return mmap_munmap(parse_bytes(argv[2]), parse_bytes(argv[3]), 0);
    if (argc == 4 && strcmp(argv[1], "map-file") == 0)
        return map_file(argv[2], parse_bytes(argv[3]));
    if (argc == 3 && strcmp(argv[1], "warm") == 0)
        return warm_memory(parse_bytes(argv[2]), 0);
    if (argc == 3 && strcmp(argv[1], "warm-huge") == 0)
        return warm_memory(parse_bytes(argv[2]), 1);
    if (argc == 3 && strcmp(argv[1], "populate") == 0)
        return populate(parse_bytes(argv[2]));
    if (argc == 3 && strcmp(argv[1], "malloc-touch") == 0)
        return malloc_touch(parse_bytes(argv[2]));
    if (argc == 3 && strcmp(argv[1], "thp-touch") == 0)
        return thp_touch(parse_bytes(argv[2]));
    if (argc == 4 && strcmp(argv[1], "map-file-cold") == 0)
        return map_file_cold(argv[2], parse_bytes(argv[3]));
    if (argc == 4 && strcmp(argv[1], "malloc-touch-free") == 0)
        return malloc_touch_free(parse_bytes(argv[2]), parse_bytes(argv[3]));
    if (argc == 4 && strcmp(argv[1], "grow-mremap") == 0)
        return grow(parse_bytes(argv[2]), parse_bytes(argv[3]), 0);
    if (argc == 4 && strcmp(argv[1], "grow-realloc") == 0)
        return grow(parse_bytes(argv[2]), parse_bytes(argv[3]), 1);
    fputs("usage: baseline first-touch|memset|read-all|populate|malloc-touch|thp-touch|warm "
          "SIZE |\n"
          "       read-file FILE SIZE CHUNK | write-file DIR SIZE CHUNK |\n"
          "       map-file|map-file-cold FILE SIZE |\n"
          "       malloc-free|mmap-munmap|mmap-munmap-untouched|malloc-touch-free SIZE OPS |\n"
          "       malloc-free-threads SIZE OPS THREADS |\n"
          "       grow-mremap|grow-realloc SIZE STEPS\n", stderr);
    return 2;
}
