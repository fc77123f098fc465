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
 *   baseline mmap-munmap SIZE OPS   OPS back-to-back pairs: a private anonymous mapping of
 *                                   SIZE, a store into its first page, munmap (lmbench
 *                                   lat_mmap, will-it-scale mmap1)
 *   baseline map-file DIR SIZE      a SIZE-byte warm file in DIR mapped read-only; time
 *                                   summing every 64-bit word through the mapping (its page
 *                                   faults included; the mmap call itself is not timed)
 *   baseline read-file DIR SIZE CHUNK
 *                                   a SIZE-byte file in DIR, written, flushed and read once
 *                                   so it is in the page cache; time read() of CHUNK bytes
 *                                   at a time into one reused page-aligned buffer until end
 *                                   of file (lmbench bw_file_rd, io_only)
 *
 * The read-all mapping is faulted in by writing, so every page is a page of memory of its
 * own, as the probe's read-all scenario leaves it (populate madv-populate-write): the sum
 * reads memory, not the kernel's one shared zero page, which would stay in cache.
 *
 * Prints one JSON line: {"ns": timed nanoseconds, "minor_faults": during the timed loop,
 * "checksum": what the loop computed (printed so the loop's result stays live),
 * "buffer_page_offset": the destination's offset into its page (read-file; 0 elsewhere)}.
 * Compiled by bench/fidelity.py with the probe's compiler and flags. Exit status 2 for a bad
 * command line, 3 when a system call fails.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The compiler must assume the memory behind `p` is read here: stores before it stay. */
#define KEEP(p) __asm__ volatile("" : : "r"(p) : "memory")

struct timed {
    struct timespec start;
    long faults_at_start;
};

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

/* Stops the clock, then prints the result line. */
static void end(const struct timed *t, uint64_t checksum, size_t page_offset)
{
    struct timespec stop;
    clock_gettime(CLOCK_MONOTONIC, &stop);
    long faults = minor_faults() - t->faults_at_start;
    long long ns = (long long)(stop.tv_sec - t->start.tv_sec) * 1000000000LL +
                   (long long)(stop.tv_nsec - t->start.tv_nsec);
    printf("{\"ns\": %lld, \"minor_faults\": %ld, \"checksum\": %llu, "
           "\"buffer_page_offset\": %zu}\n",
           ns, faults, (unsigned long long)checksum, page_offset);
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

/* The file: created in `dir`, unlinked at once, filled, flushed to disk (so no writeback
 * runs during the timed reads) and read once so every page is in the page cache. */
static int warm_file(const char *dir, size_t bytes, unsigned char *buffer, size_t chunk)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/alloclab-bench-XXXXXX", dir) >= sizeof path) {
        fputs("baseline: directory name too long\n", stderr);
        exit(2);
    }
    int fd = mkstemp(path);
    if (fd < 0)
        die("mkstemp");
    if (unlink(path) != 0)
        die("unlink");
    for (size_t i = 0; i < chunk; i++)
        buffer[i] = (unsigned char)(i * 7 + 3);
    for (size_t done = 0; done < bytes;) {
        size_t want = bytes - done < chunk ? bytes - done : chunk;
        ssize_t n = write(fd, buffer, want);
        if (n < 0 && errno != EINTR)
            die("write");
        if (n > 0)
            done += (size_t)n;
    }
    if (fsync(fd) != 0)
        die("fsync");
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek");
    ssize_t n;
    while ((n = read(fd, buffer, chunk)) != 0)
        if (n < 0 && errno != EINTR)
            die("read");
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek");
    return fd;
}

static int read_file(const char *dir, size_t bytes, size_t chunk)
{
    size_t page = page_size();
    unsigned char *buffer = fresh_mapping(chunk); /* page-aligned; faulted in by warm_file */
    int fd = warm_file(dir, bytes, buffer, chunk);

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

static int mmap_munmap(size_t bytes, size_t ops)
{
    struct timed t;
    begin(&t);
    for (size_t i = 0; i < ops; i++) {
        unsigned char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap");
        p[0] = (unsigned char)i;
        KEEP(p);
        if (munmap(p, bytes) != 0)
            die("munmap");
    }
    end(&t, 0, 0);
    return 0;
}

static int map_file(const char *dir, size_t bytes)
{
    size_t chunk = (size_t)1 << 20;
    unsigned char *buffer = fresh_mapping(chunk);
    int fd = warm_file(dir, bytes, buffer, chunk);
    const uint64_t *words = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (words == MAP_FAILED)
        die("mmap");
    struct timed t;
    begin(&t);
    uint64_t sum = rd(words, bytes / sizeof(uint64_t));
    end(&t, sum, 0);
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
    if (argc == 4 && strcmp(argv[1], "malloc-free") == 0)
        return malloc_free(parse_bytes(argv[2]), parse_bytes(argv[3]));
    if (argc == 4 && strcmp(argv[1], "mmap-munmap") == 0)
        return mmap_munmap(parse_bytes(argv[2]), parse_bytes(argv[3]));
    if (argc == 4 && strcmp(argv[1], "map-file") == 0)
        return map_file(argv[2], parse_bytes(argv[3]));
    fputs("usage: baseline first-touch|memset|read-all SIZE | read-file DIR SIZE CHUNK |\n"
          "       malloc-free|mmap-munmap SIZE OPS | map-file DIR SIZE\n", stderr);
    return 2;
}
