"""What a declared chart plots, from a run's samples: series of points, each a median with its
quartiles and each process's own value, and the legend's words.

Pure (samples in, values out), tested directly; runner.report.charts draws it. A series is
named by the parameters that tell it apart on this chart alone: a parameter constant within
the chart (`populate=none` on every line) says nothing there, and one that does not apply to a
series (read-file's read_buffer on an mmap-file line, runner.core.parameters.applies) is left
out of that series' name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from runner.analysis.stats import Summary, summarize
from runner.core.kinds import Value
from runner.core.model import ChartSpec
from runner.core.parameters import BY_KEY, PARAMETERS, applies

NUMERIC_KINDS = ("size", "count", "whole", "share")  # parameters drawn on a numeric x axis


@dataclass(frozen=True)
class ProcessValue:
    """One process's own value at a point: the median of its iterations."""

    median: float
    iterations: int


@dataclass(frozen=True)
class Point:
    x: Value
    median: float
    q1: float
    q3: float
    n: int  # samples (iterations of every process)
    # Each process's value, in scenario then process order (processes whose every sample
    # lacks the metric left out).
    processes: tuple[ProcessValue, ...] = ()


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class ChartData:
    chart: ChartSpec
    series: tuple[Series, ...]
    series_keys: tuple[str, ...]  # the parameters the series' labels show, in label order
    workloads: frozenset[str] = frozenset()  # of the scenarios plotted (their metrics' names)

    @property
    def legend_title(self) -> str | None:
        """What the legend's labels are made of: `backing, read_buffer`."""
        return ", ".join(self.series_keys) or None


def _series_keys(chart: ChartSpec, label_keys: tuple[str, ...]) -> tuple[str, ...]:
    """The declared series, plus every other varying axis, so no points are silently pooled."""
    fixed = {chart.x, *chart.series, *(key for key, _ in chart.where)}
    return (*chart.series, *(key for key in label_keys if key not in fixed))


def _series_label(keys: tuple[str, ...], values: tuple[Value, ...]) -> str:
    return " ".join(BY_KEY[key].label_text(value)
                    for key, value in zip(keys, values, strict=True)) or "all"


def _plain(value: object) -> Value:
    """A pandas group key back as the Python value the spec used (numpy ints are not ints)."""
    native = value.item() if isinstance(value, np.generic) else value
    if isinstance(native, bool | int | str):
        return native
    raise TypeError(f"unexpected parameter value {value!r}")


@dataclass(frozen=True)
class _Group:
    """The samples of one series before it is named: its value of each series key, and
    whether each of those keys applies to it."""

    values: tuple[Value, ...]
    applying: tuple[bool, ...]
    points: tuple[Point, ...]


def label_series(keys: tuple[str, ...], values: Sequence[tuple[Value, ...]],
                 applying: Sequence[tuple[bool, ...]]) -> tuple[tuple[str, ...], list[str]]:
    """The keys a chart's legend shows and each series' label: keys with one value among the
    series they apply to are left out, and so is a key from the label of a series it does not
    apply to. Should that make two labels alike, the inapplicable values are shown after all;
    constant keys never tell series apart, so leaving them out cannot."""
    def varying(use_applying: bool) -> tuple[str, ...]:
        return tuple(key for k, key in enumerate(keys) if len(
            {v[k] for v, a in zip(values, applying, strict=True) if a[k] or not use_applying})
            > 1)

    for use_applying in (True, False):
        shown = varying(use_applying)
        labels = []
        for group_values, group_applying in zip(values, applying, strict=True):
            picked = [(key, group_values[keys.index(key)]) for key in shown
                      if group_applying[keys.index(key)] or not use_applying]
            labels.append(_series_label(tuple(k for k, _ in picked),
                                        tuple(v for _, v in picked)))
        if len(set(labels)) == len(labels):
            return shown, labels
    raise AssertionError("series differing in a varying key got one label")  # unreachable


def chart_data(samples: pd.DataFrame, chart: ChartSpec, label_keys: tuple[str, ...],
               summaries: Mapping[tuple[str, str], Summary] | None = None) -> ChartData:
    """Group measured samples into series of (x, median, quartiles, each process's value) in
    scenario order.

    A point of one scenario takes its summary from `summaries` (by scenario id and metric)
    when given; a point pooling several scenarios is summarised here.
    """
    keys = _series_keys(chart, label_keys)
    fields = [BY_KEY[key].field for key in keys]
    x_field = BY_KEY[chart.x].field
    # Only the columns used: filtering and grouping the whole frame copies every column.
    # Every parameter column is kept for `applies`, which may ask of any.
    selected = samples[list(dict.fromkeys([
        "scenario_id", "process_index", chart.metric, x_field, *fields,
        *(BY_KEY[key].field for key, _ in chart.where),
        *(p.field for p in PARAMETERS if p.field in samples.columns)]))]
    for key, value in chart.where:
        selected = selected[selected[BY_KEY[key].field] == value]
    processes = _process_values(selected, chart.metric)
    groups = []
    grouped = selected.groupby(fields, sort=False) if fields else [((), selected)]
    for values, group in grouped:
        values_tuple = cast(tuple[Value, ...], values if isinstance(values, tuple) else (values,))
        points = []
        for x, at_x in group.groupby(x_field, sort=False):
            summary = _point_summary(at_x, chart.metric, summaries)
            points.append(Point(_plain(x), summary.median, summary.q1, summary.q3, summary.n,
                                tuple(value for sid in _scenario_ids(at_x)
                                      for value in processes.get(sid, ()))))
        if BY_KEY[chart.x].kind in NUMERIC_KINDS:
            points.sort(key=lambda p: int(p.x))
        groups.append(_Group(tuple(_plain(v) for v in values_tuple), _applying(keys, group),
                             tuple(points)))
    shown, labels = label_series(keys, [g.values for g in groups], [g.applying for g in groups])
    workloads = frozenset(str(w) for w in selected["workload"].unique()) \
        if "workload" in selected.columns else frozenset()
    return ChartData(chart, tuple(Series(label, g.points)
                                  for label, g in zip(labels, groups, strict=True)), shown,
                     workloads)


def _applying(keys: tuple[str, ...], group: pd.DataFrame) -> tuple[bool, ...]:
    """Whether each series key applies to a series' scenarios (all alike in the keys
    `applies` asks of; a series without samples: every key)."""
    if group.empty:
        return tuple(True for _ in keys)
    first = group.iloc[0]
    params = {p.key: _plain(first[p.field]) for p in PARAMETERS if p.field in group.columns}
    return tuple(applies(key, params) for key in keys)


def _scenario_ids(at_x: pd.DataFrame) -> list[str]:
    return sorted(str(sid) for sid in at_x["scenario_id"].unique())


def _point_summary(at_x: pd.DataFrame, metric: str,
                   summaries: Mapping[tuple[str, str], Summary] | None) -> Summary:
    ids = at_x["scenario_id"].unique()
    if summaries is not None and len(ids) == 1 and (str(ids[0]), metric) in summaries:
        return summaries[str(ids[0]), metric]
    return summarize(at_x[metric].to_numpy(), interval=False)  # a chart shows no CI


def _process_values(selected: pd.DataFrame,
                    metric: str) -> dict[str, tuple[ProcessValue, ...]]:
    """Each scenario's processes' values: the median of each one's iterations, in process
    order (a process without a value of the metric left out). One grouping per chart, not
    one per point: a page draws hundreds of points."""
    per_process = selected.groupby(["scenario_id", "process_index"], sort=True,
                                   observed=True)[metric].agg(["median", "count"])
    values: dict[str, list[ProcessValue]] = {}
    for (sid, _), median, count in zip(per_process.index, per_process["median"],
                                       per_process["count"], strict=True):
        if count > 0:
            values.setdefault(str(sid), []).append(ProcessValue(float(median), int(count)))
    return {sid: tuple(found) for sid, found in values.items()}
