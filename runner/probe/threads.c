/*
 * Threads: with --threads above 1, a crew of workers that share the blocks of every phase of
 * workload cycle, or each run pairs of their own in workload churn's allocate slot.
 */
#include "probe.h"

/* With --threads above 1, worker threads made once before the first iteration each own a
 * slice of the blocks (cycle: a share of the ops blocks; churn: ops blocks of its own). For
 * each phase the main thread releases them all at one barrier and waits at another until the
 * last of them is done. */
struct crew {
    pthread_barrier_t start, done;
    const struct scenario *s;
    enum phase phase; /* what the workers do next */
    unsigned char value;
    size_t count;
    size_t only; /* the worker whose turn it is (crew_turn); SIZE_MAX: every worker */
    struct worker {
        struct crew *crew;
        pthread_t thread;
        struct blocks slice;
        uint64_t checksum;
        uint64_t ns; /* churn: how long this worker's own pairs took (churn_thread) */
        struct latency_histogram *latency; /* churn with --latency: its pairs; else NULL */
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
        if (c->only != SIZE_MAX && c->only != (size_t)(w - c->workers)) {
            w->checksum = 0; /* not its turn */
            wait_at(&c->done);
            continue;
        }
        switch (c->s->workload) {
        case WORKLOAD_CHURN:
            w->checksum = churn_thread(&w->slice, c->s, c->value, &w->ns, w->latency);
            break;
        case WORKLOAD_FRAGMENT: /* the bytes live in its slots after the phase */
            w->checksum = fragment_work(&w->slice, c->s, c->phase, c->value);
            break;
        default:
            w->checksum = cycle_work(&w->slice, c->s, c->phase, c->value);
        }
        wait_at(&c->done);
    }
    return NULL;
}

/* One phase by the workers (`only`: that one alone, the others idle; SIZE_MAX: every one),
 * from the barrier that starts them to the one the last of them reaches. */
static void run_phase(struct crew *c, enum phase phase, unsigned char value, size_t only)
{
    c->phase = phase;
    c->value = value;
    c->only = only;
    wait_at(&c->start);
    wait_at(&c->done);
}

/* One phase, shared out to the workers; returns the sum of what they read. */
__attribute__((noinline)) uint64_t crew_work(struct crew *c, enum phase phase,
                                             unsigned char value)
{
    run_phase(c, phase, value, SIZE_MAX);
    uint64_t sum = 0;
    for (size_t t = 0; t < c->count; t++)
        sum += c->workers[t].checksum;
    return sum;
}

/* One phase by one worker, the others idle through it (fragment with thread_turns); returns
 * what that worker returned. */
uint64_t crew_turn(struct crew *c, size_t worker, enum phase phase, unsigned char value)
{
    run_phase(c, phase, value, worker);
    return c->workers[worker].checksum;
}

size_t crew_size(const struct crew *c)
{
    return c->count;
}

/* churn: the longest any worker took for its own pairs in the last phase. */
uint64_t crew_slowest_ns(const struct crew *c)
{
    uint64_t slowest = 0;
    for (size_t t = 0; t < c->count; t++)
        if (c->workers[t].ns > slowest)
            slowest = c->workers[t].ns;
    return slowest;
}

/* fragment: each worker's highest live bytes, summed (each thread's own slots); `only` below
 * SIZE_MAX: that worker's alone. */
uint64_t crew_peak_live_bytes(const struct crew *c, size_t only)
{
    if (only != SIZE_MAX)
        return peak_live_bytes(&c->workers[only].slice);
    uint64_t sum = 0;
    for (size_t t = 0; t < c->count; t++)
        sum += peak_live_bytes(&c->workers[t].slice);
    return sum;
}

/* churn with --latency: every worker's pairs of the last phase, added into `into`, and each
 * worker's histogram emptied for the next (after the window, untimed). */
void crew_latency(struct crew *c, struct latency_histogram *into)
{
    for (size_t t = 0; t < c->count; t++) {
        merge_latency(into, c->workers[t].latency);
        memset(c->workers[t].latency, 0, sizeof *c->workers[t].latency);
    }
}

/* cycle: thread t gets blocks [ops * t / threads, ops * (t + 1) / threads). churn: each thread
 * runs ops pairs of its own, one block at a time, in block slots of its own; its blocks count
 * on from ops * t (a shared-memory block's name is its index, so no two threads' collide).
 * fragment: each thread keeps ops blocks of its own, of sizes it draws with a seed of its own. */
static struct blocks slice_of(const struct blocks *b, const struct scenario *s, size_t t,
                              size_t count)
{
    struct blocks slice = *b;
    if (s->workload == WORKLOAD_CHURN || s->workload == WORKLOAD_FRAGMENT) {
        slice.at = map_scratch(b->ops * sizeof *b->at);
        slice.first = b->ops * t;
        if (s->workload == WORKLOAD_FRAGMENT)
            slice.sizes = new_slot_sizes(b->ops, b->size_bytes, t);
        return slice;
    }
    size_t first = b->ops * t / count, end = b->ops * (t + 1) / count;
    slice.at = b->at + first;
    slice.ops = end - first;
    slice.first = first;
    if (b->buffer != NULL)
        slice.buffer = map_scratch(b->buffer_bytes);
    return slice;
}

struct crew *start_crew(const struct blocks *b, const struct scenario *s)
{
    struct crew *c = map_scratch(sizeof *c);
    c->s = s;
    c->count = s->threads;
    c->only = SIZE_MAX;
    if (pthread_barrier_init(&c->start, NULL, (unsigned)c->count + 1) != 0 ||
        pthread_barrier_init(&c->done, NULL, (unsigned)c->count + 1) != 0)
        system_error("pthread_barrier_init");
    for (size_t t = 0; t < c->count; t++) {
        struct worker *w = &c->workers[t];
        w->crew = c;
        w->slice = slice_of(b, s, t, c->count);
        if (s->latency != LATENCY_OFF && s->workload == WORKLOAD_CHURN)
            w->latency = map_latency_histograms(1);
        int error = pthread_create(&w->thread, NULL, run_worker, w);
        if (error != 0) {
            errno = error;
            system_error("pthread_create");
        }
    }
    return c;
}

