/*
 * History, host warming and the heap trace: what happens before an iteration (recycled blocks,
 * warmed host pages) and the fresh image that traces single heap allocations.
 */
#include "probe.h"

/* The last argument of the heap trace's fresh image (see trace_heap): not a scenario option,
 * never given by the Python side. */
const char TRACE_HEAP_ARGUMENT[] = "--trace_heap";


/* Blocks with at least one non-zero byte: "is malloc'd memory dirty?" asked per block, so a
 * free-list pointer or two in an otherwise zero block counts as dirty. */
uint64_t dirty_blocks(const struct blocks *b)
{
    uint64_t count = 0;
    for (size_t i = 0; i < b->ops; i++) {
        size_t j = 0;
        while (j < b->size_bytes && b->at[i][j] == 0)
            j++;
        count += j < b->size_bytes;
    }
    return count;
}

/* What history recycled writes into every byte before giving the blocks back. */
#define RECYCLE_BYTE 0xA5

/* history recycled, before an iteration's allocate, untimed: the same blocks allocated the
 * same way, every byte written, and given back plainly (free, or munmap), so the timed
 * allocate gets memory the process has used: chunks off glibc's free lists, or the kernel's
 * idea of reused pages for mappings. */
void recycle_blocks(const struct blocks *b, const struct scenario *s)
{
    allocate_blocks(b, s);
    for (size_t i = 0; i < b->ops; i++) {
        memset(b->at[i], RECYCLE_BYTE, b->size_bytes);
        ESCAPE(b->at[i]);
    }
    if (is_heap_backing(s->backing))
        free_heap(b);
    else
        unmap_blocks(b);
}

/* The memory the scenario's blocks take at their peak, as runner/core/parameters.py counts it: for
 * fork the child's copy too, for resize the grown blocks beside the old, for ipc the message
 * on both sides. */
size_t scenario_bytes(const struct blocks *b, const struct scenario *s)
{
    size_t blocks = b->ops * b->stride_bytes;
    if (s->workload == WORKLOAD_FORK)
        return 2 * blocks;
    if (s->workload == WORKLOAD_IPC) /* one message, the peer's copy too (pipe, private) */
        return 2 * b->stride_bytes;
    if (s->workload == WORKLOAD_CHURN && !is_file_backing(s->backing))
        return b->stride_bytes; /* one block alive at a time */
    if (s->workload == WORKLOAD_RESIZE) { /* the last step: its old and its grown blocks */
        size_t before_last = blocks;
        for (size_t step = 1; step < s->grow_steps; step++)
            before_last *= s->grow_factor;
        return (1 + s->grow_factor) * before_last;
    }
    return blocks;
}

/* host_warm, once before the first iteration, untimed: an anonymous region as large as the
 * scenario's memory, every page written, then unmapped. In a virtual machine that reports
 * free memory to its host, the first touch of a guest page the host took back costs a host
 * fault too; pages freed just now are backed, and the kernel is likely (not certain) to hand
 * them out next, so the phases then measure the guest kernel's own fault path. The measured
 * blocks themselves are not touched: their first touch still faults every page. `huge`
 * (blocks that ask for transparent huge pages): the region is 2 MiB-aligned and advised
 * MADV_HUGEPAGE, so what it frees is whole 2 MiB pages, which is what the blocks' huge page
 * faults take next — 4 KiB pages freed here would be of no use to them, and a 512 MiB first
 * touch in huge pages ran at 330 or at 1,400 ns a page, as the host had backed its 2 MiB
 * pages or not. */
void warm_host(size_t bytes, size_t page, int huge)
{
    if (bytes == 0)
        return;
    size_t slack = huge ? HUGE_PAGE_BYTES : 0, length = bytes + slack;
    unsigned char *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0);
    if (p == MAP_FAILED)
        system_error("mmap (host_warm)");
    unsigned char *start = p;
    if (huge) {
        start = (unsigned char *)(((uintptr_t)p + HUGE_PAGE_BYTES - 1) &
                                  ~(uintptr_t)(HUGE_PAGE_BYTES - 1));
        (void)madvise(start, bytes, MADV_HUGEPAGE); /* best effort, like host_warm itself */
    }
    for (size_t offset = 0; offset < bytes; offset += page)
        start[offset] = 1;
    ESCAPE(start);
    if (munmap(p, length) != 0)
        system_error("munmap (host_warm)");
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The median of `count` values sorted in place (qsort: the trace is untimed); 0 for none. */
static uint64_t median_of(uint64_t *values, uint64_t count)
{
    if (count == 0)
        return 0;
    qsort(values, count, sizeof *values, compare_u64);
    return values[count / 2];
}

/* The heap trace, in the fresh image (main, given TRACE_HEAP_ARGUMENT): the scenario's blocks
 * allocated one call at a time the way allocate does, sbrk(0), VmSize and malloc_usable_size
 * read after each. Nothing is timed here, and nothing the probe needs comes from malloc (the
 * records are mmap'd, statm is read with pread into the stack), so the heap is that of a
 * fresh program, as in the first iteration. VmSize sees what the program break cannot: the
 * address space an allocator maps for itself (jemalloc and mimalloc never move the break). A
 * call that leaves VmSize smaller or equal grew nothing (an allocator that maps more than it
 * needs and unmaps the excess to align counts by what remains). Mappings are not counted:
 * adjacent anonymous mappings merge into one line of /proc/self/maps (glibc's consecutive
 * 1 MiB blocks become one region), so a count would say neither how many mmaps nor how many
 * blocks; a call whose growth is at least its request mapped memory for that block. */
void run_heap_trace(const struct scenario *s, size_t page)
{
    size_t ops = s->ops;
    unsigned char **at = map_scratch(ops * sizeof *at);
    uint64_t *steps = map_scratch(ops * sizeof *steps);
    uint64_t *vm_steps = map_scratch(ops * sizeof *vm_steps);
    uint64_t usable = 0, moves = 0, vm_grows = 0;
    struct blocks one = {.ops = 1, .size_bytes = s->size_bytes, .page_bytes = page, .fd = -1,
                         .map_bytes = (s->size_bytes + page - 1) / page * page};
    uint64_t vm_before = virtual_bytes(page); /* opens statm: before the first call */
    for (size_t i = 0; i < ops; i++) {
        one.at = at + i;
        uintptr_t before = current_brk();
        if (s->backing == BACKING_CALLOC)
            allocate_calloc(&one);
        else if (s->backing == BACKING_POSIX_MEMALIGN)
            allocate_posix_memalign(&one, s);
        else /* malloc, and the heap buffers of read-file and write-file */
            allocate_malloc(&one);
        uintptr_t after = current_brk();
        uint64_t vm_after = virtual_bytes(page);
        if (after != before)
            steps[moves++] = after > before ? after - before : before - after;
        if (vm_after > vm_before)
            vm_steps[vm_grows++] = vm_after - vm_before;
        vm_before = vm_after;
        usable += malloc_usable_size(at[i]);
    }
    struct heap_trace trace = {.brk_moves = moves, .usable_bytes = usable,
                               .brk_step_median_bytes = median_of(steps, moves),
                               .vm_grows = vm_grows,
                               .vm_step_median_bytes = median_of(vm_steps, vm_grows),
                               .from_allocator = (uint64_t)malloc_from_allocator()};
    /* Over every call, the calls that grew nothing count 0 and sort first; the lower median,
     * so a typical call grew by it only where at least half the calls grew (of two calls, one
     * growing and one not: 0). */
    uint64_t unchanged = ops - vm_grows, middle = (ops - 1) / 2;
    trace.vm_call_growth_median_bytes = middle < unchanged ? 0 : vm_steps[middle - unchanged];
    write_fully(STDOUT_FILENO, (const unsigned char *)&trace, sizeof trace);
    _exit(0);
}

/* Heap backings, workload cycle, one thread, after the timed iterations: what each single
 * allocation call does to the program break, and how much usable memory it grants. The
 * timed iterations must not read sbrk(0) or malloc_usable_size between calls, and this heap
 * is no longer fresh, so the probe runs itself again (/proc/self/exe, the same arguments and
 * environment, plus TRACE_HEAP_ARGUMENT): a fresh image, whose heap is as pristine as the
 * first iteration's was. */
struct heap_trace trace_heap(int argc, char **argv)
{
    char **trace_argv = map_scratch(((size_t)argc + 2) * sizeof *trace_argv);
    for (int i = 0; i < argc; i++)
        trace_argv[i] = argv[i];
    trace_argv[argc] = (char *)TRACE_HEAP_ARGUMENT;
    int channel[2];
    if (pipe2(channel, O_CLOEXEC) != 0)
        system_error("pipe2");
    fflush(NULL);
    pid_t child = fork();
    if (child < 0)
        system_error("fork (the heap trace)");
    if (child == 0) {
        if (dup2(channel[1], STDOUT_FILENO) < 0)
            _exit(EXIT_SYSTEM);
        execv("/proc/self/exe", trace_argv);
        fprintf(stderr, "probe: execv /proc/self/exe (the heap trace): %s\n", strerror(errno));
        _exit(EXIT_SYSTEM);
    }
    close(channel[1]);
    struct heap_trace trace;
    int complete = read_exactly(channel[0], (unsigned char *)&trace, sizeof trace,
                                "read (the heap trace)");
    close(channel[0]);
    int status;
    if (waitpid(child, &status, 0) != child)
        system_error("waitpid (the heap trace)");
    if (!complete || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "probe: the heap trace (a fresh probe) ended without its result "
                        "(status %d)\n", status);
        exit(EXIT_SYSTEM);
    }
    /* The fresh image inherits the environment, LD_PRELOAD with it: it must trace the same
     * malloc the timed iterations called. */
    if (trace.from_allocator != (uint64_t)malloc_from_allocator()) {
        fprintf(stderr, "probe: the heap trace (a fresh probe) called another malloc than the "
                        "timed iterations (malloc_from_allocator %llu, expected %d)\n",
                (unsigned long long)trace.from_allocator, malloc_from_allocator());
        exit(EXIT_SYSTEM);
    }
    return trace;
}

/* The trace's figures are the process's, not an iteration's: each iteration carries them. */
void observe_heap_trace(const struct heap_trace *trace, struct iteration_result *results,
                        size_t count)
{
    for (size_t i = 0; i < count; i++) {
        observe(&results[i], OBS_BRK_MOVES, trace->brk_moves);
        if (trace->brk_moves > 0)
            observe(&results[i], OBS_BRK_STEP_MEDIAN_BYTES, trace->brk_step_median_bytes);
        observe(&results[i], OBS_USABLE_BYTES, trace->usable_bytes);
        observe(&results[i], OBS_VM_GROWS, trace->vm_grows);
        if (trace->vm_grows > 0)
            observe(&results[i], OBS_VM_STEP_MEDIAN_BYTES, trace->vm_step_median_bytes);
        observe(&results[i], OBS_VM_CALL_GROWTH_MEDIAN_BYTES, trace->vm_call_growth_median_bytes);
    }
}


/* heap_pad keep, before anything is timed: trimming off (M_TRIM_THRESHOLD -1: free never gives
 * the top of the heap back) and a top pad as large as the batch (M_TOP_PAD: the heap grows
 * by all of it at once). Setting either also fixes glibc's mmap threshold at its 128 KiB
 * start, dynamic no more. Given to the heap trace's fresh image too. */
void keep_heap(const struct scenario *s, size_t batch_bytes)
{
    if (s->heap_pad != HEAP_PAD_KEEP)
        return;
    int pad = batch_bytes < (size_t)INT_MAX ? (int)batch_bytes : INT_MAX;
    if (mallopt(M_TRIM_THRESHOLD, -1) != 1 || mallopt(M_TOP_PAD, pad) != 1) {
        errno = EINVAL;
        system_error("mallopt");
    }
}

/* heap_pad keep, once before the first iteration, untimed: the batch allocated the way
 * allocate does and freed, so the heap has grown to hold it (and its pages are faulted in,
 * as far as malloc wrote them) and, trimming off, keeps it: the timed allocate then costs the
 * allocator alone, no brk and no fresh page. */
void grow_heap_once(const struct blocks *b, const struct scenario *s)
{
    if (s->heap_pad != HEAP_PAD_KEEP)
        return;
    allocate_blocks(b, s);
    release_protection(b, s);
    free_heap(b);
}
