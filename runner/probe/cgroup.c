/*
 * The probe in a memory cgroup (memory_limit): the runner makes the cgroup and names its folder
 * in ALLOCLAB_MEMORY_CGROUP (runner/machine/memcg.py); the probe moves itself into it first
 * thing, before it maps or touches anything measured, so every page of the scenario is charged
 * there. Under the limit it can also press memory (workload reuse: is what MADV_FREE gave back
 * discarded?) and read what the cgroup holds as page cache (file backings: is the cache
 * charged to the cgroup?).
 */
#include "probe.h"

const char MEMORY_CGROUP_VARIABLE[] = "ALLOCLAB_MEMORY_CGROUP";

int in_memory_cgroup(void)
{
    return getenv(MEMORY_CGROUP_VARIABLE) != NULL;
}

/* The cgroup's file `name` into `path`; 0 when the probe runs in no cgroup of alloclab's. */
static int cgroup_file(const char *name, char *path, size_t length)
{
    const char *dir = getenv(MEMORY_CGROUP_VARIABLE);
    if (dir == NULL)
        return 0;
    int n = snprintf(path, length, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= length)
        usage_error("%s=%s: the path is too long", MEMORY_CGROUP_VARIABLE, dir);
    return 1;
}

/* Write this process's pid into the cgroup's cgroup.procs (v1 and v2 alike): it and whatever
 * it starts from now on (the heap trace's image, the ipc peer) are charged to the cgroup. */
void join_memory_cgroup(void)
{
    char path[PATH_MAX];
    if (!cgroup_file("cgroup.procs", path, sizeof path))
        return;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        system_error("open of the memory cgroup's cgroup.procs");
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (write(fd, text, (size_t)n) != n)
        system_error("write to the memory cgroup's cgroup.procs");
    close(fd);
}

/* Page cache charged to the cgroup: memory.stat's "file" (v2) or "cache" (v1), in bytes. */
uint64_t cgroup_cache_bytes(void)
{
    char path[PATH_MAX];
    if (!cgroup_file("memory.stat", path, sizeof path))
        return 0;
    FILE *stat = fopen(path, "re");
    if (stat == NULL)
        system_error("fopen of the memory cgroup's memory.stat");
    char key[64];
    unsigned long long value, found = 0;
    while (fscanf(stat, "%63s %llu", key, &value) == 2) {
        if (strcmp(key, "file") == 0 || strcmp(key, "cache") == 0) {
            found = value;
            break;
        }
    }
    fclose(stat);
    return (uint64_t)found;
}

/* Memory pressure: an anonymous region of `bytes` written a byte per page, then unmapped. In
 * a cgroup whose limit it does not fit beside what the process holds, the kernel must reclaim
 * to make room: clean file pages and lazily freed (MADV_FREE) pages, not anonymous pages
 * without swap. Untimed. */
void press_memory(size_t bytes, size_t page)
{
    if (bytes == 0)
        return;
    unsigned char *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED)
        system_error("mmap of the pressure region");
    for (size_t offset = 0; offset < bytes; offset += page)
        ((volatile unsigned char *)region)[offset] = 1;
    munmap(region, bytes);
}

/* Pages of the blocks whose every byte reads zero, in parts per million of their pages: a
 * page the kernel discarded reads as a fresh zero page. Reading maps the zero page there,
 * taking no memory. */
uint64_t zero_pages_ppm(const struct blocks *b)
{
    size_t page = b->page_bytes, pages = 0, zero = 0;
    for (size_t i = 0; i < b->ops; i++) {
        for (size_t offset = 0; offset < b->size_bytes; offset += page) {
            size_t length = b->size_bytes - offset < page ? b->size_bytes - offset : page;
            const unsigned char *p = b->at[i] + offset;
            size_t k = 0;
            while (k < length && p[k] == 0)
                k++;
            zero += k == length;
            pages++;
        }
    }
    return pages == 0 ? 0 : (uint64_t)zero * PPM / pages;
}
