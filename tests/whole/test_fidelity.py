"""bench/fidelity.py: its verdicts (pure), and each family's two sides doing the same kernel
work end to end, at small sizes (faults and cache state, never timings)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from bench import fidelity
from bench.fidelity import FAMILIES, Family, Runner, Series
from runner.core.model import PHASES
from runner.machine import preconditions
from runner.probe.native import ProbeBinary, build_probe

MIB = 1 << 20
BY_NAME = {family.name: family for family in FAMILIES}


def rounds(pairs: list[tuple[int, int]], faults: tuple[int, int] = (100, 100),
           cached_ppm: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """Synthetic rounds: (alloclab ns, plain ns) per round, the faults of each side."""
    out = []
    for index, (probe_ns, plain_ns) in enumerate(pairs):
        observations = {} if cached_ppm is None else {"resident_ppm_before": cached_ppm[0]}
        plain_extra = {} if cached_ppm is None else {"resident_ppm_before": cached_ppm[1]}
        out.append({"round": index, "first": "alloclab" if index % 2 == 0 else "plain",
                    "alloclab": {"ns": probe_ns, "minor_faults": faults[0],
                                 "extra": {"observations": observations}},
                    "plain": {"ns": plain_ns, "minor_faults": faults[1], "extra": plain_extra}})
    return out


def series(family: Family, data: list[dict[str, Any]]) -> Series:
    return Series(family, fidelity.build_scenario(family), rounds=data)


def test_every_family_is_a_scenario_alloclab_can_express_with_a_phase_it_reports() -> None:
    for entry in fidelity.prepare(FAMILIES):
        assert entry.scenario is not None, entry.problem
        assert entry.family.phase in PHASES
        assert entry.family.work_pages >= 1


def test_the_families_the_bench_promises_are_there() -> None:
    assert {"map-populate", "malloc-64m", "thp", "map-file-cold", "malloc-1m-reuse",
            "grow-mremap", "grow-realloc"} <= set(BY_NAME)
    assert len(BY_NAME) == len(FAMILIES)


def test_a_ratio_within_the_bound_passes_and_one_past_it_fails_either_way() -> None:
    family = BY_NAME["first-touch"]
    assert fidelity.summarize(series(family, rounds([(1010, 1000)] * 5)))["verdict"] == "PASS"
    for ratio in (1.05, 0.95):
        summary = fidelity.summarize(series(family, rounds([(int(1000 * ratio), 1000)] * 5)))
        assert summary["verdict"] == "FAIL"
        assert "outside 1 ± 3%" in summary["reason"]


def test_the_order_within_a_pair_cancels_and_a_real_difference_does_not() -> None:
    """Rounds alternate who runs first; the first of a pair runs 15% slower. Equal sides
    then give ratios 1.15 and 1/1.15 with some spread, whose plain median may land anywhere
    between: the balanced ratio is 1 and the effect 1.15. A probe 5% slower stays 1.05."""
    spread = [0.99, 1.0, 1.01, 1.0, 0.995, 1.005]
    first = ["alloclab" if k % 2 == 0 else "plain" for k in range(12)]
    for true_ratio in (1.0, 1.05):
        ratios = [true_ratio * (1.15 if who == "alloclab" else 1 / 1.15) * spread[k // 2]
                  for k, who in enumerate(first)]
        ratio, (low, high), effect = fidelity.order_balanced_ratio(ratios, first)
        assert ratio == pytest.approx(true_ratio, rel=0.01)
        assert low <= ratio <= high and high - low < 0.05
        assert effect == pytest.approx(1.15, rel=0.01)
    pairs = [(int(1050 * (1.15 if k % 2 == 0 else 1 / 1.15)), 1000) for k in range(12)]
    summary = fidelity.summarize(series(BY_NAME["first-touch"], rounds(pairs)))
    assert summary["verdict"] == "FAIL" and summary["paired_ratio"] == pytest.approx(1.05, 0.01)
    one = fidelity.order_balanced_ratio([1.02], ["plain"])
    assert one[0] == pytest.approx(1.02) and one[2] == 1.0


def test_a_documented_difference_excuses_the_ratio_but_not_different_work() -> None:
    family = dataclasses.replace(BY_NAME["first-touch"], known_difference="the probe does X")
    off = fidelity.summarize(series(family, rounds([(1100, 1000)] * 5)))
    assert off["verdict"] == "KNOWN" and "the probe does X" in off["reason"]
    assert fidelity.summarize(series(family, rounds([(1000, 1000)] * 5)))["verdict"] == "PASS"
    pages = family.work_pages
    unequal = fidelity.summarize(series(family, rounds([(1100, 1000)] * 5,
                                                       faults=(pages, pages // 2))))
    assert unequal["verdict"] == "FAIL" and "page faults" in unequal["reason"]


def test_faults_are_compared_against_the_pages_of_the_work_not_of_the_first_block() -> None:
    """A growth chain touches 1 GiB from a 1 MiB block: 1% of its pages is the slack."""
    family = BY_NAME["grow-mremap"]
    pages = family.work_pages
    assert pages == (1 << 30) // os.sysconf("SC_PAGE_SIZE") - MIB // os.sysconf("SC_PAGE_SIZE")
    near = rounds([(1000, 1000)] * 3, faults=(pages, pages - pages // 200))
    assert fidelity.summarize(series(family, near))["verdict"] == "PASS"
    far = rounds([(1000, 1000)] * 3, faults=(pages, pages - pages // 20))
    assert fidelity.summarize(series(family, far))["verdict"] == "FAIL"


def test_a_cold_file_family_fails_when_a_side_found_the_file_cached() -> None:
    family = BY_NAME["map-file-cold"]
    cold = fidelity.summarize(series(family, rounds([(1000, 1000)] * 3, cached_ppm=(0, 0))))
    assert cold["verdict"] == "PASS"
    assert cold["cached_before_max"] == {"alloclab": 0.0, "plain": 0.0}
    warm = fidelity.summarize(series(family, rounds([(1000, 1000)] * 3,
                                                    cached_ppm=(0, 1_000_000))))
    assert warm["verdict"] == "FAIL" and "not cold" in warm["reason"]


def test_the_table_names_every_family_and_its_verdict() -> None:
    entries = [series(BY_NAME["first-touch"], rounds([(1000, 1000)] * 3)),
               series(dataclasses.replace(BY_NAME["thp"], known_difference="because"),
                      rounds([(2000, 1000)] * 3))]
    lines = fidelity.format_table(entries, [fidelity.summarize(e) for e in entries], 3, 1)
    text = "\n".join(lines)
    assert "first-touch" in text and "-> PASS" in text
    assert "-> KNOWN" in text and "because" in text
    assert lines[-1].startswith("measuring took")


def test_families_option_takes_names_and_refuses_unknown_ones() -> None:
    assert fidelity._family_list("thp, grow-mremap") == ["thp", "grow-mremap"]
    with pytest.raises(Exception, match="unknown family nope"):
        fidelity._family_list("thp,nope")


# --- both sides at small sizes ----------------------------------------------------------------

def small(family: Family, size_bytes: int, **changes: Any) -> Family:
    """The family at another block size: its spec and the baseline's argument alike."""
    plain = tuple(str(size_bytes) if arg == str(family.size_bytes) else arg
                  for arg in family.plain)
    return dataclasses.replace(family, **{"size_bytes": size_bytes, "plain": plain, **changes})


GROW_STEPS = 4
GROW_START = 256 << 10  # above glibc's first mmap threshold: realloc grows by mremap, no copies
SMALL = {
    "map-populate": small(BY_NAME["map-populate"], 16 * MIB),
    "malloc-64m": BY_NAME["malloc-64m"],  # stays above glibc's largest mmap threshold
    "thp": small(BY_NAME["thp"], 16 * MIB),
    "map-file-cold": small(BY_NAME["map-file-cold"], 16 * MIB),
    "write-file": small(BY_NAME["write-file"], 16 * MIB),
    "malloc-1m-reuse": small(BY_NAME["malloc-1m-reuse"], MIB, ops=200,
                             plain=("malloc-touch-free", str(MIB), "200")),
    **{name: small(BY_NAME[name], GROW_START, warm_bytes=GROW_START << GROW_STEPS,
                   pages=((GROW_START << GROW_STEPS) - GROW_START) // os.sysconf("SC_PAGE_SIZE"),
                   params={**BY_NAME[name].params, "grow_steps": GROW_STEPS},
                   plain=(BY_NAME[name].plain[0], str(GROW_START), str(GROW_STEPS)))
       for name in ("grow-mremap", "grow-realloc")},
}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProbeBinary, Path, Path]:
    """The probe, the baseline built with its flags, and a directory for run records."""
    directory = tmp_path_factory.mktemp("fidelity")
    probe = build_probe(directory / "probe-cache")
    return probe, fidelity.build_baseline(probe, directory), directory


def _mount_type(path: Path) -> str:
    """The filesystem type of the mount holding `path` (the longest mount point above it)."""
    best, kind = "", ""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        point = fields[1]
        inside = str(path.resolve()) == point or str(path.resolve()).startswith(
            point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


@pytest.mark.probe
@pytest.mark.parametrize("name", sorted(SMALL))
def test_both_sides_of_a_family_take_the_same_faults(
        programs: tuple[ProbeBinary, Path, Path], name: str) -> None:
    """Each new family's probe scenario and baseline loop, run once each as the bench runs
    them (a data file for the file family, memory warmed where the family warms it), take
    the same page faults in their timed windows: the same kernel work."""
    family = SMALL[name]
    thp = preconditions.read_facts().thp_enabled
    if family.params.get("thp") == "huge" and thp not in ("madvise", "always"):
        pytest.skip(f"THP enabled is {thp}: MADV_HUGEPAGE cannot take effect")
    if name != "thp" and thp == "always":
        pytest.skip("THP is 'always': anonymous memory may come in 2 MiB pages")
    if fidelity.DATA_FILE in family.plain and _mount_type(Path(fidelity.FILE_DIR)) in (
            "tmpfs", "ramfs", ""):
        pytest.skip(f"{fidelity.FILE_DIR} is not on a disk: its pages cannot be dropped")
    entry = series(family, [])
    files: dict[str, Path] = {}
    try:
        fidelity.write_data_files([entry], Path(fidelity.FILE_DIR), files)
        fidelity.measure([entry], Runner(*programs, files), rounds=1, warmup_rounds=0)
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)
    summary = fidelity.summarize(entry)
    assert "page faults" not in summary["reason"] and "not cold" not in summary["reason"]
    faults = {side: entry.rounds[0][side]["minor_faults"] for side in fidelity.SIDES}
    page = os.sysconf("SC_PAGE_SIZE")
    pages = family.work_pages
    if name == "thp":  # one fault per 2 MiB, on both sides
        assert faults["alloclab"] == faults["plain"] == family.size_bytes // (2 * MIB)
    elif name == "malloc-1m-reuse":  # the first two pairs fault the chunk; the rest reuse it
        assert 0 < faults["alloclab"] <= 3 * MIB // page
    elif name == "write-file":  # both buffers faulted before timing; the file is cached
        assert faults["alloclab"] <= 2 and faults["plain"] <= 2
    elif name == "map-file-cold":  # the kernel maps the file in chunks: fewer faults than pages
        assert 0 < faults["alloclab"] < pages
        assert summary["cached_before_max"] == {"alloclab": 0.0, "plain": 0.0}
    else:
        assert 0.95 * pages <= faults["alloclab"] <= 1.05 * pages + 8
