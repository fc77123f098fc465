/*
 * What a file mapping shows of its file: the layouts of the data file under the mappings of
 * mmap-file (short, with holes, truncated by another process), and check_content's comparison
 * of every mapped byte with what the file holds, past its end and in its holes.
 */
#include "probe.h"

/* The known pattern is made, written and compared in pieces of this size. Static: the probe
 * calls no malloc, and its pages fault in once, untimed. */
#define PIECE_BYTES ((size_t)64 << 10)
static unsigned char piece[PIECE_BYTES];

/* The data file's length: short ends half a page into the last block's second-to-last page,
 * so that page's tail and the whole last page lie past the end of the file; every other
 * layout is the blocks' whole range. */
size_t layout_file_bytes(const struct scenario *s, size_t ops, size_t stride, size_t page)
{
    if (s->file_layout == FILE_LAYOUT_SHORT)
        return ops * stride - page - page / 2;
    return ops * stride;
}

/* truncated: the length the child leaves: half of the last block's range rounded down to a
 * page, so the first page past the new end is a whole page of the mapping. */
static size_t truncated_bytes(const struct blocks *b)
{
    size_t half = b->stride_bytes / 2 / b->page_bytes * b->page_bytes;
    return (b->ops - 1) * b->stride_bytes + half;
}

static size_t smaller(size_t a, uint64_t b)
{
    return b < a ? (size_t)b : a;
}

/* The known pattern over `length` bytes of the file from `offset` on. */
static void write_pattern(int fd, uint64_t offset, uint64_t length)
{
    for (uint64_t done = 0; done < length;) {
        size_t n = smaller(PIECE_BYTES, length - done);
        fill_pattern(piece, offset + done, n);
        pwrite_fully(fd, piece, n, (off_t)(offset + done));
        done += n;
    }
}

/* holes: a sparse file of `file_bytes` whose first, third, fifth... page of every block holds
 * the known pattern and whose other pages were never written (holes), synced. */
void fill_holes_file(int fd, uint64_t file_bytes, size_t stride, size_t page)
{
    if (ftruncate(fd, (off_t)file_bytes) != 0)
        system_error("ftruncate");
    for (uint64_t start = 0; start < file_bytes; start += stride)
        for (size_t offset = 0; offset < stride; offset += 2 * page)
            write_pattern(fd, start + offset, page);
    if (fsync(fd) != 0)
        system_error("fsync");
}

/* truncated: another process truncates the file under the mappings, right after allocate,
 * untimed. vfork, not fork: a forked child would leave the probe's own memory copy-on-write,
 * and its next writes (stack, bookkeeping) would fault inside the timed phases. The child
 * makes one system call and reports its errno as the exit status. */
void truncate_under_mappings(const struct blocks *b)
{
    pid_t child = vfork();
    if (child < 0)
        system_error("vfork");
    if (child == 0)
        _exit(ftruncate(b->fd, (off_t)truncated_bytes(b)) == 0 ? 0 : errno);
    int status;
    while (waitpid(child, &status, 0) < 0)
        if (errno != EINTR)
            system_error("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = WIFEXITED(status) ? WEXITSTATUS(status) : EINTR;
        system_error("ftruncate (in the child that truncates the data file)");
    }
}

/* truncated, after the free phase, untimed: the file whole again for the next iteration. */
void restore_data_file(const struct blocks *b, size_t file_bytes)
{
    size_t cut = truncated_bytes(b);
    if (ftruncate(b->fd, (off_t)file_bytes) != 0)
        system_error("ftruncate");
    write_pattern(b->fd, cut, file_bytes - cut);
}

/* 1 when the `length` bytes at p read as the file's bytes from `offset` on. */
static int shows_pattern(const unsigned char *p, uint64_t offset, size_t length)
{
    for (size_t done = 0; done < length;) {
        size_t n = smaller(PIECE_BYTES, length - done);
        fill_pattern(piece, offset + done, n);
        if (memcmp(p + done, piece, n) != 0)
            return 0;
        done += n;
    }
    return 1;
}

static int all_zero(const unsigned char *p, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

/* What the file holds at `offset` of its data: the pattern before `end`, nothing after.
 * content_matches over every block, page by page: the bytes before the end that are no hole
 * show the pattern. holes: every other page (the second, fourth...) of a block is a hole. */
static uint64_t blocks_show_file(const struct blocks *b, int holes, uint64_t end,
                                 uint64_t *holes_zero)
{
    size_t page = b->page_bytes;
    uint64_t matches = 1;
    *holes_zero = 1;
    for (size_t i = 0; i < b->ops; i++) {
        uint64_t start = (uint64_t)(b->first + i) * b->stride_bytes;
        for (size_t offset = 0; offset < b->size_bytes; offset += page) {
            uint64_t at = start + offset;
            size_t length = smaller(page, b->size_bytes - offset);
            if (holes && (offset / page) % 2 == 1) {
                *holes_zero &= (uint64_t)all_zero(b->at[i] + offset, length);
                continue;
            }
            if (at >= end)
                continue;
            matches &= (uint64_t)shows_pattern(b->at[i] + offset, at, smaller(length, end - at));
        }
    }
    return matches;
}

/* check_content, after the second pass, untimed: every byte the file holds under the
 * mappings compared with its known pattern (content_matches), and where the layout puts
 * something else there, what reading it gives: zeros in the part of the last page past a
 * short file's end and in holes, SIGBUS for a page wholly past the end, before and after
 * another process truncated the file. Reading faults every page of the blocks in. */
void observe_content(const struct blocks *b, const struct scenario *s, size_t file_bytes,
                     struct iteration_result *out)
{
    size_t page = b->page_bytes;
    uint64_t end = s->file_layout == FILE_LAYOUT_TRUNCATED ? truncated_bytes(b) : file_bytes;
    uint64_t holes_zero;
    uint64_t matches = blocks_show_file(b, s->file_layout == FILE_LAYOUT_HOLES, end,
                                        &holes_zero);
    observe(out, OBS_CONTENT_MATCHES, matches);
    /* The page holding the end (partial for short) and the first page past it, within the
     * last block: the layouts guarantee both lie in it. */
    const unsigned char *last = b->at[b->ops - 1];
    size_t end_in_last = (size_t)(end - (uint64_t)(b->first + b->ops - 1) * b->stride_bytes);
    size_t beyond = (end_in_last + page - 1) / page * page;
    switch (s->file_layout) {
    case FILE_LAYOUT_SHORT:
        observe(out, OBS_TAIL_ZERO, (uint64_t)all_zero(last + end_in_last, beyond - end_in_last));
        observe(out, OBS_SIGBUS_BEYOND_EOF, (uint64_t)read_raises(last + beyond, SIGBUS));
        break;
    case FILE_LAYOUT_HOLES:
        observe(out, OBS_HOLES_ZERO, holes_zero & matches);
        break;
    case FILE_LAYOUT_TRUNCATED:
        observe(out, OBS_SIGBUS_AFTER_TRUNCATE, (uint64_t)read_raises(last + beyond, SIGBUS));
        break;
    case FILE_LAYOUT_WHOLE:
    case FILE_LAYOUT_COUNT:
        break;
    }
}
