"""What an observation and a metric are: the declaration runner.core.observations and
runner.core.metrics fill in, and how an observation's reported numbers become its metric."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: validate, plan and schema run without numpy
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str  # a sentence: a chart's caption, a column's tooltip
    # A few words, one line (a chart's y axis, a table's column header): the description
    # says the rest.
    short_name: str


@dataclass(frozen=True)
class Observation:
    """A number the probe may report for an iteration, beside its phases, and its metric."""

    name: str  # the key in the probe's "observations"
    unit: str
    description: str
    short_name: str  # as Metric's; "per block" is added for a per_op metric
    per_op: bool = False  # a total over the blocks: the metric divides it by their number
    # A total over one thread's `ops` blocks (workload churn, where every thread runs ops pairs
    # of its own): the metric divides it by ops, not by the blocks of every thread.
    per_thread_op: bool = False
    # The probe reports parts per million (it reports whole numbers only); the metric is the
    # fraction, 0 to 1, named with `_fraction` where the observation has `_ppm`.
    per_million: bool = False
    # What the description leaves out (it is a report's column tooltip and chart axis, so it
    # stays short): for docs/reference/metrics.md (runner.cli.reference) alone.
    doc: str = ""

    @property
    def metric(self) -> Metric:
        if self.per_op:
            return Metric(f"{self.name}_per_op", self.unit, f"{self.description}, per block",
                          f"{self.short_name} per block")
        if self.per_thread_op:
            return Metric(f"{self.name}_per_op", self.unit,
                          f"{self.description}, per block of that thread",
                          f"{self.short_name} per block of a thread")
        if self.per_million:
            return Metric(self.name.replace("_ppm", "_fraction"), self.unit, self.description,
                          self.short_name)
        return Metric(self.name, self.unit, self.description, self.short_name)

    def metric_value(self, reported: npt.NDArray[np.float64], blocks: npt.NDArray[np.int64],
                     ops: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """The metric's values for what the probe reported (NaN: not reported), one per sample
        whose phases handled `blocks` blocks (runner.core.sizing.blocks_handled), `ops` of them
        in each thread of churn."""
        if self.per_op:
            return reported / blocks
        if self.per_thread_op:
            return reported / ops
        if self.per_million:
            return reported / 1_000_000
        return reported
