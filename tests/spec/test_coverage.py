"""Warnings about a matrix that measures less than it asks for: an axis collapsed to one value by
dropped combinations, or most of its points dropped; none for a matrix that runs whole, nor
for what `exclude` removes on purpose."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from runner.core.model import ChartSpec
from runner.spec.coverage import PlanWarning, find_warnings
from runner.spec.load import load_spec
from runner.spec.matrix import count_points, expand
from tests.spec.test_matrix import make_spec

CASES = Path(__file__).parents[1] / "spec_cases" / "valid"


def test_a_matrix_that_runs_whole_warns_of_nothing() -> None:
    plan = expand(make_spec({"backing": ["malloc", "mmap-anon"], "threads": [1, 2]},
                            fixed={"workload": "churn"}))
    assert len(plan.scenarios) == 4
    assert find_warnings(plan) == ()


def test_the_reviewers_question_validates_without_a_warning() -> None:
    plan = expand(load_spec(CASES / "pair-4k-threads.yaml"))
    assert [s.label(plan.label_keys) for s in plan.scenarios] == [
        "malloc threads=1", "malloc threads=2", "mmap-anon threads=1", "mmap-anon threads=2"]
    assert find_warnings(plan) == ()


def test_an_axis_left_with_one_value_names_the_rule_the_chart_and_the_fix() -> None:
    """fork takes one thread: threads 2 is dropped everywhere, and the chart's x axis with it
    (half the points, so not most of them)."""
    spec = replace(make_spec({"backing": ["malloc", "mmap-anon"], "threads": [1, 2]},
                             fixed={"workload": "fork", "ops": 4}),
                   charts=(ChartSpec("c", "allocate_ns_per_op", "threads", ("backing",)),))
    (warning,) = find_warnings(expand(spec))
    assert warning == PlanWarning(
        "t.yaml",
        "matrix.threads collapses to one value, 1 (so charts[0]'s x axis has one point): every "
        "threads 2 point is dropped by",
        "threads share the blocks of workload cycle, run pairs of their own in workload "
        "churn or keep blocks of their own in workload fragment, and this is workload fork "
        "(use threads: 1)",
        "make threads 2 measurable as the rule says, or set threads: 1 in fixed to ask only "
        "for what runs")
    assert str(warning).startswith("t.yaml: warning: matrix.threads collapses to one value")


def test_most_points_dropped_is_one_warning_with_the_commonest_rule() -> None:
    """heap_pad keep drops mmap-anon (no heap) and threads 2 (another arena): 3 of 4 points,
    and both axes collapse: three causes, three lines."""
    spec = make_spec({"backing": ["malloc", "mmap-anon"], "threads": [1, 2]},
                     fixed={"heap_pad": "keep"})
    warnings = find_warnings(expand(spec))
    assert [w.what.split(":")[0] for w in warnings] == [
        "matrix.backing collapses to one value, malloc",
        "matrix.threads collapses to one value, 1",
        "3 of the matrix's 4 points cannot be measured, most of them by"]
    assert warnings[2].rule.startswith("heap_pad keep keeps the C heap grown, and backing "
                                       "mmap-anon allocates no heap blocks")
    assert warnings[2].rule.endswith("; and 1 other reason(s), listed with the dropped points")
    assert "add an exclude entry" in warnings[2].fix


def test_what_exclude_removes_is_deliberate_and_warns_of_nothing() -> None:
    spec = make_spec({"backing": ["malloc", "mmap-anon"], "threads": [1, 2]},
                     exclude=[{"threads": 2}])
    plan = expand(spec)
    assert count_points(spec) == 2 and not plan.dropped
    assert find_warnings(plan) == ()


def test_an_include_entry_that_keeps_an_axis_alive_prevents_the_collapse() -> None:
    """threads 2 is dropped from fork's points, but an include entry measures it (cycle): the
    axis still has two values, and 2 dropped of 4 is not most."""
    spec = make_spec({"backing": ["malloc", "mmap-anon"], "threads": [1, 2]},
                     fixed={"workload": "fork", "ops": 4},
                     include=[{"backing": "malloc", "threads": 2, "workload": "cycle"}])
    assert find_warnings(expand(spec)) == ()
