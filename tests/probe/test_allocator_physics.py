"""The probe under each allocator (parameter allocator): the malloc it calls is the one asked
for, glibc's chunk observations stay glibc's, and a small block is not a mapping of its own.

An allocator this machine lacks is skipped, the reason naming the package that installs it (a
failure when $CI is set: CI installs them).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from runner.core.model import Scenario
from runner.machine import allocators
from runner.machine.preconditions import MachineFacts, check_preconditions
from runner.probe.native import ProbeBinary
from tests.probe.running import one_iteration, scenario

PRELOADED = tuple(allocators.LIBRARIES)


def library_of(name: str) -> str:
    """The allocator's library here, or a skip that says what to install; a failure when $CI
    is set: .ci/run installs every allocator, so a skip there would hide a missing install."""
    path = allocators.find_libraries([name]).get(name)
    if path is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {allocators.install_hint(name)}")
        pytest.skip(allocators.install_hint(name))
    return path


def timed_iteration(probe: ProbeBinary, s: Scenario, library: str | None,
                    env: dict[str, str] | None = None) -> dict[str, Any]:
    """The one timed iteration of a process, after one warm-up iteration."""
    return one_iteration(probe, s, library, warmup=1, env=env)


def test_glibc_is_the_c_librarys_malloc(probe: ProbeBinary) -> None:
    observed = timed_iteration(probe, scenario(ops=64), None)["observations"]
    assert observed["malloc_from_allocator"] == 1
    assert observed["blocks_mmapped"] == 0  # glibc's chunk headers are read


@pytest.mark.parametrize("name", PRELOADED)
def test_the_preloaded_allocator_resolves_malloc(probe: ProbeBinary, name: str) -> None:
    s = scenario(allocator=name, ops=64)
    observed = timed_iteration(probe, s, library_of(name))["observations"]
    assert observed["malloc_from_allocator"] == 1
    # glibc's chunk flags mean nothing in another allocator's blocks: not reported
    assert "blocks_mmapped" not in observed and "blocks_in_thread_arena" not in observed


@pytest.mark.parametrize("name", PRELOADED)
def test_another_library_than_the_one_named_reads_0(probe: ProbeBinary, name: str) -> None:
    """Named but not preloaded (as when the loader cannot load it): malloc is glibc's, and the
    observation says so."""
    library = library_of(name)
    s = scenario(ops=64)
    observed = timed_iteration(probe, s, None,
                               {"ALLOCLAB_ALLOCATOR_LIBRARY": library})["observations"]
    assert observed["malloc_from_allocator"] == 0


def test_a_missing_allocator_is_skipped_naming_its_package() -> None:
    facts = MachineFacts(free_huge_pages=None, memlock_limit_bytes=None, euid=0,
                         thp_enabled="madvise", max_map_count=65530, kernel=(6, 1),
                         allocator_libraries={})
    reason = check_preconditions(scenario(allocator="tcmalloc"), facts)
    assert reason is not None and "apt-get install libtcmalloc-minimal4" in reason
    assert check_preconditions(scenario(), facts) is None


@pytest.mark.parametrize("name", PRELOADED)
def test_small_blocks_are_not_a_mapping_each(probe: ProbeBinary, name: str) -> None:
    """A 4 KiB block allocated, written and freed again and again: an allocator that mapped each
    block (and unmapped it at free) would fault its page in every pair, as mmap-anon does; the
    allocators keep the page and fault none once warm."""
    library = library_of(name)
    pairs = 512
    small = timed_iteration(probe, scenario(allocator=name, workload="churn", ops=pairs),
                            library)
    assert small["observations"]["malloc_from_allocator"] == 1
    assert small["phases"]["allocate"]["minor_faults"] <= pairs // 64
    mapped = timed_iteration(probe, scenario(allocator=name, workload="churn", ops=pairs,
                                             backing="mmap-anon"), library)
    assert mapped["phases"]["allocate"]["minor_faults"] >= pairs  # the contrast: one per pair


def given_back_fraction(probe: ProbeBinary, s: Scenario, library: str | None) -> float:
    """Of the memory a fresh process's first batch made resident, the share its free phase
    gave back (as free_returned_fraction, from one pristine iteration: no warm-up)."""
    iteration = one_iteration(probe, s, library)
    phases = iteration["phases"]
    resident = phases["second_pass"]["rss_bytes"] - iteration["rss_before_bytes"]
    assert resident >= s.ops * s.size_bytes // 2  # the batch was written
    return float(phases["second_pass"]["rss_bytes"] - phases["free"]["rss_bytes"]) / resident


@pytest.mark.parametrize("name", ["jemalloc", "mimalloc"])
def test_release_malloc_trim_calls_the_allocator_s_own_trim(probe: ProbeBinary,
                                                            name: str) -> None:
    """free() alone leaves a 16 MiB batch of 64 KiB blocks with the allocator; malloc-trim,
    which calls its own trim (jemalloc's purge, mi_collect), gives it back. glibc's
    malloc_trim would trim nothing of theirs: this fails if the probe called it instead."""
    library = library_of(name)
    kept = given_back_fraction(probe, scenario(allocator=name, size_bytes=64 << 10, ops=256,
                                               release="free"), library)
    trimmed = given_back_fraction(probe, scenario(allocator=name, size_bytes=64 << 10,
                                                  ops=256, release="malloc-trim"), library)
    assert kept < 0.1 and trimmed > 0.9, (kept, trimmed)
