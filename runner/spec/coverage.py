"""How much of a matrix survives its dropped combinations: the warnings `validate`, `plan` and
`run` print when a spec quietly measures less than it asks for.

A matrix point that find_conflict refuses is dropped, never run (runner.spec.matrix). That is
right for the odd point, but two outcomes change what the experiment answers, and each gets one
warning line naming the file, what collapsed, the rule that dropped it and the fix:

- an axis collapses: the matrix gives it several values, and after the drops (and the include
  entries) every scenario has the same one, so a chart with that axis on x or as a series
  shows a single point or line;
- most points are dropped: more than half of the points the matrix lists (after `exclude`) are
  refused.

`--strict` (validate, run) makes any warning fail the command with exit status 2 before
anything runs. Pure: plans in, warnings out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from runner.core.kinds import Value
from runner.core.model import DroppedCombination, Plan
from runner.core.parameters import BY_KEY
from runner.spec.matrix import count_points


@dataclass(frozen=True)
class PlanWarning:
    """One cause of a spec measuring less than it asks for, as one line."""

    source: str  # the spec file
    what: str  # what collapsed or was lost
    rule: str  # the reason find_conflict gave for the drops
    fix: str

    def __str__(self) -> str:
        return f"{self.source}: warning: {self.what}: {self.rule} (fix: {self.fix})"


def find_warnings(plan: Plan) -> tuple[PlanWarning, ...]:
    """Every collapsed axis of `plan`'s matrix, then whether most of its points were dropped."""
    warnings = [w for key, values in plan.spec.matrix
                if (w := _collapsed_axis(plan, key, values)) is not None]
    most = _most_dropped(plan)
    return (*warnings, *([most] if most is not None else []))


def _collapsed_axis(plan: Plan, key: str, values: Sequence[Value]) -> PlanWarning | None:
    """A warning when `key` has several values in the matrix, one in the scenarios, and drops
    (not `exclude`, which is deliberate) took the others."""
    kept = {scenario.params()[key] for scenario in plan.scenarios}
    if len(set(values)) < 2 or len(kept) != 1:
        return None
    lost = [v for v in dict.fromkeys(values) if v not in kept]
    culprits = [d for d in plan.dropped if dict(d.params)[key] in lost]
    if not culprits:
        return None
    parameter = BY_KEY[key]
    (value,) = kept
    named = " and ".join(parameter.format(v) for v in lost)
    return PlanWarning(
        plan.spec.source,
        f"matrix.{key} collapses to one value, {parameter.format(value)}{_charts_using(plan, key)}"
        f": every {key} {named} point is dropped by",
        _main_rule(culprits),
        f"make {key} {named} measurable as the rule says, or set {key}: "
        f"{parameter.format(value)} in fixed to ask only for what runs")


def _charts_using(plan: Plan, key: str) -> str:
    """" (so charts[0]'s x axis has one point)" for the charts that plot `key`."""
    uses = [f"charts[{i}]'s x axis has one point" if chart.x == key
            else f"charts[{i}] has one {key} series"
            for i, chart in enumerate(plan.spec.charts) if key == chart.x or key in chart.series]
    return f" (so {', '.join(uses)})" if uses else ""


def _most_dropped(plan: Plan) -> PlanWarning | None:
    """A warning when more than half of the matrix's points (after exclude) are dropped."""
    dropped = len(plan.dropped)
    points = count_points(plan.spec)
    if 2 * dropped <= points:
        return None
    return PlanWarning(
        plan.spec.source,
        f"{dropped} of the matrix's {points} points cannot be measured, most of them by",
        _main_rule(plan.dropped),
        "add an exclude entry for the combinations not meant to run, or change what the rule "
        "names")


def _main_rule(dropped: Sequence[DroppedCombination]) -> str:
    """The commonest reason among `dropped`, and how many others there are."""
    reasons = Counter(d.reason for d in dropped)
    (rule, _), *others = reasons.most_common()
    return rule + (f"; and {len(others)} other reason(s), listed with the dropped points"
                   if others else "")
