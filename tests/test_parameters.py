"""The parameter vocabulary: parsing with aliases, ids that survive renames, stored results of
any age, and the combinations that make no physical sense."""

from __future__ import annotations

import pytest

from runner.model import Scenario
from runner.parameters import (
    BY_KEY,
    DEFAULTS,
    HUGE_PAGE_BYTES,
    PARAMETERS,
    Value,
    find_conflict,
    resolve_ops,
    scenario_memory_bytes,
    upgrade_params,
)

MiB = 1 << 20


def params(**overrides: Value) -> dict[str, Value]:
    return {**DEFAULTS, "ops": 1, **overrides}


def test_populate_accepts_true_and_false_as_before() -> None:
    populate = BY_KEY["populate"]
    assert populate.parse(True) == "map-populate"
    assert populate.parse(False) == "none"
    assert populate.parse("mlock") == "mlock"
    with pytest.raises(ValueError, match=r"'yes' is not one of: none, .*mlock \(or true for "
                                         r"map-populate, false for none\)"):
        populate.parse("yes")
    with pytest.raises(ValueError):
        populate.parse(1)  # 1 is not true, even though 1 == True in Python


def test_renamed_values_keep_their_ids_and_read_back_from_old_results() -> None:
    populate = BY_KEY["populate"]
    assert populate.id_value("map-populate") is True
    assert populate.id_value("mlock") == "mlock"
    old = {"backing": "mmap-anon", "size_bytes": 4096, "sharing": "private",
           "protection": "read-write", "populate": True, "access": "write-page", "ops": 4096,
           "file_dir": "/tmp"}  # a manifest of probe version 1: no thp, no release
    upgraded = upgrade_params(old)
    assert list(upgraded) == [p.field for p in PARAMETERS]
    assert upgraded["populate"] == "map-populate"
    assert (upgraded["thp"], upgraded["release"]) == ("default", "auto")
    assert upgrade_params(upgraded) == upgraded
    scenario = Scenario(**upgraded)  # type: ignore[arg-type]
    assert scenario.id == "bdc77336b87a"  # what `populate: true` hashed to before the rename


@pytest.mark.parametrize(("overrides", "reason"), [
    ({"backing": "posix-memalign", "populate": "mlock"}, "takes memory from the C heap"),
    ({"backing": "malloc", "thp": "huge"}, "backing malloc is not"),
    ({"backing": "memfd", "thp": "nohuge"}, "use backing mmap-anon"),
    ({"backing": "mmap-anon", "thp": "huge", "populate": "map-populate"},
     "before madvise can ask for huge pages"),
    ({"backing": "malloc", "release": "munmap"}, "works on mappings"),
    ({"backing": "calloc", "release": "madv-dontneed"}, "works on mappings"),
    ({"backing": "shm", "release": "free"}, "is a mapping"),
    ({"backing": "mmap-anon", "release": "malloc-trim"}, "is a mapping"),
    ({"backing": "mmap-anon", "sharing": "shared", "release": "madv-free"},
     "private anonymous memory"),
    ({"backing": "memfd", "release": "madv-free"}, "private anonymous memory"),
    ({"backing": "mmap-anon", "populate": "mlock", "release": "madv-dontneed"},
     "locked pages"),
    ({"backing": "mmap-anon", "populate": "madv-populate-write", "protection": "read",
      "access": "read-page"}, "MADV_POPULATE_WRITE"),
])
def test_combinations_that_make_no_sense_are_refused(overrides: dict[str, Value],
                                                     reason: str) -> None:
    assert reason in str(find_conflict(params(**overrides)))


@pytest.mark.parametrize("overrides", [
    {"backing": "posix-memalign", "release": "malloc-trim"},
    {"backing": "malloc", "release": "free"},
    {"backing": "memfd", "sharing": "shared", "populate": "madv-populate-write"},
    {"backing": "shm", "protection": "none", "access": "none", "populate": "mlock"},
    {"backing": "mmap-hugetlb", "populate": "map-populate", "release": "madv-dontneed"},
    {"backing": "mmap-anon", "thp": "huge", "populate": "mlock"},
    {"backing": "mmap-anon", "thp": "nohuge", "release": "madv-free"},
    {"backing": "mmap-file", "release": "madv-dontneed", "access": "read-page"},
])
def test_combinations_that_make_sense_are_accepted(overrides: dict[str, Value]) -> None:
    assert find_conflict(params(**overrides)) is None


def test_hugetlb_blocks_count_as_whole_huge_pages() -> None:
    assert scenario_memory_bytes(4096, 3, "mmap-hugetlb") == 3 * HUGE_PAGE_BYTES
    assert scenario_memory_bytes(4096, 3, "mmap-anon") == 3 * 4096
    # ops auto covers 16 MiB of what the blocks really take
    assert resolve_ops(0, 4096, "mmap-hugetlb") == 8
    assert resolve_ops(0, 4096, "mmap-anon") == 4096
