/*
 * Per-operation latencies (--latency=histogram): reading percentiles off the histogram
 * latency.h records into, merging the threads' histograms, the clock's own cost, and the
 * JSON of both. The timed loops themselves are in churn.c (each pair) and cycle.c (each
 * page's first write).
 */
#include "probe.h"

/* The smallest latency bucket `bucket` holds (latency_bucket's inverse). */
uint64_t latency_bucket_lower_ns(size_t bucket)
{
    const size_t exact = (size_t)1 << LATENCY_SUB_BITS;
    if (bucket < exact)
        return bucket;
    size_t shift = (bucket >> LATENCY_SUB_BITS) - 1;
    return (uint64_t)((bucket & (exact - 1)) + exact) << shift;
}

/* How many nanoseconds bucket `bucket` spans: 1 in the exact range, 2^shift above. */
uint64_t latency_bucket_width_ns(size_t bucket)
{
    if (bucket < ((size_t)1 << LATENCY_SUB_BITS))
        return 1;
    return (uint64_t)1 << ((bucket >> LATENCY_SUB_BITS) - 1);
}

/* The latency at `per_million` (500000: the median) by nearest rank: the bucket holding the
 * ceil(count * q)-th smallest latency, read as its middle (never above the exact maximum).
 * 0 for an empty histogram. */
uint64_t latency_percentile_ns(const struct latency_histogram *h, uint64_t per_million)
{
    if (h->count == 0)
        return 0;
    /* count * per_million fits: count < 2^44 (2 PB of ops) keeps the product below 2^64 */
    uint64_t rank = (h->count * per_million + PPM - 1) / PPM;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t bucket = 0; bucket < LATENCY_BUCKETS; bucket++) {
        seen += h->buckets[bucket];
        if (seen >= rank) {
            uint64_t middle = latency_bucket_lower_ns(bucket) +
                              (latency_bucket_width_ns(bucket) - 1) / 2;
            return middle < h->max_ns ? middle : h->max_ns;
        }
    }
    return h->max_ns;
}

void merge_latency(struct latency_histogram *into, const struct latency_histogram *from)
{
    for (size_t bucket = 0; bucket < LATENCY_BUCKETS; bucket++)
        into->buckets[bucket] += from->buckets[bucket];
    into->count += from->count;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
}

#define CLOCK_SAMPLES 255

/* What two back-to-back clock reads measure with nothing between them: the median of
 * CLOCK_SAMPLES such intervals (lmbench's timing overhead, HdrHistogram's "measure your
 * measurement"). Every recorded latency contains about this much clock besides its
 * operation; it is reported (latency_clock_ns), not subtracted, since subtracting a typical
 * value from single intervals would bias the fastest ones (an interval can be shorter than
 * the median overhead). Untimed: called after the phase. */
uint64_t clock_overhead_ns(void)
{
    uint64_t samples[CLOCK_SAMPLES];
    for (size_t i = 0; i < CLOCK_SAMPLES; i++) {
        uint64_t start = clock_ns();
        samples[i] = clock_ns() - start;
    }
    /* insertion sort: 255 values, outside any timed window */
    for (size_t i = 1; i < CLOCK_SAMPLES; i++)
        for (size_t j = i; j > 0 && samples[j - 1] > samples[j]; j--) {
            uint64_t swap = samples[j];
            samples[j] = samples[j - 1];
            samples[j - 1] = swap;
        }
    return samples[CLOCK_SAMPLES / 2];
}

/* `count` empty histograms in scratch memory, their pages faulted in now, never in a phase. */
struct latency_histogram *map_latency_histograms(size_t count)
{
    return map_scratch(count * sizeof(struct latency_histogram));
}

/* The percentiles as observations (names in runner/core/observations.py), each after
 * `separator` and then ", ". */
void print_latency_observations(const struct latency_histogram *h, uint64_t clock,
                                const char *separator)
{
    static const struct {
        const char *name;
        uint64_t per_million;
    } PERCENTILES[] = {{"latency_p50_ns", 500000},
                       {"latency_p90_ns", 900000},
                       {"latency_p99_ns", 990000},
                       {"latency_p999_ns", 999000}};
    for (size_t i = 0; i < sizeof PERCENTILES / sizeof PERCENTILES[0]; i++) {
        printf("%s\"%s\": %" PRIu64, separator, PERCENTILES[i].name,
               latency_percentile_ns(h, PERCENTILES[i].per_million));
        separator = ", ";
    }
    printf(", \"latency_max_ns\": %" PRIu64 ", \"latency_count\": %" PRIu64
           ", \"latency_clock_ns\": %" PRIu64, h->max_ns, h->count, clock);
}

/* The raw histogram: {"sub_bucket_bits", "count", "max_ns", "buckets": [[lower_ns, count],
 * ...]} with the non-empty buckets in rising order; a bucket spans lower_ns to the next
 * bucket's lower_ns (runner/probe/native.py reads it back). */
void print_latency_buckets(const struct latency_histogram *h)
{
    printf("{\"sub_bucket_bits\": %d, \"count\": %" PRIu64 ", \"max_ns\": %" PRIu64
           ", \"buckets\": [",
           LATENCY_SUB_BITS, h->count, h->max_ns);
    const char *separator = "";
    for (size_t bucket = 0; bucket < LATENCY_BUCKETS; bucket++) {
        if (h->buckets[bucket] == 0)
            continue;
        printf("%s[%" PRIu64 ", %" PRIu64 "]", separator, latency_bucket_lower_ns(bucket),
               h->buckets[bucket]);
        separator = ", ";
    }
    fputs("]}", stdout);
}
