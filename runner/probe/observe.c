/*
 * Observations, taken between the phases: alignment, huge pages, mappings, the program break,
 * non-zero bytes, and whether a protection is enforced and what mprotect costs.
 */
#include "probe.h"

/* The largest power of two dividing every block's address: 16 for large malloc'd blocks
 * (their header), the page for mmap, 2 MiB for thp blocks. */
uint64_t block_alignment(const struct blocks *b)
{
    uintptr_t bits = 0;
    for (size_t i = 0; i < b->ops; i++)
        bits |= (uintptr_t)b->at[i];
    return (uint64_t)(bits & (0 - bits));
}

/* A "Key:   N kB" line of a /proc file, in bytes; `key` includes the newline before it and
 * the colon. open/read on a stack buffer: no stdio, which would malloc. */
static uint64_t proc_kib_field(const char *path, const char *key)
{
    char text[8192];
    text[0] = '\n'; /* so that the first line, too, follows a newline */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            skip("%s is missing (too old a kernel)", path);
        system_error(path);
    }
    size_t length = 1;
    for (ssize_t got = 1; got > 0 && length < sizeof text - 1; length += (size_t)got) {
        got = read(fd, text + length, sizeof text - 1 - length);
        if (got < 0)
            system_error(path);
    }
    close(fd);
    text[length] = '\0';
    const char *line = strstr(text, key);
    if (line == NULL)
        skip("%s has no%s line (too old a kernel)", path, key);
    return (uint64_t)strtoull(line + strlen(key), NULL, 10) * 1024;
}

/* Transparent huge pages of the process. The kernel walks every page table to produce
 * smaps_rollup, so it is read only for thp scenarios, and never inside a phase. */
uint64_t anon_huge_bytes(void)
{
    return proc_kib_field("/proc/self/smaps_rollup", "\nAnonHugePages:");
}

/* hugetlb pages mapped by the process, which the resident set does not count. */
uint64_t hugetlb_bytes(void)
{
    return proc_kib_field("/proc/self/status", "\nHugetlbPages:");
}

uint64_t growth(uint64_t before, uint64_t after)
{
    return after > before ? after - before : 0;
}

/* The proportional set size: each resident page divided by the processes that map it. */
uint64_t pss_bytes(void)
{
    return proc_kib_field("/proc/self/smaps_rollup", "\nPss:");
}

/* One line of /proc/self/maps: "start-end perms offset dev inode [path]". */
static struct mapping_line parse_mapping_line(const char *line)
{
    struct mapping_line m = {0};
    char *rest;
    m.start = (uintptr_t)strtoull(line, &rest, 16);
    m.end = (uintptr_t)strtoull(rest + 1, &rest, 16);
    memcpy(m.perms, rest + 1, 4);
    (void)strtoull(rest + 5, &rest, 16);  /* offset */
    rest = strchr(rest + 1, ' ');         /* past the device */
    unsigned long long inode = rest != NULL ? strtoull(rest, &rest, 10) : 1;
    while (rest != NULL && *rest == ' ')
        rest++;
    m.anonymous = inode == 0 && rest != NULL && *rest == '\0';
    return m;
}

/* Every line of /proc/self/maps, in address order, to visit(). Read in chunks into a stack
 * buffer (no stdio, which would malloc); a line cut by the chunk's end is carried over. */
void visit_mappings(void (*visit)(const struct mapping_line *line, void *context),
                    void *context)
{
    char text[16384];
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        system_error("open /proc/self/maps");
    size_t kept = 0;
    for (;;) {
        ssize_t got = read(fd, text + kept, sizeof text - 1 - kept);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            system_error("read /proc/self/maps");
        }
        if (got == 0)
            break;
        size_t filled = kept + (size_t)got, line = 0;
        for (size_t i = kept; i < filled; i++) {
            if (text[i] != '\n')
                continue;
            text[i] = '\0';
            struct mapping_line m = parse_mapping_line(text + line);
            visit(&m, context);
            line = i + 1;
        }
        kept = filled - line; /* a path is at most PATH_MAX: a line always fits */
        memmove(text, text + line, kept);
    }
    close(fd);
}

static void count_line(const struct mapping_line *line, void *context)
{
    (void)line;
    ++*(uint64_t *)context;
}

/* Lines of /proc/self/maps: the process's mappings. Adjacent anonymous mappings with the same
 * flags merge into one; blocks that are files of their own never do. */
uint64_t count_mappings(void)
{
    uint64_t lines = 0;
    visit_mappings(count_line, &lines);
    return lines;
}

/* The program break: where the main heap (the [heap] mapping) ends. */
uintptr_t current_brk(void)
{
    return (uintptr_t)sbrk(0);
}

/* Blocks that lie in the main heap, between the break at the probe's start and now: not in a
 * chunk glibc mapped for it alone, nor in another arena (threads get their own). */
uint64_t blocks_in_heap(const struct blocks *b, uintptr_t heap_start)
{
    uintptr_t heap_end = current_brk();
    uint64_t count = 0;
    for (size_t i = 0; i < b->ops; i++) {
        uintptr_t p = (uintptr_t)b->at[i];
        count += p >= heap_start && p < heap_end;
    }
    return count;
}

/* Non-zero bytes in the blocks: what a program finds in memory it has not written yet. */
uint64_t nonzero_bytes(const struct blocks *b)
{
    uint64_t count = 0;
    for (size_t i = 0; i < b->ops; i++)
        for (size_t j = 0; j < b->size_bytes; j++)
            count += b->at[i][j] != 0;
    return count;
}

/* A forbidden access raises SIGSEGV; the handler jumps back to the attempt, which reports
 * the fault instead of the process dying. */
static sigjmp_buf fault_jump;

static void on_fault(int signal_number)
{
    (void)signal_number;
    siglongjmp(fault_jump, 1);
}

/* 1 when writing to p faults. noinline and volatile: the store is attempted here, as written. */
static __attribute__((noinline)) int write_faults(volatile unsigned char *p)
{
    if (sigsetjmp(fault_jump, 1) != 0)
        return 1;
    *p = 0x5a;
    return 0;
}

static __attribute__((noinline)) int read_faults(const volatile unsigned char *p)
{
    if (sigsetjmp(fault_jump, 1) != 0)
        return 1;
    (void)*p;
    return 0;
}

/* Attempts every access the protection forbids on every block (a write; for none also a
 * read): 1 when each of them faulted. (exec forbids writing, like read; executing the
 * blocks' bytes is not attempted.) */
uint64_t check_protection(const struct blocks *b, const struct scenario *s)
{
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSEGV, &action, &previous) != 0)
        system_error("sigaction");
    uint64_t enforced = 1;
    for (size_t i = 0; i < b->ops; i++) {
        if (!write_faults(b->at[i]))
            enforced = 0;
        if (s->protection == PROTECTION_NONE && !read_faults(b->at[i]))
            enforced = 0;
    }
    if (sigaction(SIGSEGV, &previous, NULL) != 0)
        system_error("sigaction");
    return enforced;
}

static __attribute__((noinline)) void protect_blocks(const struct blocks *b, int protection);

/* Heap blocks go back to free() read-write: glibc writes its free-list pointers into them.
 * Untimed, after the observations, before the free phase. */
void release_protection(const struct blocks *b, const struct scenario *s)
{
    if (s->backing == BACKING_POSIX_MEMALIGN && s->protection != PROTECTION_READ_WRITE)
        protect_blocks(b, PROT_READ | PROT_WRITE);
}

static __attribute__((noinline)) void protect_blocks(const struct blocks *b, int protection)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        if (mprotect(b->at[i], b->map_bytes, protection) != 0) {
            if (errno == EACCES && protection == PROTECTION_BITS[PROTECTION_EXEC])
                exec_refused();
            system_error("mprotect");
        }
    }
}

/* The cost of protecting the blocks: mprotect of every block from read-write to the
 * scenario's protection, timed like a phase (making them read-write first is not timed). */
uint64_t time_mprotect(const struct blocks *b, const struct scenario *s)
{
    protect_blocks(b, PROT_READ | PROT_WRITE);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    protect_blocks(b, PROTECTION_BITS[s->protection]);
    clock_gettime(CLOCK_MONOTONIC, &end);
    return elapsed_ns(&start, &end);
}

