/*
 * The probe tied to the runner that started it (runner/probe/execute.py): it dies with the runner
 * and at its own time limit, both given in the environment. The runner used to set them up
 * between fork and exec, in Python; that forced a full fork of the runner (no vfork), whose
 * copy-on-write faults cost it ~3 ms per probe process. Here they cost two system calls.
 */
#include "probe.h"

#include <sys/prctl.h>

const char RUNNER_PID_VARIABLE[] = "ALLOCLAB_RUNNER_PID";
const char TIME_LIMIT_VARIABLE[] = "ALLOCLAB_TIME_LIMIT_S";

/* A whole number from 1 to `maximum` in the variable `name`, or 0 when it is not set. */
static unsigned long read_variable(const char *name, unsigned long maximum)
{
    const char *text = getenv(name);
    if (text == NULL)
        return 0;
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < 1 ||
        value > maximum)
        usage_error("%s=%s: expected a whole number from 1 to %lu", name, text, maximum);
    return value;
}

/* ALLOCLAB_RUNNER_PID: SIGKILL when the runner dies, even by SIGKILL; if it died before this
 * took effect, the parent is already another process: exit at once. The heap trace's fresh
 * image (`traced`) is the probe's child, not the runner's: it dies with the probe instead.
 * ALLOCLAB_TIME_LIMIT_S: a SIGALRM the probe never catches, after that many seconds, for when
 * the runner cannot enforce its timeout (stopped, or killed before it could kill the probe).
 * Without the variables (the probe run by hand) nothing is tied. */
void tie_to_runner(int traced)
{
    unsigned long runner_pid = read_variable(RUNNER_PID_VARIABLE, (unsigned long)INT_MAX);
    if (runner_pid != 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
            system_error("prctl(PR_SET_PDEATHSIG)");
        if (!traced && getppid() != (pid_t)runner_pid)
            _exit(EXIT_SYSTEM);
    }
    unsigned long limit_s = read_variable(TIME_LIMIT_VARIABLE, (unsigned long)UINT_MAX);
    if (limit_s != 0 && !traced)
        alarm((unsigned)limit_s);
}

/* Workload ipc's peer, a fresh image the probe started (ipc.c): SIGKILL when the probe dies,
 * whether or not a runner started the probe, so no peer ever outlives its probe. Had the
 * probe died before this took effect, nothing holds the other end of the peer's order pipe:
 * its first read sees the end and the peer exits. Its own time limit is the probe's
 * (ALLOCLAB_TIME_LIMIT_S, inherited), counted from its own start. */
void tie_to_probe(void)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        system_error("prctl(PR_SET_PDEATHSIG)");
    unsigned long limit_s = read_variable(TIME_LIMIT_VARIABLE, (unsigned long)UINT_MAX);
    if (limit_s != 0)
        alarm((unsigned)limit_s);
}
