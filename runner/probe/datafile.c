/*
 * The data file behind file backings: writing and reading it whole, its filesystem, and its
 * pages in the page cache (evicting them, counting them).
 */
#include "probe.h"

/* Byte k of the file. Never zero (so reading it differs from reading fresh anonymous memory),
 * and with a prime period, so a block read from the wrong offset changes the checksum. */
static unsigned char pattern_byte(uint64_t offset)
{
    return (unsigned char)(offset % 251 + 1);
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

/* Creates the data file for file backings: unlinked at once (a crash leaves nothing behind),
 * filled with the known pattern, flushed, and read once so every page is in the page cache
 * before the first timed phase. */
int create_data_file(const char *directory, uint64_t file_bytes)
{
    char path[4096];
    int length = snprintf(path, sizeof path, "%s/alloclab-XXXXXX", directory);
    if (length < 0 || (size_t)length >= sizeof path)
        usage_error("--file_dir is too long");
    int fd = mkstemp(path);
    if (fd < 0)
        system_error("mkstemp");
    if (unlink(path) != 0)
        system_error("unlink");

    unsigned char *chunk = map_scratch(FILL_CHUNK_BYTES);
    for (uint64_t done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < FILL_CHUNK_BYTES ? (size_t)(file_bytes - done)
                                                        : FILL_CHUNK_BYTES;
        for (size_t j = 0; j < n; j++)
            chunk[j] = pattern_byte(done + j);
        write_fully(fd, chunk, n);
        done += n;
    }
    if (fsync(fd) != 0)
        system_error("fsync");
    for (uint64_t done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < FILL_CHUNK_BYTES ? (size_t)(file_bytes - done)
                                                        : FILL_CHUNK_BYTES;
        read_fully(fd, chunk, n, (off_t)done);
        done += n;
    }
    if (munmap(chunk, FILL_CHUNK_BYTES) != 0)
        system_error("munmap");
    return fd;
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

/* The share of the data file's pages in the page cache, in parts per million: mincore on a
 * mapping of the whole file made for the purpose, which faults nothing in. */
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
