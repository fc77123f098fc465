"""Runs on other machines over SSH, end to end against a real OpenSSH server on 127.0.0.1.

The server (tests/sshd_server.py) has its own config, host key, client key and known_hosts in
a temporary folder; host keys are checked (StrictHostKeyChecking=yes). Without sshd the tests
are skipped with the reason.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from runner.analysis import noise
from runner.cli.main import main
from runner.machine.system import read_fingerprint
from runner.probe import execute, native
from runner.remote import fleet, lifetime, run_folder, ssh
from runner.remote.hosts import Host
from runner.store.select import list_runs
from tests.sshd_server import Sshd

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.probe

SPEC = """\
name: over-ssh
title: Over SSH
question: Does a run on another machine come back whole?
matrix:
  backing: [malloc, mmap-file]
fixed:
  size: 64KiB
  access: write-page
  ops: 4
  file_dir: "{file_dir}"
repetitions:
  processes: 2
  iterations: 1
timeout: 20s
charts:
  - title: touch
    metric: first_touch_minor_faults_per_page
    x: backing
"""
WEIRD = "we ird;$(touch CANARY)`touch CANARY`'\"&|<>*"


def _fleet_file(tmp_path: Path, sshd: Sshd, labels: list[str], work_dir: Path) -> Path:
    text = "parallel: 2\nhosts:\n" + "".join(
        sshd.hosts_entry(label) + f"    work_dir: {work_dir}\n" for label in labels)
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    return path


def _run_args(tmp_path: Path, spec: Path, fleet: Path) -> list[str]:
    # Every label here is this machine (loopback): measured one after another, as allowed.
    return ["run", str(spec), "--hosts", str(fleet), "--results", str(tmp_path / "results"),
            "--reports", str(tmp_path / "reports"),
            "--templates", str(ROOT / "templates"), "--seed", "5", "--allow-shared-host"]


def _setup(tmp_path: Path, sshd: Sshd, labels: list[str]) -> tuple[Path, Path, Path]:
    data_dir = tmp_path / WEIRD
    data_dir.mkdir()
    work_dir = tmp_path / "remote-work"
    work_dir.mkdir()
    spec = tmp_path / "over-ssh.yaml"
    spec.write_text(SPEC.format(file_dir=str(data_dir).replace('"', '\\"')))
    return spec, _fleet_file(tmp_path, sshd, labels, work_dir), work_dir


def test_two_hosts_in_parallel_come_back_whole_and_compare(
        tmp_path: Path, sshd: Sshd, capsys: pytest.CaptureFixture[str]) -> None:
    spec, fleet, work_dir = _setup(tmp_path, sshd, ["alpha", "beta"])
    assert main(_run_args(tmp_path, spec, fleet)) == 0
    err = capsys.readouterr().err
    assert "[alpha]" in err and "[beta]" in err
    assert "[alpha] over-ssh: verdict:" not in err  # the spec has no check: no verdict line
    assert re.search(r"recap \(2 ok\):\n  alpha  ok +1 experiment, 4 processes measured\n"
                     r"  beta   ok +1 experiment, 4 processes measured\n", err), err
    # One writer: every line is one host's, whole.
    assert all(line.startswith(("[alpha] ", "[beta] ", "recap", "  ", "probe ", "rendering",
                                "wrote ", "measured "))
               for line in err.splitlines()), err
    runs = {run.machine: run for run in list_runs(tmp_path / "results")}
    assert sorted(runs) == ["alpha", "beta"]
    local = read_fingerprint(file_dirs=[str(tmp_path / WEIRD)])
    for run in runs.values():
        assert run.finished
        assert len(run.records) == 4 and all(r.status == "ok" for r in run.records)
        pairs = {(r.scenario_id, r.process_index) for r in run.records}
        assert len(pairs) == 4
        fingerprint = run.manifest["fingerprint"]
        assert set(fingerprint) == set(local)
        # Loopback: the target is this machine, read by the probe instead of Python.
        assert fingerprint["boot_id"] == local["boot_id"]
        assert fingerprint["file_fs"] == local["file_fs"]
        probe_info = run.manifest["probe"]
        assert probe_info["shipped"] == "binary" and probe_info["target"].endswith(
            f":{sshd.port}")
        # Copied into the target's per-user cache, under its content hash.
        assert (sshd.directory / "cache" / "alloclab" / f"probe-{probe_info['source_hash']}"
                ).read_bytes() == native.build_probe().path.read_bytes()
        file_run = [r for r in run.records if r.probe and r.probe["file_fs"]]
        assert file_run, "the file backing ran in the directory with metacharacters"
    # The spec's directory reached the probe as one literal argument: nothing ran.
    assert not list(tmp_path.rglob("CANARY")) and not (Path.home() / "CANARY").exists()
    # The per-run directories there are gone.
    assert list(work_dir.iterdir()) == []
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "alpha" in index and "beta" in index
    assert main(["compare", str(runs["alpha"].path), str(runs["beta"].path)]) == 0
    assert "alpha" in capsys.readouterr().out


def test_a_killed_server_fails_processes_with_the_cause_and_a_rerun_completes(
        tmp_path: Path, sshd: Sshd, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    spec, fleet, work_dir = _setup(tmp_path, sshd, ["gamma"])
    real = ssh.RemoteExecutor.run_process
    calls = {"n": 0}

    def kill_server_after_two(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            sshd.stop()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ssh.RemoteExecutor, "run_process", kill_server_after_two)
    assert main([*_run_args(tmp_path, spec, fleet), "--no-report"]) == 1
    [partial] = list_runs(tmp_path / "results")
    assert not partial.finished
    statuses = [r.status for r in partial.records]
    assert statuses[:2] == ["ok", "ok"] and statuses[2:] == ["failed", "failed"]
    lost = partial.records[2]
    assert lost.lost_connection and "Connection refused" in lost.stderr_tail
    assert "could not remove" in capsys.readouterr().err  # the host was gone at the end

    monkeypatch.setattr(ssh.RemoteExecutor, "run_process", real)
    sshd.start()
    assert main([*_run_args(tmp_path, spec, fleet), "--no-report"]) == 0
    [run] = list_runs(tmp_path / "results")
    assert run.path == partial.path and run.finished
    pairs = [(r.scenario_id, r.process_index) for r in run.records]
    assert len(pairs) == 4 and len(set(pairs)) == 4
    assert all(r.status == "ok" for r in run.records)
    # The first run's directory stayed (unreachable); the second removed only its own.
    assert len(list(work_dir.iterdir())) == 1


def test_the_probe_fingerprint_is_the_local_one(tmp_path: Path) -> None:
    binary = native.build_probe()
    dirs = [str(tmp_path), "/dev/shm", str(tmp_path / "missing dir")]
    done = subprocess.run(native.fingerprint_argv(binary, dirs), capture_output=True, text=True,
                          env={**execute.PROBE_ENV, "MALLOC_ARENA_MAX": "2"}, check=True)
    fingerprint, facts = native.parse_fingerprint_output(done.stdout)
    local = read_fingerprint(file_dirs=dirs, environ={"MALLOC_ARENA_MAX": "2"})
    assert fingerprint == {key: local[key] for key in fingerprint}
    assert set(local) - set(fingerprint) == {*fleet.RUNNER_FACTS, *fleet.UNREAD_FACTS}
    assert facts["euid"] == os.geteuid()


def test_the_probe_is_compiled_there_when_the_architecture_differs(
        sshd: Sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    local_machine = platform.machine()
    monkeypatch.setattr(ssh.platform, "machine", lambda: f"not-{local_machine}")
    host = Host("s", sshd.destination, sshd.port, tuple(sshd.client_options.items()))
    binary = native.build_probe()
    with lifetime.control_dir() as control:
        connection = ssh.Connection(host, control)
        connection.open()
        workspace = run_folder.open_workspace(connection)
        try:
            installed = ssh.install_probe(connection, workspace, binary,
                                             native.probe_sources(ROOT / "runner" / "probe"))
            built_ns = installed.binary.path.stat().st_mtime_ns
            again = ssh.install_probe(connection, workspace, binary,
                                         native.probe_sources(ROOT / "runner" / "probe"))
            text = ssh.read_fingerprint_json(connection, installed, ["/tmp"], {})
        finally:
            assert run_folder.remove_workspace(connection, workspace)
            connection.close()
    assert installed.shipped == "source" and installed.machine == local_machine
    assert installed.binary.compiler == binary.compiler  # the target's cc: the same one here
    path = installed.binary.path
    assert path.parent == sshd.directory / "cache" / "alloclab" and path.is_file()
    # Cached by content hash: not compiled twice.
    assert again == installed and path.stat().st_mtime_ns == built_ns
    assert set(native.parse_fingerprint_output(text)[0]["file_fs"]) == {"/tmp"}
    assert not Path(workspace.run_dir).exists()


def _running(pattern: str) -> bool:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True,
                          check=False).returncode == 0


def test_a_setup_command_dies_on_the_target_when_the_runner_stops_waiting(sshd: Sshd) -> None:
    """The runner gives up on a setup command at its timeout and kills its ssh client; the
    session has no terminal, so nothing tells the target, which kills the command itself at the
    same time, its children too (the target is this machine: its processes can be seen)."""
    host = Host("w", sshd.destination, sshd.port, tuple(sshd.client_options.items()))
    marker = f"sleep {4000 + os.getpid() % 1000}.25"
    with lifetime.control_dir() as control:
        connection = ssh.Connection(host, control)
        connection.open()
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                connection.run(["sh", "-c", f"{marker}; true"], timeout_s=2)
            deadline = time.monotonic() + 10
            while _running(marker) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _running(marker)
        finally:
            subprocess.run(["pkill", "-f", marker], check=False)
            connection.close()


def test_an_argument_with_metacharacters_arrives_as_one_word(sshd: Sshd, tmp_path: Path) -> None:
    host = Host("q", sshd.destination, sshd.port, tuple(sshd.client_options.items()))
    with lifetime.control_dir() as control:
        connection = ssh.Connection(host, control)
        connection.open()
        try:
            done = connection.run(["printf", "%s|", WEIRD, "", "a\nb"])
        finally:
            connection.close()
    assert done.returncode == 0
    assert done.stdout.decode() == f"{WEIRD}||a\nb|"


def test_an_unknown_host_key_is_refused_with_ssh_s_reason(sshd: Sshd, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    options = {**sshd.client_options, "UserKnownHostsFile": str(known)}
    host = Host("k", sshd.destination, sshd.port, tuple(options.items()))
    with lifetime.control_dir() as control, pytest.raises(ssh.HostError) as refused:
        ssh.Connection(host, control).open()
    assert re.search(r"No \S+ host key is known for \[127.0.0.1\]:\d+ .*; Host key "
                     r"verification failed\.; check the host's key and add it to known_hosts "
                     rf"\(ssh-keyscan -p {sshd.port} 127.0.0.1\)", str(refused.value)), \
        str(refused.value)


def test_a_changed_host_key_is_refused_naming_the_offending_key(sshd: Sshd,
                                                               tmp_path: Path) -> None:
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    known = tmp_path / "known_hosts"
    kind, key = other.with_suffix(".pub").read_text().split()[:2]
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    options = {**sshd.client_options, "UserKnownHostsFile": str(known)}
    host = Host("k", sshd.destination, sshd.port, tuple(options.items()))
    with lifetime.control_dir() as control, pytest.raises(ssh.HostError) as refused:
        ssh.Connection(host, control).open()
    message = str(refused.value)
    assert f"Offending {kind.removeprefix('ssh-').upper()} key in {known}:1" in message, message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'" in message


def test_labels_of_one_machine_are_refused_unless_allowed(
        tmp_path: Path, sshd: Sshd, capsys: pytest.CaptureFixture[str]) -> None:
    spec, fleet, work_dir = _setup(tmp_path, sshd, ["one", "two"])
    args = [a for a in _run_args(tmp_path, spec, fleet) if a != "--allow-shared-host"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "these hosts are one machine (the same boot id): one (" in err and "two (" in err
    assert "--allow-shared-host" in err
    assert not (tmp_path / "results").exists() and list(work_dir.iterdir()) == []


def test_an_unreachable_host_is_in_the_recap_and_fails_the_run(
        tmp_path: Path, sshd: Sshd, capsys: pytest.CaptureFixture[str]) -> None:
    spec, fleet, _ = _setup(tmp_path, sshd, ["up"])
    with fleet.open("a") as text:  # a port nothing listens on
        text.write("  - label: down\n    host: 127.0.0.1:9\n")
    assert main([*_run_args(tmp_path, spec, fleet), "-q"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"recap \(1 ok, 1 unreachable\):\n  up    ok +1 experiment, 4 processes "
                     r"measured\n  down  unreachable  down \(127.0.0.1:9\): cannot connect: "
                     r".*Connection refused", err), err
    assert "processes" not in err.split("recap")[0].replace("[down]", "")  # -q: no progress


def test_one_connection_serves_every_process(sshd: Sshd) -> None:
    host = Host("c", sshd.destination, sshd.port, tuple(sshd.client_options.items()))
    with lifetime.control_dir() as control:
        connection = ssh.Connection(host, control)
        connection.open()
        try:
            started = time.perf_counter()
            for _ in range(5):
                assert connection.run(["true"]).returncode == 0
            per_command_s = (time.perf_counter() - started) / 5
            assert connection.alive()
            peers = connection.run(["sh", "-c", "echo $SSH_CONNECTION"]).stdout
        finally:
            connection.close()
    assert peers.strip() and per_command_s < 5  # answered through the master
    assert not connection.alive()


def test_remote_status_maps_like_a_local_process() -> None:
    ok = json.dumps({"x": 1}).encode()
    crashed = ssh.record_from_status(139, ok, "", 0.1, 10, scenario_id="s", process_index=0)
    assert crashed.status == "crashed" and crashed.signal == "SIGSEGV"
    timeout = ssh.record_from_status(137, b"", "", 10.5, 10, scenario_id="s",
                                        process_index=0)
    assert timeout.status == "timeout"
    skipped = ssh.record_from_status(4, b"", "probe: skipped: no huge pages\n", 0.1, 10,
                                        scenario_id="s", process_index=0)
    assert skipped.status == "skipped" and skipped.skip_reason == "no huge pages"
    assert ssh.record_from_status(0, ok, "", 0.1, 10, scenario_id="s",
                                     process_index=0).status == "failed"  # not probe output


def test_an_interrupted_fleet_starts_no_new_process() -> None:
    stop = threading.Event()
    stop.set()
    executor = ssh.RemoteExecutor(None, None, None, stop)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        executor.run_process(["probe"], scenario_id="s", process_index=0, timeout_s=1)


@pytest.mark.parametrize("kind", ["ini", "yaml"])
def test_an_ansible_inventory_runs_the_group_limit_picks(
        kind: str, tmp_path: Path, sshd: Sshd, capsys: pytest.CaptureFixture[str]) -> None:
    spec, _, work_dir = _setup(tmp_path, sshd, [])
    user = sshd.destination.partition("@")[0]
    options = " ".join(f"-o {k}={v}" for k, v in sshd.client_options.items())
    connection = {"ansible_host": "127.0.0.1", "ansible_port": str(sshd.port),
                  "ansible_user": user, "ansible_ssh_common_args": options,
                  "alloclab_work_dir": str(work_dir)}
    if kind == "ini":
        inventory = tmp_path / "inventory.ini"
        inventory.write_text("[lab]\nlab1\n\n[prod]\nweb1\nweb2\n\n[all:vars]\n" + "".join(
            f"{k}={v!r}\n" if " " in v else f"{k}={v}\n" for k, v in connection.items()))
    else:
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(yaml.safe_dump({"all": {"vars": connection, "children": {
            "lab": {"hosts": {"lab1": None}},
            "prod": {"hosts": {"web1": None, "web2": None}}}}}))
    args = _run_args(tmp_path, spec, inventory)
    assert main([*args, "--limit", "prod", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"recap \(2 ok\):\n  web1  ok +1 experiment, 4 processes measured\n"
                     r"  web2  ok +1 experiment, 4 processes measured\n", err), err
    assert sorted(run.machine for run in list_runs(tmp_path / "results")) == ["web1", "web2"]


BUSY_SPEC = """\
name: busy-target
title: Busy target
question: Are the probes' CPU seconds on a target counted as alloclab's own?
matrix:
  backing: [malloc, mmap-anon]
fixed:
  size: 64MiB
  access: write-page
repetitions:
  processes: 4
  iterations: 3
timeout: 20s
"""


def test_a_remote_run_records_load_and_counts_its_probes_as_its_own(
        tmp_path: Path, sshd: Sshd) -> None:
    spec = tmp_path / "busy-target.yaml"
    spec.write_text(BUSY_SPEC)
    work_dir = tmp_path / "remote-work"
    work_dir.mkdir()
    hosts = _fleet_file(tmp_path, sshd, ["idle"], work_dir)
    assert main([*_run_args(tmp_path, spec, hosts), "--no-report"]) == 0
    [run] = list_runs(tmp_path / "results")
    [session] = run.manifest["load"]
    for snapshot in (session["before"], session["after"]):
        assert None not in snapshot.values(), snapshot
    own_s = session["after"]["own_cpu_s"] - session["before"]["own_cpu_s"]
    probes_s = sum(r.wall_s for r in run.records)
    # The probes touch 64 MiB each: CPU-bound, so most of their wall time is their CPU time,
    # which the `times` of the shell that waited for them reports (about 0.8 of it here), and
    # nothing else's: what the noise check calls other work leaves the probes out. (Loopback:
    # the target's other work is this test's runner, ssh and sshd, and whoever else shares it.)
    assert 0.3 * probes_s <= own_s <= probes_s + 0.5
    assert noise.run_load([session]).other_work_cpus is not None
