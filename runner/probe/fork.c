/*
 * The fork workload: the parent writes, forks, the child writes over the shared data.
 */
#include "probe.h"

/* What the forked child sends back through its pipe. */
struct child_report {
    struct phase_result write; /* its write over every block: the second_pass slot */
    uint64_t pss_bytes;
};

/* fork, the child's part: write over the parent's data first thing (timed: its page faults,
 * copy-on-write for private memory), report, and stay until the parent has measured (it
 * closes the release pipe), so both PSS figures are taken while both processes map the
 * memory. The child reads nothing before its write: fork copies no page table entries of
 * shared mappings, so a read first would fault the pages in and the timed write would find
 * them mapped. Whether a child sees the parent's data is asked of another child
 * (check_in_child). */
static void run_child(const struct blocks *b, const struct scenario *s,
                      unsigned char parent_value, const int report_pipe[2],
                      const int release_pipe[2]) __attribute__((noreturn));

static void run_child(const struct blocks *b, const struct scenario *s,
                      unsigned char parent_value, const int report_pipe[2],
                      const int release_pipe[2])
{
    /* The parent's ends: with the write end of the release pipe open here too, the read
     * below would never see the end of the file. */
    close(report_pipe[0]);
    close(release_pipe[1]);
    forget_statm();
    int report_fd = report_pipe[1], release_fd = release_pipe[0];
    size_t page = b->page_bytes;
    struct child_report report;
    struct phase_start start;
    start_phase(&start);
    apply_access(b, s, page, (unsigned char)(parent_value + 1));
    stop_phase(&start, page, &report.write);
    report.pss_bytes = pss_bytes();
    write_fully(report_fd, (const unsigned char *)&report, sizeof report);
    char byte;
    while (read(release_fd, &byte, 1) < 0 && errno == EINTR)
        continue;
    _exit(0);
}

static void read_report(int fd, pid_t child, struct child_report *report)
{
    if (read_exactly(fd, (unsigned char *)report, sizeof *report,
                     "read (the forked child's report)"))
        return;
    int status;
    if (waitpid(child, &status, 0) != child)
        system_error("waitpid");
    child_failed("the forked child", status);
}

/* Whether a child forked now sees the blocks holding `value`: a child that only reads them
 * and answers by its exit status, so that the timed child never reads before it writes. */
static uint64_t check_in_child(const struct blocks *b, const struct scenario *s,
                               unsigned char value)
{
    pid_t child = fork();
    if (child < 0)
        system_error("fork");
    if (child == 0)
        _exit(blocks_hold(b, s, b->page_bytes, value) ? 0 : 1);
    int status;
    if (waitpid(child, &status, 0) != child)
        system_error("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
        child_failed("the forked child", status);
    return WEXITSTATUS(status) == 0;
}

/* fork: the parent writes, forks; the child writes (run_child); the parent checks whether it
 * sees the child's write, then waits for it and frees. Whether a child sees the parent's data
 * (child_sees_parent) is checked by a second child, untimed: for shared memory before the
 * timed fork, as fork copies nothing of shared mappings and the timed fork does the same
 * work either way (after it, the memory holds the child's write); for private memory after
 * the timed child has written, as the parent's copy is still its own, and a fork before would
 * write-protect the parent's page table entries for the timed fork. */
void run_fork(const struct context *c, const struct scenario *s, unsigned char value,
              struct iteration_result *out)
{
    const struct blocks *b = &c->blocks;
    size_t page = b->page_bytes;
    int report_pipe[2], release_pipe[2];
    if (pipe2(report_pipe, O_CLOEXEC) != 0 || pipe2(release_pipe, O_CLOEXEC) != 0)
        system_error("pipe2");
    struct phase_start start;
    out->rss_before_bytes = resident_bytes(page);
    int shared = s->sharing == SHARING_SHARED && !is_heap_backing(s->backing);

    start_phase(&start);
    allocate_blocks(b, s);
    apply_access(b, s, page, value);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    observe(out, OBS_ALIGNMENT_BYTES, block_alignment(b));
    if (shared)
        observe(out, OBS_CHILD_SEES_PARENT, check_in_child(b, s, value));

    start_phase(&start);
    pid_t child = fork();
    if (child == 0)
        run_child(b, s, value, report_pipe, release_pipe);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);
    if (child < 0)
        system_error("fork");
    close(report_pipe[1]);
    close(release_pipe[0]);

    struct child_report report;
    read_report(report_pipe[0], child, &report);
    out->phases[PHASE_SECOND_PASS] = report.write;
    out->phases[PHASE_SECOND_PASS].rss_bytes = resident_bytes(page); /* the parent's */
    observe(out, OBS_CHILD_PSS_BYTES, report.pss_bytes);
    observe(out, OBS_PARENT_PSS_BYTES, pss_bytes());
    observe(out, OBS_PARENT_SEES_CHILD, blocks_hold(b, s, page, (unsigned char)(value + 1)));
    if (!shared)
        observe(out, OBS_CHILD_SEES_PARENT, check_in_child(b, s, value));
    close(report_pipe[0]);
    close(release_pipe[1]); /* the child may exit now */

    int status;
    start_phase(&start);
    pid_t waited = waitpid(child, &status, 0);
    release_blocks(b, s);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);
    if (waited != child)
        system_error("waitpid");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        child_failed("the forked child", status);
    finish_release(b, s);
    out->checksum = 0;
}

