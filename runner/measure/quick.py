"""The --quick profile: which scenarios a first look measures, and one line for those it leaves out.

Enough to see every scenario run and the shape of the charts in a couple of minutes, not enough
for conclusions (the report says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from runner.core.model import DroppedCombination, Plan
from runner.core.units import format_size
from runner.spec import matrix

QUICK_PROCESSES = 2  # fresh processes per scenario, one iteration each
# ... and up to this much memory per process: the large sizes take most of a full suite's
# time, and a first look does without them (they are listed as not measured, with why).
QUICK_MAX_BYTES = 64 << 20
QUICK_LEFT_OUT = "left out of --quick"  # how the reason of each such scenario begins


def quick_plan(plan: Plan) -> Plan:
    """The plan without its scenarios needing more than QUICK_MAX_BYTES per process (unless
    that is all of them), each listed as dropped with why."""
    kept = tuple(s for s in plan.scenarios if s.memory_bytes <= QUICK_MAX_BYTES)
    if not kept:
        return plan
    left = tuple(DroppedCombination(tuple(s.params().items()), (
        f"{QUICK_LEFT_OUT}: needs {format_size(s.memory_bytes)} per process (the quick "
        f"profile measures up to {format_size(QUICK_MAX_BYTES)}; a full run measures it)"))
        for s in plan.scenarios if s.memory_bytes > QUICK_MAX_BYTES)
    return replace(plan, scenarios=kept, dropped=(*plan.dropped, *left))


def quick_left_out(plans: Sequence[Plan], hint: str = "-v lists them") -> list[str]:
    """What --quick left out: one line for all the plans ("65 scenarios of 9 experiments need
    more than 64MiB per process: left out of --quick (-v lists them)"), then one line per
    scenario; nothing when it left out none."""
    lines = [f"{plan.spec.name}: not measured: {matrix.describe_dropped(plan, dropped)}"
             for plan in plans for dropped in plan.dropped
             if dropped.reason.startswith(QUICK_LEFT_OUT)]
    if not lines:
        return []
    experiments = len({line.split(":", 1)[0] for line in lines})
    scenarios = f"{len(lines)} scenario{'s' if len(lines) > 1 else ''}"
    where = f" of {experiments} experiments" if experiments > 1 else ""
    needs = "needs" if len(lines) == 1 and not where else "need"
    return [f"{scenarios}{where} {needs} more than {format_size(QUICK_MAX_BYTES)} per "
            f"process: {QUICK_LEFT_OUT} ({hint})", *lines]
