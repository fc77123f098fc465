/*
 * Per-operation latencies (--latency=histogram): a log-bucketed histogram in the manner of
 * HdrHistogram, a fixed array of counters with LATENCY_SUB_BITS bits of precision per power of
 * two, so that recording one latency is a bit scan, a shift and an increment: no allocation,
 * no system call, no branch on the data beyond the exact range. probe.h includes this header;
 * latency.c holds the rest (percentiles, merging, the JSON, the timed loops of cycle).
 */
#ifndef ALLOCLAB_LATENCY_H
#define ALLOCLAB_LATENCY_H

#include <stdint.h>
#include <time.h>

enum latency { LATENCY_OFF, LATENCY_HISTOGRAM, LATENCY_COUNT };

/* Values below 2^LATENCY_SUB_BITS ns have a bucket each; above, every power of two
 * [2^e, 2^(e+1)) is split into 2^LATENCY_SUB_BITS equal buckets of 2^(e - SUB_BITS) ns, so a
 * bucket is at most 1/128 of its values wide (0.78%): a percentile read as its bucket's middle
 * is within 0.4% of the exact one. Values from 2^LATENCY_TOP_BIT ns (18 minutes) share the
 * last bucket. (runner/probe/native.py LATENCY_SUB_BUCKET_BITS says the same.) */
#define LATENCY_SUB_BITS 7
#define LATENCY_TOP_BIT 40
#define LATENCY_BUCKETS ((size_t)(LATENCY_TOP_BIT - LATENCY_SUB_BITS + 1) << LATENCY_SUB_BITS)

struct latency_histogram {
    uint64_t count;  /* latencies recorded: the sum of buckets */
    uint64_t max_ns; /* the largest, exactly */
    uint64_t buckets[LATENCY_BUCKETS];
};

/* The bucket of a latency. */
static inline size_t latency_bucket(uint64_t ns)
{
    const uint64_t exact = (uint64_t)1 << LATENCY_SUB_BITS, top = (uint64_t)1 << LATENCY_TOP_BIT;
    if (ns < exact)
        return (size_t)ns;
    if (ns >= top)
        ns = top - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* 2^e <= ns < 2^(e+1), e >= SUB_BITS */
    unsigned shift = e - LATENCY_SUB_BITS;
    return ((size_t)(shift + 1) << LATENCY_SUB_BITS) + (size_t)((ns >> shift) - exact);
}

static inline void record_latency(struct latency_histogram *h, uint64_t ns)
{
    h->buckets[latency_bucket(ns)]++;
    h->count++;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

/* CLOCK_MONOTONIC in ns: a vDSO call, no system call where the clock source allows it. */
static inline uint64_t clock_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Runs `body` between two clock reads and records the interval in `h`, or just runs it when
 * `h` is NULL: in an always_inline loop given a constant NULL the clock reads vanish, so the
 * loop without histogram is the loop it always was. */
#define TIMED(h, body)                                                                         \
    do {                                                                                       \
        uint64_t timed_start_ = (h) != NULL ? clock_ns() : 0;                                  \
        body;                                                                                  \
        if ((h) != NULL)                                                                       \
            record_latency((h), clock_ns() - timed_start_);                                    \
    } while (0)

/* latency.c */
uint64_t latency_bucket_lower_ns(size_t bucket);
uint64_t latency_bucket_width_ns(size_t bucket);
uint64_t latency_percentile_ns(const struct latency_histogram *h, uint64_t per_million);
void merge_latency(struct latency_histogram *into, const struct latency_histogram *from);
uint64_t clock_overhead_ns(void);
struct latency_histogram *map_latency_histograms(size_t count);
void print_latency_observations(const struct latency_histogram *h, uint64_t clock_ns,
                                const char *separator);
void print_latency_buckets(const struct latency_histogram *h);

#endif
