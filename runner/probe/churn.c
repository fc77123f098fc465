/*
 * The churn workload: `ops` times (allocate one block, apply the access pattern to it, release
 * it), back to back in one timed window — the latency of an allocate-use-release pair, as
 * lmbench (lat_mem, lat_mmap) and will-it-scale (malloc1, mmap1) measure it. Only one block
 * is alive at a time (in each thread), unlike cycle's batch of `ops` live blocks. The whole loop
 * is the allocate slot; first_touch, second_pass and free are empty (0 ns, no faults).
 * With --threads=N each of N threads runs its own `ops` pairs at the same time, as
 * will-it-scale's per-task loops do: the crew (threads.c) starts them at one barrier and the
 * allocate slot ends when the last of them is done; each thread also times its own loop, and the
 * slowest of those is the observation slowest_thread_ns.
 * With --latency=histogram each pair also lies between two clock reads of its own and goes
 * into the iteration's histogram (each thread's its own, merged after the window): the window
 * then holds those reads too, about two per pair (latency_clock_ns says how long one takes).
 */
#include "probe.h"

/* malloc and calloc: the loop written out, nothing between the calls but the access pattern,
 * so a pair costs what it costs in a plain C loop (no call through allocate_blocks per
 * block). ESCAPE keeps the compiler from dropping a malloc/free pair whose block is unused. */
/* The commonest latency pair, malloc of at most a page and one store into it (write-page),
 * as its own loop: nothing but malloc, the store and free, so the figure is the allocator's
 * (the general loop's per-pair switch and trim test cost a few cycles, 10-20% of a 16-byte
 * pair). */
/* Each loop below is written once, always inline, and instantiated twice: with `latency`
 * NULL (a constant, so TIMED leaves no clock read behind: the loop every scenario without
 * --latency runs) and with the iteration's histogram, where each pair lies between two clock
 * reads (TIMED) and is recorded. */
static inline __attribute__((always_inline)) void malloc_store_pairs(
    size_t ops, size_t size, unsigned char value, struct latency_histogram *latency)
{
    for (size_t i = 0; i < ops; i++) {
        TIMED(latency, {
            unsigned char *p = malloc(size);
            if (p == NULL)
                system_error("malloc");
            p[0] = value;
            ESCAPE(p);
            free(p);
        });
    }
}

static __attribute__((noinline)) uint64_t churn_malloc_store(size_t ops, size_t size,
                                                             unsigned char value)
{
    malloc_store_pairs(ops, size, value, NULL);
    return 0;
}

static __attribute__((noinline)) uint64_t churn_malloc_store_timed(
    size_t ops, size_t size, unsigned char value, struct latency_histogram *latency)
{
    malloc_store_pairs(ops, size, value, latency);
    return 0;
}

static inline __attribute__((always_inline)) uint64_t heap_pairs(
    const struct blocks *b, const struct scenario *s, unsigned char value,
    struct latency_histogram *latency)
{
    /* Locals, not fields: ESCAPE's memory clobber would reload every field each pair. */
    const int zeroed = s->backing == BACKING_CALLOC, trim = s->release == RELEASE_MALLOC_TRIM;
    const size_t ops = b->ops, size = b->size_bytes, page = b->page_bytes;
    const enum access access = s->access;
    if (!zeroed && !trim && access == ACCESS_WRITE_PAGE && size <= page)
        return latency == NULL ? churn_malloc_store(ops, size, value)
                               : churn_malloc_store_timed(ops, size, value, latency);
    uint64_t sum = 0;
    for (size_t i = 0; i < ops; i++) {
        TIMED(latency, {
            unsigned char *p = zeroed ? calloc(1, size) : malloc(size);
            if (p == NULL)
                system_error(zeroed ? "calloc" : "malloc");
            sum += access_range(p, size, 0, page, access, value);
            ESCAPE(p);
            free(p);
            if (trim)
                allocator_trim();
        });
    }
    return sum;
}

static __attribute__((noinline)) uint64_t churn_heap(const struct blocks *b,
                                                     const struct scenario *s,
                                                     unsigned char value,
                                                     struct latency_histogram *latency)
{
    return latency == NULL ? heap_pairs(b, s, value, NULL) : heap_pairs(b, s, value, latency);
}

/* mmap-anon as plain as it comes (no thp, advice or populate, not exec, released by munmap):
 * the pair written out, nothing between mmap and munmap but the access pattern, as in a plain C
 * loop. Through allocate_blocks and release_blocks (their switches, the flags worked out
 * again, two counted system calls) an untouched 4 KiB pair cost 2.4% more, one with a store
 * 1.6%, than independent plain C. */
static inline __attribute__((always_inline)) uint64_t mapping_pairs(
    size_t ops, size_t map_bytes, size_t size, size_t page, int protection, int flags,
    enum access access, unsigned char value, struct latency_histogram *latency)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < ops; i++) {
        TIMED(latency, {
            unsigned char *p = mmap(NULL, map_bytes, protection, flags, -1, 0);
            if (p == MAP_FAILED)
                system_error("mmap");
            sum += access_range(p, size, 0, page, access, value);
            ESCAPE(p);
            if (munmap(p, map_bytes) != 0)
                system_error("munmap");
        });
    }
    return sum;
}

static __attribute__((noinline)) uint64_t churn_mappings(size_t ops, size_t map_bytes,
                                                         size_t size, size_t page,
                                                         int protection, int flags,
                                                         enum access access, unsigned char value,
                                                         struct latency_histogram *latency)
{
    if (latency == NULL)
        return mapping_pairs(ops, map_bytes, size, page, protection, flags, access, value,
                             NULL);
    return mapping_pairs(ops, map_bytes, size, page, protection, flags, access, value,
                         latency);
}

/* Whether churn_mappings does for this scenario what churn_blocks would. */
static int plain_mapping(const struct scenario *s)
{
    return s->backing == BACKING_MMAP_ANON && s->thp == THP_DEFAULT &&
           s->advice == ADVICE_NONE && s->populate == POPULATE_NONE &&
           s->protection != PROTECTION_EXEC && s->release == RELEASE_MUNMAP;
}

/* Every other backing: one block at a time through the backing's own allocate and release
 * (a system call or more per block, beside which a function call is nothing). Block i is
 * block i of the data file for file backings, as in cycle. */
static inline __attribute__((always_inline)) uint64_t block_pairs(
    const struct blocks *b, const struct scenario *s, unsigned char value,
    struct latency_histogram *latency)
{
    struct blocks one = *b;
    one.ops = 1;
    uint64_t sum = 0;
    for (size_t i = 0; i < b->ops; i++) {
        one.at = b->at + i;
        one.first = b->first + i;
        TIMED(latency, {
            allocate_blocks(&one, s);
            sum += access_range(one.at[0], b->size_bytes, 0, b->page_bytes, s->access, value);
            release_blocks(&one, s);
        });
    }
    return sum;
}

static __attribute__((noinline)) uint64_t churn_blocks(const struct blocks *b,
                                                       const struct scenario *s,
                                                       unsigned char value,
                                                       struct latency_histogram *latency)
{
    return latency == NULL ? block_pairs(b, s, value, NULL) : block_pairs(b, s, value, latency);
}

/* mmap-anon: 1 when one block, allocated and released as the loop does it (untimed, after
 * the loop, so the address space is as every pair found it), joined a neighbouring mapping
 * instead of becoming a mapping of its own: then each pair's mmap extended that mapping and
 * its munmap split it again (fence_blocks in probe.c keeps this from happening). */
static uint64_t block_joins_neighbour(const struct blocks *b, const struct scenario *s)
{
    struct blocks one = *b;
    one.ops = 1;
    uint64_t before = count_mappings();
    allocate_blocks(&one, s);
    uint64_t with = count_mappings();
    release_blocks(&one, s);
    return with != before + 1;
}

/* Which of the loops above a scenario's pairs take, and the mmap arguments of the plain one:
 * worked out before the timed window, so the window holds the loop alone. */
struct pair_loop {
    int heap, plain, protection, flags;
};

static struct pair_loop plan_pairs(const struct scenario *s)
{
    return (struct pair_loop){
        .heap = s->backing == BACKING_MALLOC || s->backing == BACKING_CALLOC,
        .plain = plain_mapping(s), .protection = PROTECTION_BITS[s->protection],
        .flags = map_flags(s)};
}

/* `b->ops` pairs, by the loop `loop` chose, each recorded in `latency` unless it is NULL;
 * returns the sum of what the access pattern read. */
static inline __attribute__((always_inline)) uint64_t run_pairs(const struct blocks *b,
                                                                 const struct scenario *s,
                                                                 const struct pair_loop *loop,
                                                                 unsigned char value,
                                                                 struct latency_histogram *latency)
{
    if (loop->heap)
        return churn_heap(b, s, value, latency);
    if (loop->plain)
        return churn_mappings(b->ops, b->map_bytes, b->size_bytes, b->page_bytes,
                              loop->protection, loop->flags, s->access, value, latency);
    return churn_blocks(b, s, value, latency);
}

/* One worker thread's pairs (threads.c calls it between the crew's barriers), timed on their
 * own: `ns` gets how long this thread's loop took, from its first pair to its last; each pair
 * goes into the thread's own `latency` histogram unless it is NULL. */
uint64_t churn_thread(const struct blocks *b, const struct scenario *s, unsigned char value,
                      uint64_t *ns, struct latency_histogram *latency)
{
    struct pair_loop loop = plan_pairs(s);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    uint64_t sum = run_pairs(b, s, &loop, value, latency);
    clock_gettime(CLOCK_MONOTONIC, &end);
    *ns = elapsed_ns(&start, &end);
    return sum;
}

/* churn: the loop in the allocate slot; the other three slots hold nothing (0 ns, 0 faults,
 * the resident set after the loop), so every phase-sum metric is the loop. With threads the
 * slot is the crew's: from the barrier that starts every thread's pairs to the one the last
 * thread reaches; with one thread the loop runs here, and its time is the slot's. */
void run_churn(const struct context *c, const struct scenario *s, unsigned char value,
               struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    struct phase_start start;
    out->rss_before_bytes = resident_bytes(page);
    struct pair_loop loop = plan_pairs(s);

    start_phase(&start);
    if (c->crew != NULL)
        out->checksum = crew_work(c->crew, PHASE_ALLOCATE, value);
    else
        out->checksum = run_pairs(b, s, &loop, value, out->latency);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    if (out->latency != NULL) {
        if (c->crew != NULL)
            crew_latency(c->crew, out->latency);
        out->latency_clock_ns = clock_overhead_ns();
    }
    for (int phase = PHASE_FIRST_TOUCH; phase < PHASE_COUNT; phase++)
        out->phases[phase] = (struct phase_result){
            .rss_bytes = out->phases[PHASE_ALLOCATE].rss_bytes};
    observe(out, OBS_SLOWEST_THREAD_NS, c->crew != NULL ? crew_slowest_ns(c->crew)
                                                        : out->phases[PHASE_ALLOCATE].ns);
    if (is_file_backing(s->backing))
        observe(out, OBS_ALLOCATE_SYSCALLS, out->phases[PHASE_ALLOCATE].syscalls);
    if (s->backing == BACKING_MMAP_ANON)
        observe(out, OBS_JOINED_NEIGHBOUR, block_joins_neighbour(b, s));
}
