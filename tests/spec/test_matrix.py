"""Matrix expansion: the documented order, exclude, include, dropped points, ids, labels, plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from runner.core.combinations import find_conflict
from runner.core.errors import SpecError
from runner.core.kinds import Value
from runner.core.model import ExperimentSpec, Repetitions, Scenario
from runner.core.parameters import DEFAULTS, PARAMETERS
from runner.spec.load import load_spec
from runner.spec.matrix import expand, format_plan

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


def make_spec(matrix: Mapping[str, Sequence[Value]], *, fixed: Mapping[str, Value] | None = None,
              exclude: Sequence[Mapping[str, Value]] = (),
              include: Sequence[Mapping[str, Value]] = (), name: str = "t",
              processes: int = 5) -> ExperimentSpec:
    return ExperimentSpec(
        name=name, title="T", question="Q?", source=f"{name}.yaml",
        matrix=tuple((key, tuple(values)) for key, values in matrix.items()),
        fixed=tuple((fixed or {}).items()),
        exclude=tuple(tuple(entry.items()) for entry in exclude),
        include=tuple(tuple(entry.items()) for entry in include),
        repetitions=Repetitions(processes=processes),
    )


def picked(scenarios: Sequence[Scenario], *keys: str) -> list[tuple[Value, ...]]:
    return [tuple(scenario.params()[key] for key in keys) for scenario in scenarios]


def test_order_is_the_product_of_axes_as_written_last_fastest() -> None:
    spec = make_spec({"backing": ["mmap-anon", "mmap-file"], "sharing": ["private", "shared"],
                      "size": [4 * KiB, 1 * MiB]})
    plan = expand(spec)
    assert picked(plan.scenarios, "backing", "sharing", "size") == [
        ("mmap-anon", "private", 4 * KiB),
        ("mmap-anon", "private", 1 * MiB),
        ("mmap-anon", "shared", 4 * KiB),
        ("mmap-anon", "shared", 1 * MiB),
        ("mmap-file", "private", 4 * KiB),
        ("mmap-file", "private", 1 * MiB),
        ("mmap-file", "shared", 4 * KiB),
        ("mmap-file", "shared", 1 * MiB),
    ]
    assert plan.dropped == ()


def test_axis_order_follows_the_file_not_the_parameter_table() -> None:
    plan = expand(make_spec({"size": [4 * KiB, 1 * MiB], "backing": ["malloc", "calloc"]}))
    assert picked(plan.scenarios, "size", "backing") == [
        (4 * KiB, "malloc"), (4 * KiB, "calloc"), (1 * MiB, "malloc"), (1 * MiB, "calloc")]
    assert plan.label_keys == ("size", "backing")


def test_points_are_completed_from_fixed_then_defaults() -> None:
    plan = expand(make_spec({"size": [4 * KiB]}, fixed={"access": "read-all", "ops": 3}))
    (scenario,) = plan.scenarios
    assert scenario.params() == {**DEFAULTS, "size": 4 * KiB, "access": "read-all", "ops": 3}
    assert list(scenario.params()) == [p.key for p in PARAMETERS]


def test_exclude_removes_points_matching_all_its_keys() -> None:
    spec = make_spec({"backing": ["mmap-anon", "mmap-file"],
                      "populate": ["none", "map-populate"], "size": [4 * KiB, 1 * MiB]},
                     exclude=[{"backing": "mmap-file", "populate": "map-populate"},
                              {"size": 1 * MiB, "populate": "none"}])
    plan = expand(spec)
    assert picked(plan.scenarios, "backing", "populate", "size") == [
        ("mmap-anon", "none", 4 * KiB),
        ("mmap-anon", "map-populate", 4 * KiB),
        ("mmap-anon", "map-populate", 1 * MiB),
        ("mmap-file", "none", 4 * KiB),
    ]
    assert plan.dropped == (), "excluded points are not dropped points"


def test_exclude_matches_ops_auto_as_written() -> None:
    plan = expand(make_spec({"size": [4 * KiB], "ops": [0, 2]}, exclude=[{"ops": 0}]))
    assert picked(plan.scenarios, "ops") == [(2,)]


def test_impossible_points_are_dropped_with_their_reason() -> None:
    plan = expand(make_spec({"backing": ["malloc", "mmap-anon"],
                             "populate": ["none", "map-populate"]}))
    assert picked(plan.scenarios, "backing", "populate") == [
        ("malloc", "none"), ("mmap-anon", "none"), ("mmap-anon", "map-populate")]
    (dropped,) = plan.dropped
    params = dict(dropped.params)
    assert (params["backing"], params["populate"]) == ("malloc", "map-populate")
    assert [key for key, _ in dropped.params] == [p.key for p in PARAMETERS]
    assert params["ops"] == 4096, "dropped points are complete, ops resolved"
    assert dropped.reason == find_conflict(params)
    assert dropped.reason.startswith("backing malloc takes memory from the C heap, so populate")


def test_include_entries_are_appended_in_order_from_fixed_then_defaults() -> None:
    spec = make_spec({"size": [4 * KiB, 1 * MiB]}, fixed={"access": "read-page"},
                     include=[{"backing": "calloc", "size": 64 * KiB}, {"backing": "mmap-anon",
                                                                         "sharing": "shared"}])
    plan = expand(spec)
    assert picked(plan.scenarios, "backing", "size", "sharing", "access") == [
        ("malloc", 4 * KiB, "private", "read-page"),
        ("malloc", 1 * MiB, "private", "read-page"),
        ("calloc", 64 * KiB, "private", "read-page"),
        ("mmap-anon", 4 * KiB, "shared", "read-page"),
    ]


def test_include_can_add_back_an_excluded_point() -> None:
    spec = make_spec({"size": [4 * KiB, 1 * MiB]}, exclude=[{"size": 4 * KiB}],
                     include=[{"size": 4 * KiB}])
    assert picked(expand(spec).scenarios, "size") == [(1 * MiB,), (4 * KiB,)]


def test_duplicates_are_removed_keeping_the_first() -> None:
    spec = make_spec({"size": [4 * KiB, 1 * MiB]},
                     include=[{"size": 1 * MiB}, {"backing": "calloc"}, {"backing": "calloc"},
                              {"size": 1 * MiB, "ops": 0}])
    plan = expand(spec)
    assert picked(plan.scenarios, "size", "backing") == [
        (4 * KiB, "malloc"), (1 * MiB, "malloc"), (4 * KiB, "calloc")]
    assert len({scenario.id for scenario in plan.scenarios}) == 3


@pytest.mark.parametrize(("size_bytes", "ops", "resolved"), [
    (4 * KiB, 0, 4096),  # auto: 16 MiB of 4 KiB blocks
    (1 * MiB, 0, 16),
    (16 * MiB, 0, 1),
    (1 * GiB, 0, 1),  # at least one block
    (64, 0, 65536),  # at most 65536 blocks
    (4 * KiB, 7, 7),  # given: kept
])
def test_ops_auto_is_resolved_per_size(size_bytes: int, ops: int, resolved: int) -> None:
    (scenario,) = expand(make_spec({"size": [size_bytes]}, fixed={"ops": ops})).scenarios
    assert scenario.ops == resolved
    assert scenario.memory_bytes == size_bytes * resolved


def test_the_same_scenario_has_the_same_id_in_any_spec() -> None:
    first = expand(make_spec({"size": [4 * KiB, 1 * MiB], "backing": ["malloc", "calloc"]},
                             name="one"))
    second = expand(make_spec({"backing": ["calloc"]}, fixed={"size": 1 * MiB, "ops": 0},
                              exclude=(), name="two", processes=2))
    ids = {scenario.label(("size", "backing")): scenario.id for scenario in first.scenarios}
    (only,) = second.scenarios
    assert only.id == ids["1MiB calloc"]
    assert len(set(ids.values())) == 4


def test_ids_do_not_change_between_versions() -> None:
    """Stored results are matched to scenarios by id: changing this hash orphans them."""
    (scenario,) = expand(make_spec({"size": [4 * KiB]})).scenarios
    assert scenario.id == "890ca67cc1bc"
    # populate was true/false: the renamed value keeps the id it had as `populate: true`.
    (populated,) = expand(make_spec({"size": [4 * KiB], "backing": ["mmap-anon"],
                                     "populate": ["map-populate"]})).scenarios
    assert populated.id == "bdc77336b87a"


def test_label_keys_are_varying_axes_then_include_keys() -> None:
    spec = make_spec({"backing": ["mmap-anon"], "size": [4 * KiB, 1 * MiB],
                      "populate": ["none", "map-populate"]},
                     include=[{"size": 64 * KiB, "sharing": "shared", "backing": "mmap-file"}])
    plan = expand(spec)
    assert plan.label_keys == ("size", "populate", "sharing", "backing")
    assert plan.scenarios[0].label(plan.label_keys) == "4KiB populate=none private mmap-anon"
    assert plan.scenarios[-1].label(plan.label_keys) == "64KiB populate=none shared mmap-file"


def test_label_keys_fall_back_to_every_axis_when_none_varies() -> None:
    plan = expand(make_spec({"backing": ["calloc"], "size": [4 * KiB]}))
    assert plan.label_keys == ("backing", "size")
    assert plan.scenarios[0].label(plan.label_keys) == "calloc 4KiB"


def errors_of(spec: ExperimentSpec) -> tuple[str, int | None, str, str]:
    with pytest.raises(SpecError) as info:
        expand(spec)
    error = info.value
    return error.source, error.line, error.key_path, error.message


def test_an_impossible_include_entry_is_an_error_at_that_entry() -> None:
    spec = make_spec({"size": [4 * KiB]},
                     include=[{"backing": "calloc"},
                              {"backing": "mmap-anon", "protection": "read",
                               "access": "write-all"}])
    assert errors_of(spec) == (
        "t.yaml", None, "include[1]",
        "protection read forbids writing, so access write-all would crash "
        "(use access: read-page, read-all or none)")


def test_an_impossible_fixed_combination_is_an_error_at_fixed() -> None:
    spec = make_spec({"size": [4 * KiB, 1 * MiB]}, fixed={"backing": "malloc", "sharing": "shared"})
    assert errors_of(spec)[1:3] == (None, "fixed")


def test_an_all_impossible_matrix_is_an_error_at_matrix() -> None:
    spec = make_spec({"backing": ["malloc", "calloc"], "sharing": ["shared"]},
                     include=[{"backing": "mmap-anon"}])
    _, _, key_path, message = errors_of(spec)
    assert key_path == "matrix"
    assert message == ("no combination of the matrix can be measured: backing malloc takes "
                       "memory from the C heap, so sharing: shared cannot apply (use an mmap "
                       "backing, or sharing: private)")


def test_no_scenario_left_is_an_error() -> None:
    spec = make_spec({"size": [4 * KiB]}, exclude=[{"size": 4 * KiB}])
    assert errors_of(spec)[2:] == (
        "exclude", "every matrix point is excluded and no include entry adds one")


def test_format_plan() -> None:
    spec = make_spec({"backing": ["malloc", "mmap-anon"], "populate": ["none", "map-populate"],
                      "size": [4 * KiB, 1 * GiB]},
                     exclude=[{"backing": "mmap-anon", "size": 1 * GiB}],
                     include=[{"backing": "calloc", "size": 1 * MiB}], processes=3)
    plan = expand(spec)
    ids = [scenario.id for scenario in plan.scenarios]
    assert format_plan(plan) == "\n".join([
        "t (t.yaml): 5 scenarios",
        "  id            scenario                               ops  memory",
        f"  {ids[0]}  malloc populate=none 4KiB             4096   16MiB",
        f"  {ids[1]}  malloc populate=none 1GiB                1    1GiB",
        f"  {ids[2]}  mmap-anon populate=none 4KiB          4096   16MiB",
        f"  {ids[3]}  mmap-anon populate=map-populate 4KiB  4096   16MiB",
        f"  {ids[4]}  calloc populate=none 1MiB               16   16MiB",
        "measures (cycle): allocate is a batch: ops blocks allocated together (for heap backings "
        "with the heap's growth, unless heap_pad: keep), then touched, touched again and freed, "
        "each its own phase",
        "dropped 2 combinations that cannot be measured:",
        "  malloc populate=map-populate 4KiB: backing malloc takes memory from the C heap, so "
        "populate: map-populate cannot apply (use an mmap backing, or populate: none)",
        "  malloc populate=map-populate 1GiB: backing malloc takes memory from the C heap, so "
        "populate: map-populate cannot apply (use an mmap backing, or populate: none)",
        "total: 5 scenarios, 3 processes each = 15 probe runs; peak memory 1GiB per process",
    ])


def test_plan_lists_the_scenarios_this_machine_will_skip(tmp_path: Path) -> None:
    spec_path = tmp_path / "skips.yaml"
    spec_path.write_text("name: skips\ntitle: t\nquestion: q\n"
                         "matrix:\n  backing: [mmap-anon, mmap-hugetlb]\n  size: 2MiB\n")
    plan = expand(load_spec(spec_path))
    hugetlb = next(s for s in plan.scenarios if s.backing == "mmap-hugetlb")
    text = format_plan(plan, {hugetlb.id: "needs 8 free 2 MiB huge pages, 0 are free"})
    assert "skipped on this machine (1 scenario):" in text
    assert "  mmap-hugetlb: needs 8 free 2 MiB huge pages, 0 are free" in text
    processes = plan.spec.repetitions.processes
    assert f"= {2 * processes} probe runs, {processes} of them skipped here;" in text
    assert "skipped" not in format_plan(plan, {})
