/*
 * Access patterns: one function per pattern, the file writes and syncs of a touching phase, and
 * the fixed random order.
 */
#include "probe.h"

/* Applies the scenario's access pattern to every block, in block order; returns what was
 * read. noinline, like the phases' other work (see allocate_blocks). */
__attribute__((noinline)) uint64_t apply_access(const struct blocks *b,
                                                const struct scenario *s, size_t page,
                                                unsigned char value)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < b->ops; i++)
        sum += access_range(b->at[i], b->size_bytes, 0, page, s->access, value);
    return sum;
}

/* read-file with a read buffer: the bytes of `block` from `offset` on, at most a buffer's
 * worth, read from `fd` into the buffer by pread and given the access pattern right away. */
static uint64_t read_chunk(const struct blocks *b, const struct scenario *s, int fd,
                           size_t block, size_t offset, unsigned char value)
{
    size_t left = b->size_bytes - offset;
    size_t length = left < b->buffer_bytes ? left : b->buffer_bytes;
    read_fully(fd, b->buffer, length, (off_t)((b->first + block) * b->stride_bytes + offset));
    return access_range(b->buffer, length, offset, b->page_bytes, s->access, value);
}

/* read-file with a read buffer, first touch and second pass alike: every block read from the
 * file chunk by chunk into the one reused buffer, the access pattern applied to each chunk as
 * it arrives; with order random the chunks of every block in the fixed random order (with
 * touch_share, the chunks chosen). file_open per-block opens the file for each block and
 * closes it after the block's last chunk. */
static __attribute__((noinline)) uint64_t read_chunks(const struct blocks *b,
                                                      const struct scenario *s,
                                                      unsigned char value)
{
    uint64_t sum = 0;
    if (b->chunk_order != NULL) {
        for (size_t k = 0; k < b->chunk_count; k++) {
            size_t block = (size_t)(b->chunk_order[k] / b->chunks_per_block);
            size_t chunk = (size_t)(b->chunk_order[k] % b->chunks_per_block);
            sum += read_chunk(b, s, b->fd, block, chunk * b->buffer_bytes, value);
        }
        return sum;
    }
    for (size_t i = 0; i < b->ops; i++) {
        int fd = open_block_file(b, s, O_RDONLY);
        for (size_t offset = 0; offset < b->size_bytes; offset += b->buffer_bytes)
            sum += read_chunk(b, s, fd, i, offset, value);
        close_block_file(s, fd);
    }
    return sum;
}

/* write-file with a write buffer: the bytes of `block` from `offset` on, at most a buffer's
 * worth, made by the access pattern in the buffer and written to their place in the file. */
static void write_chunk(const struct blocks *b, const struct scenario *s, size_t block,
                        size_t offset, unsigned char value)
{
    size_t left = b->size_bytes - offset;
    size_t length = left < b->buffer_bytes ? left : b->buffer_bytes;
    (void)access_range(b->buffer, length, offset, b->page_bytes, s->access, value);
    pwrite_fully(b->fd, b->buffer, length,
                 (off_t)((b->first + block) * b->stride_bytes + offset));
}

/* write-file with a write buffer, first touch and second pass alike: what a program that
 * writes a file with write() does (fio's idiom): each chunk of each block made in the one
 * reused buffer, then written; with order random the chunks in the fixed random order. */
static __attribute__((noinline)) void write_chunks(const struct blocks *b,
                                                   const struct scenario *s,
                                                   unsigned char value)
{
    if (b->chunk_order != NULL) {
        for (size_t k = 0; k < b->chunk_count; k++) {
            size_t block = (size_t)(b->chunk_order[k] / b->chunks_per_block);
            size_t chunk = (size_t)(b->chunk_order[k] % b->chunks_per_block);
            write_chunk(b, s, block, chunk * b->buffer_bytes, value);
        }
        return;
    }
    for (size_t i = 0; i < b->ops; i++)
        for (size_t offset = 0; offset < b->size_bytes; offset += b->buffer_bytes)
            write_chunk(b, s, i, offset, value);
}

/* order random: the access pattern page by page, every page of every block once, in the
 * fixed random order (locate_pages found them before the phase); with touch_share the pages
 * chosen, in that order or ascending. */
static __attribute__((noinline)) uint64_t visit_pages(const struct blocks *b,
                                                      const struct scenario *s,
                                                      unsigned char value)
{
    uint64_t sum = 0;
    switch (s->access) {
    case ACCESS_WRITE_PAGE:
        for (size_t k = 0; k < b->page_count; k++) {
            b->pages[k].at[0] = value;
            ESCAPE(b->pages[k].at);
        }
        break;
    case ACCESS_WRITE_ALL:
        for (size_t k = 0; k < b->page_count; k++) {
            memset(b->pages[k].at, value, b->pages[k].length);
            ESCAPE(b->pages[k].at);
        }
        break;
    case ACCESS_ZERO_THEN_WRITE_ALL: /* page by page, each zeroed, then written */
        for (size_t k = 0; k < b->page_count; k++) {
            memset(b->pages[k].at, 0, b->pages[k].length);
            ESCAPE(b->pages[k].at);
            memset(b->pages[k].at, value, b->pages[k].length);
            ESCAPE(b->pages[k].at);
        }
        break;
    case ACCESS_READ_PAGE:
        for (size_t k = 0; k < b->page_count; k++)
            sum += b->pages[k].at[0];
        break;
    case ACCESS_READ_ALL:
        for (size_t k = 0; k < b->page_count; k++)
            sum += sum_words(b->pages[k].at, b->pages[k].length);
        break;
    case ACCESS_NONE:
    case ACCESS_COUNT:
        break;
    }
    return sum;
}

/* write-file with write_buffer whole: every block to its place in the data file, one pwrite
 * per block, or in random order one pwrite per page in that order. */
static void write_out(const struct blocks *b)
{
    if (b->pages != NULL) {
        for (size_t k = 0; k < b->page_count; k++)
            pwrite_fully(b->fd, b->pages[k].at, b->pages[k].length, b->pages[k].file_offset);
        return;
    }
    for (size_t i = 0; i < b->ops; i++)
        pwrite_fully(b->fd, b->at[i], b->size_bytes, (off_t)((b->first + i) * b->stride_bytes));
}

/* sync: what was written reaches the disk before the phase ends. */
static void sync_out(const struct blocks *b, const struct scenario *s)
{
    if (s->sync == SYNC_MSYNC) {
        for (size_t i = 0; i < b->ops; i++)
            if ((COUNT_SYSCALL(), msync(b->at[i], b->map_bytes, MS_SYNC) != 0))
                system_error("msync");
    } else if ((COUNT_SYSCALL(), fsync(b->fd) != 0)) {
        system_error("fsync");
    }
}

/* The work of first_touch and second_pass in the cycle workload: the access pattern, then for
 * write-file the file writes (through the reused buffer: both at once, chunk by chunk), then
 * the sync. Returns what was read. */
__attribute__((noinline)) uint64_t touch_blocks(const struct blocks *b,
                                                const struct scenario *s, size_t page,
                                                unsigned char value)
{
    uint64_t sum = 0;
    if (b->buffer != NULL && s->backing == BACKING_WRITE_FILE)
        write_chunks(b, s, value);
    else if (b->buffer != NULL)
        sum = read_chunks(b, s, value);
    else
        sum = b->pages != NULL ? visit_pages(b, s, value) : apply_access(b, s, page, value);
    if (s->backing == BACKING_WRITE_FILE && b->buffer == NULL)
        write_out(b);
    if (s->sync != SYNC_NONE)
        sync_out(b, s);
    return sum;
}

/* Whether the access pattern writes (runner/core/parameters.py WRITING_ACCESSES). */
int is_writing_access(enum access access)
{
    return access == ACCESS_WRITE_PAGE || access == ACCESS_WRITE_ALL ||
           access == ACCESS_ZERO_THEN_WRITE_ALL;
}

/* 1 when every byte the access pattern writes holds `value` (one per page for write-page,
 * all of them for write-all and zero-then-write-all): whether a write of this or another
 * process is visible here. */
uint64_t blocks_hold(const struct blocks *b, const struct scenario *s, size_t page,
                     unsigned char value)
{
    int every_byte = s->access == ACCESS_WRITE_ALL || s->access == ACCESS_ZERO_THEN_WRITE_ALL;
    size_t step = every_byte ? 1 : page;
    for (size_t i = 0; i < b->ops; i++)
        for (size_t offset = 0; offset < b->size_bytes; offset += step)
            if (b->at[i][offset] != value)
                return 0;
    return 1;
}

/* order random: every page (or read-file chunk) index once, in an order fixed by a constant
 * seed, so that every process of a scenario visits them in the same order (xorshift64*,
 * Fisher-Yates). */
void shuffle_pages(uint64_t *order, size_t count)
{
    uint64_t state = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    for (size_t i = count; i > 1; i--) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        size_t j = (size_t)((state * 0x2545F4914F6CDD1DULL) % i);
        uint64_t swap = order[i - 1];
        order[i - 1] = order[j];
        order[j] = swap;
    }
}

/* touch_share: of `count` units (pages or chunks, `per_block` to a block) in the fixed random
 * order, keep the first share_ppm millionths of each block's (rounded up, at least one): a
 * random choice of distinct units drawn with the same seed, still in random order, or sorted
 * ascending when `ascending` (order sequential). Every block keeps as many. Returns the number
 * kept, now at the front of `order`. With share_ppm PPM and random order, nothing changes. */
size_t choose_units(uint64_t *order, size_t count, size_t per_block, size_t share_ppm,
                    int ascending)
{
    if (share_ppm == PPM && !ascending)
        return count; /* no bookkeeping mapped and unmapped either: the order as before */
    size_t keep = (size_t)(((uint64_t)per_block * share_ppm + PPM - 1) / PPM);
    keep = keep == 0 ? 1 : keep;
    size_t blocks = count / per_block, kept = 0;
    size_t *taken = map_scratch(blocks * sizeof *taken);
    for (size_t k = 0; k < count; k++) {
        size_t block = (size_t)(order[k] / per_block);
        if (taken[block] < keep) {
            taken[block]++;
            order[kept++] = order[k];
        }
    }
    if (munmap(taken, blocks * sizeof *taken) != 0)
        system_error("munmap");
    if (!ascending)
        return kept;
    unsigned char *chosen = map_scratch(count);
    for (size_t k = 0; k < kept; k++)
        chosen[order[k]] = 1;
    for (size_t unit = 0, k = 0; unit < count; unit++)
        if (chosen[unit])
            order[k++] = unit;
    if (munmap(chosen, count) != 0)
        system_error("munmap");
    return kept;
}
