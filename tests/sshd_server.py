"""A real OpenSSH server on 127.0.0.1 for the tests and the overhead bench: its own config, host
key, client key and known_hosts in a temporary folder; nothing of the system's configuration
is read or changed. `start_sshd` raises SshdUnavailable with the reason when it cannot run.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
# sshd's privilege separation directory is compiled in; Debian's package makes it at boot.
PRIVSEP_DIR = Path("/run/sshd")
_START_TIMEOUT_S = 10.0


class SshdUnavailable(Exception):
    """sshd is not installed or would not start here: the reason, for a skip message."""


@dataclass
class Sshd:
    directory: Path
    port: int
    sshd: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_options(self) -> dict[str, str]:
        """The ssh -o options that reach this server with the generated key, host key checked."""
        return {"IdentityFile": str(self.directory / "client_key"),
                "IdentitiesOnly": "yes",
                "UserKnownHostsFile": str(self.directory / "known_hosts"),
                "GlobalKnownHostsFile": "/dev/null",
                "StrictHostKeyChecking": "yes"}

    @property
    def destination(self) -> str:
        return f"{getpass.getuser()}@127.0.0.1"

    def hosts_entry(self, label: str) -> str:
        """One entry of a fleet file's `hosts:` list (YAML) for this server."""
        options = ", ".join(f"{k}: '{v}'" for k, v in self.client_options.items())
        return (f"  - label: {label}\n    host: {self.destination}:{self.port}\n"
                f"    ssh_options: {{{options}}}\n")

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", str(self.directory / "sshd_config")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "sshd.log", "ab"),  # noqa: SIM115 - the child owns it
            start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "sshd.log").read_text(errors="replace").strip()
                raise SshdUnavailable(f"sshd exited at start: {log[-300:]}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2) as connection:
                if connection.recv(4).startswith(b"SSH-"):
                    return
            time.sleep(0.05)
        self.stop()
        raise SshdUnavailable(f"sshd did not answer on 127.0.0.1:{self.port}")

    def stop(self) -> None:
        """Kill the server and every session it serves (sshd puts each in a session of its
        own, so they are found as the listener's descendants, before it dies)."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True, capture_output=True)
    return (path.with_suffix(".pub")).read_text().strip()


def start_sshd(directory: Path) -> Sshd:
    """Configure and start an sshd on a free port of 127.0.0.1 serving only `directory`'s key."""
    sshd = next((path for path in SSHD_CANDIDATES if os.access(path, os.X_OK)), None)
    if sshd is None:
        raise SshdUnavailable("no sshd (install openssh-server; .ci/run does)")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        raise SshdUnavailable("no ssh client (install openssh-client)")
    if not PRIVSEP_DIR.is_dir():
        try:
            PRIVSEP_DIR.mkdir(mode=0o755)
        except OSError as error:
            raise SshdUnavailable(f"cannot make {PRIVSEP_DIR} that sshd needs: {error}") \
                from error
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    host_key = directory / "host_key"
    host_public = _keygen(host_key)
    client_public = _keygen(directory / "client_key")
    (directory / "authorized_keys").write_text(client_public + "\n")
    (directory / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_public}\n")
    config = directory / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"PidFile {directory / 'sshd.pid'}", f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "StrictModes no", "UsePAM no", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password", "MaxSessions 64", "MaxStartups 64",
        # The target's per-user probe cache, kept apart from this user's own.
        f"SetEnv XDG_CACHE_HOME={directory / 'cache'}", "LogLevel ERROR", ""]))
    server = Sshd(directory, port, sshd)
    server.start()
    return server
