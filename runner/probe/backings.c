/*
 * Allocate and free: one function per backing, and the release the free phase does.
 */
#include "probe.h"

void allocate_malloc(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        b->at[i] = malloc(b->size_bytes);
        if (b->at[i] == NULL)
            system_error("malloc");
    }
}

void allocate_calloc(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        b->at[i] = calloc(1, b->size_bytes);
        if (b->at[i] == NULL)
            system_error("calloc");
    }
}

/* Aligned to the page, so that no block shares a page with another block's header. With a
 * protection other than read-write the request is map_bytes, the size rounded up to whole
 * pages, so the block's pages hold nothing else (glibc keeps a chunk's header in the 16 bytes
 * before it, on the page before, and the next chunk's header right after it, on the page
 * after), and mprotect of those pages, here in the timed phase, is what asking for protected
 * heap memory costs. release_protection makes them read-write again before free. */
void allocate_posix_memalign(const struct blocks *b, const struct scenario *s)
{
    int protect = s->protection != PROTECTION_READ_WRITE;
    for (size_t i = 0; i < b->ops; i++) {
        void *p;
        int error = posix_memalign(&p, b->page_bytes, protect ? b->map_bytes : b->size_bytes);
        if (error != 0) {
            errno = error;
            system_error("posix_memalign");
        }
        b->at[i] = p;
        if (protect) {
            COUNT_SYSCALL();
            if (mprotect(p, b->map_bytes, PROTECTION_BITS[s->protection]) != 0) {
                if (errno == EACCES && s->protection == PROTECTION_EXEC)
                    exec_refused();
                system_error("mprotect");
            }
        }
    }
}

/* The mmap flags of every block of a mapping backing. */
int map_flags(const struct scenario *s)
{
    int flags = s->sharing == SHARING_SHARED ? MAP_SHARED : MAP_PRIVATE;
    if (s->populate == POPULATE_MAP_POPULATE)
        flags |= MAP_POPULATE;
    if (s->noreserve)
        flags |= MAP_NORESERVE;
    if (s->backing == BACKING_MMAP_ANON || s->backing == BACKING_MMAP_HUGETLB)
        flags |= MAP_ANONYMOUS;
    if (s->backing == BACKING_MMAP_HUGETLB)
        flags |= MAP_HUGETLB | MAP_HUGE_2MB;
    return flags;
}

unsigned char *map_block(const struct blocks *b, const struct scenario *s, int flags,
                         int fd, off_t offset)
{
    COUNT_SYSCALL();
    void *p = mmap(NULL, b->map_bytes, PROTECTION_BITS[s->protection], flags, fd, offset);
    if (p == MAP_FAILED) {
        if (s->backing == BACKING_MMAP_HUGETLB && errno == ENOMEM)
            skip("mmap(MAP_HUGETLB): not enough free 2 MiB huge pages for %zu blocks of %zu "
                 "bytes (reserve them in /proc/sys/vm/nr_hugepages)", b->ops, b->map_bytes);
        if (s->backing == BACKING_MMAP_HUGETLB && errno == EINVAL)
            skip("mmap(MAP_HUGETLB): this kernel offers no 2 MiB huge pages");
        if (errno == EPERM && s->protection == PROTECTION_EXEC)
            exec_refused();
        system_error("mmap");
    }
    return p;
}

static unsigned char *map_anonymous(size_t length, const struct scenario *s, int flags)
{
    COUNT_SYSCALL();
    unsigned char *p = mmap(NULL, length, PROTECTION_BITS[s->protection], flags, -1, 0);
    if (p == MAP_FAILED) {
        if (errno == EPERM && s->protection == PROTECTION_EXEC)
            exec_refused();
        system_error("mmap");
    }
    return p;
}

/* A block starting on a 2 MiB boundary, with its THP advice. A mapping of whole 2 MiB the
 * kernel places on such a boundary itself (Linux 6.7 and later, THP enabled): it is mapped
 * as it is, and kept when it came aligned. Otherwise map 2 MiB more than needed and unmap the
 * unaligned head and the rest of the tail, so the block is one mapping of exactly map_bytes
 * (which unmap_blocks unmaps like any other). */
static unsigned char *map_thp_block(const struct blocks *b, const struct scenario *s, int flags)
{
    unsigned char *block = NULL;
    if (b->map_bytes % HUGE_PAGE_BYTES == 0) {
        unsigned char *p = map_anonymous(b->map_bytes, s, flags);
        if ((uintptr_t)p % HUGE_PAGE_BYTES == 0)
            block = p;
        else if ((COUNT_SYSCALL(), munmap(p, b->map_bytes) != 0))
            system_error("munmap");
    }
    if (block == NULL) {
        size_t span = b->map_bytes + HUGE_PAGE_BYTES;
        unsigned char *raw = map_anonymous(span, s, flags);
        uintptr_t aligned =
            ((uintptr_t)raw + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
        block = (unsigned char *)aligned;
        size_t head = (size_t)(block - raw), tail = span - head - b->map_bytes;
        if (head > 0 && (COUNT_SYSCALL(), munmap(raw, head) != 0))
            system_error("munmap");
        if (tail > 0 && (COUNT_SYSCALL(), munmap(block + b->map_bytes, tail) != 0))
            system_error("munmap");
    }
    int advice = s->thp == THP_HUGE ? MADV_HUGEPAGE : MADV_NOHUGEPAGE;
    COUNT_SYSCALL();
    if (madvise(block, b->map_bytes, advice) != 0) {
        if (errno == EINVAL)
            skip("madvise(MADV_%sHUGEPAGE): this kernel has no transparent huge pages",
                 s->thp == THP_HUGE ? "" : "NO");
        system_error("madvise");
    }
    return block;
}

/* advice: madvise of the block right after its mmap, inside allocate (before populate). */
static void advise_block(const struct scenario *s, unsigned char *p, size_t length)
{
    if (s->advice == ADVICE_NONE)
        return;
    COUNT_SYSCALL();
    if (madvise(p, length, ADVICE_BITS[s->advice]) != 0) {
        if (errno == EINVAL)
            skip("madvise(%s): not supported for this memory by this kernel%s",
                 ADVICE_CALLS[s->advice],
                 s->advice == ADVICE_POPULATE_READ ? " (Linux 5.14 or later has it)" : "");
        system_error("madvise");
    }
}

/* populate: madv-populate-write and mlock fault the block in after mmap, inside allocate
 * (map-populate is a flag of mmap itself). */
static void populate_block(const struct scenario *s, unsigned char *p, size_t length)
{
    if (s->populate == POPULATE_MADV_POPULATE_WRITE &&
        (COUNT_SYSCALL(), madvise(p, length, MADV_POPULATE_WRITE) != 0)) {
        if (errno == EINVAL)
            skip("madvise(MADV_POPULATE_WRITE): not supported here (Linux 5.14 or later has it)");
        system_error("madvise(MADV_POPULATE_WRITE)");
    }
    int locking = s->populate == POPULATE_MLOCK || s->populate == POPULATE_MLOCK_ONFAULT;
    if (locking && (COUNT_SYSCALL(), s->populate == POPULATE_MLOCK
                                         ? mlock(p, length)
                                         : mlock2(p, length, MLOCK_ONFAULT)) != 0) {
        int error = errno;
        if (s->memlock_limit_bytes != 0 && (error == ENOMEM || error == EPERM)) {
            count_mlock_refusal(); /* the limit the scenario set: a fact to record */
            return;
        }
        struct rlimit limit;
        if ((error == ENOMEM || error == EPERM) && getrlimit(RLIMIT_MEMLOCK, &limit) == 0)
            skip("mlock: %s (RLIMIT_MEMLOCK is %llu bytes; raise `ulimit -l` or run as root)",
                 strerror(error), (unsigned long long)limit.rlim_cur);
        errno = error;
        system_error("mlock");
    }
}

/* The data file opened by its name, inside a timed phase: a counted call. */
static int open_counted(const char *path, int flags)
{
    COUNT_SYSCALL();
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        system_error("open (the data file)");
    return fd;
}

/* The descriptor one block is read or mapped through: for file_open per-block the data file
 * opened by its name for this block alone (timed), else the one the run keeps. */
int open_block_file(const struct blocks *b, const struct scenario *s, int flags)
{
    return s->file_open == FILE_OPEN_PER_BLOCK ? open_counted(b->path, flags) : b->fd;
}

/* file_open per-block: the block's descriptor closed once the block is read or mapped (a
 * mapping keeps its file open by itself). */
void close_block_file(const struct scenario *s, int fd)
{
    if (s->file_open != FILE_OPEN_PER_BLOCK)
        return;
    COUNT_SYSCALL();
    if (close(fd) != 0)
        system_error("close");
}


/* dev-zero: the device every block maps, opened once before the first iteration (a program
 * opens it once too); the allocate phase times the mmap alone. MAP_PRIVATE of /dev/zero is
 * anonymous memory, MAP_SHARED a shared-memory object of its own per mapping. */
int open_dev_zero(void)
{
    int fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        system_error("open /dev/zero");
    return fd;
}

/* mmap-anon, mmap-file, mmap-hugetlb and dev-zero differ only in the flags and the file. A
 * per-block descriptor of mmap-file is opened read-write only where the mapping can write the
 * file. */
static void allocate_mmap(const struct blocks *b, const struct scenario *s)
{
    int flags = map_flags(s), file = s->backing == BACKING_MMAP_FILE;
    int mode = s->sharing == SHARING_SHARED && s->protection == PROTECTION_READ_WRITE
                   ? O_RDWR : O_RDONLY;
    for (size_t i = 0; i < b->ops; i++) {
        off_t offset = file ? (off_t)((b->first + i) * b->stride_bytes) : 0;
        int fd = file ? open_block_file(b, s, mode) : b->fd; /* dev-zero: the device */
        unsigned char *p = s->thp == THP_DEFAULT ? map_block(b, s, flags, fd, offset)
                                                 : map_thp_block(b, s, flags);
        if (file)
            close_block_file(s, fd);
        advise_block(s, p, b->map_bytes);
        populate_block(s, p, b->map_bytes);
        b->at[i] = p;
    }
}

/* memfd and shm: a shared-memory file of its own per block, sized and mapped; the mapping
 * keeps the file alive, so the descriptor is closed at once. */
static unsigned char *map_memory_file(const struct blocks *b, const struct scenario *s,
                                      int flags, int fd)
{
    COUNT_SYSCALL();
    if (ftruncate(fd, (off_t)b->map_bytes) != 0)
        system_error("ftruncate");
    unsigned char *p = map_block(b, s, flags, fd, 0);
    advise_block(s, p, b->map_bytes);
    populate_block(s, p, b->map_bytes);
    COUNT_SYSCALL();
    if (close(fd) != 0)
        system_error("close");
    return p;
}

static void allocate_memfd(const struct blocks *b, const struct scenario *s)
{
    int flags = map_flags(s);
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        int fd = memfd_create("alloclab", MFD_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOSYS)
                skip("memfd_create: this kernel does not have it (Linux 3.17 or later has)");
            system_error("memfd_create");
        }
        b->at[i] = map_memory_file(b, s, flags, fd);
    }
}

/* POSIX shared memory: a name in /dev/shm, unlinked at once so a crash leaves nothing. */
static void allocate_shm(const struct blocks *b, const struct scenario *s)
{
    int flags = map_flags(s);
    long pid = (long)getpid();
    char name[64];
    for (size_t i = 0; i < b->ops; i++) {
        snprintf(name, sizeof name, "/alloclab-%ld-%zu", pid, b->first + i);
        COUNT_SYSCALL();
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            system_error("shm_open");
        COUNT_SYSCALL();
        if (shm_unlink(name) != 0)
            system_error("shm_unlink");
        b->at[i] = map_memory_file(b, s, flags, fd);
    }
}

/* A heap buffer filled by read(): the copy-from-page-cache alternative to a file mapping. */
static void allocate_read_file(const struct blocks *b, const struct scenario *s)
{
    for (size_t i = 0; i < b->ops; i++) {
        b->at[i] = malloc(b->size_bytes);
        if (b->at[i] == NULL)
            system_error("malloc");
        int fd = open_block_file(b, s, O_RDONLY);
        read_fully(fd, b->at[i], b->size_bytes, (off_t)((b->first + i) * b->stride_bytes));
        close_block_file(s, fd);
    }
}

/* Page k of the random order, in the blocks as they are now. */
static struct page_ref locate_page(const struct blocks *b, size_t k)
{
    size_t block = (size_t)(b->order[k] / b->pages_per_block);
    size_t offset = (size_t)(b->order[k] % b->pages_per_block) * b->page_bytes;
    struct page_ref ref = {
        .at = b->at[block] + offset,
        .length = b->size_bytes - offset < b->page_bytes ? b->size_bytes - offset : b->page_bytes,
        .file_offset = (off_t)((b->first + block) * b->stride_bytes + offset)};
    return ref;
}

/* order random: where the pages of the random order are in the blocks just allocated. Done
 * between allocate and first touch, untimed, so the timed loops only follow pointers. */
void locate_pages(const struct blocks *b)
{
    for (size_t k = 0; k < b->page_count; k++)
        b->pages[k] = locate_page(b, k);
}

/* read-file in random order: the heap buffers first, then one pread per page, the pages of
 * every block in the fixed random order. */
static void allocate_read_file_pages(const struct blocks *b)
{
    allocate_malloc(b);
    for (size_t k = 0; k < b->page_count; k++) {
        struct page_ref ref = locate_page(b, k);
        read_fully(b->fd, ref.at, ref.length, ref.file_offset);
    }
}

void free_heap(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++)
        free(b->at[i]);
}

/* Every block but the one allocated last, which stays and pins the top of the heap. With
 * threads, b is one thread's slice: each thread keeps its own last block. */
static void free_heap_but_last(const struct blocks *b)
{
    for (size_t i = 0; i + 1 < b->ops; i++)
        free(b->at[i]);
}

/* keep_every: every block but every `every`-th (blocks every-1, 2*every-1... counted over all
 * blocks, so threads keep the same ones), which stay allocated until the process exits:
 * long-lived objects among short-lived ones. A loop of its own, so that keep_every 0 frees
 * through free_heap exactly as before. */
static void free_heap_keeping(const struct blocks *b, size_t every)
{
    for (size_t i = 0; i < b->ops; i++)
        if ((b->first + i) % every != every - 1)
            free(b->at[i]);
}

void unmap_blocks(const struct blocks *b)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        if (munmap(b->at[i], b->map_bytes) != 0)
            system_error("munmap");
    }
}

/* MADV_DONTNEED / MADV_FREE: the pages go back (or may go back), the mappings stay. */
static void advise_blocks(const struct blocks *b, int advice, const char *name)
{
    for (size_t i = 0; i < b->ops; i++) {
        COUNT_SYSCALL();
        if (madvise(b->at[i], b->map_bytes, advice) != 0) {
            if (errno == EINVAL)
                skip("madvise(%s): not supported for this memory by this kernel", name);
            system_error("madvise");
        }
    }
}

/* noinline: the work of a phase is one call between the two clock reads, so the compiler
 * cannot move any of it outside the timed window. The same holds for touch_blocks. */
__attribute__((noinline)) void allocate_blocks(const struct blocks *b,
                                               const struct scenario *s)
{
    switch (s->backing) {
    case BACKING_MALLOC:
        allocate_malloc(b);
        break;
    case BACKING_WRITE_FILE:
        if (b->buffer != NULL)
            break; /* the reused buffer was made before timing: nothing to allocate */
        allocate_malloc(b); /* whole: a heap block, written to the file after each pattern */
        break;
    case BACKING_CALLOC:
        allocate_calloc(b);
        break;
    case BACKING_POSIX_MEMALIGN:
        allocate_posix_memalign(b, s);
        break;
    case BACKING_MMAP_ANON:
    case BACKING_MMAP_FILE:
    case BACKING_MMAP_HUGETLB:
    case BACKING_DEV_ZERO:
        allocate_mmap(b, s);
        break;
    case BACKING_READ_FILE:
        if (b->buffer != NULL)
            break; /* the reused buffer was made before timing: nothing to allocate */
        if (b->order != NULL)
            allocate_read_file_pages(b);
        else
            allocate_read_file(b, s);
        break;
    case BACKING_MEMFD:
        allocate_memfd(b, s);
        break;
    case BACKING_SHM:
        allocate_shm(b, s);
        break;
    case BACKING_PIPE:  /* workload ipc alone, whose channel is its own (ipc.c) */
    case BACKING_COUNT:
        break;
    }
}

/* file_origin new, the allocate phase: the data file created under its name (empty; for
 * mmap-file then sized to every block's range, sparse: no data), then the blocks allocated
 * as from an existing file. */
__attribute__((noinline)) void allocate_in_new_file(struct blocks *b, const struct scenario *s,
                                                    const char *path, size_t file_bytes)
{
    b->fd = open_counted(path, O_RDWR | O_CREAT | O_TRUNC);
    if (s->backing == BACKING_MMAP_FILE &&
        (COUNT_SYSCALL(), ftruncate(b->fd, (off_t)file_bytes) != 0))
        system_error("ftruncate");
    allocate_blocks(b, s);
}

/* file_origin new, after the free phase, untimed: the file closed and unlinked, so the next
 * iteration starts without one. */
void remove_new_file(struct blocks *b, const char *path)
{
    if (close(b->fd) != 0)
        system_error("close");
    if (unlink(path) != 0)
        system_error("unlink");
    b->fd = -1;
}

/* The free phase: whatever `release` says. For the madvise releases the mappings stay; the
 * caller unmaps them after the phase, untimed. */
__attribute__((noinline)) void release_blocks(const struct blocks *b,
                                              const struct scenario *s)
{
    if (b->buffer != NULL)
        return; /* read-file and write-file keep their one buffer: nothing to free */
    switch (s->release) {
    case RELEASE_FREE:
        if (s->keep_every != 0)
            free_heap_keeping(b, s->keep_every);
        else
            free_heap(b);
        break;
    case RELEASE_MALLOC_TRIM:
        if (s->keep_every != 0)
            free_heap_keeping(b, s->keep_every);
        else
            free_heap(b);
        allocator_trim();
        break;
    case RELEASE_FREE_BUT_LAST:
        free_heap_but_last(b);
        break;
    case RELEASE_MALLOC_TRIM_BUT_LAST:
        free_heap_but_last(b);
        allocator_trim();
        break;
    case RELEASE_MUNMAP:
        unmap_blocks(b);
        break;
    case RELEASE_MADV_DONTNEED:
        advise_blocks(b, MADV_DONTNEED, "MADV_DONTNEED");
        break;
    case RELEASE_MADV_FREE:
        advise_blocks(b, MADV_FREE, "MADV_FREE");
        break;
    case RELEASE_NONE: /* the blocks stay allocated until the process exits: a leak */
        break;
    case RELEASE_AUTO: /* resolved by check_combination */
    case RELEASE_COUNT:
        break;
    }
}

/* After the free phase, untimed: what the release left for later (the mappings madvise
 * kept, the block each thread's *_BUT_LAST release kept: the last of its slice, as
 * start_crew cuts them), so rss_bytes of the phase shows what the release itself gave back. */
void finish_release(const struct blocks *b, const struct scenario *s)
{
    switch (s->release) {
    case RELEASE_MADV_DONTNEED:
    case RELEASE_MADV_FREE:
        unmap_blocks(b);
        break;
    case RELEASE_FREE_BUT_LAST:
    case RELEASE_MALLOC_TRIM_BUT_LAST:
        for (size_t t = 0; t < s->threads; t++) {
            size_t end = b->ops * (t + 1) / s->threads;
            if (end > 0)
                free(b->at[end - 1]);
        }
        break;
    default:
        break;
    }
}

