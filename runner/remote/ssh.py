"""Running probe processes on another machine over OpenSSH: the connection, the quoting, the
probe shipped there, and a `run_process` with execute.run_process's contract.

Nothing but a POSIX shell, coreutils' `timeout`, `mktemp` and `tar` (and `cc` when the
locally built probe cannot run there) is needed on the target: no agent, no Python.

- One connection per host: an OpenSSH master (ControlMaster) whose socket lives in a private
  temporary folder (mode 0700) of this machine. Setup commands are sessions of it; the probe
  processes are started by one POSIX shell there kept for the run (_Shell), so a process
  costs neither a new session nor the login shell's start-up.
- Nothing lives on without the runner (runner.remote.lifetime): the master ends a few
  seconds after its last session; the remote shell ends when its input closes, and kills the
  probe in flight when that happens while it waits for it; a setup command is killed there
  when the runner would have stopped waiting for it.
- Host keys are checked as the user's ssh does (known_hosts); BatchMode forbids any prompt.
- Nothing reaches the remote shell unquoted: a command is built from an argument vector with
  shlex.quote, and the probe runs with `env -i` and exactly the variables alloclab chose.
- Everything alloclab writes there lives in one per-run directory under the host's work_dir
  (`mktemp -d`), removed at the end, also after a failure, and by a later run when its
  runner is gone (its lease, `sweep_run_dirs`); only the probe binary is kept,
  in the per-user cache (`${XDG_CACHE_HOME:-$HOME/.cache}/alloclab/probe-<hash>`), so the
  next run does not ship or compile it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import platform
import secrets
import selectors
import shlex
import subprocess
import tarfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from runner.core.errors import AlloclabError, ExitStatus
from runner.core.model import CONNECTION_NOTE, ProcessRecord, Status
from runner.machine import system
from runner.probe import execute, native
from runner.remote import lifetime
from runner.remote.hosts import Host

# ssh exits 255 for its own errors; anything else is the remote command's status.
SSH_ERROR = 255
# Consecutive connection failures after which a host is given up for this run: each of its
# remaining processes is recorded as failed at once instead of waiting for a timeout again.
GIVE_UP_AFTER = 3
CONNECT_TIMEOUT_S = 10
# How long past the probe's own timeout alloclab waits for ssh before calling the link dead.
GRACE_S = 30.0
_SETUP_TIMEOUT_S = 60.0
_COMPILE_TIMEOUT_S = 300.0
_TIMEOUT_STATUS = 124  # coreutils timeout, when the command overran and took TERM
_KILL_STATUS = 128 + 9
Shipped = Literal["binary", "source"]


class HostError(AlloclabError):
    """A host could not be reached or prepared; the message names it and the cause."""

    exit_status = ExitStatus.FAILURE


@dataclass(frozen=True)
class RemoteProbe:
    """The probe as installed on a target."""

    binary: native.ProbeBinary  # path: on the target; source_hash: what the manifest records
    shipped: Shipped  # "binary": this machine's build copied; "source": compiled there
    machine: str  # the target's `uname -m`


def quote_command(argv: Sequence[str]) -> str:
    """An argument vector as one command line for the remote POSIX shell, every word quoted."""
    return " ".join(shlex.quote(word) for word in argv)


class Connection:
    """One host's shared SSH connection, and the commands run through it."""

    def __init__(self, host: Host, control_dir: Path) -> None:
        self.host = host
        # Short: a unix socket path must fit in 108 bytes, whatever the label.
        digest = hashlib.sha256(host.label.encode()).hexdigest()[:12]
        self.control_path = control_dir / f"{digest}.sock"
        self.log_path = control_dir / f"{host.label}.log"
        self._lock = threading.Lock()
        self.failures = 0  # consecutive connection failures
        self.lost = 0  # processes recorded as failed by the connection in this run

    def ssh_argv(self, *, master: bool = False) -> list[str]:
        options = {"BatchMode": "yes", "ConnectTimeout": str(CONNECT_TIMEOUT_S),
                   "ServerAliveInterval": "5", "ServerAliveCountMax": "3",
                   "ControlPath": str(self.control_path),
                   "ControlMaster": "yes" if master else "no"}
        argv = ["ssh", "-p", str(self.host.port)]
        for name, value in [*options.items(), *self.host.ssh_options]:
            argv += ["-o", f"{name}={value}"]
        return argv

    def open(self) -> None:
        """Start the master connection (again, after a drop); raise HostError with ssh's words."""
        with self._lock:
            if self.alive():
                return
            with open(self.log_path, "ab") as log:
                offset = log.tell()
                started = subprocess.run(
                    # Ends by itself once idle: after a killed runner's last session closes.
                    # -E: a master in the background still says why it ended (a dead link).
                    [*self.ssh_argv(master=True), "-o",
                     f"ControlPersist={lifetime.CONTROL_PERSIST_S}", "-E", str(self.log_path),
                     "-f", "-N",
                     "--", self.host.destination],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    timeout=CONNECT_TIMEOUT_S * 3, check=False)
            if started.returncode != 0:
                why = (explain_failure(self.log_lines(offset), self.host)
                       or f"ssh exit {started.returncode}")
                raise HostError(f"{self.host.label} ({self.host.address}): cannot connect: {why}")

    def alive(self) -> bool:
        if not self.control_path.exists():
            return False
        check = subprocess.run([*self.ssh_argv(), "-O", "check", "--", self.host.destination],
                               capture_output=True, timeout=CONNECT_TIMEOUT_S, check=False)
        return check.returncode == 0

    def close(self) -> None:
        if self.control_path.exists():
            subprocess.run([*self.ssh_argv(), "-O", "exit", "--", self.host.destination],
                           capture_output=True, timeout=CONNECT_TIMEOUT_S, check=False)

    def log_lines(self, offset: int = 0) -> list[str]:
        """What ssh wrote to this host's log from `offset` on, a line each."""
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            log.seek(offset)
            return [line.strip() for line in log.read().decode(errors="replace").splitlines()
                    if line.strip()]
        return []

    def last_log_line(self) -> str:
        with contextlib.suppress(OSError):
            lines = [line.strip() for line in self.log_path.read_text(errors="replace")
                     .splitlines() if line.strip()]
            return lines[-1] if lines else ""
        return ""

    def run(self, argv: Sequence[str], *, stdin: bytes = b"", timeout_s: float = _SETUP_TIMEOUT_S
            ) -> subprocess.CompletedProcess[bytes]:
        """Run an argument vector on the target (quoted), through the shared connection.

        The target kills it (coreutils' timeout, with its process group) when this runner stops
        waiting for it: a session without a terminal gets no hangup when its client dies, so a
        setup command of a runner that was killed (a compile, up to 300 s) would otherwise run
        on there to its end."""
        if not self.control_path.exists():  # the master ended, idle: start it again
            self.open()
        bounded = ["timeout", "-s", "KILL", f"{timeout_s:g}", *argv]
        return subprocess.run([*self.ssh_argv(), "--", self.host.destination,
                               quote_command(bounded)], input=stdin, capture_output=True,
                              timeout=timeout_s, check=False)

    def check_output(self, argv: Sequence[str], what: str, *, stdin: bytes = b"",
                     timeout_s: float = _SETUP_TIMEOUT_S) -> str:
        """stdout of a setup command; HostError naming `what` and the cause when it fails."""
        try:
            done = self.run(argv, stdin=stdin, timeout_s=timeout_s)
        except subprocess.TimeoutExpired as error:
            raise HostError(f"{self.host.label}: {what}: no answer in {timeout_s:g} s") from error
        if done.returncode != 0:
            detail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or \
                [f"exit {done.returncode}"]
            raise HostError(f"{self.host.label}: {what} failed: {detail[0]}")
        return done.stdout.decode(errors="replace")


# What ssh says before "Host key verification failed.", which alone does not say why.
_HOST_KEY_WORDS = ("host key is known for", "has changed and you have requested",
                   "Offending", "REMOTE HOST IDENTIFICATION HAS CHANGED",
                   "differs from the key for")


def explain_failure(lines: Sequence[str], host: Host) -> str:
    """ssh's reason for a failed connection: its last line, and for a host key failure the
    lines that say which key and where, with what to do."""
    if not lines:
        return ""
    last = lines[-1]
    if last != "Host key verification failed.":
        return last
    why = [line.strip("@ ") for line in lines[:-1]
           if any(words in line for words in _HOST_KEY_WORDS)]
    name = host.destination.rpartition("@")[2]
    target = name if host.port == 22 else f"[{name}]:{host.port}"
    if any("has changed" in line or "HAS CHANGED" in line for line in why):
        advice = (f"if the host was reinstalled, check its new key and remove the old one "
                  f"(ssh-keygen -R '{target}'); otherwise something else answers at that address")
    else:
        advice = (f"check the host's key and add it to known_hosts (ssh-keyscan -p {host.port} "
                  f"{name}), or set ssh_options: {{StrictHostKeyChecking: accept-new}} to trust it "
                  "on first use")
    return "; ".join([*why, last, advice])


@dataclass(frozen=True)
class Workspace:
    """Where a run keeps its files on the target."""

    run_dir: str  # made by mktemp -d, removed at the end; holds the lease
    cache_dir: str  # per-user, kept: probe binaries by content hash
    machine: str  # uname -m


def install_probe(connection: Connection, workspace: Workspace, local: native.ProbeBinary,
                  sources: Sequence[Path]) -> RemoteProbe:
    """The probe on the target: this machine's build where the architecture matches and the
    target's loader accepts it (its C library is as new), else the sources compiled there with
    `cc`; either is cached by content hash in the target's per-user cache."""
    if workspace.machine == platform.machine():
        remote = replace(local, path=Path(f"{workspace.cache_dir}/probe-{local.source_hash}"))
        _upload_if_missing(connection, workspace, local.path.read_bytes(), str(remote.path))
        if _runs(connection, str(remote.path)):
            return RemoteProbe(remote, "binary", workspace.machine)
    return RemoteProbe(_compile_remotely(connection, workspace, sources), "source",
                       workspace.machine)


def _upload_if_missing(connection: Connection, workspace: Workspace, content: bytes,
                       target: str) -> None:
    script = ('test -x "$1" && exit 0; t=$(mktemp "$2/probe.XXXXXXXX") && cat > "$t" && '
              'chmod 755 "$t" && mv -f "$t" "$1"')
    connection.check_output(["sh", "-c", script, "sh", target, workspace.run_dir],
                            "copying the probe", stdin=content)


def _runs(connection: Connection, path: str) -> bool:
    done = connection.run([path, "--fingerprint"])
    return done.returncode == 0 and done.stdout.startswith(b"{")


def _compile_remotely(connection: Connection, workspace: Workspace,
                      sources: Sequence[Path]) -> native.ProbeBinary:
    version_text = connection.check_output(["cc", "--version"], "asking the target's cc")
    flags = native.CFLAGS
    source_hash = native.hash_sources(sources, flags, version_text)
    target = f"{workspace.cache_dir}/probe-{source_hash}"
    binary = native.ProbeBinary(path=Path(target), source_hash=source_hash,
                               compiler=version_text.splitlines()[0].strip(), flags=flags)
    if connection.run(["test", "-x", target]).returncode == 0:
        return binary
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for path in sources:
            tar.add(path, arcname=f"src/{path.name}")
    c_files = [f"src/{path.name}" for path in sources if path.suffix == ".c"]
    script = ('cd "$1" && tar -xf - && shift && t=$(mktemp "$PWD/probe.XXXXXXXX") && '
              'cc "$@" -o "$t" && mv -f "$t" "$0"')
    connection.check_output(["sh", "-c", script, target, workspace.run_dir, *flags, *c_files],
                            "compiling the probe with the target's cc",
                            stdin=archive.getvalue(), timeout_s=_COMPILE_TIMEOUT_S)
    return binary


def read_fingerprint_json(connection: Connection, remote: RemoteProbe,
                          file_dirs: Sequence[str], env: Mapping[str, str]) -> str:
    """The probe's --fingerprint output on the target, in the probes' own environment."""
    argv = ["env", "-i", *_env_words(env), str(remote.binary.path), "--fingerprint",
            *sorted(set(file_dirs))]
    return connection.check_output(argv, "reading the fingerprint")


def _env_words(env: Mapping[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in {**execute.PROBE_ENV, **env}.items()]


def probe_script(argv: Sequence[str], env: Mapping[str, str], run_dir: str,
                 timeout_s: float, marker: str) -> str:
    """The lines the host's shell runs for one probe process.

    The probe runs under coreutils `timeout` (which kills its whole process group) with an
    environment of exactly PROBE_ENV and `env`, its stdout and stderr in files of the run
    directory. While the shell waits for it, a watcher reads the session's input (fd 3, the
    shell's stdin): nothing comes until the shell answers, so input there means only its end,
    the runner or the link gone, and the watcher kills the probe's group. Then the shell
    prints `marker` with the exit status as it saw it (128 + N when signal N ended it), the
    stdout file, `marker`-err, the stderr file and `marker`-end.
    """
    command = ["timeout", "-s", "KILL", f"{timeout_s:g}", "env", "-i", *_env_words(env), *argv]
    out, err = shlex.quote(f"{run_dir}/stdout"), shlex.quote(f"{run_dir}/stderr")
    return (f"{{ {quote_command(command)} </dev/null >{out} 2>{err} & p=$!; "
            "{ read -r _ <&3; kill -KILL -$p $p; } & w=$!; wait $p; s=$?; kill $w; wait $w; "
            "} 2>/dev/null; "
            f"printf '\\n%s %s\\n' {marker} \"$s\"; cat {out}; "
            f"printf '\\n%s\\n' {marker}-err; cat {err}; printf '\\n%s\\n' {marker}-end\n")


class _Shell:
    """A POSIX shell on the target, kept for the run, reading one probe script per process:
    a process costs no new SSH session nor the login shell's start-up (.bashrc and the like)."""

    def __init__(self, connection: Connection, run_dir: str) -> None:
        # fd 3: the session's input, for probe_script's watcher. The run folder in the shell's
        # arguments names the run's processes there (its own and, by their files, the probes).
        with open(connection.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*connection.ssh_argv(), "--", connection.host.destination,
                 f"exec /bin/sh -s {shlex.quote(run_dir)} 3<&0 2>/dev/null"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)
        self.buffer = b""

    def ask(self, script: str, end: bytes, deadline_s: float) -> bytes | None:
        """Send a script, read until `end`; None when the link dies or the deadline passes."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(script.encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while end not in self.buffer:
                remaining = deadline_s - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return None
                self.buffer += chunk
        answer, _, self.buffer = self.buffer.partition(end)
        return answer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, 9)
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class RemoteExecutor:
    """execute.run_process's contract, on a target: one fresh probe process per call."""

    def __init__(self, connection: Connection, workspace: Workspace, remote: RemoteProbe,
                 stop: threading.Event | None = None) -> None:
        self.connection, self.workspace, self.remote = connection, workspace, remote
        # Set when the user interrupts a fleet run: no new process starts on this host.
        self.stop = stop or threading.Event()
        self.marker = f"@@alloclab-{secrets.token_hex(8)}"
        self._shell: _Shell | None = None
        self._last_cause = ""
        # CPU time of the probes (and shells) of shells closed before the current one.
        self._closed_shells_cpu_s = 0.0
        self._shell_cpu_s = 0.0  # the current shell's, as last read

    def close(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
            self._closed_shells_cpu_s += self._shell_cpu_s
            self._shell_cpu_s = 0.0

    def read_load(self) -> dict[str, Any]:
        """system.read_load's snapshot of the target, read by the shell that starts the probes:
        `own_cpu_s` is its CPU time and that of the probes it waited for (POSIX `times`). All
        None when the target does not answer."""
        end = f"\n{self.marker}-end\n"
        script = (f"cat /proc/loadavg; printf '%s\\n' {self.marker}-stat; grep '^cpu' "
                  f"/proc/stat; printf '%s\\n' {self.marker}-times; times; "
                  f"printf '\\n%s\\n' {self.marker}-end\n")
        answer = None
        with contextlib.suppress(HostError, subprocess.TimeoutExpired, OSError):
            if self._shell is None:
                self.connection.open()
                self._shell = _Shell(self.connection, self.workspace.run_dir)
            answer = self._shell.ask(script, end.encode(), time.monotonic() + GRACE_S)
        if answer is None:
            self.close()
            return system.parse_load("", "", None)
        loadavg, _, rest = answer.decode(errors="replace").partition(f"{self.marker}-stat\n")
        stat, _, times = rest.partition(f"{self.marker}-times\n")
        self._shell_cpu_s = system.parse_times_s(times)
        return system.parse_load(loadavg, stat, self._closed_shells_cpu_s + self._shell_cpu_s)

    def run_process(self, argv: Sequence[str], *, scenario_id: str, process_index: int,
                    timeout_s: float, extra_env: Mapping[str, str] | None = None
                    ) -> ProcessRecord:
        """Run one probe process (`argv[0]` is its path on the target) and record its end.

        A connection that fails is opened again and the process tried once more; failing
        that, the record is "failed" with ssh's cause and CONNECTION_NOTE (a resumed run
        measures it again). After GIVE_UP_AFTER such processes in a row the host is given up:
        the rest fail at once, with the same note.
        """
        if self.stop.is_set():
            raise KeyboardInterrupt
        script = probe_script(argv, extra_env or {}, self.workspace.run_dir, timeout_s,
                              self.marker)
        cause = ""
        for _attempt in range(2):
            if self.connection.failures >= GIVE_UP_AFTER:
                cause = cause or "the host was given up after repeated connection failures"
                break
            try:
                if self._shell is None:  # a live shell means a live connection
                    self.connection.open()
            except (HostError, subprocess.TimeoutExpired) as error:
                cause = str(error)
                self.connection.failures += 1
                continue
            record = self._attempt(script, scenario_id, process_index, timeout_s)
            if record is not None:
                self.connection.failures = 0
                return record
            self.close()
            cause = self.connection.last_log_line() or self._last_cause
            self.connection.failures += 1
        self.connection.lost += 1
        return ProcessRecord(scenario_id=scenario_id, process_index=process_index,
                             status="failed", exit_code=SSH_ERROR, signal=None, wall_s=0.0,
                             stderr_tail=f"{CONNECTION_NOTE} ({self.connection.host.label}): "
                                         f"{cause}\n", probe=None)

    def _attempt(self, script: str, scenario_id: str, process_index: int,
                 timeout_s: float) -> ProcessRecord | None:
        """One try; None when the connection, not the probe, failed (cause in _last_cause)."""
        if self._shell is None:
            self._shell = _Shell(self.connection, self.workspace.run_dir)
        started = time.perf_counter()
        end = f"\n{self.marker}-end\n".encode()
        try:
            answer = self._shell.ask(script, end, time.monotonic() + timeout_s + GRACE_S)
        except BaseException:
            self.close()
            raise
        wall_s = time.perf_counter() - started
        if answer is None:
            self._last_cause = "the connection closed while the probe ran"
            return None
        head, _, rest = answer.partition(f"{self.marker} ".encode())
        status_text, _, rest = rest.partition(b"\n")
        stdout, _, stderr = rest.partition(f"\n{self.marker}-err\n".encode())
        if not status_text.strip().isdigit():
            self._last_cause = f"unexpected answer from the shell: {head[-120:]!r}"
            return None
        return record_from_status(int(status_text), stdout,
                                  stderr.decode("utf-8", errors="replace"), wall_s, timeout_s,
                                  scenario_id=scenario_id, process_index=process_index)


def record_from_status(status_code: int, stdout: bytes, stderr_text: str, wall_s: float,
                       timeout_s: float, *, scenario_id: str, process_index: int
                       ) -> ProcessRecord:
    """A ProcessRecord from the remote shell's view of the probe's end (`$?`)."""

    def record(status: Status, *, exit_code: int | None = None, signal_name: str | None = None,
               note: str = "", probe_output: dict[str, object] | None = None) -> ProcessRecord:
        return ProcessRecord(scenario_id=scenario_id, process_index=process_index,
                             status=status, exit_code=exit_code, signal=signal_name,
                             wall_s=wall_s,
                             stderr_tail=execute.keep_stderr_tail(stderr_text, note),
                             probe=probe_output)

    if status_code == _TIMEOUT_STATUS or (status_code == _KILL_STATUS and wall_s >= timeout_s):
        return record("timeout", note=f"alloclab: killed after the {timeout_s:g} s timeout")
    if status_code > 128:
        return record("crashed", signal_name=execute.name_of_signal(status_code - 128))
    if status_code == native.EXIT_SKIPPED:
        return record("skipped", exit_code=status_code)
    if status_code in (126, 127):
        return record("failed", exit_code=status_code,
                      note="alloclab: cannot start the probe on the target")
    if status_code > 0:
        return record("failed", exit_code=status_code)
    try:
        output = native.parse_probe_output(stdout.decode("utf-8", errors="replace"))
    except ValueError as error:
        return record("failed", exit_code=0, note=f"alloclab: unreadable probe output: {error}")
    return record("ok", exit_code=0, probe_output=output)
