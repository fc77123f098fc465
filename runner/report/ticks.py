"""Axis ticks in engineering units: `1 µs  10 µs  100 µs  1 ms`, `4 KiB  1 MiB  1 GiB`, `1 k  1 M`.

A chart plots a metric in its own unit (nanoseconds, bytes, faults...) and lets each tick label
carry a readable unit, so a log axis reads `100 µs` where matplotlib would write `10^-1 ms`,
and a linear axis `0  0.5 GiB  1 GiB` with no `1e9` offset above it.

Which units scale how is decided here once, from the metric's unit (runner.core.metrics):
  ns          s, ms, µs, ns (decimal)
  bytes       TiB, GiB, MiB, KiB, B (binary; a log axis of bytes has ticks at powers of two)
  counts      G, M, k (faults, blocks, calls, mappings: the unit itself stays in the axis label)
  any other   plain numbers (fractions, ratios, flags)
A log tick is labelled on its own scale (each is a power of ten, or of two for bytes); the ticks
of a linear axis share one scale, that of the largest, with as many decimals as their spacing
needs. Pure label functions (tested directly) and the matplotlib locator and formatter that
apply them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.ticker import Formatter, MaxNLocator

Scale = tuple[str, float]  # the suffix written after the number, and what it stands for

_SCALES: dict[str, tuple[Scale, ...]] = {
    "ns": (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0)),
    "bytes": (("TiB", float(1 << 40)), ("GiB", float(1 << 30)), ("MiB", float(1 << 20)),
              ("KiB", 1024.0), ("B", 1.0)),
}
COUNT_UNITS = ("faults", "blocks", "calls", "mappings", "entries", "pages")
_COUNT_SCALES: tuple[Scale, ...] = (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1.0))
_PLAIN: tuple[Scale, ...] = (("", 1.0),)
MAX_DECIMALS = 6


def scales(unit: str) -> tuple[Scale, ...]:
    """The scales a value of `unit` may be written in, largest first."""
    if unit in COUNT_UNITS:
        return _COUNT_SCALES
    return _SCALES.get(unit, _PLAIN)


def ticks_carry_unit(unit: str) -> bool:
    """Whether tick labels name the unit themselves (then the axis label need not)."""
    return unit in _SCALES


def pick_scale(unit: str, magnitude: float) -> Scale:
    """The largest scale not above `magnitude` (1 ms for 3e6 ns); the smallest below all."""
    choices = scales(unit)
    return next((scale for scale in choices if magnitude >= scale[1]), choices[-1])


def _number(value: float, decimals: int | None = None) -> str:
    """A plain decimal: never an exponent, never '-0', trailing zeros dropped unless asked."""
    if value == 0:
        return "0"
    if decimals is not None:
        return f"{value:.{decimals}f}"
    text = np.format_float_positional(value, precision=4, unique=False, fractional=False,
                                      trim="-")
    return str(text)


def _with_suffix(number: str, suffix: str) -> str:
    return f"{number} {suffix}" if suffix and number != "0" else number


def tick_label(value: float, unit: str) -> str:
    """One value on its own scale, as a log axis labels its ticks: 1e5 ns -> '100 µs'."""
    suffix, factor = pick_scale(unit, abs(value))
    return _with_suffix(_number(value / factor), suffix)


def log_tick_labels(values: Sequence[float], unit: str) -> list[str]:
    """Labels of a log axis's major ticks, each on its own scale."""
    return [tick_label(value, unit) for value in values]


def _decimals(scaled: Sequence[float]) -> int:
    """The fewest decimals that write every value exactly (to a millionth of the largest)."""
    largest = max((abs(v) for v in scaled), default=0.0) or 1.0
    for decimals in range(MAX_DECIMALS + 1):
        if all(abs(round(v, decimals) - v) <= 1e-6 * largest for v in scaled):
            return decimals
    return MAX_DECIMALS


def linear_tick_labels(values: Sequence[float], unit: str) -> list[str]:
    """Labels of a linear axis's ticks: one scale for all, that of the largest magnitude, and
    the decimals their spacing needs: 0, 5e5, 1e6 ns -> '0', '0.5 ms', '1 ms'."""
    suffix, factor = pick_scale(unit, max((abs(v) for v in values), default=0.0))
    scaled = [v / factor for v in values]
    decimals = _decimals(scaled)
    labels = []
    for v in scaled:
        rounded = round(v, decimals)
        labels.append(_with_suffix(_number(rounded + 0.0, decimals) if rounded else "0",
                                   suffix))
    return labels


def binary_log_ticks(low: float, high: float, most: int = 8) -> list[float]:
    """Powers of two from `low` to `high` for a log axis of bytes, every 1st, 2nd, 5th, 10th
    or 20th power so at most `most` remain: 10 steps apart they are 1 KiB, 1 MiB, 1 GiB."""
    first, last = math.ceil(math.log2(low)), math.floor(math.log2(high))
    for step in (1, 2, 5, 10, 20):
        exponents = [e for e in range(first, last + 1) if e % step == 0]
        if len(exponents) <= most:
            return [2.0 ** e for e in exponents]
    return [2.0 ** e for e in range(first, last + 1) if e % 40 == 0]


class UnitLocator(MaxNLocator):
    """Linear ticks at round numbers of the unit shown (0.5 GiB steps, not 5e8 bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__(nbins="auto", steps=[1, 2, 2.5, 5, 10])
        self.unit = unit

    def tick_values(self, vmin: float, vmax: float) -> Any:
        _, factor = pick_scale(self.unit, max(abs(vmin), abs(vmax)))
        return np.asarray(super().tick_values(vmin / factor, vmax / factor)) * factor


class UnitFormatter(Formatter):
    """Tick labels of `unit` (log: each on its own scale; linear: one shared scale)."""

    def __init__(self, unit: str, *, log: bool) -> None:
        self.unit = unit
        self.log = log
        self.labels: dict[float, str] = {}

    def set_locs(self, locs: Sequence[float]) -> None:
        values = [float(v) for v in locs]
        made = (log_tick_labels(values, self.unit) if self.log
                else linear_tick_labels(values, self.unit))
        self.labels = dict(zip(values, made, strict=True))

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = self.labels.get(float(x))
        if label is None:  # a value outside the last set of ticks (the cursor readout)
            label = tick_label(float(x), self.unit)
        return label
