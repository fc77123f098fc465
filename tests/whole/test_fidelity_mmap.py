"""mmap + munmap pairs: the probe's blocks are mappings of their own (no neighbour joined),
at any size, and the bench's mmap families compare two sides in that same situation.

A private anonymous mapping placed right next to one with the same protection and flags joins
it: mmap extends the neighbour and munmap splits it again, other kernel work than creating
and removing a mapping (an untouched 4 KiB pair costs about a quarter more joined). These
tests assert where the blocks went (lines of /proc/self/maps, page faults), never timings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import fidelity
from bench.fidelity import FAMILIES, Runner, Series
from runner.probe.native import ProbeBinary
from tests.probe.running import PAGE, measured, probe, scenario
from tests.whole.test_fidelity import programs, rounds, series

__all__ = ["probe", "programs"]  # fixtures, used by name

MIB = 1 << 20
BY_NAME = {family.name: family for family in FAMILIES}
MMAP_FAMILIES = ("mmap-4k", "mmap-4k-untouched")


# --- the probe ---------------------------------------------------------------------------------

@pytest.mark.probe
@pytest.mark.parametrize("size", [64, PAGE, 16 * PAGE, MIB, 3 * MIB])
@pytest.mark.parametrize("protection", ["read-write", "none"])
def test_every_churn_block_is_a_mapping_of_its_own(probe: ProbeBinary, size: int,
                                                   protection: str) -> None:
    """Blocks too large for the gap below the probe's fence page go below the lowest mapping,
    which is anonymous read-write memory (the probe's own, ld.so's); PROT_NONE blocks would
    join a PROT_NONE fence. Both are kept apart: the block the loop maps adds a mapping. A block
    smaller than a page takes a whole page, and is kept apart as one."""
    s = scenario(backing="mmap-anon", workload="churn", size_bytes=size, ops=64, access="none",
                 protection=protection)
    for iteration in measured(probe, s, 2):
        assert iteration["observations"]["joined_neighbour"] == 0


@pytest.mark.probe
@pytest.mark.parametrize("size", [64, PAGE, 16 * PAGE, MIB])
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


# --- the bench ---------------------------------------------------------------------------------

def test_the_untouched_family_is_the_touched_one_without_the_store() -> None:
    touched, untouched = BY_NAME["mmap-4k"], BY_NAME["mmap-4k-untouched"]
    assert untouched.params == {**touched.params, "access": "none"}
    assert (untouched.size_bytes, untouched.ops, untouched.phase) == (
        touched.size_bytes, touched.ops, touched.phase)
    assert untouched.plain[1:] == touched.plain[1:] and untouched.plain[0] != touched.plain[0]


def joined_rounds(data: list[dict[str, object]], probe_joined: int,
                  plain_joined: int) -> list[dict[str, object]]:
    """Synthetic rounds whose sides report whether their block joined a neighbour."""
    for entry in data:
        alloclab, plain = entry["alloclab"], entry["plain"]
        assert isinstance(alloclab, dict) and isinstance(plain, dict)
        alloclab["extra"]["observations"]["joined_neighbour"] = probe_joined
        plain["extra"]["joined_neighbour"] = plain_joined
    return data


def test_sides_whose_blocks_joined_differently_fail_whatever_the_ratio() -> None:
    family = BY_NAME["mmap-4k-untouched"]
    same = fidelity.summarize(series(family, joined_rounds(rounds([(1000, 1000)] * 4), 0, 0)))
    assert same["verdict"] == "PASS"
    assert same["joined_neighbour_rounds"] == {"alloclab": 0, "plain": 0}
    for probe_joined, plain_joined in ((0, 1), (1, 0)):
        summary = fidelity.summarize(series(family, joined_rounds(
            rounds([(1000, 1000)] * 4), probe_joined, plain_joined)))
        assert summary["verdict"] == "FAIL"
        assert "joined a neighbouring mapping" in summary["reason"]
    table = "\n".join(fidelity.format_table([series(family, joined_rounds(
        rounds([(1000, 1000)] * 4), 0, 1))], [summary], 4, 0))
    assert "joined a neighbouring mapping" in table


@pytest.mark.probe
@pytest.mark.parametrize("name", MMAP_FAMILIES)
def test_both_sides_map_a_mapping_of_its_own_and_fault_alike(
        programs: tuple[ProbeBinary, Path, Path], name: str) -> None:
    """Each side, run once as the bench runs it (fewer pairs): neither side's block joined a
    neighbouring mapping, and the timed window took one fault per pair with the store and
    none without (the first pair's page tables aside)."""
    ops = 2000
    family = BY_NAME[name]
    family = dataclasses.replace(family, ops=ops, plain=(*family.plain[:-1], str(ops)))
    entry = Series(family, fidelity.build_scenario(family))
    fidelity.measure([entry], Runner(*programs, {}), rounds=1, warmup_rounds=0)
    summary = fidelity.summarize(entry)
    assert "page faults" not in summary["reason"]
    assert "neighbouring mapping" not in summary["reason"]
    assert summary["joined_neighbour_rounds"] == {"alloclab": 0, "plain": 0}
    faults = {side: entry.rounds[0][side]["minor_faults"] for side in fidelity.SIDES}
    for side in fidelity.SIDES:
        if name == "mmap-4k":
            assert ops <= faults[side] <= ops + 4
        else:
            assert faults[side] <= 4
