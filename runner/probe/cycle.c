/*
 * The cycle workload: allocate a batch of blocks, touch them twice, give them back.
 */
#include "probe.h"

/* What the process had before allocate, for the observations of growth. */
struct before_allocate {
    uint64_t vm_bytes;
    uint64_t page_table_bytes;
    uintptr_t brk;
};

/* Observations about the blocks allocate made, taken after the second pass (the touching
 * phases add no mapping, address space or heap, nor move a block; nor page tables, which
 * first touch made), so that nothing but the two phases' own bookkeeping runs between
 * allocate and first touch, or first touch and the second pass: reading /proc/self/maps
 * there would cool the caches the next phase finds. check_zero, which must read the blocks
 * before anything writes them, stays right after allocate (observe_zero). */
static void observe_allocation(const struct context *c, const struct scenario *s,
                               const struct before_allocate *before,
                               struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    observe(out, OBS_MAPPINGS, count_mappings());
    observe(out, OBS_VM_SIZE_GROWTH_BYTES,
            growth(before->vm_bytes, virtual_bytes(b->page_bytes)));
    observe(out, OBS_VM_PTE_GROWTH_BYTES, growth(before->page_table_bytes, page_table_bytes()));
    if (s->backing == BACKING_READ_FILE) {
        const unsigned char *destination = b->buffer != NULL ? b->buffer : b->at[0];
        observe(out, OBS_READ_BUFFER_PAGE_OFFSET_BYTES,
                (uint64_t)((uintptr_t)destination % b->page_bytes));
    }
    if (b->buffer != NULL)
        return; /* read-file or write-file with a reused buffer: no blocks, nothing allocated */
    observe(out, OBS_ALIGNMENT_BYTES, block_alignment(b));
    if (is_heap_backing(s->backing)) {
        observe(out, OBS_BRK_GROWTH_BYTES, growth(before->brk, current_brk()));
        observe(out, OBS_BLOCKS_IN_HEAP, blocks_in_heap(b, c->heap_start));
    }
}

/* How glibc got each heap block's chunk, read from the chunk headers right after allocate,
 * which has just written them in the same order: this leaves the caches as allocate left
 * them. Read before the free phase instead, the headers free works on would be warm where
 * the touching phases had pushed them out (a 4 KiB free took a fifth of its time). */
static void observe_chunks(const struct context *c, struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    if (!c->chunk_flags || b->buffer != NULL)
        return;
    uint64_t mmapped, thread_arena;
    count_chunk_kinds(b, &mmapped, &thread_arena);
    observe(out, OBS_BLOCKS_MMAPPED, mmapped);
    observe(out, OBS_BLOCKS_IN_THREAD_ARENA, thread_arena);
}

/* Whether code runs in the blocks (mapping backings and posix-memalign, on x86-64 and
 * aarch64): for protection exec a function copied into each; for read-write and read, a
 * call into each must fault, asked only where the access pattern mapped the blocks' pages
 * (see check_exec_traps), so that the call maps none the free phase would then unmap.
 * After the protection checks, before the blocks are made read-write again for free. */
static void observe_exec(const struct scenario *s, const struct blocks *b,
                         struct iteration_result *out)
{
    int heap_only = is_heap_backing(s->backing) && s->backing != BACKING_POSIX_MEMALIGN;
    if (heap_only || !exec_code_available())
        return;
    if (s->protection == PROTECTION_EXEC)
        observe(out, OBS_EXEC_RAN, check_exec_runs(b, s));
    else if (s->protection != PROTECTION_NONE && s->access != ACCESS_NONE &&
             !reads_imply_exec())
        observe(out, OBS_EXEC_TRAPPED, check_exec_traps(b));
}

/* check_zero: the non-zero bytes of the blocks right after allocate, before any write. */
static void observe_zero(const struct blocks *b, struct iteration_result *out)
{
    observe(out, OBS_NONZERO_BYTES_AT_ALLOCATE, nonzero_bytes(b));
    observe(out, OBS_NONZERO_BLOCKS, dirty_blocks(b));
}

/* File backings, after first touch: what the iteration's allocate and first touch brought
 * into the page cache (mincore now against mincore before the iteration, run_iteration's;
 * a file created in allocate had no page before). */
static void observe_cache(const struct context *c, const struct blocks *b, int new_file,
                          struct iteration_result *out)
{
    size_t pages = (c->file_bytes + b->page_bytes - 1) / b->page_bytes;
    uint64_t after_ppm = file_resident_ppm(b->fd, c->file_bytes, b->page_bytes,
                                           c->residency_after);
    if (new_file)
        memset(c->residency, 0, pages);
    observe(out, OBS_CACHED_PAGES_ADDED, pages_added(c->residency, c->residency_after, pages));
    observe(out, OBS_RESIDENT_PPM_AFTER, after_ppm);
    if (in_memory_cgroup() && c->file_bytes > 0)
        observe(out, OBS_CGROUP_CACHE_PPM, cgroup_cache_bytes() * PPM / c->file_bytes);
}

/* The counts of every phase that file backings report: system calls, storage I/O. */
static void observe_phase_counts(int file, struct iteration_result *out)
{
    for (int p = 0; p < PHASE_COUNT; p++) {
        const struct phase_result *phase = &out->phases[p];
        observe(out, (enum observation)(OBS_ALLOCATE_SYSCALLS + p), phase->syscalls);
        if (!file)
            continue;
        observe(out, (enum observation)(OBS_ALLOCATE_IO_READ_BYTES + p), phase->io_read_bytes);
        observe(out, (enum observation)(OBS_ALLOCATE_IO_WRITE_BYTES + p),
                phase->io_write_bytes);
    }
}

/* pause_ms: the other work a program does between preparing memory and using it, as an
 * untimed sleep; what allocate started (MADV_WILLNEED's read-ahead, say) goes on meanwhile. */
void pause_for(size_t milliseconds)
{
    struct timespec left = {.tv_sec = (time_t)(milliseconds / 1000),
                            .tv_nsec = (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&left, &left) != 0)
        if (errno != EINTR)
            system_error("nanosleep");
}

/* free_pause_ms: the program going on after the free phase, whose time and resident set are
 * read first, so nothing timed changes: free_pause_ms of sleeps and calls into its allocator
 * (allocator.c), then what it gave back, reported as the resident set after the pause: the
 * free phase's, less the anonymous memory given back since. Anonymous alone, because code
 * the process runs for the first time maps in program text (64 KiB of fault-around per
 * fault), which is no heap memory. `anonymous_after_free` was read right after the phase. */
static void observe_pause(const struct scenario *s, size_t page, uint64_t anonymous_after_free,
                          struct iteration_result *out)
{
    allocator_go_on(s->free_pause_ms);
    uint64_t anonymous = anonymous_bytes(page), rss = out->phases[PHASE_FREE].rss_bytes;
    uint64_t given_back = growth(anonymous, anonymous_after_free);
    uint64_t taken = growth(anonymous_after_free, anonymous);
    observe(out, OBS_RSS_AFTER_PAUSE_BYTES, growth(given_back, rss + taken));
}

/* --latency=histogram: the first touch of write-page, each page's write between two clock
 * reads of its own (its fault, if it takes one, and the store), recorded in `latency`. The
 * blocks in order, every page: what touch_blocks does for write-page on memory without a
 * data file, the clock reads and the recording besides. */
static __attribute__((noinline)) uint64_t touch_pages_timed(const struct blocks *b,
                                                            unsigned char value,
                                                            struct latency_histogram *latency)
{
    const size_t page = b->page_bytes, size = b->size_bytes;
    for (size_t i = 0; i < b->ops; i++) {
        unsigned char *p = b->at[i];
        for (size_t o = 0; o < size; o += page)
            TIMED(latency, {
                p[o] = value;
                ESCAPE(p);
            });
    }
    return 0;
}

/* cycle: the four phases, each timed around exactly its work, and the observations the
 * scenario calls for, taken between the phases but never between allocate and first touch
 * (except the chunk headers allocate just wrote, check_zero's reading, file_layout truncated's
 * truncation, order random's locating of the pages, and pause_ms's sleep). `value` makes the written bytes
 * differ between iterations, so no store is a constant the compiler could drop. file_origin
 * new works on a copy of the blocks that holds the descriptor allocate creates. */
void run_cycle(const struct context *c, const struct scenario *s, unsigned char value,
               struct iteration_result *out)
{
    struct blocks fresh = c->blocks;
    int new_file = s->file_origin == FILE_ORIGIN_NEW, file = is_file_backing(s->backing);
    const struct blocks *b = new_file ? &fresh : &c->blocks;
    size_t page = b->page_bytes;
    struct phase_start start;
    if (s->history == HISTORY_RECYCLED)
        recycle_blocks(b, s);
    int thp = s->thp != THP_DEFAULT, hugetlb = s->backing == BACKING_MMAP_HUGETLB;
    /* Whether malloc's memory became transparent huge pages (glibc.malloc.hugetlb): only a
     * block of 2 MiB or more can hold one. */
    int huge_heap = is_heap_backing(s->backing) && s->size_bytes >= HUGE_PAGE_BYTES;
    uint64_t thp_before = thp || huge_heap ? anon_huge_bytes() : 0;
    uint64_t hugetlb_before = hugetlb ? hugetlb_bytes() : 0;
    struct before_allocate before = {.vm_bytes = virtual_bytes(page),
                                     .page_table_bytes = page_table_bytes(),
                                     .brk = current_brk()};
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    if (c->crew != NULL)
        crew_work(c->crew, PHASE_ALLOCATE, value);
    else if (new_file)
        allocate_in_new_file(&fresh, s, c->new_path, c->file_bytes);
    else
        allocate_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    observe_chunks(c, out);
    if (s->check_zero)
        observe_zero(b, out);
    if (s->file_layout == FILE_LAYOUT_TRUNCATED)
        truncate_under_mappings(b);
    if (b->pages != NULL)
        locate_pages(b);
    pause_for(s->pause_ms);

    start_phase(&start);
    uint64_t checksum = c->crew != NULL      ? crew_work(c->crew, PHASE_FIRST_TOUCH, value)
                        : out->latency != NULL ? touch_pages_timed(b, value, out->latency)
                                               : touch_blocks(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);
    if (out->latency != NULL)
        out->latency_clock_ns = clock_overhead_ns();
    if (thp || huge_heap)
        observe(out, OBS_ANON_HUGE_BYTES, growth(thp_before, anon_huge_bytes()));
    if (hugetlb)
        observe(out, OBS_HUGETLB_BYTES, growth(hugetlb_before, hugetlb_bytes()));
    if (file)
        observe_cache(c, b, new_file, out);
    if (file || s->touch_share_ppm != PPM)
        observe(out, OBS_TOUCHED_PAGES, c->touched_pages);
    if (s->populate == POPULATE_MLOCK || s->populate == POPULATE_MLOCK_ONFAULT) {
        observe(out, OBS_LOCKED_BYTES, locked_bytes());
        observe(out, OBS_VM_LOCKED_BYTES, vm_locked_bytes());
        observe(out, OBS_MLOCK_REFUSED, mlock_refusals());
    }

    unsigned char again = (unsigned char)(value + 1);
    start_phase(&start);
    checksum += c->crew != NULL ? crew_work(c->crew, PHASE_SECOND_PASS, again)
                                : touch_blocks(b, s, page, again);
    stop_phase(&start, page, &out->phases[PHASE_SECOND_PASS]);
    /* before the protection checks, whose mprotect calls may split or merge mappings */
    observe_allocation(c, s, &before, out);
    if (s->check_content)
        observe_content(b, s, c->file_bytes, out);
    if (s->protection != PROTECTION_READ_WRITE) {
        observe(out, OBS_PROTECTION_ENFORCED, check_protection(b, s));
        observe(out, OBS_MPROTECT_NS, time_mprotect(b, s));
    }
    observe_exec(s, b, out);
    release_protection(b, s);

    start_phase(&start);
    if (c->crew != NULL)
        crew_work(c->crew, PHASE_FREE, value);
    else
        release_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    uint64_t anonymous_after_free = s->free_pause_ms != 0 ? anonymous_bytes(page) : 0;
    finish_release(b, s);
    if (new_file)
        remove_new_file(&fresh, c->new_path);
    if (s->file_layout == FILE_LAYOUT_TRUNCATED)
        restore_data_file(b, c->file_bytes);
    if (hugetlb)
        observe_hugetlb_pool(out);
    if (s->free_pause_ms != 0)
        observe_pause(s, page, anonymous_after_free, out);

    out->checksum = checksum;
    if (file || thp)
        observe_phase_counts(file, out);
}

