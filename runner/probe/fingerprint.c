/*
 * --fingerprint [DIR...]: the machine facts of runner/machine.py's FACTS that the machine
 * itself holds (CPU, kernel, libc, THP, overcommit, memory, limits, the filesystems of DIRs,
 * the allocator variables in the probe's environment, the boot id), printed as one JSON
 * object on stdout, read the way runner/machine.py reads them locally. On another machine
 * reached over SSH this is the only way alloclab reads it: no Python is needed there.
 *
 * Output: {"probe_version": N, "fingerprint": {<fact>: value}, "facts": {"euid": n,
 * "free_huge_pages": n or null}}; "facts" are what runner/preconditions.py checks besides.
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

/* The CPU flags sorted by name and joined by spaces, as runner/machine.py records them. */
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

/* The type of the filesystem holding `directory`: the longest mount point prefix wins, a
 * later line on the same mount point (mounted over the earlier) wins a tie. */
static void print_filesystem(const char *directory, const char *mountinfo)
{
    char path[PATH_MAX];
    if (realpath(directory, path) == NULL)
        snprintf(path, sizeof path, "%s", directory);
    size_t best_length = 0;
    int found = 0;
    char best_type[64] = "";
    const char *line = mountinfo;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t length = end ? (size_t)(end - line) : strlen(line);
        char copy[4096];
        if (length < sizeof copy) {
            memcpy(copy, line, length);
            copy[length] = '\0';
            char *separator = strstr(copy, " - ");
            char *fields[5] = {0};
            char *save = NULL;
            char *word = strtok_r(copy, " ", &save);
            for (int i = 0; i < 5 && word; i++, word = strtok_r(NULL, " ", &save))
                fields[i] = word;
            if (separator && fields[4] && fields[4] < separator) {
                char type[64];
                sscanf(separator + 3, "%63s", type);
                unescape_mount(fields[4]);
                size_t mount_length = strlen(fields[4]);
                size_t trimmed = mount_length;
                while (trimmed > 0 && fields[4][trimmed - 1] == '/')
                    trimmed--;
                int inside = strcmp(path, fields[4]) == 0 ||
                             (strncmp(path, fields[4], trimmed) == 0 && path[trimmed] == '/');
                if (inside && (!found || mount_length >= best_length)) {
                    found = 1;
                    best_length = mount_length;
                    snprintf(best_type, sizeof best_type, "%s", type);
                }
            }
        }
        line = end ? end + 1 : NULL;
    }
    print_string(found ? best_type : NULL);
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

static void print_file_fs(int count, char **directories, int *first)
{
    static char mountinfo[1 << 20];
    char *text = read_text("/proc/self/mountinfo", mountinfo, sizeof mountinfo);
    print_key("file_fs", first);
    putchar('{');
    for (int i = 0; i < count; i++) {
        fputs(i ? ", " : "", stdout);
        print_string(directories[i]);
        fputs(": ", stdout);
        print_filesystem(directories[i], text ? text : "");
    }
    putchar('}');
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
    print_file_fs(count, directories, &first);
    print_allocator_env(&first);
    printf("}, \"facts\": {\"euid\": %ld, \"free_huge_pages\": ", (long)geteuid());
    print_free_huge_pages();
    fputs("}}\n", stdout);
    if (fflush(stdout) != 0)
        system_error("write stdout");
    return 0;
}
