"""mmap + munmap pairs: the probe's blocks are mappings of their own (no neighbour joined),
at any size.

A private anonymous mapping placed right next to one with the same protection and flags joins
it: mmap extends the neighbour and munmap splits it again, other kernel work than creating
and removing a mapping (an untouched 4 KiB pair costs about a quarter more joined). These
tests assert where the blocks went (lines of /proc/self/maps, page faults), never timings.
"""

from __future__ import annotations

import pytest

from runner.probe import ProbeBinary
from tests.test_probe import PAGE, measured, probe, scenario

__all__ = ["probe"]  # the fixture, used by name

MIB = 1 << 20


# --- the probe ---------------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("size", [PAGE, 16 * PAGE, MIB, 3 * MIB])
@pytest.mark.parametrize("protection", ["read-write", "none"])
def test_every_churn_block_is_a_mapping_of_its_own(probe: ProbeBinary, size: int,
                                                   protection: str) -> None:
    """Blocks too large for the gap below the probe's fence page go below the lowest mapping,
    which is anonymous read-write memory (the probe's own, ld.so's); PROT_NONE blocks would
    join a PROT_NONE fence. Both are kept apart: the block the loop maps adds a mapping."""
    s = scenario(backing="mmap-anon", workload="churn", size_bytes=size, ops=64, access="none",
                 protection=protection)
    for iteration in measured(probe, s, 2):
        assert iteration["observations"]["joined_neighbour"] == 0


@pytest.mark.probe
@pytest.mark.parametrize("size", [PAGE, 16 * PAGE, MIB])
def test_a_private_block_adds_a_mapping_as_a_shared_one_does(probe: ProbeBinary,
                                                           size: int) -> None:
    """Shared anonymous memory is a hidden file per mapping and never joins anything: the
    first private block of a batch must add exactly as many mappings (making the neighbours
    unjoinable adds none)."""
    def mappings(sharing: str) -> set[int]:
        s = scenario(backing="mmap-anon", sharing=sharing, size_bytes=size, access="none")
        return {it["observations"]["mappings"] for it in measured(probe, s, 2)}

    assert mappings("private") == mappings("shared")


@pytest.mark.probe
def test_churn_of_other_backings_does_not_report_joining(probe: ProbeBinary) -> None:
    (iteration,) = measured(probe, scenario(backing="memfd", sharing="shared", workload="churn",
                                            size_bytes=PAGE, ops=8, access="none"))
    assert "joined_neighbour" not in iteration["observations"]
