"""Running one probe process: a fresh process, a minimal environment, a timeout, a record.

`run_process` owns everything about one child process: how it is started, how it is stopped
when it overruns, and how its end (exit status, signal, output) becomes a ProcessRecord. It
never raises for anything the child does; the record says what happened. It never times the
allocation work itself either: `wall_s` is the process's wall time, for information only.
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from runner.core.model import ProcessRecord, Status
from runner.probe.native import EXIT_SKIPPED, parse_probe_output

# Everything the probe's environment contains unless a caller adds to it on purpose (e.g.
# GLIBC_TUNABLES). Inherited variables such as MALLOC_ARENA_MAX, LD_PRELOAD or a locale would
# change what is measured without showing up in the results.
PROBE_ENV: Mapping[str, str] = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
STDERR_TAIL_CHARS = 2000
# The probe's own time limit, past the runner's: a SIGALRM it cannot miss (the probe sets the
# alarm(2) itself, from tether_env, and does not catch SIGALRM). It matters when the runner
# cannot enforce its timeout (stopped, or killed before it could kill the probe); normally the
# runner's comes first.
OWN_LIMIT_GRACE_S = 2
_READ_BYTES = 1 << 16
# The probe reads these (runner/probe/tether.c): see tether_env.
RUNNER_PID_VARIABLE = "ALLOCLAB_RUNNER_PID"
TIME_LIMIT_VARIABLE = "ALLOCLAB_TIME_LIMIT_S"


def run_process(argv: Sequence[str], *, scenario_id: str, process_index: int, timeout_s: float,
                extra_env: Mapping[str, str] | None = None) -> ProcessRecord:
    """Run one probe process (`argv[0]` is the binary, as from probe_argv) and record its end.

    Status: "ok" (exit 0 and output that parse_probe_output accepts; `probe` holds it),
    "skipped" (exit EXIT_SKIPPED: the machine refused something the scenario needs; stderr
    says what), "failed" (another non-zero exit, unreadable output, or the program could not
    be started),
    "crashed" (killed by a signal, named in `signal`), "timeout" (still running after
    `timeout_s`; its whole process group is killed). The environment is PROBE_ENV plus
    `extra_env` and tether_env, nothing inherited.
    """
    env = {**PROBE_ENV, **(extra_env or {}), **tether_env(timeout_s)}
    started = time.perf_counter()
    try:
        # A session of its own puts the probe and anything it starts in one process group,
        # so a timeout can kill them all. No preexec_fn: Python would then fork instead of
        # vfork, and the copy-on-write faults of the fork cost ~3 ms per process.
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as error:
        return ProcessRecord(scenario_id=scenario_id, process_index=process_index,
                             status="failed", exit_code=None, signal=None, wall_s=0.0,
                             stderr_tail=f"alloclab: cannot start {argv[0]}: {error}",
                             probe=None)
    try:
        stdout, stderr, timed_out = _collect(process, started + timeout_s)
        if timed_out:
            _kill_group(process.pid)
            more_out, more_err = process.communicate()
            stdout, stderr = stdout + more_out, stderr + more_err
    except BaseException:
        # Being in its own session, the probe does not get the terminal's Ctrl-C: stop it here.
        _kill_group(process.pid)
        process.wait()
        raise
    wall_s = time.perf_counter() - started

    returncode = process.returncode
    stderr_text = stderr.decode("utf-8", errors="replace")

    def record(status: Status, *, exit_code: int | None = None, signal_name: str | None = None,
               note: str = "", probe: dict[str, object] | None = None) -> ProcessRecord:
        return ProcessRecord(scenario_id=scenario_id, process_index=process_index,
                             status=status, exit_code=exit_code, signal=signal_name, wall_s=wall_s,
                             stderr_tail=keep_stderr_tail(stderr_text, note), probe=probe)

    if timed_out:
        return record("timeout", note=f"alloclab: killed after the {timeout_s:g} s timeout")
    if returncode == -signal.SIGALRM:
        return record("timeout", note=f"alloclab: the probe's own limit of {timeout_s:g} s "
                                      f"+ {OWN_LIMIT_GRACE_S} s ended it (SIGALRM)")
    if returncode < 0:
        return record("crashed", signal_name=name_of_signal(-returncode))
    if returncode == EXIT_SKIPPED:
        return record("skipped", exit_code=returncode)
    if returncode > 0:
        return record("failed", exit_code=returncode)
    try:
        probe = parse_probe_output(stdout.decode("utf-8", errors="replace"))
    except ValueError as error:
        return record("failed", exit_code=0, note=f"alloclab: unreadable probe output: {error}")
    return record("ok", exit_code=0, probe=probe)


def _collect(process: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """The probe's stdout and stderr once it has exited, or what came before `deadline`.

    One epoll wait on both pipes and a pidfd of the process, woken by what happens, never by
    a clock: Popen.communicate(timeout) polls the exit with sleeps of up to 50 ms after the
    pipes close, which cost ~1-2 ms per process. Returns (stdout, stderr, timed_out); the
    process is reaped unless it timed out.
    """
    assert process.stdout is not None and process.stderr is not None
    chunks: dict[int, list[bytes]] = {process.stdout.fileno(): [], process.stderr.fileno(): []}
    pidfd = _open_pidfd(process.pid)
    with selectors.EpollSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ)
        open_pipes, exited = len(chunks), pidfd is None
        try:
            while open_pipes or not exited:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                for key, _ in selector.select(remaining):
                    if key.fd == pidfd:
                        selector.unregister(pidfd)
                        exited = True
                        continue
                    data = os.read(key.fd, _READ_BYTES)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
                        open_pipes -= 1
        finally:
            if pidfd is not None:
                os.close(pidfd)
    stdout, stderr = (b"".join(chunks[f.fileno()]) for f in (process.stdout, process.stderr))
    if open_pipes or not exited:
        return stdout, stderr, True
    if pidfd is None:  # no pidfd (a kernel before 5.3): the exit is waited for by polling
        try:
            process.wait(max(0.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            return stdout, stderr, True
    process.wait()  # it has exited: this only reaps it
    process.stdout.close()
    process.stderr.close()
    return stdout, stderr, False


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def tether_env(timeout_s: float) -> dict[str, str]:
    """The variables that tie the probe to this runner (runner/probe/tether.c).

    The probe asks for SIGKILL when the runner dies (PR_SET_PDEATHSIG), even by SIGKILL (the
    process group kill covers only the runner's orderly exits), and exits at once if the
    runner died before that took effect. It sets an alarm(2) OWN_LIMIT_GRACE_S after the
    runner's timeout: its own time limit.
    """
    return {RUNNER_PID_VARIABLE: str(os.getpid()),
            TIME_LIMIT_VARIABLE: str(math.ceil(timeout_s) + OWN_LIMIT_GRACE_S)}


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def name_of_signal(number: int) -> str:
    """A signal's name ("SIGSEGV"), as a record stores it; the local and the remote executor
    write records by one contract."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def keep_stderr_tail(stderr_text: str, note: str) -> str:
    """The last STDERR_TAIL_CHARS characters of stderr, keeping alloclab's own note whole."""
    if note:
        note = ("\n" if stderr_text and not stderr_text.endswith("\n") else "") + note
    keep = max(0, STDERR_TAIL_CHARS - len(note))
    return (stderr_text[-keep:] if keep else "") + note
