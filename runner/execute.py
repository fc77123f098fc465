"""Running one probe process: a fresh process, a minimal environment, a timeout, a record.

`run_process` owns everything about one child process: how it is started, how it is stopped
when it overruns, and how its end (exit status, signal, output) becomes a ProcessRecord. It
never raises for anything the child does; the record says what happened. It never times the
allocation work itself either: `wall_s` is the process's wall time, for information only.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence

from runner.model import ProcessRecord, Status
from runner.probe import EXIT_SKIPPED, parse_probe_output

# Everything the probe's environment contains unless a caller adds to it on purpose (e.g.
# GLIBC_TUNABLES). Inherited variables such as MALLOC_ARENA_MAX, LD_PRELOAD or a locale would
# change what is measured without showing up in the results.
PROBE_ENV: Mapping[str, str] = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
STDERR_TAIL_CHARS = 2000
# The probe's own time limit, past the runner's: a SIGALRM it cannot miss (alarm(2) survives
# exec, and the probe does not catch SIGALRM). It matters when the runner cannot enforce its
# timeout (stopped, or killed before it could kill the probe); normally the runner's comes first.
OWN_LIMIT_GRACE_S = 2
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def run_process(argv: Sequence[str], *, scenario_id: str, process_index: int, timeout_s: float,
                extra_env: Mapping[str, str] | None = None) -> ProcessRecord:
    """Run one probe process (`argv[0]` is the binary, as from probe_argv) and record its end.

    Status: "ok" (exit 0 and output that parse_probe_output accepts; `probe` holds it),
    "skipped" (exit EXIT_SKIPPED: the machine refused something the scenario needs; stderr
    says what), "failed" (another non-zero exit, unreadable output, or the program could not
    be started),
    "crashed" (killed by a signal, named in `signal`), "timeout" (still running after
    `timeout_s`; its whole process group is killed). The environment is PROBE_ENV plus
    `extra_env`, nothing inherited.
    """
    env = {**PROBE_ENV, **(extra_env or {})}
    started = time.perf_counter()
    try:
        # A session of its own puts the probe and anything it starts in one process group,
        # so a timeout can kill them all.
        process = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, start_new_session=True,
                                   preexec_fn=_tie_to_runner(timeout_s))
    except OSError as error:
        return ProcessRecord(scenario_id=scenario_id, process_index=process_index,
                             status="failed", exit_code=None, signal=None, wall_s=0.0,
                             stderr_tail=f"alloclab: cannot start {argv[0]}: {error}",
                             probe=None)
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process.pid)
        stdout, stderr = process.communicate()
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
                             stderr_tail=_tail(stderr_text, note), probe=probe)

    if timed_out:
        return record("timeout", note=f"alloclab: killed after the {timeout_s:g} s timeout")
    if returncode == -signal.SIGALRM:
        return record("timeout", note=f"alloclab: the probe's own limit of {timeout_s:g} s "
                                      f"+ {OWN_LIMIT_GRACE_S} s ended it (SIGALRM)")
    if returncode < 0:
        return record("crashed", signal_name=_signal_name(-returncode))
    if returncode == EXIT_SKIPPED:
        return record("skipped", exit_code=returncode)
    if returncode > 0:
        return record("failed", exit_code=returncode)
    try:
        probe = parse_probe_output(stdout.decode("utf-8", errors="replace"))
    except ValueError as error:
        return record("failed", exit_code=0, note=f"alloclab: unreadable probe output: {error}")
    return record("ok", exit_code=0, probe=probe)


def _tie_to_runner(timeout_s: float) -> Callable[[], None]:
    """What the child does between fork and exec: die with the runner, and at its own limit.

    PR_SET_PDEATHSIG sends SIGKILL to the probe when the runner dies, even by SIGKILL (the
    process group kill covers only the runner's orderly exits). If the runner died before
    that took effect, the parent is already another process: exit at once. alarm(2) is the
    probe's own time limit (OWN_LIMIT_GRACE_S after the runner's).
    """
    runner_pid = os.getpid()
    alarm_s = math.ceil(timeout_s) + OWN_LIMIT_GRACE_S

    def in_child() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != runner_pid:
            os._exit(1)
        signal.alarm(alarm_s)

    return in_child


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(stderr_text: str, note: str) -> str:
    """The last STDERR_TAIL_CHARS characters of stderr, keeping alloclab's own note whole."""
    if note:
        note = ("\n" if stderr_text and not stderr_text.endswith("\n") else "") + note
    keep = max(0, STDERR_TAIL_CHARS - len(note))
    return (stderr_text[-keep:] if keep else "") + note
