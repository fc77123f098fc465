/*
 * The command line: every option's name and values, parsing, and the combinations the probe
 * refuses. Option names are the Scenario field names of runner/core/parameters.py.
 */
#include "probe.h"

static const char *const BACKING_NAMES[BACKING_COUNT] = {
    "malloc", "calloc", "posix-memalign", "mmap-anon", "mmap-file", "read-file", "memfd", "shm",
    "mmap-hugetlb", "write-file", "pipe", "dev-zero"};
static const char *const ACCESS_NAMES[ACCESS_COUNT] = {
    "none", "write-page", "write-all", "read-page", "read-all", "zero-then-write-all"};
static const char *const SHARING_NAMES[SHARING_COUNT] = {"private", "shared"};
static const char *const PROTECTION_NAMES[PROTECTION_COUNT] = {"read-write", "read", "none",
                                                               "exec"};
const int PROTECTION_BITS[PROTECTION_COUNT] = {PROT_READ | PROT_WRITE, PROT_READ,
                                                      PROT_NONE, PROT_READ | PROT_EXEC};
static const char *const POPULATE_NAMES[POPULATE_COUNT] = {
    "none", "map-populate", "madv-populate-write", "mlock", "mlock-onfault"};
static const char *const ADVICE_NAMES[ADVICE_COUNT] = {
    "none", "sequential", "random", "willneed", "dontneed", "madv-populate-read", "dontfork",
    "wipeonfork"};
const int ADVICE_BITS[ADVICE_COUNT] = {MADV_NORMAL, MADV_SEQUENTIAL, MADV_RANDOM,
                                              MADV_WILLNEED, MADV_DONTNEED, MADV_POPULATE_READ,
                                              MADV_DONTFORK, MADV_WIPEONFORK};
const char *const ADVICE_CALLS[ADVICE_COUNT] = {
    "MADV_NORMAL", "MADV_SEQUENTIAL", "MADV_RANDOM", "MADV_WILLNEED", "MADV_DONTNEED",
    "MADV_POPULATE_READ", "MADV_DONTFORK", "MADV_WIPEONFORK"};
static const char *const THP_NAMES[THP_COUNT] = {"default", "huge", "nohuge"};
static const char *const RELEASE_NAMES[RELEASE_COUNT] = {
    "auto", "free", "munmap", "madv-dontneed", "madv-free", "malloc-trim", "free-but-last",
    "malloc-trim-but-last", "none"};
static const char *const WORKLOAD_NAMES[WORKLOAD_COUNT] = {"cycle", "fork", "resize", "limits",
                                                             "churn", "reuse", "ipc",
                                                             "fragment"};
static const char *const CACHE_NAMES[CACHE_COUNT] = {"warm", "cold"};
static const char *const ORDER_NAMES[ORDER_COUNT] = {"sequential", "random"};
static const char *const SYNC_NAMES[SYNC_COUNT] = {"none", "msync", "fsync"};
static const char *const GROW_NAMES[GROW_COUNT] = {"realloc", "mremap", "copy"};
static const char *const HISTORY_NAMES[HISTORY_COUNT] = {"fresh", "recycled"};
static const char *const HEAP_PAD_NAMES[HEAP_PAD_COUNT] = {"default", "keep"};
static const char *const FILE_ORIGIN_NAMES[FILE_ORIGIN_COUNT] = {"existing", "new"};
static const char *const FILE_LAYOUT_NAMES[FILE_LAYOUT_COUNT] = {"whole", "short", "holes",
                                                                  "truncated"};
static const char *const FILE_OPEN_NAMES[FILE_OPEN_COUNT] = {"once", "per-block"};
static const char *const LATENCY_NAMES[LATENCY_COUNT] = {"off", "histogram"};
static const char *const OPTION_NAMES[OPT_COUNT] = {
    "backing", "size_bytes", "sharing", "protection", "populate", "access", "ops", "file_dir",
    "thp", "release", "workload", "cache", "order", "sync", "grow_method", "grow_factor",
    "check_zero", "threads", "history", "host_warm", "advice", "read_buffer_bytes",
    "write_buffer_bytes", "grow_steps", "touch_grown", "heap_pad", "touch_share_ppm",
    "file_origin", "file_layout", "check_content", "file_open", "noreserve", "keep_every",
    "pause_ms", "latency", "memlock_limit_bytes", "bystanders", "free_pause_ms", "thread_turns",
    "warmup", "iterations"};
void usage_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("probe: ", stderr);
    vfprintf(stderr, format, args);
    va_end(args);
    fputs("\nusage: probe --backing=B --size_bytes=N --sharing=S --protection=P --populate=P"
          " --access=A --ops=N --file_dir=DIR --thp=T --release=R --workload=W --cache=C"
          " --order=O --sync=S --grow_method=G --grow_factor=N --check_zero=0|1 --threads=N"
          " --history=H --host_warm=0|1 --advice=A --read_buffer_bytes=N --write_buffer_bytes=N"
          " --grow_steps=N"
          " --touch_grown=0|1 --heap_pad=P --touch_share_ppm=N --file_origin=O"
          " --file_layout=L --check_content=0|1 --file_open=O --noreserve=0|1 --keep_every=N"
          " --pause_ms=N --latency=L --memlock_limit_bytes=N --bystanders=N --free_pause_ms=N"
          " --warmup=N --iterations=N\n",
          stderr);
    exit(EXIT_USAGE);
}

static int parse_choice(enum option option, const char *text, const char *const *names,
                        int count)
{
    for (int i = 0; i < count; i++)
        if (strcmp(text, names[i]) == 0)
            return i;
    usage_error("--%s=%s is not a known value", OPTION_NAMES[option], text);
}

static size_t parse_count(enum option option, const char *text, size_t minimum)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    /* strtoull accepts "-1" and leading blanks; a count is plain decimal digits only. */
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno == ERANGE || value > SIZE_MAX)
        usage_error("--%s=%s is not a whole number", OPTION_NAMES[option], text);
    if (value < minimum)
        usage_error("--%s must be at least %zu", OPTION_NAMES[option], minimum);
    return (size_t)value;
}

int is_file_backing(enum backing backing)
{
    return backing == BACKING_MMAP_FILE || backing == BACKING_READ_FILE ||
           backing == BACKING_WRITE_FILE;
}

/* Heap backings get their memory from malloc and friends; the others map one block each. */
/* The one buffer read-file reads into, or write-file writes from, chunk by chunk: its size,
 * 0 when the backing has none (whole: a heap block as large as the block instead). */
size_t io_buffer_bytes(const struct scenario *s)
{
    return s->backing == BACKING_READ_FILE    ? s->read_buffer_bytes
           : s->backing == BACKING_WRITE_FILE ? s->write_buffer_bytes
                                              : 0;
}

/* Mapping backings whose private mappings are anonymous memory (MADV_FREE works on them). */
int is_anonymous_backing(enum backing backing)
{
    return backing == BACKING_MMAP_ANON || backing == BACKING_DEV_ZERO;
}

int is_heap_backing(enum backing backing)
{
    return backing == BACKING_MALLOC || backing == BACKING_CALLOC ||
           backing == BACKING_POSIX_MEMALIGN || backing == BACKING_READ_FILE ||
           backing == BACKING_WRITE_FILE;
}

/* ipc: a channel a second, unrelated process opens by name (a shared-memory object or the
 * data file, mapped read-write and plainly on both sides) or a pipe, every byte of each
 * message written, then read by the peer; a pipe carries nothing but ipc's messages. */
static void check_ipc_combination(const struct scenario *s)
{
    if (s->backing == BACKING_PIPE && s->workload != WORKLOAD_IPC)
        usage_error("--backing=pipe needs --workload=ipc");
    if (s->workload != WORKLOAD_IPC)
        return;
    int named = s->backing == BACKING_SHM || s->backing == BACKING_MEMFD ||
                s->backing == BACKING_MMAP_FILE;
    if ((!named && s->backing != BACKING_PIPE) || s->access != ACCESS_WRITE_ALL ||
        s->protection != PROTECTION_READ_WRITE || s->populate != POPULATE_NONE ||
        s->advice != ADVICE_NONE || s->release != RELEASE_MUNMAP || s->cache != CACHE_WARM ||
        (s->backing == BACKING_PIPE && s->sharing != SHARING_PRIVATE))
        usage_error("--workload=ipc needs --backing=shm, memfd, mmap-file or pipe (pipe with "
                    "--sharing=private), --access=write-all, --protection=read-write, "
                    "--populate=none, --advice=none, --release=munmap and --cache=warm");
}

/* touch_share, file_origin, file_layout, check_content and file_open: cycle with one thread,
 * and what each needs so that no timed phase faults past the end of the file, opens a file
 * that is not there or reads one that holds nothing (file_io_conflict in
 * runner/core/file_combinations.py says the same, with what to use instead). */
static void check_file_combination(const struct scenario *s)
{
    int cycle_alone = s->workload == WORKLOAD_CYCLE && s->threads == 1;
    if (!cycle_alone && (s->touch_share_ppm != PPM || s->file_origin != FILE_ORIGIN_EXISTING ||
                         s->file_layout != FILE_LAYOUT_WHOLE || s->check_content ||
                         s->file_open != FILE_OPEN_ONCE))
        usage_error("--touch_share_ppm, --file_origin, --file_layout, --check_content and "
                    "--file_open need --workload=cycle --threads=1");
    if (s->touch_share_ppm != PPM && s->access == ACCESS_NONE && io_buffer_bytes(s) == 0)
        usage_error("--touch_share_ppm below %d needs an access that visits pages", PPM);
    if (s->file_origin == FILE_ORIGIN_NEW &&
        ((s->backing != BACKING_MMAP_FILE && s->backing != BACKING_WRITE_FILE) ||
         s->cache != CACHE_WARM || s->file_open != FILE_OPEN_ONCE))
        usage_error("--file_origin=new needs --backing=mmap-file or write-file, --cache=warm "
                    "and --file_open=once");
    int reading = s->access == ACCESS_NONE || s->access == ACCESS_READ_PAGE ||
                  s->access == ACCESS_READ_ALL;
    if (s->check_content && (s->backing != BACKING_MMAP_FILE || !reading ||
                             s->file_origin != FILE_ORIGIN_EXISTING ||
                             s->protection == PROTECTION_NONE))
        usage_error("--check_content=1 needs --backing=mmap-file, --access=none, read-page or "
                    "read-all, --file_origin=existing and a readable --protection");
    if (s->file_layout != FILE_LAYOUT_WHOLE &&
        (s->backing != BACKING_MMAP_FILE || s->file_origin != FILE_ORIGIN_EXISTING ||
         !s->check_content || s->size_bytes < 2 * (size_t)sysconf(_SC_PAGESIZE)))
        usage_error("--file_layout=%s needs --backing=mmap-file, --file_origin=existing, "
                    "--check_content=1 and blocks of at least two pages",
                    FILE_LAYOUT_NAMES[s->file_layout]);
    if ((s->file_layout == FILE_LAYOUT_SHORT || s->file_layout == FILE_LAYOUT_TRUNCATED) &&
        (s->access != ACCESS_NONE || s->populate != POPULATE_NONE ||
         s->advice == ADVICE_POPULATE_READ))
        usage_error("--file_layout=%s leaves pages past the end of the file: it needs "
                    "--access=none, --populate=none and no --advice=madv-populate-read",
                    FILE_LAYOUT_NAMES[s->file_layout]);
    if (s->file_open == FILE_OPEN_PER_BLOCK &&
        ((s->backing != BACKING_MMAP_FILE && s->backing != BACKING_READ_FILE) ||
         s->sync == SYNC_FSYNC ||
         (s->backing == BACKING_READ_FILE &&
          (s->order != ORDER_SEQUENTIAL || s->touch_share_ppm != PPM))))
        usage_error("--file_open=per-block needs --backing=mmap-file (without --sync=fsync) or "
                    "read-file (with --order=sequential and --touch_share_ppm=%d)", PPM);
}

/* What history recycled, workload limits and host_warm could not do: write a pattern into
 * memory that forbids it or into the data file, recycle with threads (each has its own arena),
 * or map-until-refused anything but untouched mmap-anon or mmap-file blocks. */
static void check_new_combination(const struct scenario *s)
{
    if (s->history == HISTORY_RECYCLED &&
        (s->workload != WORKLOAD_CYCLE || s->threads != 1 || is_file_backing(s->backing) ||
         s->protection != PROTECTION_READ_WRITE))
        usage_error("--history=recycled needs --workload=cycle --threads=1, a backing without a "
                    "file and --protection=read-write");
    /* churn releases every block right after touching it: the release must end it. */
    if (s->workload == WORKLOAD_CHURN &&
        ((s->release != RELEASE_FREE && s->release != RELEASE_MALLOC_TRIM &&
          s->release != RELEASE_MUNMAP) ||
         (s->backing == BACKING_POSIX_MEMALIGN && s->protection != PROTECTION_READ_WRITE)))
        usage_error("--workload=churn needs --release=free, malloc-trim or munmap, and "
                    "--protection=read-write for --backing=posix-memalign");
    /* reuse writes the blocks again after madvise released them: only madvise keeps the
     * mappings, and MADV_FREE works on private anonymous memory alone. */
    if (s->workload == WORKLOAD_REUSE &&
        ((s->release != RELEASE_MADV_DONTNEED && s->release != RELEASE_MADV_FREE) ||
         !is_anonymous_backing(s->backing) || s->sharing != SHARING_PRIVATE ||
         s->threads != 1 || s->protection != PROTECTION_READ_WRITE))
        usage_error("--workload=reuse needs --release=madv-dontneed or madv-free, "
                    "--backing=mmap-anon or dev-zero, --sharing=private --threads=1 "
                    "--protection=read-write");
    /* fragment replaces malloc'd blocks of sizes it draws from 16 bytes up, written so that
     * they are resident */
    if (s->workload == WORKLOAD_FRAGMENT &&
        ((s->backing != BACKING_MALLOC && s->backing != BACKING_CALLOC) ||
         !is_writing_access(s->access) || s->size_bytes < 16 ||
         (s->release != RELEASE_FREE && s->release != RELEASE_MALLOC_TRIM)))
        usage_error("--workload=fragment needs --backing=malloc or calloc, an --access that "
                    "writes, --size_bytes of at least 16 and --release=free or malloc-trim");
    if (s->thread_turns && s->workload != WORKLOAD_FRAGMENT)
        usage_error("--thread_turns=1 needs --workload=fragment");
    check_ipc_combination(s);
    if (s->heap_pad == HEAP_PAD_KEEP &&
        (!is_heap_backing(s->backing) || s->threads != 1 ||
         (s->workload != WORKLOAD_CYCLE && s->workload != WORKLOAD_CHURN) ||
         s->release == RELEASE_MALLOC_TRIM || s->release == RELEASE_MALLOC_TRIM_BUT_LAST ||
         io_buffer_bytes(s) != 0))
        usage_error("--heap_pad=keep needs a heap backing with blocks, --workload=cycle or "
                    "churn, --threads=1 and a release that does not call malloc_trim");
    check_file_combination(s);
    if (s->workload != WORKLOAD_LIMITS)
        return;
    if ((s->backing != BACKING_MMAP_ANON && s->backing != BACKING_MMAP_FILE) ||
        s->access != ACCESS_NONE || s->populate != POPULATE_NONE ||
        s->protection != PROTECTION_READ_WRITE || s->thp != THP_DEFAULT ||
        s->release != RELEASE_MUNMAP || s->cache != CACHE_WARM || s->host_warm)
        usage_error("--workload=limits needs --backing=mmap-anon or mmap-file, --access=none, "
                    "--populate=none, --protection=read-write, --thp=default, --release=munmap, "
                    "--cache=warm and --host_warm=0");
}

/* runner/core/parameters.py refuses every combination that makes no sense; the probe refuses those
 * that would make it hand heap memory to munmap or mremap (or the reverse), flush what it
 * never wrote, or share out what threads cannot share. */
void check_combination(struct scenario *s)
{
    int heap = is_heap_backing(s->backing);
    if (s->release == RELEASE_AUTO)
        s->release = heap ? RELEASE_FREE : RELEASE_MUNMAP;
    int keeps_last = s->release == RELEASE_FREE_BUT_LAST ||
                     s->release == RELEASE_MALLOC_TRIM_BUT_LAST;
    int heap_release = s->release == RELEASE_FREE || s->release == RELEASE_MALLOC_TRIM ||
                       keeps_last;
    if (s->release != RELEASE_NONE && heap != heap_release)
        usage_error("--release=%s does not apply to --backing=%s", RELEASE_NAMES[s->release],
                    BACKING_NAMES[s->backing]);
    if (keeps_last && s->workload != WORKLOAD_CYCLE)
        usage_error("--release=%s needs --workload=cycle", RELEASE_NAMES[s->release]);
    if (s->noreserve && heap)
        usage_error("--noreserve=1 applies to mapping backings only");
    if (s->keep_every != 0 &&
        (!heap || io_buffer_bytes(s) != 0 ||
         (s->workload != WORKLOAD_CYCLE && s->workload != WORKLOAD_FRAGMENT) ||
         (s->release != RELEASE_FREE && s->release != RELEASE_MALLOC_TRIM)))
        usage_error("--keep_every above 0 needs a heap backing with blocks, --workload=cycle "
                    "or fragment, and --release=free or malloc-trim");
    if (s->pause_ms != 0 && s->workload != WORKLOAD_CYCLE)
        usage_error("--pause_ms above 0 needs --workload=cycle");
    /* free_pause_ms watches what the allocator gives back of the blocks free gave it; the
     * calls after the pause are the main thread's, which tick its arena alone. */
    if (s->free_pause_ms != 0 &&
        (!heap || io_buffer_bytes(s) != 0 || s->workload != WORKLOAD_CYCLE ||
         s->release == RELEASE_NONE || s->threads != 1))
        usage_error("--free_pause_ms above 0 needs a heap backing with blocks, --workload=cycle, "
                    "a release that frees (not --release=none) and --threads=1");
    if (s->memlock_limit_bytes != 0 && s->populate != POPULATE_MLOCK &&
        s->populate != POPULATE_MLOCK_ONFAULT)
        usage_error("--memlock_limit_bytes above 0 needs --populate=mlock or mlock-onfault");
    if (s->bystanders > MAX_THREADS ||
        (s->bystanders != 0 && s->workload != WORKLOAD_CYCLE && s->workload != WORKLOAD_CHURN))
        usage_error("--bystanders must be at most %d, and above 0 needs --workload=cycle or "
                    "churn", MAX_THREADS);
    /* cycle: the first write of each page, one by one: one byte per page (write-page), in
     * order, every page, by one thread, into memory without a data file. */
    if (s->latency != LATENCY_OFF && s->workload != WORKLOAD_CHURN &&
        (s->workload != WORKLOAD_CYCLE || s->access != ACCESS_WRITE_PAGE ||
         s->order != ORDER_SEQUENTIAL || s->touch_share_ppm != PPM || s->threads != 1 ||
         is_file_backing(s->backing)))
        usage_error("--latency=histogram needs --workload=churn, or --workload=cycle with "
                    "--access=write-page, --order=sequential, --touch_share_ppm=%d, "
                    "--threads=1 and a backing without a data file", PPM);
    if (s->thp != THP_DEFAULT && s->backing != BACKING_MMAP_ANON)
        usage_error("--thp=%s applies to --backing=mmap-anon only", THP_NAMES[s->thp]);
    if (s->workload == WORKLOAD_RESIZE) {
        int anon = s->backing == BACKING_MMAP_ANON;
        if ((s->grow_method == GROW_REALLOC && !heap) ||
            (s->grow_method == GROW_MREMAP && !anon) ||
            (s->grow_method == GROW_COPY && !heap && !anon))
            usage_error("--grow_method=%s does not apply to --backing=%s",
                        GROW_NAMES[s->grow_method], BACKING_NAMES[s->backing]);
    }
    if (s->workload != WORKLOAD_CYCLE && (s->order != ORDER_SEQUENTIAL || s->sync != SYNC_NONE ||
                                          s->check_zero || s->backing == BACKING_WRITE_FILE))
        usage_error("--workload=%s takes none of --order, --sync, --check_zero and "
                    "--backing=write-file", WORKLOAD_NAMES[s->workload]);
    /* cycle's threads share the blocks; churn's run pairs of their own, which for a file
     * backing would be the same blocks of the one data file; fragment's keep slots of their
     * own. */
    if (s->threads != 1 && s->workload != WORKLOAD_CYCLE && s->workload != WORKLOAD_FRAGMENT &&
        (s->workload != WORKLOAD_CHURN || is_file_backing(s->backing)))
        usage_error("--threads above 1 needs --workload=cycle or fragment, or --workload=churn "
                    "with a backing without a data file");
    if (s->sync == SYNC_MSYNC && (s->backing != BACKING_MMAP_FILE || s->sharing != SHARING_SHARED))
        usage_error("--sync=msync needs --backing=mmap-file --sharing=shared");
    if (s->sync == SYNC_FSYNC && s->backing != BACKING_WRITE_FILE &&
        (s->backing != BACKING_MMAP_FILE || s->sharing != SHARING_SHARED))
        usage_error("--sync=fsync needs --backing=write-file or mmap-file --sharing=shared");
    if (s->cache == CACHE_COLD && !is_file_backing(s->backing))
        usage_error("--cache=cold needs a file backing");
    if (s->threads > MAX_THREADS || (s->workload == WORKLOAD_CYCLE && s->threads > s->ops))
        usage_error("--threads must be at most %d, and for --workload=cycle at most --ops",
                    MAX_THREADS);
    if (s->threads > 1 && (s->order != ORDER_SEQUENTIAL || s->sync != SYNC_NONE))
        usage_error("--threads above 1 takes neither --order=random nor --sync");
    check_new_combination(s);
    if (s->protection != PROTECTION_READ_WRITE && heap && s->backing != BACKING_POSIX_MEMALIGN)
        usage_error("--protection=%s needs a mapping backing or --backing=posix-memalign",
                    PROTECTION_NAMES[s->protection]);
    if (s->advice != ADVICE_NONE && heap)
        usage_error("--advice=%s applies to mapping backings only", ADVICE_NAMES[s->advice]);
    if (io_buffer_bytes(s) != 0 &&
        (s->workload != WORKLOAD_CYCLE || s->check_zero || s->release != RELEASE_FREE))
        usage_error("--backing=%s with a reused buffer (--%s above 0) needs --workload=cycle, "
                    "--check_zero=0 and --release=free", BACKING_NAMES[s->backing],
                    OPTION_NAMES[s->backing == BACKING_READ_FILE ? OPT_READ_BUFFER_BYTES
                                                                 : OPT_WRITE_BUFFER_BYTES]);
}

/* --read_buffer_bytes, --write_buffer_bytes: 0 (whole) or whole 4 KiB units up to 64 MiB. */
static size_t parse_buffer_bytes(enum option option, const char *const *values)
{
    size_t bytes = parse_count(option, values[option], 0);
    if (bytes != 0 && (bytes % READ_BUFFER_UNIT_BYTES != 0 || bytes > MAX_READ_BUFFER_BYTES))
        usage_error("--%s is 0 (whole) or a multiple of %zu up to %zu", OPTION_NAMES[option],
                    READ_BUFFER_UNIT_BYTES, MAX_READ_BUFFER_BYTES);
    return bytes;
}

/* Every option is required and given once as --name=value: a caller that forgets one gets
 * an error rather than a silently different experiment. */
struct scenario parse_arguments(int argc, char **argv)
{
    const char *values[OPT_COUNT] = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *equals = strchr(arg, '=');
        if (strncmp(arg, "--", 2) != 0 || equals == NULL)
            usage_error("argument '%s' is not of the form --name=value", arg);
        size_t name_length = (size_t)(equals - arg - 2);
        int found = -1;
        for (int option = 0; option < OPT_COUNT; option++)
            if (strlen(OPTION_NAMES[option]) == name_length &&
                strncmp(arg + 2, OPTION_NAMES[option], name_length) == 0)
                found = option;
        if (found < 0)
            usage_error("unknown argument '%s'", arg);
        if (values[found] != NULL)
            usage_error("--%s given twice", OPTION_NAMES[found]);
        values[found] = equals + 1;
    }
    for (int option = 0; option < OPT_COUNT; option++)
        if (values[option] == NULL)
            usage_error("missing argument --%s", OPTION_NAMES[option]);

    struct scenario s;
    s.backing = (enum backing)parse_choice(OPT_BACKING, values[OPT_BACKING], BACKING_NAMES,
                                           BACKING_COUNT);
    s.size_bytes = parse_count(OPT_SIZE_BYTES, values[OPT_SIZE_BYTES], 1);
    s.sharing = (enum sharing)parse_choice(OPT_SHARING, values[OPT_SHARING], SHARING_NAMES,
                                           SHARING_COUNT);
    s.protection = (enum protection)parse_choice(OPT_PROTECTION, values[OPT_PROTECTION],
                                                 PROTECTION_NAMES, PROTECTION_COUNT);
    s.populate = (enum populate)parse_choice(OPT_POPULATE, values[OPT_POPULATE],
                                             POPULATE_NAMES, POPULATE_COUNT);
    s.access = (enum access)parse_choice(OPT_ACCESS, values[OPT_ACCESS], ACCESS_NAMES,
                                         ACCESS_COUNT);
    /* ops 0 means 'auto' in a spec; the runner resolves it before starting the probe. */
    s.ops = parse_count(OPT_OPS, values[OPT_OPS], 1);
    s.file_dir = values[OPT_FILE_DIR];
    s.thp = (enum thp)parse_choice(OPT_THP, values[OPT_THP], THP_NAMES, THP_COUNT);
    s.release = (enum release)parse_choice(OPT_RELEASE, values[OPT_RELEASE], RELEASE_NAMES,
                                           RELEASE_COUNT);
    s.workload = (enum workload)parse_choice(OPT_WORKLOAD, values[OPT_WORKLOAD], WORKLOAD_NAMES,
                                             WORKLOAD_COUNT);
    s.cache = (enum cache)parse_choice(OPT_CACHE, values[OPT_CACHE], CACHE_NAMES, CACHE_COUNT);
    s.order = (enum order)parse_choice(OPT_ORDER, values[OPT_ORDER], ORDER_NAMES, ORDER_COUNT);
    s.sync = (enum sync)parse_choice(OPT_SYNC, values[OPT_SYNC], SYNC_NAMES, SYNC_COUNT);
    s.grow_method = (enum grow)parse_choice(OPT_GROW_METHOD, values[OPT_GROW_METHOD],
                                            GROW_NAMES, GROW_COUNT);
    s.grow_factor = parse_count(OPT_GROW_FACTOR, values[OPT_GROW_FACTOR], 2);
    if (s.grow_factor > MAX_GROW_FACTOR)
        usage_error("--grow_factor must be at most %d", MAX_GROW_FACTOR);
    s.check_zero = (int)parse_count(OPT_CHECK_ZERO, values[OPT_CHECK_ZERO], 0);
    if (s.check_zero > 1)
        usage_error("--check_zero is 0 or 1");
    s.threads = parse_count(OPT_THREADS, values[OPT_THREADS], 1);
    s.history = (enum history)parse_choice(OPT_HISTORY, values[OPT_HISTORY], HISTORY_NAMES,
                                           HISTORY_COUNT);
    s.host_warm = (int)parse_count(OPT_HOST_WARM, values[OPT_HOST_WARM], 0);
    if (s.host_warm > 1)
        usage_error("--host_warm is 0 or 1");
    s.advice = (enum advice)parse_choice(OPT_ADVICE, values[OPT_ADVICE], ADVICE_NAMES,
                                         ADVICE_COUNT);
    s.read_buffer_bytes = parse_buffer_bytes(OPT_READ_BUFFER_BYTES, values);
    s.write_buffer_bytes = parse_buffer_bytes(OPT_WRITE_BUFFER_BYTES, values);
    s.grow_steps = parse_count(OPT_GROW_STEPS, values[OPT_GROW_STEPS], 1);
    if (s.grow_steps > MAX_GROW_STEPS)
        usage_error("--grow_steps must be at most %d", MAX_GROW_STEPS);
    s.touch_grown = (int)parse_count(OPT_TOUCH_GROWN, values[OPT_TOUCH_GROWN], 0);
    if (s.touch_grown > 1)
        usage_error("--touch_grown is 0 or 1");
    s.heap_pad = (enum heap_pad)parse_choice(OPT_HEAP_PAD, values[OPT_HEAP_PAD], HEAP_PAD_NAMES,
                                             HEAP_PAD_COUNT);
    s.touch_share_ppm = parse_count(OPT_TOUCH_SHARE_PPM, values[OPT_TOUCH_SHARE_PPM], 1);
    if (s.touch_share_ppm > PPM)
        usage_error("--touch_share_ppm must be at most %d (all of them)", PPM);
    s.file_origin = (enum file_origin)parse_choice(OPT_FILE_ORIGIN, values[OPT_FILE_ORIGIN],
                                                   FILE_ORIGIN_NAMES, FILE_ORIGIN_COUNT);
    s.file_layout = (enum file_layout)parse_choice(OPT_FILE_LAYOUT, values[OPT_FILE_LAYOUT],
                                                   FILE_LAYOUT_NAMES, FILE_LAYOUT_COUNT);
    s.check_content = (int)parse_count(OPT_CHECK_CONTENT, values[OPT_CHECK_CONTENT], 0);
    if (s.check_content > 1)
        usage_error("--check_content is 0 or 1");
    s.file_open = (enum file_open)parse_choice(OPT_FILE_OPEN, values[OPT_FILE_OPEN],
                                               FILE_OPEN_NAMES, FILE_OPEN_COUNT);
    s.noreserve = (int)parse_count(OPT_NORESERVE, values[OPT_NORESERVE], 0);
    if (s.noreserve > 1)
        usage_error("--noreserve is 0 or 1");
    s.keep_every = parse_count(OPT_KEEP_EVERY, values[OPT_KEEP_EVERY], 0);
    s.pause_ms = parse_count(OPT_PAUSE_MS, values[OPT_PAUSE_MS], 0);
    s.memlock_limit_bytes = parse_count(OPT_MEMLOCK_LIMIT_BYTES, values[OPT_MEMLOCK_LIMIT_BYTES], 0);
    s.bystanders = parse_count(OPT_BYSTANDERS, values[OPT_BYSTANDERS], 0);
    s.free_pause_ms = parse_count(OPT_FREE_PAUSE_MS, values[OPT_FREE_PAUSE_MS], 0);
    s.thread_turns = (int)parse_count(OPT_THREAD_TURNS, values[OPT_THREAD_TURNS], 0);
    if (s.thread_turns > 1)
        usage_error("--thread_turns is 0 or 1");
    if (s.pause_ms > MAX_PAUSE_MS || s.free_pause_ms > MAX_PAUSE_MS)
        usage_error("--pause_ms and --free_pause_ms must be at most %d", MAX_PAUSE_MS);
    s.latency = (enum latency)parse_choice(OPT_LATENCY, values[OPT_LATENCY], LATENCY_NAMES,
                                           LATENCY_COUNT);
    s.warmup = parse_count(OPT_WARMUP, values[OPT_WARMUP], 0);
    s.iterations = parse_count(OPT_ITERATIONS, values[OPT_ITERATIONS], 1);
    if (s.warmup > SIZE_MAX / 2 || s.iterations > SIZE_MAX / 2)
        usage_error("too many iterations");
    check_combination(&s);
    return s;
}

