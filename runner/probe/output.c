/*
 * What the probe says: the JSON result on stdout, and on stderr the one line that ends a run
 * that cannot go on (a skip, a failed system call), with its exit status.
 */
#include "probe.h"

/* With threads, several may fail at once (each mlock past the limit, say): the first to
 * fail reports and exits, the others wait for the exit to end them, so stderr gets one line. */
static void claim_last_words(void)
{
    static atomic_flag claimed = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&claimed))
        for (;;)
            pause();
}

/* The machine refuses something the scenario needs: not a failure of the probe, a scenario
 * this machine cannot measure. The Python side records it as skipped, with this reason. */
void skip(const char *format, ...)
{
    claim_last_words();
    va_list args;
    va_start(args, format);
    fputs("probe: skipped: ", stderr);
    vfprintf(stderr, format, args);
    va_end(args);
    fputc('\n', stderr);
    exit(EXIT_SKIPPED);
}

/* A failing system call ends the run: the Python side records the process as failed. */
void system_error(const char *call)
{
    int saved = errno;
    claim_last_words();
    fprintf(stderr, "probe: %s: %s\n", call, strerror(saved));
    exit(EXIT_SYSTEM);
}

/* PROT_EXEC is refused for files on a filesystem mounted noexec (/dev/shm often is) and by
 * some security policies: a scenario this machine cannot measure, not a failure. */
void exec_refused(void)
{
    skip("PROT_EXEC refused (%s): the memory's filesystem is mounted noexec, or a security "
         "policy forbids executable mappings", strerror(errno));
}

/* A child process of the probe (the fork workload's, ipc's peer) ended without its report, or
 * not cleanly. Its own "skipped" or error line is already on stderr; a skip stays a skip. */
void child_failed(const char *who, int status)
{
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIPPED)
        exit(EXIT_SKIPPED);
    if (WIFSIGNALED(status))
        fprintf(stderr, "probe: %s was killed by signal %d\n", who, WTERMSIG(status));
    else
        fprintf(stderr, "probe: %s exited with status %d\n", who, WEXITSTATUS(status));
    exit(EXIT_SYSTEM);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                     */

static void print_json_string_or_null(const char *text)
{
    /* Only names this file produces reach here: no character needs escaping. */
    if (text == NULL)
        fputs("null", stdout);
    else
        printf("\"%s\"", text);
}

void print_result(size_t page, const char *file_fs, const struct iteration_result *results,
                  size_t count)
{
#ifdef __GLIBC__
    const char *libc_name = "glibc", *libc_version = gnu_get_libc_version();
#else
    const char *libc_name = "unknown", *libc_version = NULL;
#endif
    printf("{\"probe_version\": %d, \"libc\": {\"name\": \"%s\", \"version\": ", PROBE_VERSION,
           libc_name);
    print_json_string_or_null(libc_version);
    printf("}, \"page_size_bytes\": %zu, \"file_fs\": ", page);
    print_json_string_or_null(file_fs);
    fputs(", \"iterations\": [", stdout);
    for (size_t i = 0; i < count; i++) {
        const struct iteration_result *r = &results[i];
        printf("%s{\"warmup\": %s, \"rss_before_bytes\": %" PRIu64 ", \"checksum\": %" PRIu64
               ", \"phases\": {",
               i ? ", " : "", r->warmup ? "true" : "false", r->rss_before_bytes, r->checksum);
        for (int p = 0; p < PHASE_COUNT; p++) {
            const struct phase_result *ph = &r->phases[p];
            printf("%s\"%s\": {\"ns\": %" PRIu64 ", \"minor_faults\": %" PRIu64
                   ", \"major_faults\": %" PRIu64 ", \"rss_bytes\": %" PRIu64 "}",
                   p ? ", " : "", PHASE_NAMES[p], ph->ns, ph->minor_faults, ph->major_faults,
                   ph->rss_bytes);
        }
        fputs("}, \"observations\": {", stdout);
        const char *separator = "";
        for (int o = 0; o < OBS_COUNT; o++) {
            if (r->recorded[o]) {
                printf("%s\"%s\": %" PRIu64, separator, OBSERVATION_NAMES[o], r->observed[o]);
                separator = ", ";
            }
        }
        if (r->latency != NULL) {
            print_latency_observations(r->latency, r->latency_clock_ns, separator);
            fputs("}, \"latency\": ", stdout);
            print_latency_buckets(r->latency);
            fputs("}", stdout);
        } else {
            fputs("}}", stdout);
        }
    }
    fputs("]}\n", stdout);
    if (fflush(stdout) != 0)
        system_error("write stdout");
}
