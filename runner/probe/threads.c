/*
 * Threads: with --threads above 1, a crew of workers that share the blocks of every phase.
 */
#include "probe.h"

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
__attribute__((noinline)) uint64_t crew_work(struct crew *c, enum phase phase,
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
struct crew *start_crew(const struct blocks *b, const struct scenario *s)
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

