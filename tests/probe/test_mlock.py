"""mlock, MLOCK_ONFAULT and RLIMIT_MEMLOCK (populate mlock and mlock-onfault, memlock_limit):
what is pinned, what the limit counts, and refusals recorded, root included."""

from __future__ import annotations

import pytest

from runner.probe.native import ProbeBinary
from tests.probe.running import measured, scenario

MIB = 1 << 20
BLOCKS = 16


def locking(probe: ProbeBinary, populate: str, limit: int = 0) -> dict[str, int]:
    """The observations of one iteration: sixteen 1 MiB blocks, half of each block's pages
    written."""
    s = scenario(backing="mmap-anon", size_bytes=MIB, ops=BLOCKS, populate=populate,
                 touch_share_ppm=500_000, memlock_limit_bytes=limit)
    [iteration] = measured(probe, s)
    observed: dict[str, int] = iteration["observations"]
    return observed


@pytest.mark.probe
def test_mlock_pins_every_page_and_onfault_only_those_used(probe: ProbeBinary) -> None:
    whole = locking(probe, "mlock")
    assert whole["locked_bytes"] == whole["vm_locked_bytes"] == BLOCKS * MIB
    onfault = locking(probe, "mlock-onfault")
    # Half of each block's pages written: locked as they faulted, no more; the limit counts
    # every range whole.
    assert onfault["locked_bytes"] == BLOCKS * MIB // 2
    assert onfault["vm_locked_bytes"] == BLOCKS * MIB
    assert whole["mlock_refused"] == onfault["mlock_refused"] == 0


@pytest.mark.probe
@pytest.mark.parametrize("populate", ["mlock", "mlock-onfault"])
def test_past_the_scenario_s_limit_mlock_is_refused_and_counted(probe: ProbeBinary,
                                                                populate: str) -> None:
    """An 8 MiB limit holds 8 of the 16 blocks, root or not: the probe drops CAP_IPC_LOCK,
    without which root's mlock would pass any limit and this would read 0."""
    observed = locking(probe, populate, limit=8 * MIB)
    assert observed["mlock_refused"] == BLOCKS // 2
    assert observed["vm_locked_bytes"] == 8 * MIB
