/*
 * The limits workload: map blocks until mmap refuses one, then what refused it.
 */
#include "probe.h"


/* Most blocks workload limits keeps track of: past any default vm.max_map_count, and small
 * enough for its pointer list (32 MiB). */
#define LIMITS_MAX_BLOCKS ((size_t)1 << 22)

/* vm.max_map_count, or 0 where it cannot be read. */
static uint64_t read_max_map_count(void)
{
    char text[64];
    int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t got = read(fd, text, sizeof text - 1);
    close(fd);
    if (got <= 0)
        return 0;
    text[got] = '\0';
    return (uint64_t)strtoull(text, NULL, 10);
}

/* workload limits, the allocate phase: blocks mapped one after another until mmap refuses
 * one or `capacity` are mapped. Neighbours alternate between read-write and read-only, so the
 * kernel never merges two into one mapping (it merges only equal flags); no page is touched.
 * Returns how many were mapped; `error` gets the refusal's errno, 0 when none came. */
static __attribute__((noinline)) size_t map_until_refused(const struct blocks *b,
                                                          const struct scenario *s,
                                                          size_t capacity, int *error)
{
    int flags = map_flags(s);
    *error = 0;
    for (size_t i = 0; i < capacity; i++) {
        int protection = i % 2 ? PROT_READ : PROT_READ | PROT_WRITE;
        void *p = mmap(NULL, b->map_bytes, protection, flags, b->fd, 0);
        if (p == MAP_FAILED) {
            *error = errno;
            return i;
        }
        b->at[i] = p;
    }
    return capacity;
}

/* RLIMIT_AS, checked after the blocks are gone: with the limit set to the address space in
 * use plus `headroom`, a mapping larger than the headroom must be refused and a smaller one
 * granted. 1 when both hold. The mappings are read-only and never touched, so no memory is
 * committed; the limit is restored after. */
static uint64_t check_rlimit_as(size_t headroom, size_t page)
{
    struct rlimit previous;
    if (getrlimit(RLIMIT_AS, &previous) != 0)
        system_error("getrlimit(RLIMIT_AS)");
    struct rlimit tight = previous;
    tight.rlim_cur = (rlim_t)(virtual_bytes(page) + headroom);
    if (previous.rlim_cur != RLIM_INFINITY && previous.rlim_cur < tight.rlim_cur)
        skip("RLIMIT_AS is already below the address space in use plus %zu bytes", headroom);
    if (setrlimit(RLIMIT_AS, &tight) != 0)
        system_error("setrlimit(RLIMIT_AS)");
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    void *larger = mmap(NULL, headroom + headroom / 2, PROT_READ, flags, -1, 0);
    int larger_refused = larger == MAP_FAILED && errno == ENOMEM;
    void *smaller = mmap(NULL, headroom / 2, PROT_READ, flags, -1, 0);
    int smaller_granted = smaller != MAP_FAILED;
    if (setrlimit(RLIMIT_AS, &previous) != 0)
        system_error("setrlimit(RLIMIT_AS)");
    if (larger != MAP_FAILED && munmap(larger, headroom + headroom / 2) != 0)
        system_error("munmap");
    if (smaller_granted && munmap(smaller, headroom / 2) != 0)
        system_error("munmap");
    return (uint64_t)(larger_refused && smaller_granted);
}

/* limits: map blocks until mmap refuses one (allocate), nothing in the two touching slots,
 * unmap them (free); then what refused it, the map count against vm.max_map_count, and
 * whether RLIMIT_AS is enforced. */
void run_limits(const struct context *c, const struct scenario *s,
                struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    struct phase_start start;
    int error;
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    size_t mapped = map_until_refused(b, s, c->limits_capacity, &error);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    observe(out, OBS_MAPPINGS_UNTIL_REFUSED, mapped);
    if (error != 0)
        observe(out, OBS_MAP_ERRNO, (uint64_t)error);
    if (c->max_map_count > 0) {
        observe(out, OBS_MAX_MAP_COUNT, c->max_map_count);
        /* One read of /proc/self/maps, at the refusal: every mapping of the process. */
        observe(out, OBS_MAPPINGS_AT_REFUSAL_PPM, count_mappings() * 1000000 / c->max_map_count);
    }

    for (int phase = PHASE_FIRST_TOUCH; phase <= PHASE_SECOND_PASS; phase++) {
        start_phase(&start); /* the blocks are not touched: memory stays small */
        stop_phase(&start, page, &out->phases[phase]);
    }

    struct blocks made = *b;
    made.ops = mapped;
    start_phase(&start);
    unmap_blocks(&made);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    observe(out, OBS_RLIMIT_AS_ENFORCED, check_rlimit_as(2 * b->stride_bytes, page));
    out->checksum = 0;
}

/* workload limits: room for more blocks than vm.max_map_count allows, and for mmap-file a
 * sparse file of one block, which every block maps (never read, so never filled). */
void prepare_limits(struct context *c, const struct scenario *s, char *fs_buffer,
                    size_t fs_size, const char **file_fs)
{
    struct blocks *b = &c->blocks;
    c->max_map_count = read_max_map_count();
    uint64_t wanted = c->max_map_count > 0 ? c->max_map_count + 1024 : 65536 + 1024;
    c->limits_capacity = wanted < LIMITS_MAX_BLOCKS ? (size_t)wanted : LIMITS_MAX_BLOCKS;
    b->at = map_scratch(c->limits_capacity * sizeof *b->at);
    if (s->backing != BACKING_MMAP_FILE)
        return;
    *file_fs = filesystem_name(s->file_dir, fs_buffer, fs_size);
    char path[4096];
    int length = snprintf(path, sizeof path, "%s/alloclab-XXXXXX", s->file_dir);
    if (length < 0 || (size_t)length >= sizeof path)
        usage_error("--file_dir is too long");
    b->fd = mkstemp(path);
    if (b->fd < 0)
        system_error("mkstemp");
    if (unlink(path) != 0)
        system_error("unlink");
    if (ftruncate(b->fd, (off_t)b->stride_bytes) != 0)
        system_error("ftruncate");
}

