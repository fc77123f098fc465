"""`alloclab run --host/--hosts`: the selected experiments on other machines over SSH.

The runner stays here: specs, plans, the order of processes, the store and the reports. Each
host gets one shared SSH connection (runner.remote.ssh), a per-run directory, the probe (this
machine's build or its sources compiled there) and its fingerprint read by that probe; then
pipeline.run_plan runs there exactly as here, one fresh probe process per (scenario,
process), each record streamed back and stored under results/<label>/ as it ends. Hosts run
in parallel, `Fleet.workers` at a time; each host's processes one after another.
"""

from __future__ import annotations

import importlib.resources
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from runner.core.errors import AlloclabError
from runner.core.model import Plan
from runner.machine import preconditions
from runner.machine.system import read_fingerprint
from runner.measure import pipeline, quick
from runner.probe import native
from runner.remote import lifetime, ssh
from runner.remote.hosts import Fleet, Host

# Facts about the runner itself (this machine's Python, the spec's git checkout), not the
# target's: read here and added to the target's fingerprint.
RUNNER_FACTS = ("python", "libraries", "git_commit", "git_dirty")


@dataclass(frozen=True)
class HostOutcome:
    host: Host
    summaries: tuple[pipeline.RunSummary, ...]
    error: str | None = None  # why the host was not measured at all


def run_fleet(spec_paths: Sequence[Path], options: pipeline.RunOptions, fleet: Fleet,
              say: pipeline.Say) -> list[HostOutcome]:
    """Run the specs on every host of the fleet, `fleet.workers` hosts at a time."""
    loaded = pipeline.load_plans(spec_paths)
    pipeline.warn_about_coverage(loaded, options, say)
    plans = pipeline.profile_plans(loaded, options)
    binary = native.build_probe()
    say(f"probe {binary.source_hash} built with {binary.compiler}")
    for line in quick.quick_left_out(plans, "each experiment's page lists them")[:1]:
        say(line)
    with importlib.resources.as_file(importlib.resources.files("runner.probe")) as folder, \
            lifetime.control_dir(say) as control, ThreadPoolExecutor(fleet.workers) as pool:
        sources = native.probe_sources(folder)
        stop = threading.Event()
        futures = [pool.submit(_run_host, host, plans, binary, sources, options, control, say,
                               stop) for host in fleet.hosts]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            # Ctrl-C reaches this thread only: every host stops after its process in flight
            # (stored, like every finished one), cleans up there, and the run can resume.
            stop.set()
            for future in futures:
                future.cancel()
            raise


def _run_host(host: Host, plans: Sequence[Plan], binary: native.ProbeBinary,
              sources: Sequence[Path], options: pipeline.RunOptions, control: Path,
              say: pipeline.Say, stop: threading.Event) -> HostOutcome:
    def say_host(message: str) -> None:
        say(f"[{host.label}] {message}")

    connection = ssh.Connection(host, control)
    try:
        connection.open()
        for folder in ssh.sweep_run_dirs(connection):
            say_host(f"removed {folder} there, left by a runner that was killed")
        workspace = ssh.open_workspace(connection)
    except (AlloclabError, OSError) as error:
        say_host(f"not measured: {error}")
        return HostOutcome(host, (), str(error))
    executor: ssh.RemoteExecutor | None = None
    try:
        installed = ssh.install_probe(connection, workspace, binary, sources)
        how = ("this machine's build, copied" if installed.shipped == "binary"
               else "compiled there from source")
        say_host(f"{host.address} ({installed.machine}): probe {installed.binary.source_hash} "
                 f"{how} with {installed.binary.compiler}")
        executor = ssh.RemoteExecutor(connection, workspace, installed, stop)
        target = _target(connection, executor)
        host_options = replace(options, machine=host.label)
        with lifetime.refreshing(lambda: ssh.refresh_lease(connection, workspace)):
            summaries = tuple(pipeline.run_plan(plan, installed.binary, host_options, say_host,
                                                target) for plan in plans)
        return HostOutcome(host, summaries)
    except AlloclabError as error:
        say_host(f"stopped: {error}")
        return HostOutcome(host, (), str(error))
    except KeyboardInterrupt:
        return HostOutcome(host, (), "interrupted")
    finally:
        if executor is not None:
            executor.close()
        if not ssh.remove_workspace(connection, workspace):
            say_host(f"could not remove {workspace.run_dir} there (host unreachable): the "
                     "next run there removes it")
        connection.close()


def _target(connection: ssh.Connection, executor: ssh.RemoteExecutor
            ) -> pipeline.Target:
    env = dict(connection.host.env)
    installed = executor.remote
    plain, precondition_facts = _fingerprint(connection, installed, (), env)

    def fingerprint(spec_path: Path, file_dirs: set[str]) -> dict[str, Any]:
        remote_facts, _ = _fingerprint(connection, installed, sorted(file_dirs), env)
        local = read_fingerprint(spec_path=spec_path)
        return {**remote_facts, **{key: local[key] for key in RUNNER_FACTS}}

    return pipeline.Target(
        read_fingerprint=fingerprint, run_process=executor.run_process,
        facts=machine_facts(plain, precondition_facts),
        probe_env=env,
        probe_info={"shipped": installed.shipped, "target_machine": installed.machine,
                    "target": connection.host.address},
        connection_failures=lambda: connection.lost,
        read_load=executor.read_load)


def _fingerprint(connection: ssh.Connection, installed: ssh.RemoteProbe,
                 file_dirs: Sequence[str], env: dict[str, str]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    text = ssh.read_fingerprint_json(connection, installed, file_dirs, env)
    try:
        return native.parse_fingerprint_output(text)
    except ValueError as error:
        raise ssh.HostError(f"{connection.host.label}: {error}") from error


def machine_facts(fingerprint: dict[str, Any], facts: dict[str, Any]
                  ) -> preconditions.MachineFacts:
    """What the preconditions check, from a target's fingerprint. Its glibc's tunables are
    not listed (None: not checked here); the probe checks the rest again when it runs."""
    memlock = fingerprint.get("memlock_limit_bytes")
    return preconditions.MachineFacts(
        free_huge_pages=facts.get("free_huge_pages"),
        memlock_limit_bytes=memlock if isinstance(memlock, int) else None,
        euid=int(facts.get("euid", 0)),
        thp_enabled=fingerprint.get("thp_enabled"),
        max_map_count=fingerprint.get("max_map_count"),
        kernel=preconditions._kernel_version(str(fingerprint.get("kernel") or "0.0")),
        glibc_tunables=None)

