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

from runner.core.errors import AlloclabError, UsageError
from runner.core.model import Plan
from runner.machine import preconditions
from runner.machine.system import read_fingerprint
from runner.measure import pipeline, quick
from runner.probe import native
from runner.remote import lifetime, run_folder, ssh
from runner.remote.console import FleetConsole
from runner.remote.hosts import Fleet, Host

# Facts about the runner itself (this machine's Python, the spec's git checkout), not the
# target's: read here and added to the target's fingerprint.
RUNNER_FACTS = ("python", "libraries", "git_commit", "git_dirty")
# Facts read on this machine only, recorded as null for another: the allocator libraries (a
# named allocator is skipped there, runner.machine.preconditions).
UNREAD_FACTS = ("allocators",)


@dataclass(frozen=True)
class HostOutcome:
    host: Host
    summaries: tuple[pipeline.RunSummary, ...]
    error: str | None = None  # why the host stopped, or was not measured at all
    reached: bool = True  # False: no connection or no run folder there

    def state(self) -> tuple[str, str]:
        """The recap's word for the host and what it adds: ok, failed (processes that did not
        finish), stopped (an error after it was reached), unreachable."""
        if not self.reached:
            return "unreachable", self.error or "not reached"
        run = sum(s.processes_run - s.processes_skipped for s in self.summaries)
        failed = sum(s.processes_failed for s in self.summaries)
        skipped = sum(s.processes_skipped for s in self.summaries)
        done = (f"{len(self.summaries)} experiment{'s' if len(self.summaries) != 1 else ''}, "
                f"{run} process{'es' if run != 1 else ''} measured"
                + (f", {skipped} skipped (not measurable there)" if skipped else ""))
        if self.error:
            return "stopped", f"{self.error} (after {done})"
        if failed:
            return "failed", f"{failed} process{'es' if failed != 1 else ''} did not finish; {done}"
        return "ok", done


def recap_lines(outcomes: Sequence[HostOutcome]) -> list[str]:
    """A line per host, as Ansible's play recap: its label, its state and what it came to."""
    width = max((len(o.host.label) for o in outcomes), default=0)
    states = [o.state() for o in outcomes]
    counts = ", ".join(f"{n} {word}" for word in ("ok", "failed", "stopped", "unreachable")
                       if (n := sum(state == word for state, _ in states)))
    return [f"recap ({counts}):", *(f"  {o.host.label:<{width}}  {state:<11}  {text}"
                                   for o, (state, text) in zip(outcomes, states, strict=True))]


def run_fleet(spec_paths: Sequence[Path], options: pipeline.RunOptions, fleet: Fleet,
              console: FleetConsole, *, allow_shared_host: bool = False) -> list[HostOutcome]:
    """Run the specs on every host of the fleet, `fleet.workers` hosts at a time; hosts that
    are one machine (the same boot id) are refused, or with `allow_shared_host` measured one
    after another. An outcome per host, in the fleet's order."""
    loaded = pipeline.load_plans(spec_paths)
    pipeline.warn_about_coverage(loaded, options, console.problem)
    plans = pipeline.profile_plans(loaded, options)
    binary = native.build_probe()
    console.say(f"probe {binary.source_hash} built with {binary.compiler}")
    for line in quick.quick_left_out(plans, "each experiment's page lists them")[:1]:
        console.say(line)
    with importlib.resources.as_file(importlib.resources.files("runner.probe")) as folder, \
            lifetime.control_dir(console.say) as control, ThreadPoolExecutor(fleet.workers) as pool:
        sources = native.probe_sources(folder)
        stop = threading.Event()
        reached = list(pool.map(lambda host: _reach(host, control, console), fleet.hosts))
        outcomes: dict[str, HostOutcome] = {r.host.label: r for r in reached
                                            if isinstance(r, HostOutcome)}
        groups = machines(
            [r for r in reached if isinstance(r, _Reached)], allow_shared_host)

        def run_group(group: Sequence[_Reached]) -> list[HostOutcome]:
            return [_run_host(r, plans, binary, sources, options, console, stop)
                    for r in group]

        futures = [pool.submit(run_group, group) for group in groups]
        try:
            for future in futures:
                outcomes.update((o.host.label, o) for o in future.result())
        except KeyboardInterrupt:
            # Ctrl-C reaches this thread only: every host stops after its process in flight
            # (stored, like every finished one), cleans up there, and the run can resume.
            stop.set()
            for future in futures:
                future.cancel()
            raise
    return [outcomes[host.label] for host in fleet.hosts]


@dataclass(frozen=True)
class _Reached:
    """A host connected to, with its run folder there and its boot id."""

    host: Host
    connection: ssh.Connection
    workspace: ssh.Workspace
    boot_id: str


BOOT_ID = "/proc/sys/kernel/random/boot_id"


def _reach(host: Host, control: Path, console: FleetConsole) -> _Reached | HostOutcome:
    """Connect, make the run folder and read the boot id; an unreachable outcome otherwise."""
    connection = ssh.Connection(host, control)
    try:
        connection.open()
        for folder in run_folder.sweep_run_dirs(connection):
            console.say(f"[{host.label}] removed {folder} there, left by a runner that was killed")
        workspace = run_folder.open_workspace(connection)
    except (AlloclabError, OSError) as error:
        console.problem(f"[{host.label}] not measured: {error}")
        connection.close()
        return HostOutcome(host, (), str(error), reached=False)
    try:
        boot_id = connection.check_output(["cat", BOOT_ID], "reading the boot id").strip()
    except AlloclabError:
        boot_id = ""  # an old kernel: told apart by label alone
    return _Reached(host, connection, workspace, boot_id or f"label:{host.label}")


def machines(reached: Sequence[_Reached], allow_shared_host: bool) -> list[list[_Reached]]:
    """The hosts grouped by machine (boot id), each group measured one host after another;
    UsageError naming them when labels share a machine and that is not allowed: measured at
    once, each would disturb the other's numbers."""
    groups: dict[str, list[_Reached]] = {}
    for r in reached:
        groups.setdefault(r.boot_id, []).append(r)
    shared = [group for group in groups.values() if len(group) > 1]
    if shared and not allow_shared_host:
        for r in reached:
            run_folder.remove_workspace(r.connection, r.workspace)
            r.connection.close()
        named = "; ".join(", ".join(f"{r.host.label} ({r.host.address})" for r in group)
                          for group in shared)
        raise UsageError(f"these hosts are one machine (the same boot id): {named}; measured at "
                         "once they would disturb each other's numbers. Give the machine one "
                         "label, or --allow-shared-host to measure them one after another")
    return list(groups.values())


def _run_host(reached: _Reached, plans: Sequence[Plan], binary: native.ProbeBinary,
              sources: Sequence[Path], options: pipeline.RunOptions, console: FleetConsole,
              stop: threading.Event) -> HostOutcome:
    host, connection, workspace = reached.host, reached.connection, reached.workspace
    say = console.for_host(host.label)
    executor: ssh.RemoteExecutor | None = None
    summaries: list[pipeline.RunSummary] = []
    try:
        installed = ssh.install_probe(connection, workspace, binary, sources)
        how = ("this machine's build, copied" if installed.shipped == "binary"
               else "compiled there from source")
        say.say(f"{host.address} ({installed.machine}): probe {installed.binary.source_hash} "
                f"{how} with {installed.binary.compiler}")
        executor = ssh.RemoteExecutor(connection, workspace, installed, stop)
        target = _target(connection, executor)
        host_options = replace(options, machine=host.label)
        with lifetime.refreshing(lambda: run_folder.refresh_lease(connection, workspace)):
            for plan in plans:
                summaries.append(pipeline.run_plan(plan, installed.binary, host_options,
                                                   say.say, target, listener=say))
        return HostOutcome(host, tuple(summaries))
    except AlloclabError as error:
        say.problem(f"stopped: {error}")
        return HostOutcome(host, tuple(summaries), str(error))
    except KeyboardInterrupt:
        return HostOutcome(host, tuple(summaries), "interrupted")
    finally:
        if executor is not None:
            executor.close()
        if not run_folder.remove_workspace(connection, workspace):
            say.problem(f"could not remove {workspace.run_dir} there (host unreachable): the "
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
        return {**remote_facts, **{key: local[key] for key in RUNNER_FACTS},
                **dict.fromkeys(UNREAD_FACTS)}

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

