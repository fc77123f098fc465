"""The `checks:` section of a spec: claims read into CheckSpecs, and whether what a spec
selects is there to measure.

read_checks reads each claim: its metric and expectation, candidate and reference selectors
(or a fixed value), tolerance, where (one value, a list, or a range of an ordered parameter),
statistic, method and quantifier. check_scopes judges the expanded plan: every check's
candidates and references, and every chart's where, must match scenarios the experiment
measures, and candidates must pair with references, so a claim that could decide nothing is
refused when the spec loads rather than when its run ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from yaml.nodes import MappingNode, SequenceNode

from runner.core.errors import SpecError
from runner.core.kinds import Value
from runner.core.model import (
    CheckSpec,
    Condition,
    Expectation,
    Method,
    Plan,
    Quantifier,
    Span,
    Statistic,
)
from runner.core.parameters import BY_KEY, PARAMETERS
from runner.core.scope import describe_where, pair_up, selects
from runner.spec.keys import (
    CHECK_KEYS,
    EXPECTATIONS,
    METHODS,
    ORDERED_KINDS,
    PARAMETER_KEYS,
    QUANTIFIERS,
    RANGE_KEYS,
    STATISTICS,
    Key,
)
from runner.spec.walker import (
    Item,
    Walker,
    check_keys,
    check_names,
    percentage,
    read_distinct,
    read_metric,
    read_number,
    read_parameter,
    read_parameter_entries,
    read_simple,
    read_word,
    shown,
    unknown,
)


def read_checks(walker: Walker, item: Item | None,
                axes: tuple[str, ...]) -> tuple[CheckSpec, ...]:
    """The checks of a spec (none when the key is absent); `axes` are the keys that vary."""
    if item is None:
        return ()
    return tuple(_read_check(walker, child, axes)
                 for child in walker.sequence(item, "a list of checks"))


def _read_check(walker: Walker, item: Item, axes: tuple[str, ...]) -> CheckSpec:
    entries = walker.mapping(item, "a check: a mapping with claim, metric, expect, candidate "
                             "and reference")
    check_keys(walker, item, entries, CHECK_KEYS)
    table = {key.name: key for key in CHECK_KEYS}
    candidate = _read_selector(walker, entries["candidate"], axes)
    if ("reference" in entries) == ("value" in entries):
        raise walker.error(item, "give either reference (scenarios to compare with) or value "
                           "(a fixed number to compare with), not both or neither")
    reference: tuple[tuple[str, Value], ...] = ()
    value = None
    if "reference" in entries:
        reference = _read_selector(walker, entries["reference"], axes)
        if candidate == reference:
            raise walker.error(entries["reference"], "selects the same scenarios as candidate; "
                               "a check compares two different sets")
    else:
        value = read_number(walker, entries["value"])
    return CheckSpec(
        claim=str(read_simple(walker, entries["claim"], table["claim"])),
        metric=read_metric(walker, entries["metric"]),
        expect=_read_expectation(walker, entries["expect"]),
        candidate=candidate,
        reference=reference,
        tolerance=_read_fraction(walker, entries.get("tolerance")),
        value=value,
        where=_read_where(walker, entries.get("where")),
        statistic=cast(Statistic, read_word(walker, entries.get("statistic"), STATISTICS,
                                            "statistic") or CheckSpec.statistic),
        method=cast(Method | None, read_word(walker, entries.get("method"), METHODS,
                                             "method")),
        max_processes=(None if "max_processes" not in entries
                       else int(read_simple(walker, entries["max_processes"],
                                            table["max_processes"]))),
        quantifier=cast(Quantifier, read_word(walker, entries.get("quantifier"), QUANTIFIERS,
                                              "quantifier") or CheckSpec.quantifier),
        formerly=_read_formerly(walker, entries.get("formerly"), table["claim"]),
    )


def _read_formerly(walker: Walker, item: Item | None, claim: Key) -> tuple[str, ...]:
    """A claim's earlier words: each a text as a claim is."""
    if item is None:
        return ()
    children = walker.sequence(item, "a list of the claim's earlier words")
    if not children:
        raise walker.error(item, "expected at least one earlier wording (or leave formerly out)")
    return tuple(str(read_simple(walker, child, claim)) for child in children)


def _read_where(walker: Walker, item: Item | None) -> tuple[tuple[str, Condition], ...]:
    """A check's scope: per parameter one value, a list of values, or a range {from, to}."""
    if item is None:
        return ()
    entries = walker.mapping(item, "a mapping of parameters to a value, a list of values or "
                             "a range like {from: 64MiB}")
    check_names(walker, item, entries, PARAMETER_KEYS, "parameter")
    if not entries:
        raise walker.error(item, "expected at least one parameter (e.g. size: {from: 64MiB})")
    return tuple((key, _read_condition(walker, key, entry)) for key, entry in entries.items())


def _read_condition(walker: Walker, key: str, item: Item) -> Condition:
    if isinstance(item.node, SequenceNode):
        children = walker.sequence(item, "a list of values")
        if not children:
            raise walker.error(item, "expected at least one value (an empty list matches "
                               "nothing)")
        return read_distinct(walker, key, children)
    if not isinstance(item.node, MappingNode):
        return read_parameter(walker, key, item)
    parameter = BY_KEY[key]
    ordered = [p.key for p in PARAMETERS if p.kind in ORDERED_KINDS]
    if parameter.kind not in ORDERED_KINDS:
        raise walker.error(item, f"a range needs an ordered parameter ({', '.join(ordered)}); "
                           f"give {key} one value or a list of values")
    ends = walker.mapping(item, "a range like {from: 64MiB, to: 1GiB}")
    check_names(walker, item, ends, RANGE_KEYS, "range key")
    if not ends:
        raise walker.error(item, "expected from, to or both (e.g. {from: 64MiB})")
    low, high = (None if end not in ends else int(read_parameter(walker, key, ends[end]))
                 for end in RANGE_KEYS)
    if low is not None and high is not None and low > high:
        raise walker.error(ends["to"], f"to {parameter.format(high)} lies below from "
                           f"{parameter.format(low)}, so the range is empty")
    return Span(low, high)


def check_scopes(plan: Plan, lines: dict[str, int]) -> None:
    """Every check's candidates and references, and every chart's `where`, must match some
    scenario the experiment measures (after exclude, include and dropped combinations)."""
    spec = plan.spec
    scenarios = [s.params() for s in plan.scenarios]

    def fail(path: str, message: str) -> SpecError:
        return SpecError(spec.source, lines.get(path), path, message)

    def nothing(keys: Sequence[str], within: str = "") -> str:
        """"matches no scenario ... (the scenarios have backing malloc, mmap-anon)"."""
        present = "; ".join(
            f"{key} " + ", ".join(dict.fromkeys(BY_KEY[key].format(p[key]) for p in scenarios))
            for key in dict.fromkeys(keys))
        return f"matches no scenario of this experiment{within} (the scenarios have {present})"

    for index, chart in enumerate(spec.charts):
        if not any(selects(params, chart.where) for params in scenarios):
            raise fail(f"charts[{index}].where", nothing([key for key, _ in chart.where]))
    for index, check in enumerate(spec.checks):
        path = f"checks[{index}]"
        processes = spec.repetitions.processes
        if check.max_processes is not None and check.max_processes < processes:
            raise fail(f"{path}.max_processes", f"{check.max_processes} is below the "
                       f"experiment's processes ({processes}): give at least {processes}")
        if check.where and not any(selects(params, check.where) for params in scenarios):
            raise fail(f"{path}.where", nothing([key for key, _ in check.where]))
        within = f" within where ({describe_where(check.where)})" if check.where else ""
        pairing = pair_up(check, scenarios, plan.label_keys)
        if not pairing.candidates:
            dropped = [d for d in plan.dropped if selects(dict(d.params), check.candidate)
                       and selects(dict(d.params), check.where)]
            if dropped:
                raise fail(f"{path}.candidate", "matches only combinations that cannot be "
                           f"measured: {dropped[0].reason}")
            raise fail(f"{path}.candidate",
                       nothing([key for key, _ in (*check.candidate, *check.where)], within))
        if check.value is None and not pairing.references:
            raise fail(f"{path}.reference",
                       nothing([key for key, _ in (*check.reference, *check.where)], within))
        if not pairing.pairs:
            agree = ", ".join(pairing.shared) or "nothing else"
            raise fail(path, f"no candidate has a reference to pair with{within}: a pair "
                       f"agrees on every other parameter that varies ({agree})")


def _read_selector(walker: Walker, item: Item,
                   axes: tuple[str, ...]) -> tuple[tuple[str, Value], ...]:
    """Parameter values picking scenarios (a parameter fixed for all of them matches all)."""
    entries = read_parameter_entries(walker, item, "a mapping of parameters to one value each")
    if not entries:
        raise walker.error(item, "expected at least one axis and value (e.g. backing: malloc)")
    return tuple((key, value) for key, value, _ in entries)


def _read_expectation(walker: Walker, item: Item) -> Expectation:
    value = walker.scalar(item, "lower, higher, same, no-higher or no-lower")
    if value not in EXPECTATIONS:
        raise walker.error(item, unknown(str(value), EXPECTATIONS, "expectation"))
    return value  # type: ignore[return-value]


def _read_fraction(walker: Walker, item: Item | None) -> float:
    if item is None:
        return CheckSpec.tolerance
    value, fraction = percentage(walker, item, "a percentage like 5%")
    if fraction is None or not 0 <= fraction < 1:
        raise walker.error(item, f"{shown(value)} is not a tolerance (use a percentage "
                           "from 0% to 99%, e.g. 5%, or a fraction like 0.05)")
    return fraction
