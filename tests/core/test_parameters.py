"""The parameter vocabulary: parsing with aliases, ids that survive renames, stored results of
any age, and the combinations that make no physical sense."""

from __future__ import annotations

import dataclasses

import pytest

from runner.core.combinations import find_conflict
from runner.core.kinds import Value
from runner.core.model import Scenario
from runner.core.parameters import BY_KEY, DEFAULTS, HUGE_PAGE_BYTES, PARAMETERS, upgrade_params
from runner.core.sizing import resolve_ops, scenario_memory_bytes

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
    assert (upgraded["workload"], upgraded["threads"], upgraded["tunables"]) == ("cycle", 1, "")
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
    ({"backing": "shm", "protection": "none", "access": "none", "populate": "mlock"},
     "the kernel refuses it"),
    ({"backing": "malloc", "cache": "cold"}, "has no file"),
    ({"backing": "write-file", "access": "read-all"}, "writes nothing"),
    ({"backing": "write-file", "access": "write-all", "sync": "msync"}, "use sync: fsync"),
    ({"backing": "mmap-file", "sync": "fsync"}, "use sharing: shared"),
    ({"backing": "mmap-anon", "sync": "msync"}, "has none"),
    ({"backing": "mmap-file", "sharing": "shared", "access": "read-page", "sync": "msync"},
     "writes nothing"),
    ({"access": "none", "order": "random"}, "visits none"),
    ({"protection": "none", "backing": "mmap-anon", "access": "none", "check_zero": True},
     "check_zero reads"),
    ({"grow_method": "mremap"}, "workload resize"),
    ({"grow_factor": 4}, "workload resize"),
    ({"workload": "fork", "order": "random"}, "applies to workload cycle only"),
    ({"workload": "fork", "check_zero": True}, "applies to workload cycle only"),
    ({"workload": "fork", "backing": "write-file"}, "use backing read-file"),
    ({"workload": "fork", "access": "read-page"}, "writes nothing"),
    ({"workload": "fork", "backing": "mmap-hugetlb"}, "copy-on-write of private hugetlb"),
    ({"workload": "resize", "backing": "mmap-anon"}, "realloc grows heap memory"),
    ({"workload": "resize", "grow_method": "mremap"}, "use backing mmap-anon"),
    ({"workload": "resize", "grow_method": "copy", "backing": "memfd"}, "is neither"),
    ({"threads": 2}, "each thread needs at least one"),
    ({"threads": 2, "ops": 4, "workload": "resize"}, "use threads: 1"),
    ({"threads": 2, "ops": 4, "order": "random"}, "measured with one thread"),
    ({"release": "free-but-last", "workload": "fork"}, "keeps the block allocated last"),
    ({"release": "malloc-trim-but-last", "backing": "mmap-anon"}, "gives memory back to the C"),
    ({"history": "recycled", "workload": "fork"}, "use workload: cycle and threads: 1"),
    ({"history": "recycled", "threads": 2, "ops": 4}, "an arena of its own"),
    ({"history": "recycled", "backing": "read-file"}, "its data file"),
    ({"history": "recycled", "backing": "mmap-anon", "protection": "read",
      "access": "read-page"}, "protection read forbids"),
    ({"host_warm": True, "backing": "mmap-hugetlb"}, "reserved pool"),
    ({"host_warm": True, "workload": "limits", "backing": "mmap-anon", "access": "none"},
     "leave host_warm out"),
    ({"workload": "limits", "access": "none"}, "use backing mmap-anon or mmap-file"),
    ({"workload": "limits", "backing": "memfd", "access": "none"}, "not a plain mapping"),
    ({"workload": "limits", "backing": "mmap-anon"}, "use access: none"),
    ({"workload": "limits", "backing": "mmap-anon", "access": "none", "release": "none"},
     "use release: munmap or auto"),
    ({"workload": "limits", "backing": "mmap-anon", "access": "none", "populate": "mlock"},
     "populate: mlock cannot apply"),
    ({"workload": "limits", "backing": "mmap-file", "access": "none", "cache": "cold"},
     "leave cache out"),
    ({"workload": "limits", "backing": "mmap-anon", "access": "none", "threads": 2, "ops": 4},
     "threads: 2 cannot apply"),
    ({"backing": "malloc", "protection": "read", "access": "read-page"},
     "use backing posix-memalign"),
    ({"backing": "calloc", "protection": "exec", "access": "none"}, "or an mmap backing"),
    ({"backing": "posix-memalign", "protection": "exec"}, "forbids writing"),
    ({"backing": "mmap-anon", "protection": "exec", "populate": "madv-populate-write"},
     "use populate: map-populate or mlock"),
    ({"backing": "malloc", "advice": "willneed"}, "from the C heap"),
    ({"backing": "mmap-file", "advice": "madv-populate-read", "protection": "none",
      "access": "none"}, "MADV_POPULATE_READ"),
    ({"backing": "mmap-anon", "advice": "dontneed", "populate": "map-populate"},
     "throws away"),
    ({"backing": "mmap-file", "read_buffer": 65536}, "use backing read-file"),
    ({"backing": "malloc", "read_buffer": 0}, "reads no file"),
    ({"backing": "read-file", "workload": "resize"}, "use read_buffer: whole"),
    ({"backing": "read-file", "check_zero": True}, "allocates none"),
    ({"backing": "read-file", "release": "malloc-trim"}, "its buffer is reused"),
    ({"backing": "mmap-file", "write_buffer": 65536}, "use backing write-file"),
    ({"backing": "read-file", "write_buffer": 0}, "writes no file with write()"),
    ({"backing": "write-file", "check_zero": True}, "use write_buffer: whole"),
    ({"backing": "write-file", "release": "malloc-trim"}, "or write_buffer: whole"),
    ({"backing": "write-file", "workload": "resize"}, "which workload resize does not have"),
    ({"heap_pad": "keep", "backing": "write-file"}, "write-file with write_buffer: whole"),
    ({"grow_steps": 10}, "use workload: resize, or leave grow_steps out"),
    ({"touch_grown": True, "workload": "fork"}, "leave touch_grown out"),
    ({"heap_pad": "keep", "backing": "mmap-anon"}, "allocates no heap blocks"),
    ({"heap_pad": "keep", "backing": "read-file"}, "read_buffer: whole"),
    ({"heap_pad": "keep", "workload": "resize"}, "use heap_pad: default"),
    ({"heap_pad": "keep", "threads": 2, "ops": 4}, "an arena of its own"),
    ({"heap_pad": "keep", "release": "malloc-trim"}, "use release: free"),
    ({"workload": "churn", "release": "none"}, "does not end a block"),
    ({"workload": "churn", "backing": "mmap-anon", "release": "madv-free"},
     "does not end a block"),
    ({"workload": "churn", "backing": "posix-memalign", "protection": "read",
      "access": "read-page"}, "use protection: read-write"),
    ({"workload": "churn", "threads": 2, "ops": 4}, "use threads: 1"),
    ({"workload": "churn", "history": "recycled"}, "use workload: cycle"),
    ({"workload": "churn", "order": "random"}, "applies to workload cycle only"),
    ({"workload": "churn", "backing": "write-file"}, "which workload churn does not have"),
    ({"workload": "reuse", "backing": "mmap-anon", "release": "munmap"},
     "takes the mappings away"),
    ({"workload": "reuse", "backing": "memfd", "release": "madv-dontneed"},
     "mmap-anon or dev-zero with sharing: private"),
    ({"workload": "reuse", "backing": "mmap-anon", "sharing": "shared",
      "release": "madv-dontneed"}, "mmap-anon or dev-zero with sharing: private"),
    ({"workload": "reuse", "backing": "mmap-anon", "release": "madv-free", "threads": 2,
      "ops": 2}, "use threads: 1"),
    ({"workload": "reuse", "backing": "mmap-anon", "release": "madv-free", "order": "random"},
     "applies to workload cycle only"),
])
def test_combinations_that_make_no_sense_are_refused(overrides: dict[str, Value],
                                                     reason: str) -> None:
    assert reason in str(find_conflict(params(**overrides)))


@pytest.mark.parametrize("overrides", [
    {"backing": "posix-memalign", "release": "malloc-trim"},
    {"backing": "malloc", "release": "free"},
    {"backing": "malloc", "release": "free-but-last", "ops": 64},
    {"backing": "memfd", "sharing": "shared", "populate": "madv-populate-write"},
    {"backing": "shm", "protection": "read", "access": "none", "populate": "mlock"},
    {"backing": "mmap-hugetlb", "populate": "map-populate", "release": "madv-dontneed"},
    {"backing": "mmap-anon", "thp": "huge", "populate": "mlock"},
    {"backing": "mmap-anon", "thp": "nohuge", "release": "madv-free"},
    {"backing": "mmap-file", "release": "madv-dontneed", "access": "read-page"},
    {"backing": "read-file", "cache": "cold", "order": "random", "access": "read-all"},
    {"backing": "write-file", "access": "write-page", "sync": "fsync", "cache": "cold"},
    {"backing": "mmap-file", "sharing": "shared", "access": "write-all", "sync": "msync"},
    {"backing": "shm", "sharing": "shared", "workload": "fork"},
    {"backing": "mmap-hugetlb", "sharing": "shared", "workload": "fork"},
    {"backing": "calloc", "workload": "resize", "grow_method": "copy", "grow_factor": 8},
    {"backing": "mmap-anon", "workload": "resize", "grow_method": "mremap", "thp": "huge"},
    {"backing": "malloc", "threads": 4, "ops": 4, "check_zero": True},
    {"tunables": "glibc.malloc.mmap_threshold=4096:glibc.malloc.arena_max=1"},
    {"backing": "malloc", "release": "none"},
    {"backing": "shm", "release": "none", "workload": "fork"},
    {"backing": "malloc", "history": "recycled", "check_zero": True},
    {"backing": "mmap-anon", "history": "recycled", "thp": "huge", "release": "madv-free"},
    {"backing": "mmap-anon", "host_warm": True, "thp": "huge"},
    {"backing": "read-file", "host_warm": True, "cache": "cold"},
    {"workload": "limits", "backing": "mmap-anon", "access": "none", "release": "munmap"},
    {"workload": "limits", "backing": "mmap-file", "access": "none", "sharing": "shared",
     "file_dir": "/dev/shm", "tunables": "glibc.malloc.arena_max=1"},
    {"backing": "posix-memalign", "protection": "read", "access": "read-all"},
    {"backing": "posix-memalign", "protection": "none", "access": "none", "threads": 2,
     "ops": 2},
    {"backing": "mmap-file", "protection": "exec", "access": "read-page", "populate": "mlock"},
    {"backing": "mmap-file", "protection": "read", "populate": "map-populate",
     "advice": "madv-populate-read", "access": "read-all"},
    {"backing": "memfd", "sharing": "shared", "advice": "dontneed",
     "populate": "madv-populate-write"},
    {"backing": "read-file", "read_buffer": 0, "workload": "resize"},
    {"backing": "read-file", "read_buffer": 0, "check_zero": True, "release": "malloc-trim"},
    {"backing": "read-file", "read_buffer": 4096, "order": "random", "access": "none"},
    {"backing": "read-file", "threads": 2, "ops": 2, "cache": "cold"},
    {"backing": "write-file", "write_buffer": 0, "check_zero": True, "release": "malloc-trim"},
    {"backing": "write-file", "write_buffer": 4096, "order": "random", "sync": "fsync"},
    {"backing": "write-file", "threads": 2, "ops": 2, "sync": "none"},
    {"heap_pad": "keep", "backing": "write-file", "write_buffer": 0},
    {"backing": "mmap-anon", "workload": "resize", "grow_method": "mremap", "grow_steps": 10,
     "touch_grown": True},
    {"backing": "malloc", "workload": "resize", "grow_steps": 3, "grow_factor": 4},
    {"heap_pad": "keep", "backing": "calloc", "release": "free-but-last"},
    {"heap_pad": "keep", "backing": "read-file", "read_buffer": 0, "cache": "cold"},
    {"heap_pad": "keep", "workload": "churn", "backing": "posix-memalign"},
    {"workload": "churn", "backing": "malloc", "access": "none"},
    {"workload": "churn", "backing": "calloc", "release": "malloc-trim", "access": "read-all"},
    {"workload": "churn", "backing": "mmap-anon", "thp": "huge", "populate": "mlock"},
    {"workload": "churn", "backing": "mmap-file", "access": "read-page", "cache": "cold"},
    {"workload": "churn", "backing": "read-file", "read_buffer": 0},
    {"workload": "churn", "backing": "shm", "sharing": "shared", "host_warm": True},
    {"workload": "reuse", "backing": "mmap-anon", "release": "madv-free"},
    {"workload": "reuse", "backing": "mmap-anon", "release": "madv-dontneed", "host_warm": True},
])
def test_combinations_that_make_sense_are_accepted(overrides: dict[str, Value]) -> None:
    assert find_conflict(params(**overrides)) is None


@pytest.mark.parametrize(("key", "raw", "message"), [
    ("threads", 0, "at least 1"),
    ("threads", 257, "at most 256"),
    ("threads", "auto", "not a whole number"),
    ("grow_factor", 1, "at least 2"),
    ("grow_factor", True, "not a whole number"),
    ("tunables", "mmap_threshold=4096", "glibc tunables like"),
    ("tunables", "glibc.malloc.mmap_threshold=1:", "glibc tunables like"),
    ("tunables", 4096, "glibc tunables like"),
])
def test_new_kinds_say_what_they_accept(key: str, raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BY_KEY[key].parse(raw)


def test_read_buffer_is_a_size_in_whole_4kib_or_whole() -> None:
    read_buffer = BY_KEY["read_buffer"]
    assert read_buffer.parse("64KiB") == 65536
    assert read_buffer.parse(4096) == 4096
    assert read_buffer.parse("64MiB") == 64 * MiB
    assert read_buffer.parse("whole") == 0
    assert read_buffer.format(0) == "whole"
    assert read_buffer.label_text(MiB) == "read_buffer=1MiB"
    for bad in ("2KiB", 6000, "128MiB", "all"):
        with pytest.raises(ValueError, match="from 4KiB to 64MiB in whole 4KiB, or whole"):
            read_buffer.parse(bad)


def test_read_file_ids_change_and_other_ids_stay() -> None:
    """read-file scenarios stored before read_buffer read whole blocks: upgraded, they say
    whole and keep their ids; with today's reused buffer they get new ids. Other backings
    never set read_buffer, and advice is new: their ids are what they were."""
    old = {"backing": "read-file", "size_bytes": 4 * MiB, "sharing": "private",
           "protection": "read-write", "populate": "none", "access": "read-all", "ops": 1,
           "file_dir": "/tmp", "thp": "default", "release": "auto", "workload": "cycle",
           "cache": "warm", "order": "sequential", "sync": "none", "grow_method": "realloc",
           "grow_factor": 2, "check_zero": False, "threads": 1, "tunables": ""}
    upgraded = upgrade_params(old)
    assert upgraded["read_buffer_bytes"] == 0
    assert upgrade_params(upgraded) == upgraded
    whole = Scenario(**upgraded)  # type: ignore[arg-type]
    assert whole.id == "ce74ec8b4290"  # the id probe version 3 gave it
    assert dataclasses.replace(whole, read_buffer_bytes=MiB).id != whole.id
    mapped = upgrade_params({**old, "backing": "mmap-file"})
    assert mapped["read_buffer_bytes"] == MiB
    assert Scenario(**mapped).id == "9e587803569d"  # type: ignore[arg-type]


def test_write_file_ids_stay_when_stored_before_write_buffer() -> None:
    """write-file before probe version 6 wrote a heap block as large as the block: stored
    runs upgrade to write_buffer whole and keep their ids; the reused buffer gets new ones."""
    old = {"backing": "write-file", "size_bytes": 16 * MiB, "access": "write-all",
           "sync": "fsync", "read_buffer_bytes": MiB}
    upgraded = upgrade_params(old)
    assert upgraded["write_buffer_bytes"] == 0
    whole = Scenario(**upgraded)  # type: ignore[arg-type]
    assert whole.id == "168cccf3dd48"  # the id probe version 5 gave it
    assert dataclasses.replace(whole, write_buffer_bytes=MiB).id != whole.id
    assert upgrade_params({**old, "backing": "mmap-file"})["write_buffer_bytes"] == MiB


def test_whole_and_text_values_parse() -> None:
    assert BY_KEY["threads"].parse(8) == 8
    assert BY_KEY["tunables"].parse("") == ""
    both = "glibc.malloc.mmap_threshold=131072:glibc.malloc.arena_max=2"
    assert BY_KEY["tunables"].parse(both) == both


def test_scenario_field_defaults_are_the_parameter_defaults() -> None:
    """Scenario's later fields default like their Parameters (hand-built Scenarios agree)."""
    for field in dataclasses.fields(Scenario):
        if field.default is not dataclasses.MISSING:
            parameter = next(p for p in PARAMETERS if p.field == field.name)
            assert field.default == parameter.default, field.name


def test_new_parameters_keep_the_ids_of_scenarios_that_do_not_set_them() -> None:
    """history fresh and host_warm false are what the probe did before they existed."""
    plain = Scenario.from_params(params(backing="malloc", size=4096))
    assert plain.history == "fresh" and plain.host_warm is False
    assert dataclasses.replace(plain, history="recycled").id != plain.id
    assert BY_KEY["history"].label_text("recycled") == "history=recycled"
    assert BY_KEY["host_warm"].label_text(True) == "host_warm=true"
    keys = [p.key for p in PARAMETERS]
    assert keys[keys.index("history") + 1] == "host_warm"


def test_a_growth_chain_keeps_the_ids_of_single_growths() -> None:
    plain = Scenario.from_params(params(backing="malloc", workload="resize"))
    assert plain.grow_steps == 1 and plain.touch_grown is False
    chain = dataclasses.replace(plain, grow_steps=10)
    assert chain.id != plain.id != dataclasses.replace(plain, touch_grown=True).id
    assert BY_KEY["grow_steps"].label_text(10) == "grow_steps=10"
    assert chain.memory_bytes == scenario_memory_bytes(4096, plain.ops, "malloc", "resize", 2, 10)


def test_limits_needs_no_memory_for_its_untouched_blocks() -> None:
    assert scenario_memory_bytes(MiB, 4, "mmap-anon", "limits") == 0


def test_fork_and_resize_need_more_memory_than_their_blocks() -> None:
    assert scenario_memory_bytes(MiB, 4, "malloc", "fork") == 8 * MiB
    assert scenario_memory_bytes(MiB, 4, "malloc", "resize", 3) == 16 * MiB
    # a chain's peak is its last step: 512 MiB grown to 1 GiB beside it
    assert scenario_memory_bytes(MiB, 1, "malloc", "resize", 2, 10) == 1536 * MiB
    assert scenario_memory_bytes(MiB, 4, "malloc") == 4 * MiB


def test_churn_needs_one_block_but_a_file_backing_its_whole_file() -> None:
    assert scenario_memory_bytes(MiB, 64, "malloc", "churn") == MiB
    assert scenario_memory_bytes(4096, 3, "mmap-hugetlb", "churn") == HUGE_PAGE_BYTES
    assert scenario_memory_bytes(MiB, 64, "mmap-file", "churn") == 64 * MiB


def test_hugetlb_blocks_count_as_whole_huge_pages() -> None:
    assert scenario_memory_bytes(4096, 3, "mmap-hugetlb") == 3 * HUGE_PAGE_BYTES
    assert scenario_memory_bytes(4096, 3, "mmap-anon") == 3 * 4096
    # ops auto covers 16 MiB of what the blocks really take
    assert resolve_ops(0, 4096, "mmap-hugetlb") == 8
    assert resolve_ops(0, 4096, "mmap-anon") == 4096


def test_read_buffer_is_left_out_of_labels_where_it_means_nothing() -> None:
    from runner.core.model import Scenario
    from runner.core.parameters import DEFAULTS
    keys = ("backing", "read_buffer", "size")
    mapped = Scenario.from_params({**DEFAULTS, "backing": "mmap-file", "ops": 1})
    read = Scenario.from_params({**DEFAULTS, "backing": "read-file", "ops": 1})
    assert mapped.label(keys) == "mmap-file 4KiB"
    assert read.label(keys) == "read-file read_buffer=1MiB 4KiB"


def test_a_stored_word_value_reads_back() -> None:
    read_buffer = BY_KEY["read_buffer"]
    assert read_buffer.parse("whole") == 0
    assert read_buffer.parse_stored(0) == 0  # read_buffer whole, as a manifest stores it
    assert read_buffer.parse_stored(1 << 20) == 1 << 20
    with pytest.raises(ValueError, match="is not"):
        read_buffer.parse_stored(12)
    with pytest.raises(ValueError):
        read_buffer.parse_stored(False)  # a bool is not the whole number 0
