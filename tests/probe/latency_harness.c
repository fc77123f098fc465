/*
 * A test harness for the probe's latency histogram (runner/probe/latency.c): reads latencies
 * in ns from stdin, one per line, records them, and prints one JSON object: each value's bucket
 * (its lower bound and width), the percentiles the probe would report, and the raw buckets.
 * tests/probe/test_latency.py compiles it with latency.c and checks it against exact answers.
 */
#include "probe.h"

/* The one probe function latency.c calls. */
void *map_scratch(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        exit(3);
    return p;
}

int main(void)
{
    struct latency_histogram *h = map_latency_histograms(1);
    uint64_t value;
    fputs("{\"placed\": [", stdout);
    const char *separator = "";
    while (scanf("%" SCNu64, &value) == 1) {
        size_t bucket = latency_bucket(value);
        record_latency(h, value);
        printf("%s[%" PRIu64 ", %" PRIu64 ", %" PRIu64 "]", separator, value,
               latency_bucket_lower_ns(bucket), latency_bucket_width_ns(bucket));
        separator = ", ";
    }
    fputs("], \"observations\": {", stdout);
    print_latency_observations(h, 0, "");
    fputs("}, \"latency\": ", stdout);
    print_latency_buckets(h);
    fputs("}\n", stdout);
    return 0;
}
