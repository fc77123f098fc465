"""The metrics a sample carries: the one place their names, units and meanings are defined.

The probe reports totals per phase over `ops` blocks; alloclab's metrics are those totals
divided per block (`_per_op`) or per 4 KiB-or-whatever page touched (`_per_page`), so that
scenarios with different inner-loop counts compare directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from runner.model import PHASES

PHASE_TITLES = {
    "allocate": "allocate",
    "first_touch": "first touch",
    "second_pass": "second pass",
    "free": "free",
}


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str


def _phase_metrics(phase: str) -> list[Metric]:
    title = PHASE_TITLES[phase]
    return [
        Metric(f"{phase}_ns_per_op", "ns", f"time of the {title} phase per block"),
        Metric(f"{phase}_ns_per_page", "ns", f"time of the {title} phase per page of a block"),
        Metric(f"{phase}_minor_faults_per_op", "faults", f"minor page faults in {title} per block"),
        Metric(f"{phase}_minor_faults_per_page", "faults",
               f"minor page faults in {title} per page of a block"),
        Metric(f"{phase}_major_faults_per_op", "faults", f"major page faults in {title} per block"),
        Metric(f"{phase}_rss_growth_bytes_per_op", "bytes",
               f"resident set growth over {title} per block (negative: memory returned)"),
    ]


METRICS: tuple[Metric, ...] = (
    *(m for phase in PHASES for m in _phase_metrics(phase)),
    Metric("total_ns_per_op", "ns", "allocate + first touch + second pass + free, per block"),
)
BY_NAME: Mapping[str, Metric] = {m.name: m for m in METRICS}


def axis_label(name: str) -> str:
    """Chart axis text for a metric: its description and unit."""
    metric = BY_NAME[name]
    return f"{metric.description} ({metric.unit})"
