"""Workload ipc: the probe's messages reach a peer process that shares no memory with it by
inheritance (a fresh image of the probe), through shared memory the peer opens by name, or a
pipe; the peer never outlives the probe; and the combinations that cannot work are refused.

Physical facts these tests rely on (Linux, 4 KiB pages, tmpfs without huge pages): the first
write to each page of a fresh shared-memory object takes one minor fault; a read fault of a
tmpfs mapping maps up to 16 cached pages at once (fault-around); a private mapping's writes
stay in the writer's copy; a pipe copies the bytes to the reader's own buffer.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from runner.core.choices import IPC_CONTROL_BYTES
from runner.core.combinations import find_conflict
from runner.core.kinds import Value
from runner.core.sizing import AUTO_OPS_TARGET_BYTES, resolve_ops, scenario_memory_bytes
from runner.machine.guard import file_bytes
from runner.machine.preconditions import check_preconditions
from runner.measure.datafiles import can_share
from runner.probe import execute
from runner.probe.execute import PROBE_ENV
from runner.probe.native import ProbeBinary, probe_argv
from tests.core.test_parameters import params
from tests.machine.test_preconditions import FACTS
from tests.probe.running import PAGE, good_args, measure, measured, run_raw, scenario
from tests.probe.test_execute import RUNNER, _alive, _probe_pid, _wait_gone

PEER_ARGUMENT = b"--ipc_peer"
MESSAGE_PAGES = 64
SHARING = {"shm": "shared", "memfd": "shared", "mmap-file": "shared", "pipe": "private"}


def ipc(backing: str, **fields: Any) -> Any:
    """An ipc scenario: messages of MESSAGE_PAGES pages, 8 per touching phase."""
    values: dict[str, Any] = {"backing": backing, "sharing": SHARING[backing],
                              "workload": "ipc", "access": "write-all",
                              "size_bytes": MESSAGE_PAGES * PAGE, "ops": 8}
    return scenario(**{**values, **fields})


def expected_checksum(size: int, ops: int, value: int) -> int:
    """What the peer's sums add up to over both touching phases when it read every message
    the probe wrote: message k holds byte 1 + (value + k) % 255 (runner/probe/ipc.c)."""
    total = 0
    for k in range(1, 2 * ops + 1):
        byte = 1 + (value + k) % 255
        total += (size // 8) * byte * 0x0101010101010101 + (size % 8) * byte
    return total % 2**64


@pytest.fixture
def small_shmem_pages() -> None:
    path = Path("/sys/kernel/mm/transparent_hugepage/shmem_enabled")
    if path.exists() and any(f"[{mode}]" in path.read_text()
                             for mode in ("always", "force", "within_size")):
        pytest.skip("tmpfs may use huge pages here: one fault per 2 MiB, not per page")


# --- what the peer sees ---------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("backing", ["shm", "memfd", "mmap-file", "pipe"])
def test_the_peer_reads_every_message_the_probe_wrote(probe: ProbeBinary,
                                                      backing: str) -> None:
    s = ipc(backing, size_bytes=MESSAGE_PAGES * PAGE + 12)  # a tail shorter than a word
    iterations = measure(probe, s, warmup=1, iterations=2)["iterations"]
    for index, it in enumerate(iterations):
        assert it["observations"]["peer_sees_writes"] == 1
        value = 1 + (2 * index) % 254  # the probe's value of iteration `index`
        assert it["checksum"] == expected_checksum(s.size_bytes, s.ops, value)


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["mmap-file", "shm", "memfd"])
def test_a_private_mapping_keeps_the_writers_bytes_from_the_peer(probe: ProbeBinary,
                                                                 backing: str) -> None:
    """The peer still acknowledges every message (no deadlock): it reads the object's own
    bytes (the data file's pattern, or zeros), never the writer's copy."""
    for it in measured(probe, ipc(backing, sharing="private"), 2):
        assert it["observations"]["peer_sees_writes"] == 0
        assert it["checksum"] != expected_checksum(MESSAGE_PAGES * PAGE, 8, 1)


# --- page faults ----------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.usefixtures("small_shmem_pages")
@pytest.mark.parametrize("backing", ["shm", "memfd"])
def test_shared_memory_faults_once_per_page_on_the_first_message_only(probe: ProbeBinary,
                                                                       backing: str) -> None:
    for it in measured(probe, ipc(backing), 2):
        phases, seen = it["phases"], it["observations"]
        assert MESSAGE_PAGES <= phases["first_touch"]["minor_faults"] <= MESSAGE_PAGES + 4
        assert phases["second_pass"]["minor_faults"] <= 2
        # The peer reads: fault-around maps many cached pages per fault.
        assert 1 <= seen["peer_first_touch_minor_faults"] <= MESSAGE_PAGES // 4
        assert seen["peer_second_pass_minor_faults"] <= 2


@pytest.mark.probe
def test_a_shared_file_mapping_faults_no_more_than_once_per_page(probe: ProbeBinary) -> None:
    """ext4 maps a large cached folio at once, so the first message may fault far less than
    once per page (not at all where the control page's folio holds the message too); never
    more, and the second pass finds everything mapped."""
    for it in measured(probe, ipc("mmap-file"), 2):
        phases = it["phases"]
        assert phases["first_touch"]["minor_faults"] <= MESSAGE_PAGES + 4
        assert phases["second_pass"]["minor_faults"] <= 2
        assert it["observations"]["resident_ppm_before"] == 1_000_000


@pytest.mark.probe
def test_a_pipe_fills_a_buffer_on_each_side_once(probe: ProbeBinary) -> None:
    for it in measured(probe, ipc("pipe"), 2):
        phases, seen = it["phases"], it["observations"]
        for first, second in ((phases["first_touch"]["minor_faults"],
                               phases["second_pass"]["minor_faults"]),
                              (seen["peer_first_touch_minor_faults"],
                               seen["peer_second_pass_minor_faults"])):
            assert MESSAGE_PAGES <= first <= MESSAGE_PAGES + 4
            assert second <= 2


@pytest.mark.probe
@pytest.mark.usefixtures("small_shmem_pages")
def test_the_channel_is_resident_in_the_writer_from_its_first_message_to_its_close(
        probe: ProbeBinary) -> None:
    pages = 1024
    for it in measured(probe, ipc("shm", size_bytes=pages * PAGE, ops=2), 2):
        phases = it["phases"]
        grown = phases["first_touch"]["rss_bytes"] - phases["allocate"]["rss_bytes"]
        dropped = phases["second_pass"]["rss_bytes"] - phases["free"]["rss_bytes"]
        assert 0.9 * pages * PAGE <= grown <= 1.1 * pages * PAGE
        assert 0.9 * pages * PAGE <= dropped <= 1.1 * pages * PAGE


# --- the peer's life ------------------------------------------------------------------------

def _peers(probe: ProbeBinary) -> set[int]:
    """Live peers of this test's probe binary (other engineers' probes are elsewhere)."""
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[0] == str(probe.path).encode() and PEER_ARGUMENT in argv:
            pid = int(cmdline.parent.name)
            if _alive(pid):
                found.add(pid)
    return found


def _long_argv(probe: ProbeBinary, backing: str) -> list[str]:
    """A probe that sends messages for a minute or more."""
    return probe_argv(probe, ipc(backing, ops=2000), 0, 100_000)


def _wait_for_peer(probe: ProbeBinary, within_s: float = 10.0) -> int:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        peers = _peers(probe)
        if peers:
            (peer,) = peers
            return peer
        time.sleep(0.02)
    raise AssertionError("the probe started no peer")


@pytest.mark.probe
def test_the_peer_ends_with_the_last_iteration(probe: ProbeBinary) -> None:
    before = _peers(probe)
    measured(probe, ipc("shm"), 2)
    assert _peers(probe) - before == set()


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["shm", "pipe"])
def test_the_peer_dies_with_a_probe_killed_by_sigkill(probe: ProbeBinary,
                                                      backing: str) -> None:
    process = subprocess.Popen(_long_argv(probe, backing), env=dict(PROBE_ENV),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        peer = _wait_for_peer(probe)
        time.sleep(0.2)  # past the peer's start, where it ties itself to the probe
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert _wait_gone(peer), "the peer outlived its probe"
    finally:
        process.kill()
        process.wait()


@pytest.mark.probe
def test_probe_and_peer_die_with_a_runner_killed_by_sigkill(probe: ProbeBinary) -> None:
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, *_long_argv(probe, "memfd")],
                              cwd=Path(__file__).parents[2])
    try:
        probe_pid = _probe_pid(runner.pid)
        peer = _wait_for_peer(probe)
        time.sleep(0.2)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        assert _wait_gone(probe_pid), "the probe outlived its runner"
        assert _wait_gone(peer), "the peer outlived its probe"
    finally:
        runner.kill()
        runner.wait()


def _peer_argv(probe: ProbeBinary) -> list[str]:
    """The peer's command line, as the probe starts it (run here by hand)."""
    return [*probe_argv(probe, ipc("shm"), 0, 1), PEER_ARGUMENT.decode()]


@pytest.mark.probe
def test_the_peer_keeps_a_time_limit_of_its_own(probe: ProbeBinary) -> None:
    """Waiting for orders that never come, the peer ends at the limit it was given."""
    env = {**PROBE_ENV, execute.TIME_LIMIT_VARIABLE: "1"}
    peer = subprocess.Popen(_peer_argv(probe), env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert peer.wait(timeout=10) == -signal.SIGALRM
    finally:
        peer.kill()
        peer.wait()


@pytest.mark.probe
def test_a_peer_whose_probe_is_already_gone_exits_at_once(probe: ProbeBinary) -> None:
    """Had the probe died before the peer's PR_SET_PDEATHSIG took effect, nothing holds its
    order pipe open: the peer reads the end of it and exits."""
    done = subprocess.run(_peer_argv(probe), env=dict(PROBE_ENV), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=10, check=False)
    assert done.returncode == 0 and done.stdout == b""


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["shm", "pipe"])
def test_a_peer_that_dies_fails_the_probe_instead_of_hanging_it(probe: ProbeBinary,
                                                                backing: str) -> None:
    process = subprocess.Popen(_long_argv(probe, backing), env=dict(PROBE_ENV),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        peer = _wait_for_peer(probe)
        os.kill(peer, signal.SIGKILL)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 3
        assert "probe: the ipc peer was killed by signal 9" in stderr
    finally:
        process.kill()
        process.wait()


# --- refusals -------------------------------------------------------------------------------

IPC = {"workload": "ipc", "access": "write-all"}


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"backing": "pipe"}, "use workload: ipc"),
    ({"backing": "pipe", "workload": "fork"}, "use workload: ipc"),
    ({**IPC, "backing": "mmap-anon"}, "use backing shm, memfd, mmap-file or pipe"),
    ({**IPC, "backing": "malloc"}, "use backing shm, memfd, mmap-file or pipe"),
    ({"workload": "ipc", "backing": "shm", "access": "write-page"}, "use access: write-all"),
    ({**IPC, "backing": "memfd", "release": "madv-dontneed"}, "use release: auto or munmap"),
    ({**IPC, "backing": "shm", "populate": "map-populate"}, "leave populate out"),
    ({**IPC, "backing": "shm", "advice": "willneed"}, "leave advice out"),
    ({**IPC, "backing": "shm", "protection": "read"}, "leave protection out"),
    ({**IPC, "backing": "pipe", "sharing": "shared"}, "leave sharing out"),
    ({**IPC, "backing": "mmap-file", "cache": "cold"}, "use cache: warm"),
    ({**IPC, "backing": "shm", "threads": 2, "ops": 2}, "use threads: 1"),
    ({**IPC, "backing": "shm", "order": "random"}, "applies to workload cycle only"),
    ({**IPC, "backing": "shm", "history": "recycled"}, "use workload: cycle"),
])
def test_ipc_combinations_that_cannot_work_are_refused(overrides: dict[str, Value],
                                                       reason: str) -> None:
    found = find_conflict(params(**overrides))
    assert found is not None and reason in found, found


@pytest.mark.parametrize("overrides", [
    {**IPC, "backing": "shm", "sharing": "shared"},
    {**IPC, "backing": "memfd", "sharing": "private"},
    {**IPC, "backing": "mmap-file", "sharing": "private", "release": "munmap"},
    {**IPC, "backing": "pipe", "host_warm": True, "tunables": "glibc.malloc.arena_max=1"},
])
def test_ipc_combinations_that_work_are_accepted(overrides: dict[str, Value]) -> None:
    assert find_conflict(params(**overrides)) is None


def _ipc_args(**overrides: str) -> list[str]:
    return good_args(**{"workload": "ipc", "backing": "shm", "sharing": "shared",
                         "access": "write-all", **overrides})


@pytest.mark.probe
@pytest.mark.parametrize("args", [
    good_args(backing="pipe"),
    _ipc_args(backing="mmap-anon"),
    _ipc_args(backing="malloc", sharing="private", release="free"),
    _ipc_args(access="read-all"),
    _ipc_args(populate="map-populate"),
    _ipc_args(release="madv-dontneed"),
    _ipc_args(backing="pipe"),  # a pipe is not a mapping: sharing private
    _ipc_args(backing="mmap-file", cache="cold"),
    _ipc_args(threads="2", ops="2"),
])
def test_the_probe_refuses_what_ipc_cannot_do(probe: ProbeBinary, args: list[str]) -> None:
    result = run_raw(probe, args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and result.stderr.startswith("probe: ")


@pytest.mark.probe
def test_the_probe_takes_a_good_ipc_command_line(probe: ProbeBinary) -> None:
    result = run_raw(probe, _ipc_args())
    assert result.returncode == 0, result.stderr


# --- the runner's view ----------------------------------------------------------------------

def test_ops_auto_moves_16_mib_per_phase_and_memory_counts_both_sides() -> None:
    assert resolve_ops(0, 1 << 20, "shm") * (1 << 20) == AUTO_OPS_TARGET_BYTES
    assert scenario_memory_bytes(1 << 20, 16, "pipe", "ipc") == 2 << 20


def test_an_ipc_data_file_is_one_message_and_its_own() -> None:
    s = ipc("mmap-file", sharing="private", size_bytes=1 << 20, ops=16)
    assert file_bytes(s) == IPC_CONTROL_BYTES + (1 << 20)
    assert not can_share(s)  # the control page is written, even for private mappings


def test_ipc_maps_one_channel_however_many_messages() -> None:
    assert check_preconditions(ipc("memfd", ops=1 << 20), FACTS) is None
