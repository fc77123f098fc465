/*
 * The fragment workload: a long-running program's heap, which holds a steady set of live blocks
 * of mixed sizes and keeps replacing them — where "my process keeps growing though it frees
 * what it no longer needs" is asked. Each thread keeps `ops` blocks alive, in slots of its own.
 * A block's size is drawn at random from 16 bytes up to size_bytes, each power-of-two octave
 * as likely as the next (as a program's objects are: many small ones, a few large), and the
 * access pattern writes it as soon as it is allocated, so that its pages are resident.
 *
 *   allocate     every slot gets a block
 *   first_touch  rounds of churn: 4 x ops times, a slot drawn at random has its block freed
 *                and a new one of a new size allocated (and written) in its place
 *   second_pass  as many rounds again
 *   free         every block freed but every keep_every-th slot's, which lives on until the
 *                process exits (long-lived objects among short-lived ones); release malloc-trim
 *                then calls the allocator's trim (allocator.c)
 *
 * peak_live_bytes is the most the blocks asked for at once, through second_pass (with threads
 * each thread's highest, summed), kept_bytes what the kept ones ask for after free. The live
 * bytes wander by a few percent from round to round (every size drawn afresh), and a heap
 * follows its high-water mark, so memory held is judged against the peak (rss_per_live_byte):
 * the resident set's change from one phase to the next moves with that wander, and is no
 * measure of fragmentation. Every process draws the same sizes and slots (a fixed seed for
 * each thread), so the processes of a scenario do the same work and differ only in what the
 * machine makes of it.
 */
#include "probe.h"

#define SMALLEST_BLOCK_BYTES 16
/* Rounds of churn in each of first_touch and second_pass: a round replaces ops blocks, which
 * leaves about a third of the slots untouched (e^-1); four replace all but 2%. */
#define ROUNDS_PER_PHASE 4

/* One thread's slots: each block's size (0: the slot is empty) and what the draws need. */
struct slot_sizes {
    size_t *bytes;
    uint64_t random;    /* xorshift64* state */
    size_t octaves;     /* octave k holds sizes 16 << k to 32 << k, the last cut at largest */
    size_t largest;
    uint64_t live;      /* the sum of bytes[] */
    uint64_t peak;      /* the highest `live` has been since allocate began */
};

struct slot_sizes *new_slot_sizes(size_t ops, size_t largest_bytes, size_t thread)
{
    struct slot_sizes *sizes = map_scratch(sizeof *sizes);
    sizes->bytes = map_scratch(ops * sizeof *sizes->bytes);
    sizes->random = 0x9E3779B97F4A7C15ULL ^ (0xD1B54A32D192ED03ULL * (thread + 1));
    sizes->largest = largest_bytes;
    sizes->octaves = 1;
    while (sizes->octaves < 48 &&
           ((size_t)SMALLEST_BLOCK_BYTES << sizes->octaves) < largest_bytes)
        sizes->octaves++;
    return sizes;
}

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545F4914F6CDD1DULL;
}

static size_t draw_size(struct slot_sizes *sizes)
{
    size_t octave = (size_t)(next_random(&sizes->random) % sizes->octaves);
    size_t low = (size_t)SMALLEST_BLOCK_BYTES << octave, high = 2 * low;
    if (high > sizes->largest)
        high = sizes->largest;
    return low + (size_t)(next_random(&sizes->random) % (high - low + 1));
}

/* A block of a new size in slot i, written by the access pattern. */
static void fill_slot(const struct blocks *b, const struct scenario *s, size_t i,
                      unsigned char value)
{
    struct slot_sizes *sizes = b->sizes;
    size_t size = draw_size(sizes);
    unsigned char *p = s->backing == BACKING_CALLOC ? calloc(1, size) : malloc(size);
    if (p == NULL)
        system_error(s->backing == BACKING_CALLOC ? "calloc" : "malloc");
    access_range(p, size, 0, b->page_bytes, s->access, value);
    b->at[i] = p;
    sizes->bytes[i] = size;
    sizes->live += size;
    if (sizes->live > sizes->peak)
        sizes->peak = sizes->live;
}

static void empty_slot(const struct blocks *b, size_t i)
{
    free(b->at[i]);
    b->sizes->live -= b->sizes->bytes[i];
    b->sizes->bytes[i] = 0;
}

uint64_t peak_live_bytes(const struct blocks *b)
{
    return b->sizes->peak;
}

/* One phase of the workload on one thread's slots; returns the bytes live in them after it. */
uint64_t fragment_work(const struct blocks *b, const struct scenario *s, enum phase phase,
                       unsigned char value)
{
    struct slot_sizes *sizes = b->sizes;
    switch (phase) {
    case PHASE_ALLOCATE:
        /* the blocks kept by the last iteration's free phase live on, out of every slot */
        sizes->live = sizes->peak = 0;
        for (size_t i = 0; i < b->ops; i++)
            fill_slot(b, s, i, value);
        break;
    case PHASE_FIRST_TOUCH:
    case PHASE_SECOND_PASS:
        for (size_t n = 0; n < ROUNDS_PER_PHASE * b->ops; n++) {
            size_t i = (size_t)(next_random(&sizes->random) % b->ops);
            empty_slot(b, i);
            fill_slot(b, s, i, value);
        }
        break;
    case PHASE_FREE:
        for (size_t i = 0; i < b->ops; i++)
            if (s->keep_every == 0 || i % s->keep_every != s->keep_every - 1)
                empty_slot(b, i);
        if (s->release == RELEASE_MALLOC_TRIM)
            allocator_trim(); /* in each thread: mimalloc's collects the calling thread's heap */
        break;
    case PHASE_COUNT:
        break;
    }
    return sizes->live;
}

/* One phase: one thread's slots, every thread's at once (the crew's), or with thread_turns the
 * slots of the thread whose turn it is (`turn`), the others idle. */
static uint64_t fragment_phase(const struct context *c, const struct scenario *s, size_t turn,
                               enum phase phase, unsigned char value)
{
    if (c->crew == NULL)
        return fragment_work(&c->blocks, s, phase, value);
    return turn == SIZE_MAX ? crew_work(c->crew, phase, value)
                            : crew_turn(c->crew, turn, phase, value);
}

/* fragment: the four phases, the resident set read after each as for every workload. With
 * thread_turns, iteration i is thread i mod threads' alone, as a pool's threads take requests
 * one after another: what the others' earlier turns left in their arenas and caches stays.
 * held_bytes is what the process holds after the free phase over what it held before its first
 * iteration: every thread's share together. */
void run_fragment(const struct context *c, const struct scenario *s, unsigned char value,
                  struct iteration_result *out)
{
    static size_t iterations_run;
    static uint64_t rss_at_start_bytes;
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    size_t turn = c->crew != NULL && s->thread_turns ? iterations_run % crew_size(c->crew)
                                                     : SIZE_MAX;
    struct phase_start start;
    uint64_t live[PHASE_COUNT];
    out->rss_before_bytes = resident_bytes(page);
    if (iterations_run++ == 0)
        rss_at_start_bytes = out->rss_before_bytes;
    for (int p = 0; p < PHASE_COUNT; p++) {
        start_phase(&start);
        live[p] = fragment_phase(c, s, turn, (enum phase)p, value);
        stop_phase(&start, page, &out->phases[p]);
    }
    out->checksum = 0;
    observe(out, OBS_PEAK_LIVE_BYTES, c->crew != NULL ? crew_peak_live_bytes(c->crew, turn)
                                                       : peak_live_bytes(b));
    observe(out, OBS_KEPT_BYTES, live[PHASE_FREE]);
    observe(out, OBS_HELD_BYTES, growth(rss_at_start_bytes, out->phases[PHASE_FREE].rss_bytes));
}
