/*
 * The plain-C side of bench/latency_fidelity.py: the latency of each malloc/free pair
 * measured again from scratch, without a histogram. Every pair's latency is kept in an array
 * allocated (and faulted in) before the loop, the array is sorted after it, and the
 * percentiles are read by nearest rank: the exact answer the probe's buckets approximate.
 * Nothing here is taken from the probe.
 *
 *   latency_baseline SIZE OPS    OPS back-to-back pairs (will-it-scale malloc1's loop, with a
 *                                store): clock, malloc(SIZE), store a byte, free, clock;
 *                                prints {"p50_ns": N, "p99_ns": N, "count": N}
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The value of rank ceil(count * percent / 100) among the sorted latencies. */
static uint64_t rank(const uint64_t *sorted, size_t count, size_t percent)
{
    size_t r = (count * percent + 99) / 100;
    return sorted[(r == 0 ? 1 : r) - 1];
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: latency_baseline SIZE OPS\n", stderr);
        return 2;
    }
    size_t size = strtoull(argv[1], NULL, 10), ops = strtoull(argv[2], NULL, 10);
    uint64_t *latency = mmap(NULL, ops * sizeof *latency, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (latency == MAP_FAILED) {
        perror("mmap");
        return 3;
    }
    memset(latency, 0, ops * sizeof *latency);
    for (size_t i = 0; i < ops; i++) {
        uint64_t start = now_ns();
        volatile char *p = malloc(size);
        if (p == NULL) {
            perror("malloc");
            return 3;
        }
        p[0] = (char)i;
        free((void *)p);
        latency[i] = now_ns() - start;
    }
    qsort(latency, ops, sizeof *latency, by_value);
    printf("{\"p50_ns\": %llu, \"p99_ns\": %llu, \"count\": %zu}\n",
           (unsigned long long)rank(latency, ops, 50),
           (unsigned long long)rank(latency, ops, 99), ops);
    return 0;
}
