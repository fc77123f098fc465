/*
 * Observations, taken between the phases: alignment, huge pages, page tables, mappings, the
 * program break and glibc's chunk flags, non-zero bytes, whether a protection is enforced and
 * what mprotect costs, whether code runs in the blocks, and whether a
 * read raises a signal.
 */
#include "probe.h"

#include <sys/personality.h>
#ifdef __GLIBC__
#include <dlfcn.h>
#endif

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
uint64_t proc_kib_field(const char *path, const char *key)
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

/* Bits of the size field glibc keeps right before the user pointer of every chunk
 * (malloc/malloc.c): the chunk is a mapping of its own; it lies in a thread arena's heap. */
#define CHUNK_IS_MMAPPED 0x2
#define CHUNK_NON_MAIN_ARENA 0x4

/* Whether malloc is glibc's own, whose chunks carry those bits: not when an allocator is
 * preloaded in its place (LD_PRELOAD: jemalloc, tcmalloc... keep no such header, and the
 * word before a block may not even be mapped). The object that defines malloc must be the
 * libc that defines gnu_get_libc_version; a probe linked without PIE sees both through its
 * own PLT, names no libc, and reports nothing. dladdr is in libc from glibc 2.34 on (in
 * libdl before, which the probe does not link). */
int glibc_malloc_in_use(void)
{
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
    static int known = -1;
    if (known < 0) {
        Dl_info allocator, libc;
        known = dladdr((void *)malloc, &allocator) != 0 &&
                dladdr((void *)gnu_get_libc_version, &libc) != 0 &&
                libc.dli_fname != NULL && strstr(libc.dli_fname, "libc.so") != NULL &&
                allocator.dli_fbase == libc.dli_fbase;
    }
    return known;
#else
    return 0;
#endif
}

/* 1 when the malloc every call of the probe binds to is defined in the library the runner
 * preloaded (ALLOCLAB_ALLOCATOR_LIBRARY, compared by the file it resolves to), or, with none
 * named, in the C library: proof that the allocator measured is the one asked for (a library
 * the dynamic loader could not preload is skipped by it with a warning, not an error). */
int malloc_from_allocator(void)
{
    static int known = -1;
    if (known >= 0)
        return known;
    const char *wanted = getenv("ALLOCLAB_ALLOCATOR_LIBRARY");
    if (wanted == NULL || wanted[0] == '\0')
        return known = glibc_malloc_in_use();
    Dl_info allocator;
    char found[PATH_MAX], asked[PATH_MAX];
    known = dladdr((void *)malloc, &allocator) != 0 && allocator.dli_fname != NULL &&
            realpath(allocator.dli_fname, found) != NULL && realpath(wanted, asked) != NULL &&
            strcmp(found, asked) == 0;
    return known;
}

/* Heap blocks by how glibc got their chunks, from each chunk's size field: `mmapped` those
 * mapped on their own (IS_MMAPPED), `thread_arena` those in a thread arena's heap
 * (NON_MAIN_ARENA; glibc carves those heaps out of mappings of their own, 64 MiB each, so
 * they lie outside [heap]). Only where glibc_malloc_in_use. */
void count_chunk_kinds(const struct blocks *b, uint64_t *mmapped, uint64_t *thread_arena)
{
    *mmapped = *thread_arena = 0;
    for (size_t i = 0; i < b->ops; i++) {
        size_t head;
        memcpy(&head, b->at[i] - sizeof head, sizeof head);
        if (head & CHUNK_IS_MMAPPED)
            (*mmapped)++;
        else if (head & CHUNK_NON_MAIN_ARENA)
            (*thread_arena)++;
    }
}

/* The process's page tables (VmPTE: every level below the top one). */
uint64_t page_table_bytes(void)
{
    return proc_kib_field("/proc/self/status", "\nVmPTE:");
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

/* `signal_number` jumps back to the attempt (on_fault) from here on; `previous` gets the
 * handler before, which stop_catching restores. */
static void catch_signal(int signal_number, struct sigaction *previous)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fault;
    sigemptyset(&action.sa_mask);
    if (sigaction(signal_number, &action, previous) != 0)
        system_error("sigaction");
}

static void stop_catching(int signal_number, const struct sigaction *previous)
{
    if (sigaction(signal_number, previous, NULL) != 0)
        system_error("sigaction");
}

/* A forbidden access raises SIGSEGV. */
static void catch_faults(struct sigaction *previous)
{
    catch_signal(SIGSEGV, previous);
}

static void stop_catching_faults(const struct sigaction *previous)
{
    stop_catching(SIGSEGV, previous);
}

/* 1 when reading the byte at p raises `signal_number` (SIGBUS past the end of a mapped file),
 * caught as check_protection catches SIGSEGV. */
int read_raises(const unsigned char *p, int signal_number)
{
    struct sigaction previous;
    catch_signal(signal_number, &previous);
    int raised = read_faults(p);
    stop_catching(signal_number, &previous);
    return raised;
}

/* Attempts every access the protection forbids on every block (a write; for none also a
 * read): 1 when each of them faulted. (exec forbids writing, like read; whether code runs is
 * check_exec_runs' question.) */
uint64_t check_protection(const struct blocks *b, const struct scenario *s)
{
    struct sigaction previous;
    catch_faults(&previous);
    uint64_t enforced = 1;
    for (size_t i = 0; i < b->ops; i++) {
        if (!write_faults(b->at[i]))
            enforced = 0;
        if (s->protection == PROTECTION_NONE && !read_faults(b->at[i]))
            enforced = 0;
    }
    stop_catching_faults(&previous);
    return enforced;
}

/* The smallest function there is, as machine code: return EXEC_RESULT. */
#define EXEC_RESULT 0x5A17
#if defined(__x86_64__)
static const unsigned char EXEC_CODE[] = {0xB8, 0x17, 0x5A, 0x00, 0x00, /* mov eax, imm32 */
                                          0xC3};                        /* ret */
#elif defined(__aarch64__)
static const unsigned char EXEC_CODE[] = {0xE0, 0x42, 0x8B, 0x52,  /* movz w0, #0x5a17 */
                                          0xC0, 0x03, 0x5F, 0xD6}; /* ret */
#else
static const unsigned char EXEC_CODE[] = {0}; /* unused: no code for this architecture */
#endif

/* Whether the probe has code for this architecture (x86-64, aarch64): the exec observations
 * are not reported elsewhere. */
int exec_code_available(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
    return 1;
#else
    return 0;
#endif
}

/* A process whose personality has READ_IMPLIES_EXEC gets PROT_EXEC with every PROT_READ, so
 * calling into readable memory would run whatever bytes it holds: exec_trapped is not asked. */
int reads_imply_exec(void)
{
    int persona = personality(0xffffffff);
    return persona != -1 && (persona & READ_IMPLIES_EXEC) != 0;
}

/* Calls the code at p: 1 when the call faulted (SIGSEGV); else 0, with what it returned in
 * `result`. noinline, like write_faults. */
static __attribute__((noinline)) int call_faults(const unsigned char *p, int *result)
{
    if (sigsetjmp(fault_jump, 1) != 0)
        return 1;
    int (*function)(void) = (int (*)(void))(uintptr_t)p;
    *result = function();
    return 0;
}

static void protect_block(unsigned char *p, size_t length, int protection)
{
    if (mprotect(p, length, protection) != 0) {
        if (errno == EACCES && (protection & PROT_EXEC))
            exec_refused();
        system_error("mprotect");
    }
}

/* Copies `code` over the block's first bytes and makes the instruction cache see them: the
 * block is made writable for it and given `protection` after. */
static void write_code(unsigned char *p, size_t length, const unsigned char *code,
                       size_t code_bytes, int protection)
{
    protect_block(p, length, PROT_READ | PROT_WRITE);
    memcpy(p, code, code_bytes);
    __builtin___clear_cache((char *)p, (char *)p + code_bytes);
    protect_block(p, length, protection);
}

/* protection exec: 1 when a function copied into every block runs there and returns what it
 * should. Each block's first bytes are put back after (for mmap-file shared, they are the
 * data file's, written back at once with msync, so the file holds its pattern again). */
uint64_t check_exec_runs(const struct blocks *b, const struct scenario *s)
{
    int protection = PROTECTION_BITS[s->protection];
    int file = s->backing == BACKING_MMAP_FILE && s->sharing == SHARING_SHARED;
    unsigned char saved[sizeof EXEC_CODE];
    struct sigaction previous;
    catch_faults(&previous);
    uint64_t ran = 1;
    for (size_t i = 0; i < b->ops; i++) {
        unsigned char *p = b->at[i];
        memcpy(saved, p, sizeof saved);
        write_code(p, b->map_bytes, EXEC_CODE, sizeof EXEC_CODE, protection);
        int result = 0;
        if (call_faults(p, &result) || result != EXEC_RESULT)
            ran = 0;
        write_code(p, b->map_bytes, saved, sizeof saved, protection);
        if (file && msync(p, b->page_bytes, MS_SYNC) != 0)
            system_error("msync");
    }
    stop_catching_faults(&previous);
    return ran;
}

/* Before the first iteration, untimed: a refused write and a refused call, caught as the
 * checks catch them, so that what catching needs is mapped before any iteration counts its
 * resident set. An iteration's first fault would otherwise map pages of libc's code
 * (sigaction, siglongjmp: up to 16 at a time, by fault-around) and of the stack for the
 * signal frame, which its free phase would count as memory the blocks kept. */
void rehearse_fault_checks(size_t page)
{
    unsigned char *p = mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        system_error("mmap (rehearsing the fault checks)");
    struct sigaction previous;
    catch_faults(&previous);
    (void)write_faults(p);
    int result;
    if (exec_code_available() && !reads_imply_exec())
        (void)call_faults(p, &result);
    stop_catching_faults(&previous);
    if (munmap(p, page) != 0)
        system_error("munmap (rehearsing the fault checks)");
}

/* protection read-write and read: 1 when calling into every block faulted, the NX bit of the
 * block's first page refusing the fetch before anything runs. Nothing is written there. The
 * caller asks only where the access pattern has mapped that page: on x86-64 an instruction
 * fetch from a readable page not yet mapped faults it in first (a page of the file or of
 * shared memory, resident from then on) and only the retried fetch meets the NX bit. */
uint64_t check_exec_traps(const struct blocks *b)
{
    struct sigaction previous;
    catch_faults(&previous);
    uint64_t trapped = 1;
    for (size_t i = 0; i < b->ops; i++) {
        int result;
        if (!call_faults(b->at[i], &result))
            trapped = 0;
    }
    stop_catching_faults(&previous);
    return trapped;
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

