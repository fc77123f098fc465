/*
 * The fork workload: the parent writes, forks, the child writes over the shared data.
 */
#include "probe.h"

/* What the forked child sends back through its pipe. */
struct child_report {
    struct phase_result write; /* its write over every block: the second_pass slot */
    uint64_t pss_bytes;
    uint64_t pte_bytes; /* its page tables (VmPTE) right after fork, before its write */
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
    /* What fork copied: page table entries of private memory with pages in it; none of
     * shared mappings (faulted in on use), of MADV_DONTFORK'd blocks (not mapped here) or of
     * MADV_WIPEONFORK'd ones (empty here). */
    report.pte_bytes = page_table_bytes();
    struct phase_start start;
    start_phase(&start);
    /* A MADV_DONTFORK'd block is not mapped in the child: writing it would kill the child. */
    if (s->advice != ADVICE_DONTFORK)
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

/* What a checking child found in the blocks, as the bits of its exit status above
 * CHILD_VIEW_BASE (any other status is a failure): it read the parent's `value` everywhere;
 * it read 0 everywhere (MADV_WIPEONFORK); reading the first byte of a block raised SIGSEGV
 * (MADV_DONTFORK: the block is not mapped in a child), after which it reads nothing more. */
#define CHILD_VIEW_BASE 64
#define CHILD_SEES_PARENT 1
#define CHILD_READS_ZERO 2
#define CHILD_READ_FAULTED 4

static int child_view(const struct blocks *b, const struct scenario *s, unsigned char value)
{
    for (size_t i = 0; i < b->ops; i++)
        if (read_raises(b->at[i], SIGSEGV))
            return CHILD_READ_FAULTED;
    return (blocks_hold(b, s, b->page_bytes, value) ? CHILD_SEES_PARENT : 0) |
           (blocks_hold(b, s, b->page_bytes, 0) ? CHILD_READS_ZERO : 0);
}

/* What a child forked now sees in the blocks holding `value` (child_view's bits): a child
 * that only reads them and answers by its exit status, so that the timed child never reads
 * before it writes. */
static int check_in_child(const struct blocks *b, const struct scenario *s, unsigned char value)
{
    pid_t child = fork();
    if (child < 0)
        system_error("fork");
    if (child == 0)
        _exit(CHILD_VIEW_BASE + child_view(b, s, value));
    int status;
    if (waitpid(child, &status, 0) != child)
        system_error("waitpid");
    int view = WIFEXITED(status) ? WEXITSTATUS(status) - CHILD_VIEW_BASE : -1;
    if (view < 0 || view > (CHILD_SEES_PARENT | CHILD_READS_ZERO | CHILD_READ_FAULTED))
        child_failed("the forked child", status);
    return view;
}

static void observe_child_view(struct iteration_result *out, int view)
{
    observe(out, OBS_CHILD_SEES_PARENT, (view & CHILD_SEES_PARENT) != 0);
    observe(out, OBS_CHILD_READS_ZERO, (view & CHILD_READS_ZERO) != 0);
    observe(out, OBS_CHILD_READ_FAULTED, (view & CHILD_READ_FAULTED) != 0);
}

/* fork: the parent writes, forks; the child writes (run_child); the parent checks whether it
 * sees the child's write, then waits for it and frees. With advice dontfork or wipeonfork the
 * madvise came in allocate, so the timed fork is the one that leaves those blocks out or
 * empty. Whether a child sees the parent's data
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
        observe_child_view(out, check_in_child(b, s, value));

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
    observe(out, OBS_CHILD_PTE_BYTES, report.pte_bytes);
    observe(out, OBS_PARENT_PSS_BYTES, pss_bytes());
    observe(out, OBS_PARENT_SEES_CHILD, blocks_hold(b, s, page, (unsigned char)(value + 1)));
    if (!shared)
        observe_child_view(out, check_in_child(b, s, value));
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

