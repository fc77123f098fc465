"""Per-process overhead of a run over SSH against a local run, on loopback.

Starts a private OpenSSH server on 127.0.0.1 (tests/sshd_server.py: its own keys and config,
nothing of the system's touched), installs the probe there as `alloclab run --host` does, and
runs one small scenario alternately here (runner.probe.execute) and through the shared connection
(runner.remote.ssh), N processes each. The overhead is the median wall time per process over SSH
minus the median here: the probe's own time (startup, measuring, exit) is in both. Target:
under 20 ms per process.

    python bench/remote_overhead.py [--processes N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.core.model import Scenario
from runner.probe import execute, native
from runner.remote import lifetime, run_folder, ssh
from runner.remote.hosts import Host
from tests.sshd_server import SshdUnavailable, start_sshd

TARGET_MS = 20.0
SCENARIO = Scenario(backing="malloc", size_bytes=4096, sharing="private",
                    protection="read-write", populate="none", access="write-page", ops=16,
                    file_dir="/tmp", thp="default", release="auto")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=40)
    args = parser.parse_args()
    binary = native.build_probe()
    with tempfile.TemporaryDirectory(prefix="alloclab-bench-") as folder:
        try:
            sshd = start_sshd(Path(folder) / "sshd")
        except SshdUnavailable as reason:
            print(f"remote overhead: not measured: {reason}")
            return 0
        try:
            return _measure(binary, sshd.destination, sshd.port, sshd.client_options,
                            args.processes)
        finally:
            sshd.stop()


def _measure(binary: native.ProbeBinary, destination: str, port: int,
             options: dict[str, str], processes: int) -> int:
    host = Host("bench", destination, port, tuple(options.items()))
    with lifetime.control_dir() as control:
        connection = ssh.Connection(host, control)
        connection.open()
        workspace = run_folder.open_workspace(connection)
        try:
            with native.importlib.resources.as_file(
                    native.importlib.resources.files("runner.probe")) as sources:
                installed = ssh.install_probe(connection, workspace, binary,
                                                 native.probe_sources(sources))
            executor = ssh.RemoteExecutor(connection, workspace, installed)
            local_argv = native.probe_argv(binary, SCENARIO, 0, 1)
            remote_argv = native.probe_argv(installed.binary, SCENARIO, 0, 1)
            local_s, remote_s = [], []
            for index in range(processes):
                here = execute.run_process(local_argv, scenario_id=SCENARIO.id,
                                           process_index=index, timeout_s=30)
                there = executor.run_process(remote_argv, scenario_id=SCENARIO.id,
                                             process_index=index, timeout_s=30)
                if here.status != "ok" or there.status != "ok":
                    print(f"remote overhead: a process failed: {here.describe(30)} / "
                          f"{there.describe(30)}")
                    return 1
                local_s.append(here.wall_s)
                remote_s.append(there.wall_s)
            executor.close()
        finally:
            run_folder.remove_workspace(connection, workspace)
            connection.close()
    local_ms = statistics.median(local_s) * 1e3
    remote_ms = statistics.median(remote_s) * 1e3
    overhead_ms = remote_ms - local_ms
    verdict = "met" if overhead_ms < TARGET_MS else "NOT met"
    print(f"remote overhead ({processes} processes each, interleaved, loopback): "
          f"local {local_ms:.1f} ms, over SSH {remote_ms:.1f} ms per process (medians); "
          f"overhead {overhead_ms:.1f} ms per process; target < {TARGET_MS:g} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
