"""Expanding an experiment into the scenarios to run, in a documented order, and printing the plan.

`expand(spec)` builds the Plan in this order:

1. The cartesian product of the matrix axes, in the order the file writes them, the LAST axis
   varying fastest (like itertools.product): `size: [4KiB, 1MiB]`, `backing: [malloc, calloc]`
   gives 4KiB malloc, 4KiB calloc, 1MiB malloc, 1MiB calloc.
2. Points matching every key of some `exclude` entry are removed (values compare as written,
   so `ops: auto` matches auto).
3. Each remaining point is completed from `fixed`, then from the parameter defaults, and `ops`
   is resolved for its size (`resolve_ops`; a hugetlb block counts as whole huge pages).
4. Points that `find_conflict` rejects are moved to `Plan.dropped` with the reason: never run,
   never silently gone. If that leaves the matrix with nothing (or the conflict lies in `fixed`
   alone) it is an error instead, at `fixed` or `matrix`.
5. The `include` entries are appended in order, each completed from `fixed`, then defaults. An
   include entry that cannot be measured is an error at `include[i]`.
6. Duplicates (the same Scenario.id) are removed, keeping the first.

Errors are SpecErrors carrying a key path but no line: this module sees the validated spec, not
the file. runner.spec.load.load_spec runs `expand` once while loading and adds the line.

`format_plan(plan)` renders a plan as a readable table (what `alloclab plan` prints).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import product

from runner.core.choices import WORKLOAD_MEASURES
from runner.core.combinations import find_conflict
from runner.core.errors import SpecError
from runner.core.kinds import Value
from runner.core.model import DroppedCombination, ExperimentSpec, Plan, Scenario
from runner.core.parameters import DEFAULTS, PARAMETERS
from runner.core.sizing import resolve_ops
from runner.core.units import format_size

Params = dict[str, Value]
Entry = tuple[tuple[str, Value], ...]


def expand(spec: ExperimentSpec) -> Plan:
    """The scenarios of an experiment in run order, and the matrix points that were dropped."""
    base: Params = {**DEFAULTS, **dict(spec.fixed)}
    scenarios, dropped = _expand_matrix(spec, base)
    scenarios += _expand_include(spec, base)
    unique = _dedupe(scenarios)
    if not unique:
        raise SpecError(spec.source, None, "exclude",
                        "every matrix point is excluded and no include entry adds one")
    return Plan(spec=spec, scenarios=unique, dropped=tuple(dropped),
                label_keys=_label_keys(spec))


def _expand_matrix(spec: ExperimentSpec,
                   base: Params) -> tuple[list[Scenario], list[DroppedCombination]]:
    keys = [key for key, _ in spec.matrix]
    scenarios: list[Scenario] = []
    dropped: list[DroppedCombination] = []
    for values in product(*(values for _, values in spec.matrix)):
        point = dict(zip(keys, values, strict=True))
        if any(_matches(point, entry) for entry in spec.exclude):
            continue
        params = _complete(point, base)
        reason = find_conflict(params)
        if reason is None:
            scenarios.append(Scenario.from_params(params))
        else:
            dropped.append(DroppedCombination(params=tuple(params.items()), reason=reason))
    if dropped and not scenarios:
        raise _impossible_matrix(spec, base, dropped[0].reason)
    return scenarios, dropped


def count_points(spec: ExperimentSpec) -> int:
    """The matrix's points left after `exclude`: those measured and those dropped."""
    keys = [key for key, _ in spec.matrix]
    return sum(not any(_matches(dict(zip(keys, values, strict=True)), entry)
                       for entry in spec.exclude)
               for values in product(*(values for _, values in spec.matrix)))


def _expand_include(spec: ExperimentSpec, base: Params) -> list[Scenario]:
    scenarios = []
    for index, entry in enumerate(spec.include):
        params = _complete(dict(entry), base)
        reason = find_conflict(params)
        if reason is not None:
            raise SpecError(spec.source, None, f"include[{index}]", reason)
        scenarios.append(Scenario.from_params(params))
    return scenarios


def _dedupe(scenarios: list[Scenario]) -> tuple[Scenario, ...]:
    """Keep the first scenario of each id, in order."""
    first: dict[str, Scenario] = {}
    for scenario in scenarios:
        first.setdefault(scenario.id, scenario)
    return tuple(first.values())


def _matches(point: Mapping[str, Value], entry: Entry) -> bool:
    return all(point[key] == value for key, value in entry)


def _complete(point: Mapping[str, Value], base: Params) -> Params:
    """All parameters, in PARAMETERS order: the point's, else fixed or defaults; ops resolved."""
    merged = {**base, **point}
    params = {p.key: merged[p.key] for p in PARAMETERS}
    params["ops"] = resolve_ops(int(params["ops"]), int(params["size"]), str(params["backing"]))
    return params


def _impossible_matrix(spec: ExperimentSpec, base: Params, reason: str) -> SpecError:
    """Every matrix point conflicts: blame `fixed` when it conflicts on its own."""
    if spec.fixed and find_conflict(_complete({}, base)) == reason:
        return SpecError(spec.source, None, "fixed", reason)
    return SpecError(spec.source, None, "matrix",
                     f"no combination of the matrix can be measured: {reason}")


def _label_keys(spec: ExperimentSpec) -> tuple[str, ...]:
    """Matrix axes with several values, then keys that include entries set; never empty."""
    keys = [key for key, values in spec.matrix if len(values) > 1]
    keys += [key for entry in spec.include for key, _ in entry]
    if not keys:
        keys = [key for key, _ in spec.matrix]
    return tuple(dict.fromkeys(keys))


def format_plan(plan: Plan, unmet: Mapping[str, str] | None = None) -> str:
    """A readable table: id, label, ops (resolved) and memory per scenario, what the allocate
    phase of each workload holds, the dropped points, the scenarios this machine will skip
    (`unmet`: scenario id -> the precondition it lacks), and a total."""
    keys = plan.label_keys
    rows = [(s.id, s.label(keys), str(s.ops), format_size(s.memory_bytes))
            for s in plan.scenarios]
    lines = [f"{plan.spec.name} ({plan.spec.source}): {_count(len(rows), 'scenario')}"]
    lines += _table(("id", "scenario", "ops", "memory"), rows)
    lines += [f"measures ({workload}): {WORKLOAD_MEASURES[workload]}"
              for workload in dict.fromkeys(s.workload for s in plan.scenarios)]
    if plan.dropped:
        lines.append(f"dropped {_count(len(plan.dropped), 'combination')} "
                     "that cannot be measured:")
        lines += [f"  {describe_dropped(plan, d)}" for d in plan.dropped]
    skipped = [s for s in plan.scenarios if unmet and s.id in unmet]
    if skipped and unmet:
        lines.append(f"skipped on this machine ({_count(len(skipped), 'scenario')}):")
        lines += [f"  {s.label(keys)}: {unmet[s.id]}" for s in skipped]
    lines.append(_total(plan, len(skipped)))
    return "\n".join(lines)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Two columns aligned left (id, scenario), the others, numbers, right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                             for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
            .rstrip() for row in [header, *rows]]


def describe_dropped(plan: Plan, dropped: DroppedCombination) -> str:
    """"label: reason" for a matrix point that cannot be measured."""
    return f"{Scenario.from_params(dict(dropped.params)).label(plan.label_keys)}: {dropped.reason}"


def _total(plan: Plan, skipped: int = 0) -> str:
    scenarios = len(plan.scenarios)
    processes = plan.spec.repetitions.processes
    peak = max(s.memory_bytes for s in plan.scenarios)
    here = f", {skipped * processes} of them skipped here" if skipped else ""
    return (f"total: {_count(scenarios, 'scenario')}, {_count(processes, 'process')} each = "
            f"{_count(scenarios * processes, 'probe run')}{here}; "
            f"peak memory {format_size(peak)} per process")


def _count(number: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{number} {noun if number == 1 else plural}"
