/*
 * --fingerprint [DIR...]: the machine facts of runner/machine/system.py's FACTS that the machine
 * itself holds (CPU, kernel, libc, THP, overcommit, memory, limits, the filesystem of each DIR
 * and the disk under it, how many page-cache pages one fault maps there — observed by writing
 * and mapping a small file, removed at once —, the allocator variables in the probe's
 * environment, the boot id), printed as one JSON
 * object on stdout, read the way runner/machine/system.py reads them locally. On another machine
 * reached over SSH this is the only way alloclab reads it: no Python is needed there.
 *
 * Output: {"probe_version": N, "fingerprint": {<fact>: value}, "facts": {"euid": n,
 * "free_huge_pages": n or null}}; "facts" are what runner/machine/preconditions.py checks besides.
 */
#include "probe.h"

#include <glob.h>
#include <sys/utsname.h>

#define TEXT_BYTES 65536

/* The text of a small /proc or /sys file, trimmed of surrounding white space; NULL when it
 * cannot be read or is empty. Returns a pointer into `buffer`. */
static char *read_text(const char *path, char *buffer, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t used = 0;
    for (;;) {
        ssize_t n = read(fd, buffer + used, size - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
        if (used == size - 1)
            break;
    }
    close(fd);
    buffer[used] = '\0';
    while (used > 0 && (buffer[used - 1] == '\n' || buffer[used - 1] == ' ' ||
                        buffer[used - 1] == '\t'))
        buffer[--used] = '\0';
    char *start = buffer;
    while (*start == ' ' || *start == '\t' || *start == '\n')
        start++;
    return *start ? start : NULL;
}

static void print_string(const char *text)
{
    if (text == NULL) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void print_key(const char *key, int *first)
{
    printf("%s\"%s\": ", *first ? "" : ", ", key);
    *first = 0;
}

static void print_string_fact(const char *key, const char *value, int *first)
{
    print_key(key, first);
    print_string(value);
}

/* An integer fact read from a one-number file; null unless the file holds just a number. */
static void print_int_file(const char *key, const char *path, int *first)
{
    char buffer[64];
    char *text = read_text(path, buffer, sizeof buffer);
    print_key(key, first);
    char *end = NULL;
    long long value = text ? strtoll(text, &end, 10) : 0;
    if (text && end && *end == '\0')
        printf("%lld", value);
    else
        fputs("null", stdout);
}

/* The selected mode of a sysfs choice file: "always [madvise] never" -> madvise. */
static void print_bracketed(const char *key, const char *path, int *first)
{
    char buffer[256];
    char *text = read_text(path, buffer, sizeof buffer);
    char *open_bracket = text ? strchr(text, '[') : NULL;
    char *close_bracket = open_bracket ? strchr(open_bracket, ']') : NULL;
    if (close_bracket) {
        *close_bracket = '\0';
        text = open_bracket + 1;
    }
    print_string_fact(key, text, first);
}

/* The value after "name:" on the first such line of /proc/cpuinfo-like text, or NULL. */
static char *field_value(char *text, const char *name, char *out, size_t out_size)
{
    size_t name_length = strlen(name);
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
                                                                      : NULL) {
        if (strncmp(line, name, name_length) != 0)
            continue;
        char *p = line + name_length;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ':')
            continue;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, "\n");
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= out_size)
            n = out_size - 1;
        memcpy(out, p, n);
        out[n] = '\0';
        return out;
    }
    return NULL;
}

static int compare_words(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The CPU flags sorted by name and joined by spaces, as runner/machine/system.py records them. */
static void print_sorted_flags(const char *flags, int *first)
{
    print_key("cpu_flags", first);
    if (flags == NULL) {
        fputs("null", stdout);
        return;
    }
    static char copy[TEXT_BYTES];
    static char *words[4096];
    snprintf(copy, sizeof copy, "%s", flags);
    size_t count = 0;
    for (char *save = NULL, *word = strtok_r(copy, " \t", &save);
         word && count < sizeof words / sizeof *words; word = strtok_r(NULL, " \t", &save))
        words[count++] = word;
    qsort(words, count, sizeof *words, compare_words);
    putchar('"');
    for (size_t i = 0; i < count; i++)
        printf("%s%s", i ? " " : "", words[i]);
    putchar('"');
}

static int has_word(const char *text, const char *word)
{
    size_t length = strlen(word);
    for (const char *p = text; p && (p = strstr(p, word)) != NULL; p += length)
        if ((p == text || p[-1] == ' ' || p[-1] == '\t') &&
            (p[length] == '\0' || p[length] == ' ' || p[length] == '\t'))
            return 1;
    return 0;
}

/* Which hypervisor, from the places Linux exposes it without privileges. */
static void print_hypervisor(const char *flags, int *first)
{
    char buffer[256];
    const char *name = "none";
    if (flags && has_word(flags, "hypervisor")) {
        name = read_text("/sys/hypervisor/type", buffer, sizeof buffer);
        if (!name)
            name = read_text("/sys/class/dmi/id/sys_vendor", buffer, sizeof buffer);
        if (!name) {
            char *clocks = read_text(
                "/sys/devices/system/clocksource/clocksource0/available_clocksource", buffer,
                sizeof buffer);
            name = clocks && has_word(clocks, "kvm-clock") ? "kvm"
                   : clocks && has_word(clocks, "hyperv_clocksource_tsc_page") ? "hyperv"
                                                                               : "unknown";
        }
    }
    print_string_fact("hypervisor", name, first);
}

/* "L1d 48K, L1i 32K, L2 2048K" from cpu0's cache directories, in name order. */
static void print_caches(int *first)
{
    glob_t found;
    print_key("cpu_caches", first);
    if (glob("/sys/devices/system/cpu/cpu0/cache/index*", 0, NULL, &found) != 0) {
        fputs("null", stdout);
        return;
    }
    static char out[4096];
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < found.gl_pathc; i++) {
        char path[PATH_MAX], level[32], kind[64], size[64];
        char *level_text, *kind_text, *size_text;
        snprintf(path, sizeof path, "%s/level", found.gl_pathv[i]);
        level_text = read_text(path, level, sizeof level);
        snprintf(path, sizeof path, "%s/type", found.gl_pathv[i]);
        kind_text = read_text(path, kind, sizeof kind);
        snprintf(path, sizeof path, "%s/size", found.gl_pathv[i]);
        size_text = read_text(path, size, sizeof size);
        if (!level_text || !size_text)
            continue;
        const char *suffix = kind_text && strcmp(kind_text, "Data") == 0          ? "d"
                             : kind_text && strcmp(kind_text, "Instruction") == 0 ? "i"
                                                                                  : "";
        int n = snprintf(out + used, sizeof out - used, "%sL%s%s %s", used ? ", " : "",
                         level_text, suffix, size_text);
        if (n > 0 && (size_t)n < sizeof out - used)
            used += (size_t)n;
    }
    globfree(&found);
    if (used)
        print_string(out);
    else
        fputs("null", stdout);
}

/* The distinct scaling governors of all CPUs, sorted and joined by commas; null without. */
static void print_governors(int *first)
{
    glob_t found;
    print_key("cpu_governor", first);
    if (glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq/scaling_governor", 0, NULL, &found)
        != 0) {
        fputs("null", stdout);
        return;
    }
    static char names[64][64];
    static char *sorted[64];
    size_t count = 0;
    for (size_t i = 0; i < found.gl_pathc && count < 64; i++) {
        char buffer[64];
        char *text = read_text(found.gl_pathv[i], buffer, sizeof buffer);
        if (!text)
            continue;
        int seen = 0;
        for (size_t j = 0; j < count; j++)
            seen |= strcmp(names[j], text) == 0;
        if (!seen) {
            snprintf(names[count], sizeof names[count], "%s", text);
            sorted[count] = names[count];
            count++;
        }
    }
    globfree(&found);
    if (count == 0) {
        fputs("null", stdout);
        return;
    }
    qsort(sorted, count, sizeof *sorted, compare_words);
    putchar('"');
    for (size_t i = 0; i < count; i++)
        printf("%s%s", i ? "," : "", sorted[i]);
    putchar('"');
}

static void print_meminfo_bytes(const char *key, char *meminfo, const char *name, int *first)
{
    char value[64];
    char *text = meminfo ? field_value(meminfo, name, value, sizeof value) : NULL;
    print_key(key, first);
    if (text)
        printf("%llu", strtoull(text, NULL, 10) * 1024ULL);
    else
        fputs("null", stdout);
}

static void print_count_glob(const char *key, const char *pattern, int *first)
{
    glob_t found;
    print_key(key, first);
    if (glob(pattern, 0, NULL, &found) == 0) {
        printf("%zu", found.gl_pathc);
        globfree(&found);
    } else {
        fputs("null", stdout);
    }
}

/* Mount points in mountinfo escape space, tab, newline and backslash as octal. */
static void unescape_mount(char *field)
{
    char *out = field;
    for (char *p = field; *p;) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] && p[3]) {
            *out++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 4;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
}

/* The mount a directory is on (runner/machine/system.py's Mount). */
struct mount_entry {
    int found;
    size_t point_length;
    char type[64];
    char device_number[32]; /* "254:0" */
    char source[PATH_MAX];  /* "/dev/vda", "tmpfs" */
};

/* The mount holding `directory`: the longest mount point prefix wins, a later line on the
 * same mount point (mounted over the earlier) wins a tie. */
static void find_mount(const char *directory, const char *mountinfo, struct mount_entry *best)
{
    char path[PATH_MAX];
    if (realpath(directory, path) == NULL)
        snprintf(path, sizeof path, "%s", directory);
    memset(best, 0, sizeof *best);
    const char *line = mountinfo;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        static char copy[2 * PATH_MAX];
        if (length < sizeof copy) {
            memcpy(copy, line, length);
            copy[length] = '\0';
            char *separator = strstr(copy, " - ");
            char type[64], source[PATH_MAX];
            int after = separator ? sscanf(separator + 3, "%63s %4095s", type, source) : 0;
            char *fields[5] = {0};
            char *save = NULL;
            char *word = strtok_r(copy, " ", &save);
            for (int i = 0; i < 5 && word; i++, word = strtok_r(NULL, " ", &save))
                fields[i] = word;
            if (after == 2 && fields[4] && fields[4] < separator) {
                unescape_mount(fields[4]);
                size_t mount_length = strlen(fields[4]);
                size_t trimmed = mount_length;
                while (trimmed > 0 && fields[4][trimmed - 1] == '/')
                    trimmed--;
                int inside = strcmp(path, fields[4]) == 0 ||
                             (strncmp(path, fields[4], trimmed) == 0 && path[trimmed] == '/');
                if (inside && (!best->found || mount_length >= best->point_length)) {
                    best->found = 1;
                    best->point_length = mount_length;
                    snprintf(best->type, sizeof best->type, "%s", type);
                    snprintf(best->device_number, sizeof best->device_number, "%s",
                             fields[2]);
                    unescape_mount(source);
                    snprintf(best->source, sizeof best->source, "%s", source);
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
}

/* The block device a filesystem is on and its queue (runner/machine/system.py's BlockDevice);
 * unknown numbers are -1, unknown text empty. */
struct block_device {
    char name[256];
    char disk[512];
    int rotational;
    char scheduler[64];
    long long read_ahead_kb;
};

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A partition's queue and driver belong to the disk it is part of: cut `device` to it. */
static void whole_disk(char *device)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/partition", device);
    char *slash = strrchr(device, '/');
    if (exists(path) && slash && slash != device)
        *slash = '\0';
}

static long long read_number(const char *directory, const char *name)
{
    char path[PATH_MAX + 64], buffer[64];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    char *text = read_text(path, buffer, sizeof buffer);
    char *end = NULL;
    long long value = text ? strtoll(text, &end, 10) : -1;
    return text && end && *end == '\0' ? value : -1;
}

/* "virtio_blk", "nvme Amazon Elastic Block Store": the driver of the device behind a disk
 * (NVMe's sits behind its controller) and its model; a device-mapper or md device has no
 * device of its own: the first disk it is made of, up to four levels down. */
static void disk_text(const char *whole, int depth, char *out, size_t out_size)
{
    char path[PATH_MAX + 64], target[PATH_MAX], model[256];
    out[0] = '\0';
    snprintf(path, sizeof path, "%s/device", whole);
    if (exists(path)) {
        const char *driver = NULL;
        snprintf(path, sizeof path, "%s/device/driver", whole);
        if (realpath(path, target) != NULL)
            driver = base_name(target);
        snprintf(path, sizeof path, "%s/device/device/driver", whole);
        if (driver == NULL && realpath(path, target) != NULL)
            driver = base_name(target);
        snprintf(path, sizeof path, "%s/device/model", whole);
        char *text = read_text(path, model, sizeof model);
        /* The model's words joined by single spaces (sysfs pads SCSI models). */
        size_t used = (size_t)snprintf(out, out_size, "%s", driver ? driver : "");
        for (char *save = NULL, *word = text ? strtok_r(text, " \t", &save) : NULL; word;
             word = strtok_r(NULL, " \t", &save))
            if (used < out_size)
                used += (size_t)snprintf(out + used, out_size - used, "%s%s",
                                         used ? " " : "", word);
        return;
    }
    snprintf(path, sizeof path, "%s/slaves/*", whole);
    glob_t found;
    if (depth >= 4 || glob(path, 0, NULL, &found) != 0)
        return;
    if (found.gl_pathc > 0 && realpath(found.gl_pathv[0], target) != NULL) {
        whole_disk(target);
        disk_text(target, depth + 1, out, out_size);
    }
    globfree(&found);
}

/* The block device holding a mount (by its device number, else by its source, as for
 * btrfs); 0 when it is on none (tmpfs, overlay, a network filesystem). */
static int find_block_device(const struct mount_entry *mount, struct block_device *out)
{
    char path[PATH_MAX + 64], device[PATH_MAX], source[PATH_MAX], buffer[256];
    snprintf(path, sizeof path, "/sys/dev/block/%s", mount->device_number);
    if (!exists(path) && strncmp(mount->source, "/dev/", 5) == 0) {
        if (realpath(mount->source, source) == NULL)
            snprintf(source, sizeof source, "%s", mount->source);
        snprintf(path, sizeof path, "/sys/class/block/%s", base_name(source));
    }
    if (!exists(path) || realpath(path, device) == NULL)
        return 0;
    snprintf(out->name, sizeof out->name, "%.255s", base_name(device));
    whole_disk(device);
    disk_text(device, 0, out->disk, sizeof out->disk);
    long long rotational = read_number(device, "queue/rotational");
    out->rotational = rotational < 0 ? -1 : rotational != 0;
    out->read_ahead_kb = read_number(device, "queue/read_ahead_kb");
    snprintf(path, sizeof path, "%s/queue/scheduler", device);
    char *text = read_text(path, buffer, sizeof buffer);
    char *open_bracket = text ? strchr(text, '[') : NULL;
    char *close_bracket = open_bracket ? strchr(open_bracket, ']') : NULL;
    if (close_bracket) {
        *close_bracket = '\0';
        text = open_bracket + 1;
    }
    snprintf(out->scheduler, sizeof out->scheduler, "%s", text ? text : "");
    return 1;
}

static long minor_faults_now(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        system_error("getrusage");
    return usage.ru_minflt;
}

/* The file mapped to count pages per fault (runner/machine/system.py's PAGES_PER_FAULT_FILE_BYTES),
 * written in FILL_CHUNK_BYTES writes as the probe's data files are. */
#define PAGES_PER_FAULT_FILE_BYTES ((size_t)2 << 20)

/* Writes all of `chunk`; 0 when the filesystem refuses (full, read-only). */
static int write_all(int fd, const unsigned char *chunk, size_t length)
{
    while (length > 0) {
        ssize_t written = write(fd, chunk, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return 0;
        chunk += written;
        length -= (size_t)written;
    }
    return 1;
}

/* Page-cache pages one minor fault maps in `directory`, rounded to a whole number (-1: no
 * file can be written there): a file written there, unlinked at once and read page by page
 * through a private read-only mapping while cached (runner/machine/system.py's
 * mapped_pages_per_fault, which this must match). */
static long long mapped_pages_per_fault(const char *directory)
{
    char path[PATH_MAX];
    int length = snprintf(path, sizeof path, "%s/alloclab-XXXXXX", directory);
    if (length < 0 || (size_t)length >= sizeof path)
        return -1;
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    unsigned char *chunk = map_scratch(FILL_CHUNK_BYTES);
    memset(chunk, 1, FILL_CHUNK_BYTES);
    int written = 1;
    for (size_t done = 0; written && done < PAGES_PER_FAULT_FILE_BYTES; done += FILL_CHUNK_BYTES)
        written = write_all(fd, chunk, FILL_CHUNK_BYTES);
    if (munmap(chunk, FILL_CHUNK_BYTES) != 0)
        system_error("munmap");
    const volatile unsigned char *mapping =
        written ? mmap(NULL, PAGES_PER_FAULT_FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0)
                : MAP_FAILED;
    close(fd);
    if (mapping == MAP_FAILED)
        return -1;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned sum = 0;
    long before = minor_faults_now();
    for (size_t offset = 0; offset < PAGES_PER_FAULT_FILE_BYTES; offset += page)
        sum += mapping[offset];
    long faults = minor_faults_now() - before;
    ESCAPE(&sum);
    if (munmap((void *)mapping, PAGES_PER_FAULT_FILE_BYTES) != 0)
        system_error("munmap");
    long long pages = (long long)(PAGES_PER_FAULT_FILE_BYTES / page);
    return faults > 0 ? (pages + faults / 2) / faults : -1;
}

static int is_allocator_variable(const char *entry)
{
    return strncmp(entry, "GLIBC_TUNABLES=", 15) == 0 || strncmp(entry, "LD_PRELOAD=", 11) == 0 ||
           strncmp(entry, "MALLOC_", 7) == 0;
}

/* GLIBC_TUNABLES, LD_PRELOAD and MALLOC_* of the probe's own environment, sorted by name. */
static void print_allocator_env(int *first)
{
    extern char **environ;
    static char *entries[256];
    size_t count = 0;
    for (char **e = environ; *e && count < 256; e++)
        if (is_allocator_variable(*e))
            entries[count++] = *e;
    qsort(entries, count, sizeof *entries, compare_words);
    print_key("allocator_env", first);
    putchar('{');
    for (size_t i = 0; i < count; i++) {
        char name[256];
        size_t n = strcspn(entries[i], "=");
        snprintf(name, sizeof name, "%.*s", (int)n, entries[i]);
        fputs(i ? ", " : "", stdout);
        print_string(name);
        fputs(": ", stdout);
        print_string(entries[i] + n + 1);
    }
    putchar('}');
}

static void print_number_or_null(long long value)
{
    if (value < 0)
        fputs("null", stdout);
    else
        printf("%lld", value);
}

/* What is known of one file directory, for the facts of runner/machine/system.py read per
 * directory. */
struct file_dir_facts {
    struct mount_entry mount;
    int on_device;
    struct block_device device;
    long long pages_per_fault;
};

enum file_dir_fact {
    FILE_FS,
    FILE_DEVICE,
    FILE_DISK,
    FILE_ROTATIONAL,
    FILE_SCHEDULER,
    FILE_READ_AHEAD_KB,
    FILE_PAGES_PER_FAULT,
    FILE_DIR_FACTS
};

static const char *const FILE_DIR_FACT_NAMES[FILE_DIR_FACTS] = {
    "file_fs", "file_device", "file_disk", "file_rotational",
    "file_scheduler", "file_read_ahead_kb", "file_pages_per_fault"};

static void print_file_dir_value(enum file_dir_fact fact, const struct file_dir_facts *f)
{
    const struct block_device *device = f->on_device ? &f->device : NULL;
    switch (fact) {
    case FILE_FS:
        print_string(f->mount.found ? f->mount.type : NULL);
        break;
    case FILE_DEVICE:
        print_string(device ? device->name : "none");
        break;
    case FILE_DISK:
        print_string(device && device->disk[0] ? device->disk : NULL);
        break;
    case FILE_ROTATIONAL:
        fputs(!device || device->rotational < 0 ? "null"
              : device->rotational              ? "true"
                                                : "false",
              stdout);
        break;
    case FILE_SCHEDULER:
        print_string(device && device->scheduler[0] ? device->scheduler : NULL);
        break;
    case FILE_READ_AHEAD_KB:
        print_number_or_null(device ? device->read_ahead_kb : -1);
        break;
    case FILE_PAGES_PER_FAULT:
        print_number_or_null(f->pages_per_fault);
        break;
    case FILE_DIR_FACTS:
        break;
    }
}

/* The facts read per file directory, each {dir: value} with the directories sorted (the
 * runner passes them sorted and without repeats). */
static void print_file_dir_facts(int count, char **directories, int *first)
{
    static char mountinfo[1 << 20];
    static struct file_dir_facts facts[256];
    if (count > 256)
        usage_error("--fingerprint: at most 256 directories, got %d", count);
    char *text = read_text("/proc/self/mountinfo", mountinfo, sizeof mountinfo);
    for (int i = 0; i < count; i++) {
        find_mount(directories[i], text ? text : "", &facts[i].mount);
        facts[i].on_device = facts[i].mount.found &&
                             find_block_device(&facts[i].mount, &facts[i].device);
        facts[i].pages_per_fault = mapped_pages_per_fault(directories[i]);
    }
    for (int fact = 0; fact < FILE_DIR_FACTS; fact++) {
        print_key(FILE_DIR_FACT_NAMES[fact], first);
        putchar('{');
        for (int i = 0; i < count; i++) {
            fputs(i ? ", " : "", stdout);
            print_string(directories[i]);
            fputs(": ", stdout);
            print_file_dir_value((enum file_dir_fact)fact, &facts[i]);
        }
        putchar('}');
    }
}

/* Free 2 MiB hugetlb pages a new mapping can get (free minus reserved); null without. */
static void print_free_huge_pages(void)
{
    char buffer[64];
    const char *base = "/sys/kernel/mm/hugepages/hugepages-2048kB";
    char path[256];
    snprintf(path, sizeof path, "%s/free_hugepages", base);
    char *free_text = read_text(path, buffer, sizeof buffer);
    long long free_pages = free_text ? strtoll(free_text, NULL, 10) : -1;
    snprintf(path, sizeof path, "%s/resv_hugepages", base);
    char *reserved_text = read_text(path, buffer, sizeof buffer);
    long long reserved = reserved_text ? strtoll(reserved_text, NULL, 10) : 0;
    if (free_pages < 0)
        fputs("null", stdout);
    else
        printf("%lld", free_pages > reserved ? free_pages - reserved : 0);
}

int print_fingerprint(int count, char **directories)
{
    static char cpuinfo[1 << 20], meminfo[TEXT_BYTES], model[512], flags[TEXT_BYTES];
    char boot_id[128];
    char *cpu_text = read_text("/proc/cpuinfo", cpuinfo, sizeof cpuinfo);
    char *mem_text = read_text("/proc/meminfo", meminfo, sizeof meminfo);
    char *cpu_model = cpu_text ? field_value(cpu_text, "model name", model, sizeof model) : NULL;
    char *cpu_flags = cpu_text ? field_value(cpu_text, "flags", flags, sizeof flags) : NULL;
    struct utsname names;
    if (uname(&names) != 0)
        system_error("uname");
    char libc[128];
#ifdef __GLIBC__
    snprintf(libc, sizeof libc, "glibc %s", gnu_get_libc_version());
#else
    libc[0] = '\0';
#endif
    const char *thp = "/sys/kernel/mm/transparent_hugepage";
    char path[256];
    struct rlimit memlock;
    if (getrlimit(RLIMIT_MEMLOCK, &memlock) != 0)
        system_error("getrlimit");
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    int first = 1;
    printf("{\"probe_version\": %d, \"fingerprint\": {", PROBE_VERSION);
    print_string_fact("cpu_model", cpu_model, &first);
    print_sorted_flags(cpu_flags, &first);
    print_key("cpu_count", &first);
    printf(cpus > 0 ? "%ld" : "null", cpus);
    print_caches(&first);
    print_governors(&first);
    print_hypervisor(cpu_flags, &first);
    print_string_fact("machine", names.machine, &first);
    print_string_fact("boot_id",
                      read_text("/proc/sys/kernel/random/boot_id", boot_id, sizeof boot_id),
                      &first);
    print_string_fact("kernel", names.release, &first);
    print_string_fact("kernel_version", names.version, &first);
    print_string_fact("libc", libc[0] ? libc : NULL, &first);
    print_key("page_size_bytes", &first);
    printf("%ld", sysconf(_SC_PAGESIZE));
    snprintf(path, sizeof path, "%s/enabled", thp);
    print_bracketed("thp_enabled", path, &first);
    snprintf(path, sizeof path, "%s/defrag", thp);
    print_bracketed("thp_defrag", path, &first);
    snprintf(path, sizeof path, "%s/shmem_enabled", thp);
    print_bracketed("thp_shmem_enabled", path, &first);
    print_int_file("overcommit_memory", "/proc/sys/vm/overcommit_memory", &first);
    print_int_file("nr_hugepages", "/proc/sys/vm/nr_hugepages", &first);
    print_int_file("max_map_count", "/proc/sys/vm/max_map_count", &first);
    print_key("memlock_limit_bytes", &first);
    if (memlock.rlim_cur == RLIM_INFINITY)
        fputs("\"unlimited\"", stdout);
    else
        printf("%llu", (unsigned long long)memlock.rlim_cur);
    print_count_glob("numa_nodes", "/sys/devices/system/node/node[0-9]*", &first);
    print_meminfo_bytes("memory_bytes", mem_text, "MemTotal", &first);
    print_meminfo_bytes("swap_bytes", mem_text, "SwapTotal", &first);
    print_file_dir_facts(count, directories, &first);
    print_allocator_env(&first);
    printf("}, \"facts\": {\"euid\": %ld, \"free_huge_pages\": ", (long)geteuid());
    print_free_huge_pages();
    fputs("}}\n", stdout);
    if (fflush(stdout) != 0)
        system_error("write stdout");
    return 0;
}
