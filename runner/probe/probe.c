/*
 * alloclab probe: measures ONE memory-allocation scenario and prints ONE JSON object.
 *
 * Each iteration runs four timed phases over `ops` blocks. Every phase is timed with
 * CLOCK_MONOTONIC around exactly the work; page faults (getrusage) and the resident set
 * (/proc/self/statm) are read just outside the timed window. What the four phase slots time
 * depends on the workload (--workload); this table is the one place it is defined
 * (docs/guide/writing-an-experiment.md repeats it, by workload):
 *
 *   cycle   allocate     allocate the blocks (malloc / mmap, then --advice and --populate;
 *                        read-file with --read_buffer_bytes=0: malloc + pread of each block;
 *                        read-file with a read buffer: nothing, the buffer exists already);
 *                        --file_origin=new first creates the data file (open O_CREAT|O_TRUNC,
 *                        for mmap-file ftruncate to its length); --file_open=per-block opens
 *                        the file by name for each block and closes it once the block is
 *                        mapped or read (for read-file with a buffer that is in the touching
 *                        phases, around each block's chunks)
 *           first_touch  the access pattern over every block (read-file with a read buffer:
 *                        pread of each chunk of each block into the one buffer, then the
 *                        access pattern on that chunk; write-file with a write buffer: the
 *                        access pattern on each chunk in the one buffer, then its pwrite);
 *                        for write-file with --write_buffer_bytes=0 then pwrite of every
 *                        block to the file; with --sync then msync or fsync
 *           second_pass  the same again: on memory already faulted in, or for read-file with
 *                        a read buffer reading the file again
 *           free         give the blocks back (free, munmap, madvise... as --release says;
 *                        nothing for read-file or write-file with a reused buffer)
 *   fork    allocate     allocate the blocks and write the access pattern (the parent's data)
 *           first_touch  fork(), as the parent sees it
 *           second_pass  the child writes the access pattern with another value, before
 *                        anything reads its memory (its page faults, copy-on-write for
 *                        private memory): ns and faults are the child's, sent back through a
 *                        pipe; rss_bytes is the parent's
 *           free         wait for the child to exit, then give the blocks back
 *   resize  allocate     allocate the blocks
 *           first_touch  the access pattern (the data that must survive)
 *           second_pass  grow every block to grow_factor times its size by realloc,
 *                        mremap(MREMAP_MAYMOVE) or copy (new block, memcpy, free the old);
 *                        --grow_steps times over (size times grow_factor^steps at the end),
 *                        with --touch_grown=1 the access pattern over the part each step
 *                        added, right after that step
 *           free         give the grown blocks back
 *   limits  allocate     map blocks (mmap-anon or mmap-file), never touched, one after
 *                        another until mmap refuses one; neighbours alternate read-write
 *                        and read-only so none merge (--ops is not used)
 *           first_touch  nothing
 *           second_pass  nothing
 *           free         munmap every block mapped
 *   churn   allocate     ops times, back to back: allocate one block (as cycle's allocate
 *                        does one), the access pattern on it, release it (free, malloc-trim
 *                        or munmap); only one block is alive at a time, so this is the
 *                        latency of an allocate-use-release pair; with --threads=N, each of
 *                        N threads runs its own ops pairs at once (ops x N in all)
 *           first_touch  empty: 0 ns, 0 faults, rss_bytes as after allocate
 *           second_pass  empty, likewise
 *           free         empty, likewise
 *   fragment allocate    each of ops slots gets a block (malloc or calloc) of a size drawn
 *                        from 16 bytes to size_bytes, each power-of-two octave as likely,
 *                        written by the access pattern; with --threads=N each thread has
 *                        ops slots of its own, and with --thread_turns=1 the threads take
 *                        the iterations in turn, one each (fragment.c)
 *           first_touch  churn: 4 x ops times a random slot's block freed and a new one of
 *                        a new size allocated and written in its place
 *           second_pass  as much churn again
 *           free         free every block but every keep_every-th slot's (those live on
 *                        until the process exits); release malloc-trim then trims
 *   reuse   allocate     as cycle (mmap-anon or dev-zero, private)
 *           first_touch  as cycle
 *           free         the release: madvise(MADV_DONTNEED or MADV_FREE), mappings kept
 *           second_pass  the access pattern again, on the released blocks: timed after the
 *                        free phase (the phases print in their usual order); then, untimed,
 *                        the blocks are unmapped
 *   ipc     allocate     the writer's (the probe's) channel for one message of size bytes:
 *                        shm and memfd created, sized and mapped after a control page,
 *                        mmap-file the data file mapped so, pipe two pipes and a buffer;
 *                        then, untimed, the peer opens and maps it (timing itself)
 *           first_touch  ops messages one after another: every byte written (a value of its
 *                        own), posted (a futex word in the control page, or the pipe, chunk
 *                        by chunk), read and summed by the peer, acknowledged; timed from the
 *                        first write to the last acknowledgement
 *           second_pass  the same again, the pages faulted in on both sides
 *           free         the writer unmaps and closes its side, after the peer closed its own
 *
 * --heap_pad=keep (heap backings, cycle or churn) turns glibc's trimming off and sets its top
 * pad to the batch (mallopt, before the first allocation), and before the first iteration,
 * untimed, allocates the batch once and frees it: the heap holds it from then on, so no
 * timed phase moves the program break or faults a fresh heap page.
 * --release=none makes the free phase do nothing: the blocks stay allocated until the
 * process exits, so every iteration leaks its own; --keep_every=N (heap backings, cycle) makes
 * it free every block but every N-th, which stay allocated likewise (long-lived objects among
 * short-lived ones). The *-but-last releases keep each thread's last block through the phase
 * and free them after, untimed. --noreserve=1 adds MAP_NORESERVE to every mmap of a mapping
 * backing. --history=recycled (cycle) allocates the
 * blocks the same way before each iteration, untimed, writes every byte non-zero and frees
 * them (or unmaps them), so the timed allocate gets memory the process has used.
 * --host_warm=1, once before the first iteration, untimed, writes every page of an anonymous
 * region as large as the scenario's blocks and unmaps it, so that in a virtual machine that
 * reports free pages to its host the pages handed out next are likely backed already (best
 * effort: the kernel may hand out others; the measured blocks themselves stay untouched).
 *
 * With --threads=N N threads share the blocks (cycle) or each run ops pairs of their own (churn,
 * no file backing), and each phase is timed from the barrier that starts them to the barrier
 * the last of them reaches.
 *
 * --touch_share_ppm below a million (cycle, one thread) makes the touching phases visit that
 * share of each block's pages (or of read-file's and write-file's chunks): the first of each
 * block's pages in the fixed random order, in that order (--order=random) or ascending. For
 * cycle's file backings the probe reads /proc/self/io around every phase (storage I/O) and
 * takes mincore of the data file before the iteration and after first touch (pages brought
 * into the page cache). --file_origin=new removes the file after the free phase, untimed.
 * --file_layout (mmap-file, with --check_content) lays the file out short, with holes, or has
 * a vfork'd child truncate it after allocate (untimed, restored after the free phase); the
 * timed phases then never touch a page past the end of the file, and --check_content reads
 * every block after the second pass, catching SIGBUS where a page lies past the end.
 *
 * Outside the phases an iteration records observations where the scenario makes them
 * meaningful: the blocks' alignment, how much became huge pages (thp, hugetlb), whether a
 * forbidden access faulted and what mprotect costs (protection read, exec or none), whether
 * code copied into the blocks runs (exec) or a call into them faults (read-write, read), how
 * far the program break moved, how many blocks lie in the heap and how glibc got their chunks
 * (mapped on their own, in a thread arena: heap backings), mappings, address space and page
 * tables after allocate, non-zero bytes found right after allocate (--check_zero), the
 * share of the data file in the page cache before the iteration (file backings), who sees
 * whose writes across fork and the PSS of both, whether the ipc peer saw the writer's bytes
 * and what opening the channel and receiving cost it, whether resizing moved the blocks and kept
 * their data, the page offset read() copies to (read-file), the system calls each phase
 * of a file backing issued (COUNT_SYSCALL), its storage I/O and the pages it brought into the
 * page cache, whether a mapping shows its file's content (check_content), and for limits
 * what refused the next mapping, the map count against vm.max_map_count and whether
 * RLIMIT_AS is enforced (checked after the free phase).
 *
 * The heap trace (heap backings, cycle, one thread): the timed phases never read sbrk(0) or
 * malloc_usable_size between calls, so after the timed iterations the probe runs itself
 * again (/proc/self/exe, the same arguments and environment plus --trace_heap, which only it
 * ever passes). That fresh image, on a pristine heap, allocates the blocks one call at a time
 * as allocate does, reads sbrk(0) and malloc_usable_size after each, and sends back through a
 * pipe how many calls moved the break, the median move and the usable bytes; every iteration
 * carries those figures. The Python side (runner/probe/native.py) builds these files, writes the
 * command line and reads the output; the output format is defined there and here, and
 * PROBE_VERSION ties the two; the observation names, units and meanings are declared in
 * runner/core/metrics.py.
 *
 * Workload ipc's peer is such a fresh image too (--ipc_peer), started before the first
 * iteration and living through all of them: the writer's messages reach a process that shares
 * no mapping with it by inheritance, and opens each channel by its name (ipc.c).
 *
 * Exit status: 0 with the JSON on stdout; 2 for a bad command line; 3 when a system call
 * fails (stderr names the call and the reason); 4 when the machine refuses something the
 * scenario needs, such as huge pages or an mlock limit (stderr: "probe: skipped: <reason>").
 *
 * The probe itself never calls malloc before printing its result: its own buffers come from
 * mmap, so glibc's heap (and its dynamic mmap threshold) is exactly that of a fresh program
 * when the first measured allocation happens. (With --threads above 1, creating the threads
 * lets glibc calloc their thread-local storage first.) Before the first iteration fence_blocks
 * maps a PROT_NONE page after the probe's own memory and makes any other mapping a block would
 * join (the probe's memory, ld.so's and libc's anonymous pages) unjoinable, so that the first
 * block of a private anonymous batch, and every block of churn, is a mapping of its own
 * (churn of mmap-anon reports it: joined_neighbour).
 *
 * The files, one concern each (probe.h declares what they share):
 *   probe.c     this comment, setting up, the iteration loop, main
 *   options.c   the command line: option names and values, the combinations refused
 *   backings.c  allocate and free, one function per backing; the release
 *   access.c    access patterns, the file writes and syncs of a touching phase, random order
 *   phase.c     timing a phase (clock, faults, resident set) and recording observations
 *   observe.c   the observations taken between phases (alignment, maps, brk, protection...)
 *   datafile.c  the data file of file backings and its page-cache residency
 *   content.c   file layouts (short, holes, truncated) and what a mapping shows of them
 *   history.c   history recycled, host warming and the heap trace
 *   threads.c   the crew of worker threads (--threads above 1)
 *   latency.c   per-operation latency histograms (--latency=histogram): percentiles, JSON
 *   cycle.c, churn.c, fork.c, resize.c, limits.c, reuse.c, ipc.c   one workload each: its
 *               four phase slots (ipc.c also the peer's side)
 *   fingerprint.c  --fingerprint: the machine's facts as JSON (runner/machine/system.py FACTS)
 *   output.c    the JSON on stdout; skips and failures on stderr, with the exit status
 *   tether.c    dying with the runner, and at the probe's own time limit (environment)
 */
#include "probe.h"

/* Anonymous memory for the probe's own bookkeeping, written once so that its page faults
 * happen now and never inside a timed phase. mmap rather than malloc: see the file comment. */
void *map_scratch(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        system_error("mmap");
    memset(p, 0, bytes);
    return p;
}

/* A page no block joins: a mapping joins a neighbour only with the same protection, so
 * PROT_NONE, or PROT_READ for blocks that are PROT_NONE themselves. */
static void map_fence(const struct scenario *s, void *at, size_t page)
{
    int protection = s->protection == PROTECTION_NONE ? PROT_READ : PROT_NONE;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (at != NULL ? MAP_FIXED_NOREPLACE : 0);
    if (mmap(at, page, protection, flags, -1, 0) == MAP_FAILED)
        system_error("mmap (a fence page between the blocks and other mappings)");
}

/* The mappings a trial block at [start, end) joined: unnamed anonymous ones with the block's
 * permissions that touch it (one above; one below too when it filled a gap exactly). */
struct neighbours {
    uintptr_t start, end;
    char perms[5];
    size_t count;
    struct mapping_line found[2];
};

static void note_neighbour(const struct mapping_line *line, void *context)
{
    struct neighbours *n = context;
    if (line->anonymous && strcmp(line->perms, n->perms) == 0 &&
        (line->start == n->end || line->end == n->start) && n->count < 2)
        n->found[n->count++] = *line;
}

/* Makes the mappings the trial at [at, at + length) joined unjoinable without adding a
 * mapping: MADV_DONTDUMP (left out of core dumps) gives them a flag no block has, and a
 * mapping joins only a neighbour with equal flags. 1 when it marked any. */
static int mark_neighbours(const struct scenario *s, unsigned char *at, size_t length)
{
    int bits = PROTECTION_BITS[s->protection];
    struct neighbours n = {.start = (uintptr_t)at, .end = (uintptr_t)(at + length),
                           .perms = {bits & PROT_READ ? 'r' : '-', bits & PROT_WRITE ? 'w' : '-',
                                     bits & PROT_EXEC ? 'x' : '-', 'p', '\0'}};
    visit_mappings(note_neighbour, &n);
    int marked = 0;
    for (size_t i = 0; i < n.count; i++)
        marked |= madvise((void *)n.found[i].start, n.found[i].end - n.found[i].start,
                          MADV_DONTDUMP) == 0;
    return marked;
}

/* Most rounds fence_blocks tries before it gives up (each removes one neighbour a block
 * would join; a process has a few dozen mappings). */
#define MAX_FENCE_ROUNDS 64

/* Keeps the blocks apart from every other mapping, before the first iteration. The kernel
 * places a new mapping at the top of the highest gap it fits in, and a private anonymous
 * mapping right next to one with the same protection and flags joins it: mmap extends that
 * mapping and munmap splits it again (vma_merge, __split_vma, anon_vma_clone), kernel work a
 * mapping of its own does not cost: an untouched 4 KiB mmap + munmap pair beside a written
 * read-write neighbour cost 25% more here. lmbench's lat_mmap (a file mapping) and
 * will-it-scale's mmap1 (128 MiB, placed 2 MiB-aligned) time mappings of their own.
 * First a fence page after the probe's own memory, as every probe version did (the kernel puts
 * the next small mapping right below it). Then, for private anonymous blocks, a trial block
 * mapped as map_block maps one (never populated) and unmapped at once: while it joins a
 * neighbour (the mappings do not grow by one), that neighbour is marked unjoinable
 * (mark_neighbours), or where that fails a fence page is mapped at the top of the place the
 * trial took. Marking adds no mapping: where a block lies among the kernel's tree of mappings
 * changes what its pair costs too (a 64 KiB pair at the edge of a tree node, where a fence
 * page had moved it, cost 70% more), so the layout stays that of the process as it was. The
 * first measured block goes where the last trial went. Blocks of a batch still join one
 * another, as a program's consecutive mmaps do. Not for thp (a block carved out of a larger
 * mapping, with gaps on both sides) nor limits (neighbours alternate protection). */
static void fence_blocks(const struct blocks *b, const struct scenario *s)
{
    size_t page = b->page_bytes;
    map_fence(s, NULL, page);
    if (s->backing != BACKING_MMAP_ANON || s->sharing != SHARING_PRIVATE ||
        s->thp != THP_DEFAULT || s->workload == WORKLOAD_LIMITS)
        return;
    /* The mapping a block takes: whole pages, also for a block smaller than one. */
    size_t length = (b->map_bytes + page - 1) / page * page;
    for (int round = 0; round < MAX_FENCE_ROUNDS; round++) {
        uint64_t before = count_mappings();
        unsigned char *trial = mmap(NULL, length, PROTECTION_BITS[s->protection],
                                    map_flags(s) & ~MAP_POPULATE, -1, 0);
        if (trial == MAP_FAILED)
            return; /* allocate will meet the same refusal and report it */
        int joined = count_mappings() != before + 1;
        if (munmap(trial, length) != 0)
            system_error("munmap");
        if (!joined)
            return;
        if (!mark_neighbours(s, trial, length))
            map_fence(s, trial + length - page, page);
    }
    skip("could not place a block of %zu bytes apart from the process's other mappings in %d "
         "rounds", b->map_bytes, MAX_FENCE_ROUNDS);
}

/* One iteration: for file backings first the file's residency (evicted before, for cache
 * cold), then the workload. (file_origin new has no file yet.) */
static void run_iteration(const struct context *c, const struct scenario *s,
                          unsigned char value, struct iteration_result *out)
{
    if (c->file_bytes > 0 && c->blocks.fd >= 0) {
        if (s->cache == CACHE_COLD)
            evict_file(c->blocks.fd);
        observe(out, OBS_RESIDENT_PPM_BEFORE, file_resident_ppm(c->blocks.fd, c->file_bytes,
                                                                c->blocks.page_bytes,
                                                                c->residency));
    }
    switch (s->workload) {
    case WORKLOAD_CYCLE:
        run_cycle(c, s, value, out);
        break;
    case WORKLOAD_FORK:
        run_fork(c, s, value, out);
        break;
    case WORKLOAD_RESIZE:
        run_resize(c, s, value, out);
        break;
    case WORKLOAD_LIMITS:
        run_limits(c, s, out);
        break;
    case WORKLOAD_CHURN:
        run_churn(c, s, value, out);
        break;
    case WORKLOAD_REUSE:
        run_reuse(c, s, value, out);
        break;
    case WORKLOAD_IPC:
        run_ipc(c, s, value, out);
        break;
    case WORKLOAD_FRAGMENT:
        run_fragment(c, s, value, out);
        break;
    case WORKLOAD_COUNT:
        break;
    }
}

/* order random, or touch_share below 100%: the pages (or chunks), `per_block` to a block, one
 * pass visits, in the order it visits them (choose_units); returns the list, `count` its
 * length. */
static uint64_t *order_units(const struct scenario *s, size_t per_block, size_t *count)
{
    size_t all = s->ops * per_block;
    uint64_t *order = map_scratch(all * sizeof *order);
    shuffle_pages(order, all);
    *count = choose_units(order, all, per_block, s->touch_share_ppm,
                          s->order == ORDER_SEQUENTIAL);
    return order;
}

/* The pages of the data file one pass reads or writes (touched_pages): those of the chunks a
 * reused buffer transfers, those the access pattern visits in mapped memory (none for access
 * none), or those read-file and write-file transfer to or from their heap blocks. */
static size_t count_touched_pages(const struct blocks *b, const struct scenario *s)
{
    size_t page = b->page_bytes, block_pages = (s->size_bytes + page - 1) / page;
    if (b->buffer != NULL && b->chunk_order != NULL) {
        size_t pages = 0;
        for (size_t k = 0; k < b->chunk_count; k++) {
            size_t offset = (size_t)(b->chunk_order[k] % b->chunks_per_block) * b->buffer_bytes;
            size_t length = s->size_bytes - offset < b->buffer_bytes ? s->size_bytes - offset
                                                                     : b->buffer_bytes;
            pages += (length + page - 1) / page;
        }
        return pages;
    }
    if (s->access == ACCESS_NONE && b->buffer == NULL && s->backing != BACKING_READ_FILE)
        return 0;
    return b->order != NULL ? b->page_count : s->ops * block_pages;
}

/* Everything the iterations share, made before the first of them: the block list, the data
 * file, the random order, the threads. `file_fs` gets the data file's filesystem. */
static struct context prepare_context(const struct scenario *s, size_t page,
                                      uintptr_t heap_start, char *fs_buffer, size_t fs_size,
                                      const char **file_fs)
{
    /* Blocks of a file backing sit one page-rounded stride apart, so that every mapping
     * offset is page-aligned as mmap requires. */
    size_t stride = (s->size_bytes + page - 1) / page * page;
    if (stride < s->size_bytes || s->ops > SIZE_MAX / stride ||
        s->ops * stride > (uint64_t)INT64_MAX)
        usage_error("--ops times --size_bytes is too large");

    /* A hugetlb block is whole huge pages; a thp block whole pages (its tail is unmapped at a
     * page boundary). Every other mapping is exactly size_bytes, as the kernel rounds it. */
    size_t map_bytes = s->size_bytes;
    if (s->backing == BACKING_MMAP_HUGETLB) {
        map_bytes = (s->size_bytes + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
        if (map_bytes < s->size_bytes || s->ops > SIZE_MAX / map_bytes)
            usage_error("--ops times --size_bytes is too large");
    } else if (s->thp != THP_DEFAULT ||
               (s->backing == BACKING_POSIX_MEMALIGN && s->protection != PROTECTION_READ_WRITE)) {
        map_bytes = stride;
    }
    /* resize: the grown blocks, all of them, must fit too, after the last step. */
    if (s->workload == WORKLOAD_RESIZE) {
        size_t growth = 1;
        for (size_t step = 0; step < s->grow_steps; step++) {
            if (growth > SIZE_MAX / s->grow_factor)
                usage_error("--grow_factor to the power --grow_steps is too large");
            growth *= s->grow_factor;
        }
        if (stride > SIZE_MAX / growth / s->ops || map_bytes > SIZE_MAX / growth)
            usage_error("--ops times --size_bytes times the growth is too large");
    }

    struct context c = {.heap_start = heap_start};
    struct blocks *b = &c.blocks;
    *b = (struct blocks){.ops = s->ops, .size_bytes = s->size_bytes, .map_bytes = map_bytes,
                         .stride_bytes = stride, .page_bytes = page, .fd = -1};
    *file_fs = NULL;
    if (s->workload == WORKLOAD_LIMITS) {
        prepare_limits(&c, s, fs_buffer, fs_size, file_fs);
        return c;
    }
    if (is_file_backing(s->backing)) {
        *file_fs = filesystem_name(s->file_dir, fs_buffer, fs_size);
        /* ipc: one channel, its control page and the message */
        c.file_bytes = s->workload == WORKLOAD_IPC ? page + stride
                                                   : layout_file_bytes(s, s->ops, stride, page);
        if (s->file_origin == FILE_ORIGIN_NEW)
            c.new_path = name_new_file(s->file_dir);
        else
            b->fd = open_data_file(s, (uint64_t)c.file_bytes, stride, page, &b->path);
        size_t pages = (c.file_bytes + page - 1) / page;
        c.residency = map_scratch(pages);
        if (s->workload == WORKLOAD_CYCLE)
            c.residency_after = map_scratch(pages);
    } else if (s->backing == BACKING_DEV_ZERO) {
        b->fd = open_dev_zero();
    }
    if (s->workload == WORKLOAD_IPC)
        return c; /* no blocks: one message buffer, the channel's (ipc.c) */
    b->at = map_scratch(s->ops * sizeof *b->at);
    if (io_buffer_bytes(s) != 0) {
        /* map_scratch writes it: its page faults happen here, never in a timed phase */
        b->buffer_bytes = io_buffer_bytes(s);
        b->buffer = map_scratch(b->buffer_bytes);
        if (s->order == ORDER_RANDOM || s->touch_share_ppm != PPM) {
            b->chunks_per_block = (s->size_bytes + b->buffer_bytes - 1) / b->buffer_bytes;
            b->chunk_order = order_units(s, b->chunks_per_block, &b->chunk_count);
        }
    } else if (s->order == ORDER_RANDOM || s->touch_share_ppm != PPM) {
        b->pages_per_block = stride / page;
        b->order = order_units(s, b->pages_per_block, &b->page_count);
        b->pages = map_scratch(b->page_count * sizeof *b->pages);
    }
    c.touched_pages = count_touched_pages(b, s);
    if (s->workload == WORKLOAD_RESIZE)
        c.previous = map_scratch(s->ops * sizeof *c.previous);
    if (s->workload == WORKLOAD_FRAGMENT && s->threads == 1)
        b->sizes = new_slot_sizes(s->ops, s->size_bytes, 0);
    if (s->threads > 1)
        c.crew = start_crew(b, s);
    c.chunk_flags = is_heap_backing(s->backing) && glibc_malloc_in_use();
    return c;
}

/* ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    uintptr_t heap_start = current_brk(); /* before anything can move it */
    if (argc > 1 && strcmp(argv[1], FINGERPRINT_ARGUMENT) == 0)
        return print_fingerprint(argc - 2, argv + 2);
    int tracing = argc > 1 && strcmp(argv[argc - 1], TRACE_HEAP_ARGUMENT) == 0;
    int peering = argc > 1 && strcmp(argv[argc - 1], IPC_PEER_ARGUMENT) == 0;
    if (peering)
        tie_to_probe();
    else
        tie_to_runner(tracing);
    if (!tracing && !peering)
        join_memory_cgroup(); /* before anything measured is mapped: runner/probe/cgroup.c */
    struct scenario s = parse_arguments(tracing || peering ? argc - 1 : argc, argv);
    apply_memlock_limit(&s); /* before anything is mapped: every mlock counts against it */
    if (!tracing && !peering)
        start_bystanders(s.bystanders);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    keep_heap(&s, s.size_bytes > SIZE_MAX / s.ops ? SIZE_MAX : s.ops * s.size_bytes);
    if (tracing)
        run_heap_trace(&s, page);
    if (peering)
        run_ipc_peer(&s, page);
    char fs_buffer[32];
    const char *file_fs;
    struct context c = prepare_context(&s, page, heap_start, fs_buffer, sizeof fs_buffer,
                                       &file_fs);
    size_t count = s.warmup + s.iterations;
    struct iteration_result *results = map_scratch(count * sizeof *results);
    /* before fence_blocks, like all of the probe's own memory */
    struct latency_histogram *latency =
        s.latency != LATENCY_OFF ? map_latency_histograms(count) : NULL;

    /* A throwaway measurement, so the first real phase does not pay for the first use of the
     * clock, getrusage and /proc (vDSO page, dentry lookups) in faults. */
    struct phase_start start;
    struct phase_result ignored;
    if (is_file_backing(s.backing) && s.workload == WORKLOAD_CYCLE)
        account_io(); /* before the throwaway measurement, which reads it a first time */
    start_phase(&start);
    stop_phase(&start, page, &ignored);

    if (s.host_warm)
        warm_host(scenario_bytes(&c.blocks, &s), page, s.thp == THP_HUGE);
    grow_heap_once(&c.blocks, &s);
    rehearse_fault_checks(page);
    if (s.workload == WORKLOAD_IPC) /* before the fence: its arguments are scratch memory */
        c.peer = start_ipc_peer(argc, argv);
    fence_blocks(&c.blocks, &s);
    uint64_t from_allocator = (uint64_t)malloc_from_allocator(); /* before anything is timed */
    for (size_t i = 0; i < count; i++) {
        results[i].warmup = i < s.warmup;
        results[i].latency = latency != NULL ? &latency[i] : NULL;
        run_iteration(&c, &s, (unsigned char)(1 + (2 * i) % 254), &results[i]);
        observe(&results[i], OBS_MALLOC_FROM_ALLOCATOR, from_allocator);
    }
    if (c.peer.pid > 0)
        stop_ipc_peer(&c.peer);
    /* read-file and write-file through a reused buffer allocate nothing: nothing to trace. */
    int buffered = io_buffer_bytes(&s) != 0;
    if (is_heap_backing(s.backing) && s.workload == WORKLOAD_CYCLE && s.threads == 1 &&
        !buffered) {
        struct heap_trace trace = trace_heap(argc, argv);
        observe_heap_trace(&trace, results, count);
    }

    print_result(page, file_fs, results, count);
    return 0;
}
