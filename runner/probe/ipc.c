/*
 * The ipc workload: messages from the probe (the writer) to a second process (the peer),
 * through shared memory both map by name, or through a pipe.
 *
 * The peer is a fresh image of the probe (/proc/self/exe, the same arguments plus
 * IPC_PEER_ARGUMENT, which only the probe passes), started once before the first iteration,
 * untimed. exec drops every mapping, so the peer shares no memory with the writer by
 * inheritance, as two unrelated programs would not: it reaches each channel the way such a
 * program does, by shm_open's name, or by a path, /proc/<writer>/fd/<n> (a memfd, the data
 * file, a pipe's ends). The writer gives it orders on its stdin and reads its replies on its
 * stdout; it dies with the probe (tie_to_probe).
 *
 * A shared-memory channel is one object: a control page at its start, holding the futex words
 * that post a message and acknowledge it, and the message after it, page-aligned. The control
 * page is always mapped shared; the message as `sharing` says, so that with private mappings
 * the peer never sees the writer's bytes (it still acknowledges every message).
 * A pipe channel is two pipes, the message one way in chunks and a byte of acknowledgement
 * back, each side with a message buffer of its own, as lmbench's bw_pipe and lat_pipe do.
 */
#include "probe.h"

#include <linux/futex.h>
#include <sys/syscall.h>

const char IPC_PEER_ARGUMENT[] = "--ipc_peer";

/* A pipe message is written and read in chunks of at most this: the capacity of a Linux pipe
 * (16 pages) and lmbench's transfer size. */
#define PIPE_CHUNK_BYTES ((size_t)64 << 10)

/* How long a waiter sleeps before it checks that the other process still lives. */
#define WAIT_CHECK_S 1

/* The control page's words, each direction on a cache line of its own: the number of the
 * last message posted or acknowledged (messages count from 1 in each iteration), and whether
 * its waiter is asleep, so that posting calls FUTEX_WAKE only when someone sleeps. */
struct ipc_control {
    _Alignas(64) atomic_uint posted;
    atomic_uint peer_sleeping;
    _Alignas(64) atomic_uint acknowledged;
    atomic_uint writer_sleeping;
};

/* One side's view of a channel. */
struct channel {
    struct ipc_control *control; /* shared memory: the control page; NULL for a pipe */
    size_t control_map_bytes;    /* its mapping: with the message after it when shared */
    unsigned char *message;
    size_t message_map_bytes; /* the message's own mapping (private, or a pipe side's buffer),
                                 else 0 */
    int out_fd, in_fd;        /* pipe: where this side writes and reads; -1 otherwise */
};

enum order_kind { ORDER_OPEN = 1, ORDER_CLOSE = 2 };

/* The writer's orders to the peer, one per write (smaller than PIPE_BUF: atomic). */
struct ipc_order {
    uint32_t kind;
    uint32_t value;  /* the iteration's: every message's bytes follow from it */
    int32_t pid;     /* the writer's, for /proc/<pid>/fd/<n> */
    int32_t fds[2];  /* the writer's descriptors the peer opens: the object (memfd, data file),
                        or a pipe's data read end and acknowledgement write end */
    char name[64];   /* shm: the object's name */
};

/* The peer's replies: after it opened the channel (allocate_ns), and after it closed it. */
struct ipc_reply {
    uint64_t allocate_ns;      /* its open and map of the channel */
    uint64_t minor_faults[2];  /* its page faults over each touching phase's messages */
    uint64_t checksum;         /* the sum of every message it read */
    uint64_t sees_writes;      /* 1 when every message's sum was that of the bytes written */
};

/* Message k's byte: never 0 (what fresh shared memory holds), and never that of message k-1,
 * so a stale message reads back wrong. */
static unsigned char message_byte(unsigned char value, unsigned k)
{
    return (unsigned char)(1 + ((unsigned)value + k) % 255);
}

/* What sum_words returns for `size` bytes of `byte`. */
static uint64_t expected_sum(size_t size, unsigned char byte)
{
    uint64_t word = byte * UINT64_C(0x0101010101010101);
    return (uint64_t)(size / sizeof word) * word + (uint64_t)(size % sizeof word) * byte;
}

/* The writer found its peer gone: why, from its exit status. */
static void peer_ended(pid_t peer) __attribute__((noreturn));

static void peer_ended(pid_t peer)
{
    int status;
    if (waitpid(peer, &status, 0) != peer)
        system_error("waitpid (the ipc peer)");
    child_failed("the ipc peer", status);
}

/* Returns once *word is no longer `old`, sleeping in FUTEX_WAIT (shared, not private: the word
 * is in memory two processes map) from the start: no spinning first. On this 2-vCPU machine
 * the scheduler mostly runs writer and peer on one CPU, where a spin only delays the other:
 * 64 checks a pause apart made a 4 KiB message take 8 us instead of 3.7, 1024 checks 130-160
 * us (0.4 us only when the two happened to run on different CPUs). `sleeping` tells the
 * poster to wake us; it is set before the word is read again, and the poster writes the word
 * before it reads `sleeping`, both sequentially consistent, so one of the two sees the other's
 * store: no wake-up is lost. `other`: the process to check on when a wait times out (0: none). */
static void await_change(atomic_uint *word, unsigned old, atomic_uint *sleeping, pid_t other)
{
    if (atomic_load_explicit(word, memory_order_acquire) != old)
        return;
    atomic_store(sleeping, 1);
    while (atomic_load(word) == old) {
        struct timespec limit = {.tv_sec = WAIT_CHECK_S};
        if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, old, &limit, NULL, 0) == 0 ||
            errno == EAGAIN || errno == EINTR)
            continue;
        if (errno != ETIMEDOUT)
            system_error("futex(FUTEX_WAIT)");
        int status;
        pid_t ended = other != 0 ? waitpid(other, &status, WNOHANG) : 0;
        if (ended < 0)
            system_error("waitpid (the ipc peer)");
        if (ended > 0)
            child_failed("the ipc peer", status);
    }
    atomic_store_explicit(sleeping, 0, memory_order_relaxed);
}

/* Sets *word to `number`, after every store before it, and wakes a sleeping waiter. */
static void post(atomic_uint *word, unsigned number, atomic_uint *sleeping)
{
    atomic_store(word, number);
    if (atomic_load(sleeping) &&
        syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0) < 0)
        system_error("futex(FUTEX_WAKE)");
}

/* ------------------------------------------------------------------------------------------ */
/* Channels, on either side                                                                    */

/* A shared-memory object (control page, then the message) mapped read-write: whole and shared,
 * or, for sharing private, the control page shared and the message privately. */
static void map_object(struct channel *ch, int fd, const struct scenario *s, size_t page)
{
    int protection = PROT_READ | PROT_WRITE;
    ch->out_fd = ch->in_fd = -1;
    ch->message_map_bytes = 0;
    ch->control_map_bytes = s->sharing == SHARING_SHARED ? page + s->size_bytes : page;
    unsigned char *p = mmap(NULL, ch->control_map_bytes, protection, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        system_error("mmap (the ipc channel)");
    ch->control = (struct ipc_control *)p;
    ch->message = p + page;
    if (s->sharing == SHARING_SHARED)
        return;
    ch->message_map_bytes = s->size_bytes;
    ch->message = mmap(NULL, s->size_bytes, protection, MAP_PRIVATE, fd, (off_t)page);
    if (ch->message == MAP_FAILED)
        system_error("mmap (the ipc message, private)");
}

/* A pipe side's own message buffer, page-aligned and reused by every message. */
static void map_buffer(struct channel *ch, const struct scenario *s)
{
    ch->control = NULL;
    ch->control_map_bytes = 0;
    ch->message_map_bytes = s->size_bytes;
    ch->message = mmap(NULL, s->size_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
    if (ch->message == MAP_FAILED)
        system_error("mmap (the ipc message buffer)");
}

static void close_channel(const struct channel *ch)
{
    if (ch->control != NULL && munmap(ch->control, ch->control_map_bytes) != 0)
        system_error("munmap (the ipc channel)");
    if (ch->message_map_bytes > 0 && munmap(ch->message, ch->message_map_bytes) != 0)
        system_error("munmap (the ipc message)");
    if ((ch->out_fd >= 0 && close(ch->out_fd) != 0) || (ch->in_fd >= 0 && close(ch->in_fd) != 0))
        system_error("close (the ipc pipes)");
}

/* The writer's channel, made in the timed allocate: the object created, sized and mapped (shm,
 * memfd), the data file mapped (mmap-file; made before the first iteration), or two pipes and
 * a buffer. `order` gets what the peer needs to open it. */
static void open_writer_channel(struct channel *ch, const struct context *c,
                                const struct scenario *s, struct ipc_order *order)
{
    size_t page = c->blocks.page_bytes;
    static unsigned serial; /* each iteration's shm object has a name of its own */
    order->pid = (int32_t)getpid();
    order->fds[0] = order->fds[1] = -1;
    int fd = -1;
    switch (s->backing) {
    case BACKING_SHM:
        snprintf(order->name, sizeof order->name, "/alloclab-ipc-%ld-%u", (long)getpid(),
                 serial++);
        fd = shm_open(order->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            system_error("shm_open");
        break;
    case BACKING_MEMFD:
        fd = memfd_create("alloclab-ipc", MFD_CLOEXEC);
        if (fd < 0)
            system_error("memfd_create");
        break;
    case BACKING_MMAP_FILE:
        map_object(ch, c->blocks.fd, s, page);
        order->fds[0] = c->blocks.fd;
        return;
    case BACKING_PIPE: {
        int data[2], acknowledgement[2];
        if (pipe2(data, O_CLOEXEC) != 0 || pipe2(acknowledgement, O_CLOEXEC) != 0)
            system_error("pipe2 (the ipc channel)");
        map_buffer(ch, s);
        ch->out_fd = data[1];
        ch->in_fd = acknowledgement[0];
        order->fds[0] = data[0];
        order->fds[1] = acknowledgement[1];
        return;
    }
    default: /* check_combination refuses every other backing */
        usage_error("--workload=ipc has no channel for this --backing");
    }
    if (ftruncate(fd, (off_t)(page + c->blocks.stride_bytes)) != 0)
        system_error("ftruncate (the ipc channel)");
    map_object(ch, fd, s, page);
    order->fds[0] = fd;
}

/* After the peer opened the channel, untimed: the writer drops what only served to hand it
 * over, so that nothing is left behind by a crash (shm's name), and so that a peer that dies
 * closes its pipes for good (the writer then reads the end of the file, or writes get EPIPE). */
static void release_handover(const struct scenario *s, const struct ipc_order *order)
{
    if (s->backing == BACKING_SHM && shm_unlink(order->name) != 0)
        system_error("shm_unlink");
    if ((s->backing == BACKING_MEMFD || s->backing == BACKING_PIPE) && close(order->fds[0]) != 0)
        system_error("close (the ipc channel's descriptor)");
    if (s->backing == BACKING_PIPE && close(order->fds[1]) != 0)
        system_error("close (the ipc channel's descriptor)");
}

/* A descriptor of the writer, opened anew by its path in /proc. */
static int open_writer_fd(const struct ipc_order *order, int which, int flags)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)order->pid, (int)order->fds[which]);
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        system_error("open (the writer's ipc channel, in /proc)");
    return fd;
}

/* The peer's side of the channel, opened by name or path and mapped. The control page is read
 * once, so its page fault happens here and the peer checks the writer set it up. */
static void open_peer_channel(struct channel *ch, const struct scenario *s,
                              const struct ipc_order *order, size_t page)
{
    if (s->backing == BACKING_PIPE) {
        map_buffer(ch, s);
        ch->in_fd = open_writer_fd(order, 0, O_RDONLY);
        ch->out_fd = open_writer_fd(order, 1, O_WRONLY);
        return;
    }
    int fd = s->backing == BACKING_SHM ? shm_open(order->name, O_RDWR | O_CLOEXEC, 0)
                                       : open_writer_fd(order, 0, O_RDWR);
    if (fd < 0)
        system_error("shm_open (the peer)");
    map_object(ch, fd, s, page);
    if (close(fd) != 0)
        system_error("close");
    if (atomic_load(&ch->control->posted) != 0) {
        errno = EPROTO;
        system_error("the ipc peer found a message posted before any was sent");
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                    */

/* The writer's `ops` messages numbered from `first`: every byte written, posted (or written to
 * the pipe chunk by chunk), and the acknowledgement awaited before the next one. */
static __attribute__((noinline)) void send_messages(const struct channel *ch, size_t ops,
                                                     size_t size, size_t page,
                                                     unsigned char value, unsigned first,
                                                     pid_t peer)
{
    for (size_t i = 0; i < ops; i++) {
        unsigned k = first + (unsigned)i;
        access_range(ch->message, size, 0, page, ACCESS_WRITE_ALL, message_byte(value, k));
        if (ch->control != NULL) {
            post(&ch->control->posted, k, &ch->control->peer_sleeping);
            await_change(&ch->control->acknowledged, k - 1, &ch->control->writer_sleeping,
                         peer);
            continue;
        }
        for (size_t done = 0; done < size;) {
            size_t chunk = size - done < PIPE_CHUNK_BYTES ? size - done : PIPE_CHUNK_BYTES;
            ssize_t written = write(ch->out_fd, ch->message + done, chunk);
            if (written < 0 && errno == EINTR)
                continue;
            if (written < 0 && errno == EPIPE)
                peer_ended(peer);
            if (written < 0)
                system_error("write (the ipc pipe)");
            done += (size_t)written;
        }
        unsigned char acknowledgement;
        if (!read_exactly(ch->in_fd, &acknowledgement, 1, "read (the ipc acknowledgement)"))
            peer_ended(peer);
    }
}

/* The peer's side of send_messages: each message awaited (or read from the pipe chunk by chunk
 * into its buffer), every byte read and summed, the sum checked, and acknowledged. */
static uint64_t receive_messages(const struct channel *ch, size_t ops, size_t size, size_t page,
                                 unsigned char value, unsigned first, uint64_t *sees_writes)
{
    uint64_t checksum = 0;
    for (size_t i = 0; i < ops; i++) {
        unsigned k = first + (unsigned)i;
        if (ch->control != NULL) {
            await_change(&ch->control->posted, k - 1, &ch->control->peer_sleeping, 0);
        } else {
            for (size_t done = 0; done < size;) {
                size_t chunk = size - done < PIPE_CHUNK_BYTES ? size - done : PIPE_CHUNK_BYTES;
                ssize_t got = read(ch->in_fd, ch->message + done, chunk);
                if (got < 0 && errno == EINTR)
                    continue;
                if (got < 0)
                    system_error("read (the ipc pipe)");
                if (got == 0)
                    _exit(EXIT_SYSTEM); /* the writer is gone, and with it the probe */
                done += (size_t)got;
            }
        }
        uint64_t sum = access_range(ch->message, size, 0, page, ACCESS_READ_ALL, 0);
        *sees_writes &= sum == expected_sum(size, message_byte(value, k));
        checksum += sum;
        if (ch->control != NULL) {
            post(&ch->control->acknowledged, k, &ch->control->writer_sleeping);
        } else {
            unsigned char acknowledgement = 1;
            write_fully(ch->out_fd, &acknowledgement, 1);
        }
    }
    return checksum;
}

/* ------------------------------------------------------------------------------------------ */
/* The peer                                                                                    */

static uint64_t minor_faults(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        system_error("getrusage");
    return (uint64_t)usage.ru_minflt;
}

/* The next order, or the end of the peer when the writer closed its end (its last iteration is
 * done, or it died). */
static struct ipc_order read_order(uint32_t kind)
{
    struct ipc_order order;
    if (!read_exactly(STDIN_FILENO, (unsigned char *)&order, sizeof order,
                      "read (the ipc peer's orders)"))
        _exit(kind == ORDER_OPEN ? 0 : EXIT_SYSTEM);
    if (order.kind != kind) {
        errno = EPROTO;
        system_error("the ipc peer's orders came out of turn");
    }
    return order;
}

/* The peer's life, in the fresh image (main, given IPC_PEER_ARGUMENT): per iteration, open the
 * channel it is told of (timed, reported), receive both touching phases' messages, counting
 * its page faults over each, then close the channel when told to and report. */
void run_ipc_peer(const struct scenario *s, size_t page)
{
    for (;;) {
        struct ipc_order order = read_order(ORDER_OPEN);
        struct ipc_reply reply = {.sees_writes = 1};
        struct channel ch;
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        open_peer_channel(&ch, s, &order, page);
        clock_gettime(CLOCK_MONOTONIC, &end);
        reply.allocate_ns = elapsed_ns(&start, &end);
        write_fully(STDOUT_FILENO, (const unsigned char *)&reply, sizeof reply);
        for (unsigned pass = 0; pass < 2; pass++) {
            uint64_t before = minor_faults();
            reply.checksum += receive_messages(&ch, s->ops, s->size_bytes, page,
                                               (unsigned char)order.value,
                                               1 + pass * (unsigned)s->ops, &reply.sees_writes);
            reply.minor_faults[pass] = minor_faults() - before;
        }
        read_order(ORDER_CLOSE);
        close_channel(&ch);
        write_fully(STDOUT_FILENO, (const unsigned char *)&reply, sizeof reply);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The writer                                                                                  */

/* vfork, not fork: the child borrows the probe's memory until its exec, so none of the probe's
 * pages become copy-on-write (after a fork, the probe's next write to each would fault, maybe
 * inside a timed phase). The child only moves its pipes to stdin and stdout and execs. */
static pid_t spawn_peer(char **argv, int order_fd, int reply_fd)
{
    pid_t pid = vfork();
    if (pid == 0) {
        if (dup2(order_fd, STDIN_FILENO) == STDIN_FILENO &&
            dup2(reply_fd, STDOUT_FILENO) == STDOUT_FILENO)
            execv("/proc/self/exe", argv);
        _exit(EXIT_SYSTEM); /* the writer reads no reply, and says how the peer ended */
    }
    if (pid < 0)
        system_error("vfork (the ipc peer)");
    return pid;
}

/* Before the first iteration, untimed: the peer started, with the same arguments and
 * environment plus IPC_PEER_ARGUMENT. SIGPIPE is ignored (by the peer too, across exec), so a
 * write to a pipe whose reader died fails with EPIPE, which says who died, rather than
 * killing the writer. */
struct ipc_peer start_ipc_peer(int argc, char **argv)
{
    char **peer_argv = map_scratch(((size_t)argc + 2) * sizeof *peer_argv);
    for (int i = 0; i < argc; i++)
        peer_argv[i] = argv[i];
    peer_argv[argc] = (char *)IPC_PEER_ARGUMENT;
    int orders[2], replies[2];
    if (pipe2(orders, O_CLOEXEC) != 0 || pipe2(replies, O_CLOEXEC) != 0)
        system_error("pipe2 (the ipc peer)");
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        system_error("signal(SIGPIPE)");
    pid_t pid = spawn_peer(peer_argv, orders[0], replies[1]);
    if (close(orders[0]) != 0 || close(replies[1]) != 0)
        system_error("close");
    return (struct ipc_peer){.pid = pid, .order_fd = orders[1], .reply_fd = replies[0]};
}

/* After the last iteration: the end of its orders ends the peer. */
void stop_ipc_peer(const struct ipc_peer *peer)
{
    if (close(peer->order_fd) != 0)
        system_error("close");
    int status;
    if (waitpid(peer->pid, &status, 0) != peer->pid)
        system_error("waitpid (the ipc peer)");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        child_failed("the ipc peer", status);
    if (close(peer->reply_fd) != 0)
        system_error("close");
}

static void give_order(const struct ipc_peer *peer, struct ipc_order *order, uint32_t kind)
{
    order->kind = kind;
    ssize_t written;
    do
        written = write(peer->order_fd, order, sizeof *order);
    while (written < 0 && errno == EINTR);
    if (written < 0 && errno == EPIPE)
        peer_ended(peer->pid);
    if (written != (ssize_t)sizeof *order)
        system_error("write (the ipc peer's orders)");
}

static struct ipc_reply read_reply(const struct ipc_peer *peer)
{
    struct ipc_reply reply;
    if (!read_exactly(peer->reply_fd, (unsigned char *)&reply, sizeof reply,
                      "read (the ipc peer's reply)"))
        peer_ended(peer->pid);
    return reply;
}

/* ipc: allocate is the writer's channel (created and mapped); the peer opens and maps it in
 * turn, untimed here, timing itself (peer_allocate_ns). first_touch and second_pass send `ops`
 * messages each, every byte written and read, timed from the first write to the last
 * acknowledgement. Then the peer closes its side, untimed, and free is the writer's close,
 * which now lets the last of the channel go. */
void run_ipc(const struct context *c, const struct scenario *s, unsigned char value,
             struct iteration_result *out)
{
    const struct ipc_peer *peer = &c->peer;
    size_t page = c->blocks.page_bytes, ops = s->ops, size = s->size_bytes;
    struct phase_start start;
    struct channel ch;
    struct ipc_order order = {.value = value};
    out->rss_before_bytes = resident_bytes(page);

    start_phase(&start);
    open_writer_channel(&ch, c, s, &order);
    stop_phase(&start, page, &out->phases[PHASE_ALLOCATE]);
    /* Untimed, so no message pays for it: the control page zeroed (the data file's first page
     * holds its pattern), which also faults it in. */
    if (ch.control != NULL) {
        atomic_store(&ch.control->posted, 0);
        atomic_store(&ch.control->peer_sleeping, 0);
        atomic_store(&ch.control->acknowledged, 0);
        atomic_store(&ch.control->writer_sleeping, 0);
    }
    give_order(peer, &order, ORDER_OPEN);
    struct ipc_reply opened = read_reply(peer);
    release_handover(s, &order);

    start_phase(&start);
    send_messages(&ch, ops, size, page, value, 1, peer->pid);
    stop_phase(&start, page, &out->phases[PHASE_FIRST_TOUCH]);

    start_phase(&start);
    send_messages(&ch, ops, size, page, value, 1 + (unsigned)ops, peer->pid);
    stop_phase(&start, page, &out->phases[PHASE_SECOND_PASS]);

    give_order(peer, &order, ORDER_CLOSE);
    struct ipc_reply closed = read_reply(peer);

    start_phase(&start);
    close_channel(&ch);
    stop_phase(&start, page, &out->phases[PHASE_FREE]);

    out->checksum = closed.checksum;
    observe(out, OBS_PEER_SEES_WRITES, closed.sees_writes);
    observe(out, OBS_PEER_ALLOCATE_NS, opened.allocate_ns);
    observe(out, OBS_PEER_FIRST_TOUCH_MINOR_FAULTS, closed.minor_faults[0]);
    observe(out, OBS_PEER_SECOND_PASS_MINOR_FAULTS, closed.minor_faults[1]);
}
