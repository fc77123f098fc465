/*
 * The resize workload: allocate, write the data, grow every block (grow_steps times, each by
 * grow_factor, with touch_grown writing the part each step added), free the grown blocks.
 */
#include "probe.h"

/* resize, by realloc: glibc grows in place where the next chunk is free, moves a chunk it
 * mapped by mremap, and otherwise copies. */
static void grow_by_realloc(const struct blocks *b, const struct blocks *grown)
{
    for (size_t i = 0; i < b->ops; i++) {
        unsigned char *p = realloc(b->at[i], grown->size_bytes);
        if (p == NULL)
            system_error("realloc");
        b->at[i] = p;
    }
}

/* resize, by mremap: the kernel extends the mapping where the addresses after it are free,
 * and otherwise moves its page table entries, not the bytes. */
static void grow_by_mremap(const struct blocks *b, const struct blocks *grown)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        void *p = mremap(b->at[i], b->map_bytes, grown->map_bytes, MREMAP_MAYMOVE);
        if (p == MAP_FAILED)
            system_error("mremap");
        b->at[i] = p;
    }
}

/* resize, by copying: a new block (malloc, or mmap for mmap-anon), memcpy, free the old. */
static void grow_by_copy(const struct blocks *b, const struct scenario *s,
                         const struct blocks *grown)
{
    int heap = is_heap_backing(s->backing);
    for (size_t i = 0; i < b->ops; i++) {
        unsigned char *p;
        if (heap) {
            p = malloc(grown->size_bytes);
            if (p == NULL)
                system_error("malloc");
        } else {
            p = map_block(grown, s, map_flags(s), -1, 0);
        }
        memcpy(p, b->at[i], b->size_bytes);
        if (heap)
            free(b->at[i]);
        else if ((COUNT_SYSCALL(), munmap(b->at[i], b->map_bytes) != 0))
            system_error("munmap");
        b->at[i] = p;
    }
}

static __attribute__((noinline)) void grow_blocks(const struct blocks *b,
                                                  const struct scenario *s,
                                                  const struct blocks *grown)
{
    switch (s->grow_method) {
    case GROW_REALLOC:
        grow_by_realloc(b, grown);
        break;
    case GROW_MREMAP:
        grow_by_mremap(b, grown);
        break;
    case GROW_COPY:
        grow_by_copy(b, s, grown);
        break;
    case GROW_COUNT:
        break;
    }
}

/* Blocks whose address after the last step differs from the one allocate gave. */
static uint64_t count_moved(const struct blocks *b, unsigned char *const *previous)
{
    uint64_t moved = 0;
    for (size_t i = 0; i < b->ops; i++)
        moved += b->at[i] != previous[i];
    return moved;
}

/* The second pass: grow_steps times, every block grows by grow_factor (step k from size
 * times grow_factor^(k-1) to size times grow_factor^k), and with touch_grown the access
 * pattern then goes over the part the step added, at its place in the block (write-page: one
 * byte per page of the block). `grown` gets the final sizes. */
static __attribute__((noinline)) void grow_chain(const struct blocks *b,
                                                 const struct scenario *s, unsigned char value,
                                                 struct blocks *grown)
{
    struct blocks from = *b;
    for (size_t step = 0; step < s->grow_steps; step++) {
        grown->size_bytes = from.size_bytes * s->grow_factor;
        grown->map_bytes = from.map_bytes * s->grow_factor;
        grow_blocks(&from, s, grown);
        if (s->touch_grown)
            for (size_t i = 0; i < b->ops; i++)
                (void)access_range(b->at[i] + from.size_bytes,
                                   grown->size_bytes - from.size_bytes, from.size_bytes,
                                   b->page_bytes, s->access, value);
        from.size_bytes = grown->size_bytes;
        from.map_bytes = grown->map_bytes;
    }
}

/* resize: allocate, write the data, grow every block, free the grown blocks. */
void run_resize(const struct context *c, const struct scenario *s, unsigned char value,
                struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    struct blocks grown = *b;
    struct phase_start start;
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    allocate_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);

    start_phase(&start);
    apply_access(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);
    observe(out, OBS_ALIGNMENT_BYTES, block_alignment(b)); /* not between the two phases */
    memcpy(c->previous, b->at, b->ops * sizeof *b->at);

    start_phase(&start);
    grow_chain(b, s, value, &grown);
    stop_phase(&start, page, &out->phases[PHASE_SECOND_PASS]);
    observe(out, OBS_BLOCKS_MOVED, count_moved(b, c->previous));
    /* the data written before growing, and with touch_grown all written after each step */
    observe(out, OBS_DATA_SURVIVED, blocks_hold(s->touch_grown ? &grown : b, s, page, value));

    start_phase(&start);
    release_blocks(&grown, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    finish_release(&grown, s);
    out->checksum = 0;
}

