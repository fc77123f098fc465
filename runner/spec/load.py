"""Loading experiment specs: YAML in, a validated ExperimentSpec out, or one SpecError.

The entry points (load_spec, load_specs, check_specs, parse_spec, read_spec_text) and the
building of a spec from its sections: name and texts, matrix, fixed, exclude, include,
repetitions, timeout and charts. The keys and limits come from runner.spec.keys, the file's
node tree from runner.spec.bounded_yaml (bounded, tag-free: the trust boundary), the generic
readers from runner.spec.walker, and the checks section from runner.spec.checks. Parameter
keys and values come from runner.core.parameters, metric names from runner.core.metrics.

Every error is a SpecError naming the file, the line and the key path. To know lines, the file
is composed into YAML's node tree and walked; the walk records the line of every key path it
visits. Combinations that cannot be measured are found by runner.spec.matrix.expand, which reports
them by key path only (`include[1]`); load_spec runs it once and adds the line from that record,
so a file that loads is a file that expands.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from yaml.nodes import ScalarNode

from runner.core.errors import SpecError
from runner.core.kinds import Value
from runner.core.model import (
    ChartSpec,
    ExperimentSpec,
    Repetitions,
    YFrom,
)
from runner.core.parameters import BY_KEY
from runner.core.units import DURATION_HINT, parse_duration_s
from runner.spec.bounded_yaml import compose, read_file
from runner.spec.checks import check_scopes, read_checks
from runner.spec.keys import (
    CHART_KEYS,
    DEFAULT_TIMEOUT_S,
    MAX_PROBE_RUNS,
    MAX_SCENARIOS,
    MAX_SHARE,
    MAX_SPEC_BYTES,
    MAX_TIMEOUT_S,
    PARAMETER_KEYS,
    REPETITION_KEYS,
    TOP_KEYS,
    Y_FROMS,
)
from runner.spec.matrix import expand
from runner.spec.walker import (
    Item,
    Walker,
    check_keys,
    check_names,
    describe_value,
    percentage,
    read_distinct,
    read_flag,
    read_metric,
    read_parameter,
    read_parameter_entries,
    read_parameters,
    read_simple,
    read_word,
    shown,
)


def load_spec(path: Path) -> ExperimentSpec:
    """Read and validate one experiment file; raise SpecError saying where and what is wrong."""
    return _load(path)[0]


def load_specs(paths: Sequence[Path]) -> tuple[ExperimentSpec, ...]:
    """Load files and directories (each directory: its *.yaml, by name); names must be unique.
    SpecError for the first file that is not a valid experiment."""
    specs = []
    for loaded in check_specs(paths):
        if isinstance(loaded, SpecError):
            raise loaded
        specs.append(loaded)
    return tuple(specs)


def check_specs(paths: Sequence[Path]) -> list[ExperimentSpec | SpecError]:
    """load_specs, each file on its own: its spec, or the SpecError that says what is wrong
    with it, so that one bad file does not hide the others (`alloclab validate`)."""
    checked: list[ExperimentSpec | SpecError] = []
    first_source: dict[str, str] = {}
    for path in _expand_paths(paths):
        try:
            spec, lines = _load(path)
            if spec.name in first_source:
                raise SpecError(spec.source, lines.get("name"), "name",
                                f"experiment name {spec.name!r} is also used by "
                                f"{first_source[spec.name]}")
        except SpecError as error:
            checked.append(error)
            continue
        first_source[spec.name] = spec.source
        checked.append(spec)
    return checked


def _expand_paths(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
            continue
        found = sorted(path.glob("*.yaml"), key=lambda p: p.name)
        if not found:
            raise SpecError(str(path), None, "", "no experiment files (*.yaml) in this directory")
        files.extend(found)
    return files


def read_spec_text(path: Path) -> str:
    """A spec file's text, read within the same limits as load_spec (e.g. to store it)."""
    return read_file(path, str(path))


@functools.lru_cache(maxsize=64)
def parse_spec(text: str, source: str) -> ExperimentSpec:
    """Validate spec text (e.g. as stored with a run); `source` names it in errors.

    Remembered (a spec is immutable; errors are raised again each time): rendering a report
    reads each stored spec several times (manifest checks, the page), at ~10 ms a parse.
    """
    return _parse(text, source)[0]


def _load(path: Path) -> tuple[ExperimentSpec, dict[str, int]]:
    source = str(path)
    return _parse(read_file(path, source), source)


def _parse(text: str, source: str) -> tuple[ExperimentSpec, dict[str, int]]:
    """The spec and the line of every key path in it."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(source, None, "", f"more than {MAX_SPEC_BYTES} characters (1 MiB)")
    root = compose(text, source)
    walker = Walker(source)
    spec = _build_spec(walker, walker.item("", root, root.start_mark.line + 1))
    _check_size(spec, walker)
    try:
        plan = expand(spec)
    except SpecError as error:
        raise SpecError(error.source, walker.lines.get(error.key_path), error.key_path,
                        error.message) from None
    _check_probe_runs(spec, len(plan.scenarios), spec.repetitions.processes, walker.lines)
    check_scopes(plan, walker.lines)
    return spec, walker.lines


def _check_size(spec: ExperimentSpec, walker: Walker) -> None:
    """Refuse a matrix whose product exceeds MAX_SCENARIOS before expanding it."""
    product = math.prod(len(values) for _, values in spec.matrix) + len(spec.include)
    if product > MAX_SCENARIOS:
        sizes = " x ".join(str(len(values)) for _, values in spec.matrix)
        raise SpecError(spec.source, walker.lines.get("matrix"), "matrix",
                        f"{sizes} = {product} scenarios (with include); at most "
                        f"{MAX_SCENARIOS} are allowed: split the experiment")


def _check_probe_runs(spec: ExperimentSpec, scenarios: int, processes: int,
                      lines: dict[str, int]) -> None:
    if scenarios * processes > MAX_PROBE_RUNS:
        raise SpecError(spec.source, lines.get("repetitions.processes"), "repetitions.processes",
                        f"{scenarios} scenarios x {processes} processes = "
                        f"{scenarios * processes} probe runs; at most {MAX_PROBE_RUNS} are "
                        "allowed")


# ---------------------------------------------------------------------------------------------
# The experiment


Matrix = tuple[tuple[str, tuple[Value, ...]], ...]
Entries = tuple[tuple[tuple[str, Value], ...], ...]


def _build_spec(walker: Walker, root: Item) -> ExperimentSpec:
    entries = walker.mapping(root, "a mapping with name, title, question and matrix")
    check_keys(walker, root, entries, TOP_KEYS)
    top = {key.name: key for key in TOP_KEYS}
    matrix = _read_matrix(walker, entries["matrix"])
    include = _read_include(walker, entries.get("include"))
    return ExperimentSpec(
        name=str(read_simple(walker, entries["name"], top["name"])),
        title=str(read_simple(walker, entries["title"], top["title"])),
        question=str(read_simple(walker, entries["question"], top["question"])),
        source=walker.source,
        matrix=matrix,
        fixed=_read_fixed(walker, entries.get("fixed"), matrix),
        exclude=_read_exclude(walker, entries.get("exclude"), matrix),
        include=include,
        repetitions=_read_repetitions(walker, entries.get("repetitions")),
        timeout_s=_read_timeout(walker, entries.get("timeout")),
        charts=_read_charts(walker, entries.get("charts"), _axes(matrix, include)),
        checks=read_checks(walker, entries.get("checks"), _axes(matrix, include)),
        raw=walker.plain(root.node),
    )


def _axes(matrix: Matrix, include: Entries) -> tuple[str, ...]:
    """The keys that vary between scenarios: matrix axes, then keys set by include entries."""
    axes = [key for key, _ in matrix]
    axes += [key for entry in include for key, _ in entry if key not in axes]
    return tuple(dict.fromkeys(axes))


def _read_matrix(walker: Walker, item: Item) -> Matrix:
    entries = walker.mapping(item, "a mapping of parameter keys to lists of values")
    if not entries:
        raise walker.error(item, "expected at least one parameter to vary "
                           "(e.g. size: [4KiB, 1MiB])")
    check_names(walker, item, entries, PARAMETER_KEYS, "parameter")
    return tuple((key, _read_axis_values(walker, key, entry)) for key, entry in entries.items())


def _read_axis_values(walker: Walker, key: str, item: Item) -> tuple[Value, ...]:
    if isinstance(item.node, ScalarNode):
        return (read_parameter(walker, key, item),)
    children = walker.sequence(item, "a list of values (or one value)")
    if not children:
        raise walker.error(item, "expected at least one value (an empty list makes no scenario)")
    return read_distinct(walker, key, children)


def _read_fixed(walker: Walker, item: Item | None,
                matrix: Matrix) -> tuple[tuple[str, Value], ...]:
    if item is None:
        return ()
    axes = dict(matrix)
    fixed = []
    for key, value, entry in read_parameter_entries(
            walker, item, "a mapping of parameter keys to one value each"):
        if key in axes:
            raise walker.error(entry, f"{key} is also a matrix axis; "
                               "set it either in matrix or in fixed")
        fixed.append((key, value))
    return tuple(fixed)


def _read_exclude(walker: Walker, item: Item | None, matrix: Matrix) -> Entries:
    if item is None:
        return ()
    return tuple(_read_exclude_entry(walker, child, dict(matrix))
                 for child in walker.sequence(item, "a list of mappings of matrix axes to values"))


def _read_exclude_entry(walker: Walker, item: Item,
                        axes: dict[str, tuple[Value, ...]]) -> tuple[tuple[str, Value], ...]:
    entries = read_parameter_entries(walker, item, "a mapping of matrix axes to values",
                                     allowed=tuple(axes), what="matrix axis")
    if not entries:
        raise walker.error(item, "expected at least one matrix axis to match")
    for key, value, entry in entries:
        if value not in axes[key]:
            listed = ", ".join(BY_KEY[key].format(v) for v in axes[key])
            raise walker.error(entry, f"{BY_KEY[key].format(value)} is not a value of matrix "
                               f"axis {key} ({listed}), so this entry excludes nothing")
    return tuple((key, value) for key, value, _ in entries)


def _read_include(walker: Walker, item: Item | None) -> Entries:
    if item is None:
        return ()
    entries = []
    for child in walker.sequence(item, "a list of mappings of parameter keys to values"):
        entry = read_parameters(walker, child, "a mapping of parameter keys to values")
        if not entry:
            raise walker.error(child, "expected at least one parameter")
        entries.append(entry)
    return tuple(entries)


def _read_repetitions(walker: Walker, item: Item | None) -> Repetitions:
    if item is None:
        return Repetitions()
    entries = walker.mapping(item, "a mapping with processes, warmup and/or iterations")
    check_keys(walker, item, entries, REPETITION_KEYS)
    counts: dict[str, Any] = {
        key.name: int(read_simple(walker, entries[key.name], key))
        for key in REPETITION_KEYS if key.name in entries and key.kind == "whole"}
    if "extra_time" in entries:
        counts["extra_time"] = _read_share(walker, entries["extra_time"])
    repetitions = Repetitions(**counts)
    most = repetitions.max_processes
    if most is not None and most < repetitions.processes:
        raise walker.error(entries["max_processes"], f"{most} is below processes "
                           f"({repetitions.processes}): give at least {repetitions.processes} "
                           "(equal: no extra rounds)")
    return repetitions


def _read_share(walker: Walker, item: Item) -> float:
    """A share like 100% or 50% (or a number, 1.0), from 0% to MAX_SHARE."""
    value, share = percentage(walker, item, "a percentage like 100%")
    if share is None or not 0 <= share <= MAX_SHARE:
        raise walker.error(item, f"{shown(value)} is not a share (use a percentage from "
                           f"0% to {MAX_SHARE:.0%}, e.g. 100%, or a number like 1.0)")
    return share


def _read_timeout(walker: Walker, item: Item | None) -> float:
    if item is None:
        return DEFAULT_TIMEOUT_S
    value = walker.scalar(item, f"a duration ({DURATION_HINT})")
    if not isinstance(value, str | int | float):
        raise walker.error(item, f"expected a duration ({DURATION_HINT}), "
                           f"found {describe_value(value)}")
    try:
        seconds = parse_duration_s(value)
    except ValueError as error:
        raise walker.error(item, str(error)) from None
    if not math.isfinite(seconds) or seconds > MAX_TIMEOUT_S:
        raise walker.error(item, f"{shown(value)} is not a duration of at most 24 hours "
                           f"({DURATION_HINT})")
    return seconds


# ---------------------------------------------------------------------------------------------
# Charts


def _read_charts(walker: Walker, item: Item | None,
                 axes: tuple[str, ...]) -> tuple[ChartSpec, ...]:
    if item is None:
        return ()
    return tuple(_read_chart(walker, child, axes)
                 for child in walker.sequence(item, "a list of charts"))


def _read_chart(walker: Walker, item: Item, axes: tuple[str, ...]) -> ChartSpec:
    entries = walker.mapping(item, "a chart: a mapping with title, metric and x")
    check_keys(walker, item, entries, CHART_KEYS)
    table = {key.name: key for key in CHART_KEYS}
    x = _read_axis(walker, entries["x"], axes)
    series = _read_series(walker, entries.get("series"), axes)
    if x in series:
        raise walker.error(entries["series"], f"{x} is already the x axis")
    where = entries.get("where")
    log_y = read_flag(walker, entries.get("log_y"), table["log_y"])
    return ChartSpec(
        title=str(read_simple(walker, entries["title"], table["title"])),
        metric=read_metric(walker, entries["metric"]),
        x=x,
        series=series,
        where=() if where is None else read_parameters(
            walker, where, "a mapping of parameter keys to one value each"),
        log_x=read_flag(walker, entries.get("log_x"), table["log_x"]),
        log_y=log_y,
        y_from=_read_y_from(walker, entries.get("y_from"), log_y),
    )


def _read_y_from(walker: Walker, item: Item | None, log_y: bool) -> YFrom:
    y_from = read_word(walker, item, Y_FROMS, "start of the y axis")
    if item is not None and y_from == "zero" and log_y:
        raise walker.error(item, "a log y axis cannot start at 0 (it spans the data's range): "
                           "leave y_from out, or set log_y: false")
    return cast(YFrom, y_from or "zero")


def _read_axis(walker: Walker, item: Item, axes: tuple[str, ...]) -> str:
    value = walker.scalar(item, "a parameter key")
    if isinstance(value, str) and value in axes:
        return value
    close = difflib.get_close_matches(str(value), axes, n=1)
    if close:
        raise walker.error(item, f"unknown axis {shown(value)}; did you mean {close[0]!r}?")
    raise walker.error(item, f"{shown(value)} is not an axis of this experiment "
                       f"(axes: {', '.join(axes)})")


def _read_series(walker: Walker, item: Item | None,
                 axes: tuple[str, ...]) -> tuple[str, ...]:
    if item is None:
        return ()
    if isinstance(item.node, ScalarNode):
        return (_read_axis(walker, item, axes),)
    children = walker.sequence(item, "an axis or a list of axes")
    return tuple(dict.fromkeys(_read_axis(walker, child, axes) for child in children))
