"""The parameter vocabulary: parsing with aliases, ids that survive renames, and stored results
of any age."""

from __future__ import annotations

import dataclasses

import pytest

from runner.core.choices import WORKLOAD_MEASURES, WORKLOADS
from runner.core.kinds import Value
from runner.core.model import Scenario
from runner.core.parameters import BY_KEY, DEFAULTS, PARAMETERS
from runner.core.sizing import scenario_memory_bytes
from runner.core.upgrade import upgrade_params

MiB = 1 << 20


def params(**overrides: Value) -> dict[str, Value]:
    return {**DEFAULTS, "ops": 1, **overrides}


def test_populate_accepts_true_and_false_as_before() -> None:
    populate = BY_KEY["populate"]
    assert populate.parse(True) == "map-populate"
    assert populate.parse(False) == "none"
    assert populate.parse("mlock") == "mlock"
    with pytest.raises(ValueError, match=r"'yes' is not one of: none, .*mlock-onfault \(or "
                                         r"true for map-populate, false for none\)"):
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


def test_every_workload_says_what_its_allocate_phase_holds() -> None:
    """plan and the experiment pages print these: a workload without one would print nothing."""
    assert set(WORKLOAD_MEASURES) == set(WORKLOADS)
    assert all(sentence.startswith("allocate") for sentence in WORKLOAD_MEASURES.values())
