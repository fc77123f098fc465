/*
 * Measuring a phase: the clock, page faults and resident set around exactly its work, and the
 * observations an iteration records beside its phases.
 */
#include "probe.h"

atomic_uint_fast64_t syscall_count; /* see COUNT_SYSCALL */

const char *const PHASE_NAMES[PHASE_COUNT] = {
    "allocate", "first_touch", "second_pass", "free"};
const char *const OBSERVATION_NAMES[OBS_COUNT] = {
    "alignment_bytes", "anon_huge_bytes", "hugetlb_bytes", "protection_enforced", "mprotect_ns",
    "brk_growth_bytes", "blocks_in_heap", "mappings", "vm_size_growth_bytes",
    "nonzero_bytes_at_allocate", "resident_ppm_before", "child_sees_parent",
    "parent_sees_child", "parent_pss_bytes", "child_pss_bytes", "blocks_moved",
    "data_survived", "nonzero_blocks", "brk_moves", "brk_step_median_bytes", "usable_bytes",
    "vm_grows", "vm_step_median_bytes", "vm_call_growth_median_bytes",
    "mappings_until_refused", "map_errno", "max_map_count", "mappings_at_refusal_ppm",
    "rlimit_as_enforced", "read_buffer_page_offset_bytes", "allocate_syscalls",
    "first_touch_syscalls", "second_pass_syscalls", "free_syscalls", "touched_pages",
    "cached_pages_added", "resident_ppm_after", "allocate_io_read_bytes",
    "first_touch_io_read_bytes", "second_pass_io_read_bytes", "free_io_read_bytes",
    "allocate_io_write_bytes", "first_touch_io_write_bytes", "second_pass_io_write_bytes",
    "free_io_write_bytes", "content_matches", "tail_zero", "sigbus_beyond_eof", "holes_zero",
    "sigbus_after_truncate", "peer_sees_writes", "peer_allocate_ns",
    "peer_first_touch_minor_faults", "peer_second_pass_minor_faults", "blocks_mmapped",
    "blocks_in_thread_arena", "vm_pte_growth_bytes", "exec_ran", "exec_trapped",
    "joined_neighbour", "slowest_thread_ns",
    "released_zero_ppm", "cgroup_cache_ppm", "malloc_from_allocator",
    "child_reads_zero", "child_read_faulted", "child_pte_bytes",
    "hugetlb_pool_pages", "hugetlb_past_pool_refused", "hugetlb_sigbus_at_pool_end",
    "locked_bytes", "vm_locked_bytes", "mlock_refused", "rss_after_pause_bytes", "peak_live_bytes",
    "kept_bytes", "held_bytes"};

void observe(struct iteration_result *r, enum observation o, uint64_t value)
{
    r->observed[o] = value;
    r->recorded[o] = 1;
}

/* /proc/self/statm: sizes in pages, the address space first, the resident set second.
 * open/read on a stack buffer rather than stdio, which would malloc. */
static int statm_fd = -1;

/* The file stays open and is read with pread from offset 0, which makes the kernel write the
 * text anew: one system call per reading, not three (open, read, close), so the bookkeeping
 * between two phases stays small. The first reading, which opens it, is untimed (main's
 * throwaway measurement). */
static void read_statm(char *text, size_t size)
{
    if (statm_fd < 0 && (statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) < 0)
        system_error("open /proc/self/statm");
    ssize_t got = pread(statm_fd, text, size - 1, 0);
    if (got < 0)
        system_error("read /proc/self/statm");
    text[got] = '\0';
}

/* A forked child's first call: the open file is the parent's /proc/<pid>/statm ("self" was
 * resolved when it was opened), so the child's next reading opens its own. */
void forget_statm(void)
{
    if (statm_fd >= 0)
        close(statm_fd);
    statm_fd = -1;
}

/* The resident set (statm's second field). */
uint64_t resident_bytes(size_t page)
{
    char text[256];
    read_statm(text, sizeof text);
    char *field = strchr(text, ' ');
    if (field == NULL) {
        errno = EINVAL;
        system_error("parse /proc/self/statm");
    }
    return (uint64_t)strtoull(field + 1, NULL, 10) * page;
}

/* Anonymous memory in the resident set: statm's resident less its shared field (file and
 * shared-memory pages), so that program text mapped in meanwhile does not count. */
uint64_t anonymous_bytes(size_t page)
{
    char text[256];
    read_statm(text, sizeof text);
    unsigned long long size, resident, shared;
    if (sscanf(text, "%llu %llu %llu", &size, &resident, &shared) != 3) {
        errno = EINVAL;
        system_error("parse /proc/self/statm");
    }
    return (uint64_t)(resident > shared ? resident - shared : 0) * page;
}

/* The address space, VmSize (statm's first field). */
uint64_t virtual_bytes(size_t page)
{
    char text[256];
    read_statm(text, sizeof text);
    return (uint64_t)strtoull(text, NULL, 10) * page;
}

/* /proc/self/io, read around each phase once account_io() asked for it (file backings,
 * workload cycle): kept open and read with pread like statm, outside the timed window. Its
 * read_bytes and write_bytes are the storage I/O the process caused: reads submitted by this
 * process (read-ahead included), and pages it dirtied (counted then, not at writeback). */
static int io_fd = -1;

void account_io(void)
{
    if ((io_fd = open("/proc/self/io", O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT)
            skip("/proc/self/io is missing (a kernel without CONFIG_TASK_IO_ACCOUNTING)");
        system_error("open /proc/self/io");
    }
}

/* A "key: N" line of /proc/self/io. */
static uint64_t io_field(const char *text, const char *key)
{
    const char *line = strstr(text, key);
    if (line == NULL) {
        errno = EINVAL;
        system_error("parse /proc/self/io");
    }
    return (uint64_t)strtoull(line + strlen(key), NULL, 10);
}

static void read_io(uint64_t *read_bytes, uint64_t *write_bytes)
{
    char text[512];
    ssize_t got = pread(io_fd, text, sizeof text - 1, 0);
    if (got < 0)
        system_error("read /proc/self/io");
    text[got] = '\0';
    /* with the newline before each key, so "write_bytes:" is not found in
     * "cancelled_write_bytes:" (neither is the first line) */
    *read_bytes = io_field(text, "\nread_bytes:");
    *write_bytes = io_field(text, "\nwrite_bytes:");
}

uint64_t elapsed_ns(const struct timespec *start, const struct timespec *end)
{
    return (uint64_t)((int64_t)(end->tv_sec - start->tv_sec) * 1000000000LL +
                      (end->tv_nsec - start->tv_nsec));
}

void start_phase(struct phase_start *start)
{
    if (io_fd >= 0)
        read_io(&start->io_read_bytes, &start->io_write_bytes);
    if (getrusage(RUSAGE_SELF, &start->usage) != 0) /* before the clock starts */
        system_error("getrusage");
    start->syscalls = atomic_load_explicit(&syscall_count, memory_order_relaxed);
    clock_gettime(CLOCK_MONOTONIC, &start->time);
}

void stop_phase(const struct phase_start *start, size_t page, struct phase_result *out)
{
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    out->syscalls = atomic_load_explicit(&syscall_count, memory_order_relaxed) - start->syscalls;
    struct rusage usage; /* after the clock stops */
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        system_error("getrusage");
    out->ns = elapsed_ns(&start->time, &end);
    out->minor_faults = (uint64_t)(usage.ru_minflt - start->usage.ru_minflt);
    out->major_faults = (uint64_t)(usage.ru_majflt - start->usage.ru_majflt);
    out->rss_bytes = resident_bytes(page);
    out->io_read_bytes = out->io_write_bytes = 0;
    if (io_fd >= 0) {
        uint64_t read_bytes, write_bytes;
        read_io(&read_bytes, &write_bytes);
        out->io_read_bytes = growth(start->io_read_bytes, read_bytes);
        out->io_write_bytes = growth(start->io_write_bytes, write_bytes);
    }
}

