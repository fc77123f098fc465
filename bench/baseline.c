/*
 * The plain-C reference for bench/fidelity.py: the work of one probe phase with nothing around
 * it, so the benchmark can tell whether alloclab's probe adds anything to what it measures.
 *
 *   baseline first-touch SIZE_BYTES   write one byte per page of a fresh private anonymous
 *                                     mapping (the probe's write-page first_touch)
 *   baseline memset SIZE_BYTES        memset an already-faulted mapping (the probe's
 *                                     write-all second_pass)
 *
 * Prints the nanoseconds of the timed loop on stdout. Compiled with the probe's compiler
 * and flags.
 */
#define _GNU_SOURCE

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "first-touch") != 0 && strcmp(argv[1], "memset") != 0)) {
        fputs("usage: baseline first-touch|memset SIZE_BYTES\n", stderr);
        return 2;
    }
    int first_touch = strcmp(argv[1], "first-touch") == 0;
    size_t size = (size_t)strtoull(argv[2], NULL, 10);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 3;
    }
    if (!first_touch) {
        memset(p, 1, size); /* fault every page in, as the probe's first_touch did */
        ESCAPE(p);
    }

    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    if (first_touch) {
        for (size_t offset = 0; offset < size; offset += page)
            p[offset] = 2;
    } else {
        memset(p, 2, size);
    }
    ESCAPE(p);
    clock_gettime(CLOCK_MONOTONIC, &end);

    int64_t ns = (int64_t)(end.tv_sec - start.tv_sec) * 1000000000LL +
                 (end.tv_nsec - start.tv_nsec);
    printf("%lld\n", (long long)ns);
    munmap(p, size);
    return 0;
}
