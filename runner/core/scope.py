"""Which scenarios a check or a chart is about, and which candidate pairs with which reference.

A selector (a check's `candidate` and `reference`, a chart's `where`) names one value per
parameter. A check's `where` also takes several values of a parameter or a range of an ordered
one (runner.core.model.Span), and limits candidates and references alike. Candidates pair with the
reference that agrees with them on every labelled parameter neither selector names. Pure: the
same functions serve validation (runner.spec.checks, on the expanded plan) and verdicts (on a run's
manifest), so a check that validates is a check that finds its pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from runner.core.kinds import Value
from runner.core.model import CheckSpec, Condition, Span
from runner.core.parameters import BY_KEY

Params = Mapping[str, Value]  # a scenario by spec key (`size`, not `size_bytes`)


def meets(value: Value, condition: Condition) -> bool:
    """Whether one parameter value satisfies one condition of a `where`."""
    if isinstance(condition, Span):
        return condition.contains(value)
    if isinstance(condition, tuple):
        return value in condition
    return value == condition


def selects(params: Params, selector: Sequence[tuple[str, Condition]]) -> bool:
    """Whether a scenario satisfies every condition of a selector or `where`."""
    return all(meets(params[key], condition) for key, condition in selector)


def describe_condition(key: str, condition: Condition) -> str:
    """"size from 64MiB", "size 4KiB to 1MiB", "backing malloc or calloc", "backing=malloc"."""
    parameter = BY_KEY[key]
    if isinstance(condition, Span):
        low = None if condition.low is None else parameter.format(condition.low)
        high = None if condition.high is None else parameter.format(condition.high)
        if low is not None and high is not None:
            return f"{key} {low} to {high}"
        return f"{key} from {low}" if low is not None else f"{key} up to {high}"
    if isinstance(condition, tuple):
        return f"{key} {' or '.join(parameter.format(v) for v in condition)}"
    return f"{key}={parameter.format(condition)}"


def describe_where(where: Sequence[tuple[str, Condition]]) -> str:
    return ", ".join(describe_condition(key, condition) for key, condition in where)


@dataclass(frozen=True)
class Pairing:
    """The pairs of a check: indexes into the scenarios, reference None for a fixed value."""

    pairs: tuple[tuple[int, int | None], ...]
    shared: tuple[str, ...]  # labelled parameters the pairs agree on
    candidates: int  # scenarios the candidate selector picks within `where`
    references: int  # scenarios the reference selector picks within `where` (0 for a value)


def pair_up(check: CheckSpec, scenarios: Sequence[Params],
            label_keys: Sequence[str]) -> Pairing:
    """Each candidate scenario in scope with the reference scenario that agrees with it on
    every labelled parameter the selectors do not name (the first such, in plan order)."""
    named = {key for key, _ in (*check.candidate, *check.reference)}
    shared = tuple(key for key in label_keys if key not in named)
    in_scope = [i for i, params in enumerate(scenarios) if selects(params, check.where)]
    candidates = [i for i in in_scope if selects(scenarios[i], check.candidate)]
    if check.value is not None:
        return Pairing(tuple((i, None) for i in candidates), shared, len(candidates), 0)
    references: dict[tuple[Value, ...], int] = {}
    count = 0
    for i in in_scope:
        if selects(scenarios[i], check.reference):
            count += 1
            references.setdefault(tuple(scenarios[i][k] for k in shared), i)
    pairs = []
    for i in candidates:
        j = references.get(tuple(scenarios[i][k] for k in shared))
        if j is not None and j != i:
            pairs.append((i, j))
    return Pairing(tuple(pairs), shared, len(candidates), count)
