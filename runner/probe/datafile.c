/*
 * The data file behind file backings: writing and reading it whole, its filesystem, and its
 * pages in the page cache (evicting them, counting them).
 */
#include "probe.h"

#include <sys/stat.h>

/* Names the data file the runner shares between the processes of one scenario (the runner's
 * side: runner/measure/datafiles.py). */
const char DATA_FILE_VARIABLE[] = "ALLOCLAB_DATA_FILE";

/* The file's known pattern (pattern_byte) for `length` bytes from `offset` on. */
void fill_pattern(unsigned char *chunk, uint64_t offset, size_t length)
{
    for (size_t j = 0; j < length; j++)
        chunk[j] = pattern_byte(offset + j);
}

void write_fully(int fd, const unsigned char *buffer, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, buffer, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            system_error("write");
        }
        buffer += written;
        length -= (size_t)written;
    }
}

/* Reads exactly `length` bytes from a pipe; 0 when the other end closed first. `what` names
 * the pipe in the error message. */
int read_exactly(int fd, unsigned char *buffer, size_t length, const char *what)
{
    while (length > 0) {
        ssize_t got = read(fd, buffer, length);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            system_error(what);
        if (got == 0)
            return 0;
        buffer += got;
        length -= (size_t)got;
    }
    return 1;
}

/* Reads exactly `length` bytes at `offset`; pread may return less than asked for. */
void read_fully(int fd, unsigned char *buffer, size_t length, off_t offset)
{
    while (length > 0) {
        COUNT_SYSCALL();
        ssize_t got = pread(fd, buffer, length, offset);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            system_error("pread");
        }
        if (got == 0) {
            errno = EIO; /* the file is shorter than this probe wrote it: say so, don't spin */
            system_error("pread (unexpected end of file)");
        }
        buffer += got;
        length -= (size_t)got;
        offset += got;
    }
}

/* Writes exactly `length` bytes at `offset`; pwrite may write less than asked for. */
void pwrite_fully(int fd, const unsigned char *buffer, size_t length, off_t offset)
{
    while (length > 0) {
        COUNT_SYSCALL();
        ssize_t written = pwrite(fd, buffer, length, offset);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            system_error("pwrite");
        }
        buffer += written;
        length -= (size_t)written;
        offset += written;
    }
}

/* Writes the known pattern over the whole of `fd` and pushes it to the disk. */
static void fill_data_file(int fd, uint64_t file_bytes, unsigned char *chunk)
{
    for (uint64_t done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < FILL_CHUNK_BYTES ? (size_t)(file_bytes - done)
                                                        : FILL_CHUNK_BYTES;
        fill_pattern(chunk, done, n);
        write_fully(fd, chunk, n);
        done += n;
    }
    if (fsync(fd) != 0)
        system_error("fsync");
}

/* Reads the whole file once, so every page is in the page cache before the first timed
 * phase (cache cold evicts them again before each iteration). */
static void read_in_data_file(int fd, uint64_t file_bytes, unsigned char *chunk)
{
    for (uint64_t done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < FILL_CHUNK_BYTES ? (size_t)(file_bytes - done)
                                                        : FILL_CHUNK_BYTES;
        read_fully(fd, chunk, n, (off_t)done);
        done += n;
    }
}

/* The name of a private data file that file_open per-block opens again and again: removed
 * when the probe exits (exit runs atexit handlers; a probe killed by a signal leaves it). */
static char kept_path[4096];

static void remove_kept_file(void)
{
    unlink(kept_path);
}

/* A data file of this process alone, filled with the known pattern (with holes for
 * file_layout holes): unlinked at once, so a crash leaves nothing behind, unless file_open
 * per-block needs its name (returned in *path, else NULL). */
static int create_private_file(const struct scenario *s, uint64_t file_bytes, size_t stride,
                               size_t page, unsigned char *chunk, const char **path)
{
    int length = snprintf(kept_path, sizeof kept_path, "%s/alloclab-XXXXXX", s->file_dir);
    if (length < 0 || (size_t)length >= sizeof kept_path)
        usage_error("--file_dir is too long");
    int fd = mkstemp(kept_path);
    if (fd < 0)
        system_error("mkstemp");
    *path = NULL;
    if (s->file_open == FILE_OPEN_PER_BLOCK) {
        if (atexit(remove_kept_file) != 0)
            system_error("atexit");
        *path = kept_path;
    } else if (unlink(kept_path) != 0) {
        system_error("unlink");
    }
    if (s->file_layout == FILE_LAYOUT_HOLES)
        fill_holes_file(fd, file_bytes, stride, page);
    else
        fill_data_file(fd, file_bytes, chunk);
    return fd;
}

/* The data file the runner shares between the processes of one scenario (DATA_FILE_VARIABLE
 * names it; the runner removes it after the scenario's last process). The first process
 * creates it: filled while nameless (O_TMPFILE), then linked under the name, so the name only
 * ever holds a whole, synced file. Later processes check its length and use it as it is,
 * which is why only scenarios that never write to their data file share one. Returns -1
 * where the filesystem has no O_TMPFILE: the caller makes a private file instead. */
static int open_shared_file(const char *path, const char *directory, uint64_t file_bytes,
                            unsigned char *chunk)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno != ENOENT)
        system_error("open (the shared data file)");
    if (fd >= 0) {
        struct stat info;
        if (fstat(fd, &info) != 0)
            system_error("fstat (the shared data file)");
        if (!S_ISREG(info.st_mode) || (uint64_t)info.st_size != file_bytes)
            usage_error("%s=%s: %" PRIu64 " bytes, not this scenario's data file of %" PRIu64,
                        DATA_FILE_VARIABLE, path, (uint64_t)info.st_size, file_bytes);
        return fd;
    }
    fd = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EOPNOTSUPP || errno == EISDIR)
            return -1;
        system_error("open (O_TMPFILE, for the shared data file)");
    }
    fill_data_file(fd, file_bytes, chunk);
    char self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0)
        system_error("linkat (naming the shared data file)");
    return fd;
}

/* Whether the scenario's data file cannot be shared (runner/measure/datafiles.py can_share): one it
 * writes into, as the next process would find it changed, and its dirty pages written back
 * during later phases (ipc writes its control page, the file's first, whatever its sharing);
 * one laid out otherwise than whole, or truncated under the mappings. */
static int owns_data_file(const struct scenario *s)
{
    return s->backing == BACKING_WRITE_FILE || s->workload == WORKLOAD_IPC ||
           (s->backing == BACKING_MMAP_FILE && s->sharing == SHARING_SHARED &&
            is_writing_access(s->access)) ||
           s->file_layout != FILE_LAYOUT_WHOLE;
}

/* The data file of file backings, filled with the known pattern and read once so that every
 * page is in the page cache before the first timed phase: the runner's shared file when
 * DATA_FILE_VARIABLE is set (see open_shared_file), else one private to this process. Either
 * way this process sets the file's cache state itself (read in here; evicted before each
 * iteration for cache cold). *path gets the file's name where it keeps one (the shared file's,
 * or a private one's for file_open per-block), else NULL. */
int open_data_file(const struct scenario *s, uint64_t file_bytes, size_t stride, size_t page,
                   const char **path)
{
    const char *shared = getenv(DATA_FILE_VARIABLE);
    if (shared != NULL && owns_data_file(s))
        usage_error("%s: a scenario that writes to its data file, or lays it out otherwise "
                    "than whole, cannot share one", DATA_FILE_VARIABLE);
    unsigned char *chunk = map_scratch(FILL_CHUNK_BYTES);
    int fd = shared != NULL ? open_shared_file(shared, s->file_dir, file_bytes, chunk) : -1;
    *path = shared;
    if (fd < 0)
        fd = create_private_file(s, file_bytes, stride, page, chunk, path);
    read_in_data_file(fd, file_bytes, chunk);
    if (munmap(chunk, FILL_CHUNK_BYTES) != 0)
        system_error("munmap");
    return fd;
}

/* file_origin new: the name allocate creates the data file under, in `directory`, this
 * process's own (made before timing; each iteration unlinks it after its free phase, so only
 * a probe killed in between leaves it). */
char *name_new_file(const char *directory)
{
    char *path = map_scratch(PATH_MAX);
    int length = snprintf(path, PATH_MAX, "%s/alloclab-new-%ld", directory, (long)getpid());
    if (length < 0 || length >= PATH_MAX)
        usage_error("--file_dir is too long");
    return path;
}

/* The filesystem of `directory`, by name when it is one that matters on Linux machines. */
const char *filesystem_name(const char *directory, char *buffer, size_t buffer_size)
{
    struct statfs info;
    if (statfs(directory, &info) != 0)
        system_error("statfs");
    switch ((unsigned long)info.f_type) {
    case 0xEF53UL: /* ext2, ext3 and ext4 share one magic number */
        return "ext4";
    case 0x01021994UL:
        return "tmpfs";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794C7630UL:
        return "overlayfs";
    default:
        snprintf(buffer, buffer_size, "0x%lx", (unsigned long)info.f_type);
        return buffer;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The data file in the page cache                                                            */

/* cache cold: the file's pages leave the page cache, written back first (dirty pages are not
 * evicted). On tmpfs nothing leaves: its pages live only in the cache. */
void evict_file(int fd)
{
    if (fdatasync(fd) != 0)
        system_error("fdatasync");
    int error = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (error != 0) {
        errno = error;
        system_error("posix_fadvise(POSIX_FADV_DONTNEED)");
    }
}

/* Pages resident in `after` but not in `before` (mincore vectors: bit 0 is residency). */
uint64_t pages_added(const unsigned char *before, const unsigned char *after, size_t pages)
{
    uint64_t added = 0;
    for (size_t i = 0; i < pages; i++)
        added += (after[i] & 1) & ~before[i];
    return added;
}

/* The share of the data file's pages in the page cache, in parts per million: mincore on a
 * mapping of the whole file made for the purpose, which faults nothing in (pages past the
 * file's end, as a file created in allocate may have before it is written, count as not
 * cached). */
uint64_t file_resident_ppm(int fd, size_t file_bytes, size_t page, unsigned char *vector)
{
    void *p = mmap(NULL, file_bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        system_error("mmap (the data file, for mincore)");
    if (mincore(p, file_bytes, vector) != 0)
        system_error("mincore");
    uint64_t pages = (file_bytes + page - 1) / page, resident = 0;
    for (uint64_t i = 0; i < pages; i++)
        resident += vector[i] & 1;
    if (munmap(p, file_bytes) != 0)
        system_error("munmap");
    return resident * 1000000 / pages;
}
