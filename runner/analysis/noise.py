"""Warnings about the quality of a run's numbers: can they be read as they stand?

Like pyperf's checks, each one looks at stored data only and returns messages that say what is
off and what to do about it: high variation between samples, a first process much slower than
the rest, load or CPU steal during the run, and a frequency scaling governor that is not
`performance` (where it can be read at all). Pure: runs and samples in, messages out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from runner.analysis.frame import PARAM_COLUMNS, build_frame, measured
from runner.analysis.stats import NOISY_CV, Summary, summarize
from runner.core.metrics import BY_NAME
from runner.core.model import PHASES, ExperimentSpec
from runner.core.parameters import BY_KEY as PARAMETERS_BY_KEY
from runner.store.folders import StoredRun

Check = Literal["variation", "first_process", "load", "steal", "frequency", "clock", "cache",
                "host_share"]

# Summaries of one run by (scenario id, metric).
Summaries = Mapping[tuple[str, str], Summary]

FIRST_PROCESS_RATIO = 1.5  # process 0 this many times the others' median is a warm-up effect
OTHER_BUSY_CPUS = 0.5  # CPUs kept busy by work other than alloclab's, worth a word
STEAL_FRACTION = 0.02  # share of CPU time the hypervisor took
USER_HZ = 100  # /proc/stat counts jiffies of 1/100 s on every Linux architecture
MIN_SESSION_S = 2.0  # shorter sessions are too few jiffies to judge load from
_LISTED = 4  # scenarios named in one message
# A timed phase shorter than this is within ~40 clock reads (clock_gettime through the vDSO
# costs about 25 ns on current x86 machines), so its figure carries a few percent of clock.
MIN_PHASE_NS = 1000


@dataclass(frozen=True)
class NoiseWarning:
    """One finding about a run's quality, as a sentence a user can act on."""

    check: Check
    message: str


def watched_metrics(experiment: ExperimentSpec) -> list[str]:
    """The metrics a run is judged by: those its charts show, else the total time per block."""
    names = [chart.metric for chart in experiment.charts]
    return list(dict.fromkeys(names)) or ["total_ns_per_op"]


def _named(items: Sequence[tuple[str, str]]) -> str:
    """'a (35%), b (20%) and 3 more' from (label, figure) pairs, worst first."""
    shown = ", ".join(f"{label} ({figure})" for label, figure in items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def check_variation(summaries: Mapping[str, Sequence[tuple[str, Summary]]]
                    ) -> list[NoiseWarning]:
    """One warning per metric whose robust CV exceeds NOISY_CV in some scenario.

    `summaries` maps a metric to (scenario label, summary) pairs.
    """
    warnings = []
    for metric, rows in summaries.items():
        noisy = sorted(((label, s) for label, s in rows if s.noisy), key=lambda r: -r[1].cv)
        if noisy:
            warnings.append(NoiseWarning("variation", (
                f"{metric} varies by more than {NOISY_CV:.0%} (robust CV) in {len(noisy)} of "
                f"{len(rows)} scenarios: {_named([(label, f'{s.cv:.0%}') for label, s in noisy])}"
                "; run more processes, or compare minima as well as medians")))
    return warnings


def first_process_ratios(samples: pd.DataFrame, metric: str) -> dict[str, float]:
    """Per scenario: process 0's median over the median of the other processes' medians.

    Only scenarios with at least two other processes and a positive median count.
    """
    ratios = {}
    per_process = samples.groupby(["scenario_id", "process_index"], sort=False)[metric].median()
    for scenario_id, values in per_process.groupby(level=0, sort=False):
        by_process = values.droplevel(0)
        if 0 not in by_process.index or len(by_process) < 3:
            continue
        rest = float(np.median(by_process.drop(0).to_numpy()))
        if rest > 0:
            ratios[str(scenario_id)] = float(by_process[0]) / rest
    return ratios


def check_first_process(samples: pd.DataFrame, metrics: Sequence[str],
                        labels: Mapping[str, str]) -> list[NoiseWarning]:
    """Warn when the first process of scenarios is much slower than the rest (time metrics)."""
    warnings = []
    for metric in metrics:
        if BY_NAME[metric].unit != "ns":
            continue
        ratios = first_process_ratios(samples, metric)
        slow = sorted(((sid, r) for sid, r in ratios.items() if r >= FIRST_PROCESS_RATIO),
                      key=lambda item: -item[1])
        if slow:
            warnings.append(NoiseWarning("first_process", (
                f"{metric}: the first process was at least {FIRST_PROCESS_RATIO:g}× slower than "
                f"the others' median in {len(slow)} of {len(ratios)} scenarios: "
                f"{_named([(labels.get(sid, sid), f'{r:.1f}×') for sid, r in slow])}; a "
                "cold start — consider warm-up iterations or more processes")))
    return warnings


def _delta(session: Mapping[str, Any], key: str) -> float | None:
    before, after = session.get("before", {}).get(key), session.get("after", {}).get(key)
    return None if before is None or after is None else float(after) - float(before)


def _other_cpus(session: Mapping[str, Any]) -> float | None:
    """CPUs kept busy by anything but alloclab and its probes, on average over a session."""
    total, busy, own = (_delta(session, key) for key in
                        ("total_jiffies", "busy_jiffies", "own_cpu_s"))
    cpus = session.get("after", {}).get("cpus")
    if not total or busy is None or own is None or not cpus:
        return None
    wall_s = total / USER_HZ / float(cpus)
    return (busy / USER_HZ - own) / wall_s


@dataclass(frozen=True)
class RunLoad:
    """What else the machine did during a run, over all its sessions weighted by their length
    (None: not recorded, e.g. a remote run or one made before alloclab recorded load)."""

    other_work_cpus: float | None
    steal_fraction: float | None


def run_load(sessions: Sequence[Mapping[str, Any]]) -> RunLoad:
    """A run's load from its manifest's "load" sessions (see check_load)."""
    busy_s = own_s = wall_s = 0.0
    steal = total = 0.0
    steal_seen = other_seen = False
    for session in sessions:
        session_total, session_steal = (_delta(session, key)
                                        for key in ("total_jiffies", "steal_jiffies"))
        busy, own = _delta(session, "busy_jiffies"), _delta(session, "own_cpu_s")
        cpus = session.get("after", {}).get("cpus")
        if not session_total:
            continue
        if session_steal is not None:
            steal, total, steal_seen = steal + session_steal, total + session_total, True
        if busy is not None and own is not None and cpus:
            busy_s, own_s = busy_s + busy / USER_HZ, own_s + own
            wall_s += session_total / USER_HZ / float(cpus)
            other_seen = True
    return RunLoad(max((busy_s - own_s) / wall_s, 0.0) if other_seen and wall_s else None,
                   steal / total if steal_seen and total else None)


def check_load(sessions: Sequence[Mapping[str, Any]]) -> list[NoiseWarning]:
    """Warn about other work on the CPUs and about steal time, from load snapshots.

    Each session holds `before` and `after` snapshots of machine.read_load: busy CPU time of
    the whole machine less alloclab's own and its probes' is other work. Sessions shorter than
    MIN_SESSION_S are too coarse to judge and are passed over.
    """
    warnings = []
    for session in sessions:
        total, steal = (_delta(session, key) for key in ("total_jiffies", "steal_jiffies"))
        cpus = session.get("after", {}).get("cpus")
        if not total or not cpus or total < MIN_SESSION_S * USER_HZ * cpus:
            continue
        others = _other_cpus(session)
        if others is not None and others > OTHER_BUSY_CPUS:
            warnings.append(NoiseWarning("load", (
                f"other work kept about {others:.1f} of {cpus} CPUs busy during the run; "
                "measure on a quiet machine")))
        if steal is not None and steal / total > STEAL_FRACTION:
            warnings.append(NoiseWarning("steal", (
                f"the hypervisor took {steal / total:.0%} of CPU time (steal) during the run; "
                "the host was busy — rerun, or compare within one run only")))
    return warnings


def check_frequency(governor: str | None) -> list[NoiseWarning]:
    """Warn about a frequency scaling governor other than `performance` (none: not readable)."""
    if governor is None or set(governor.split(",")) == {"performance"}:
        return []
    return [NoiseWarning("frequency", (
        f"CPU frequency scaling governor is '{governor}': clock speed changes with load; set "
        "'performance' (e.g. `cpupower frequency-set -g performance`) for steadier times"))]


def check_clock(samples: pd.DataFrame, metrics: Sequence[str],
                labels: Mapping[str, str]) -> list[NoiseWarning]:
    """Time metrics whose whole timed phase (all `ops` blocks) lasted under MIN_PHASE_NS."""
    warnings = []
    for metric in metrics:
        phase = next((p for p in PHASES if metric in (f"{p}_ns_per_op", f"{p}_ns_per_page")),
                     None)
        if phase is None:
            continue
        medians = samples.groupby("scenario_id", sort=False)[f"{phase}_ns"].median()
        short = [(labels[str(sid)], f"{ns:.0f} ns") for sid, ns in medians.items()
                 if 0 < ns < MIN_PHASE_NS]
        if short:
            warnings.append(NoiseWarning("clock", (
                f"{metric}: the timed {phase} phase lasted under {MIN_PHASE_NS} ns in "
                f"{len(short)} of {len(medians)} scenarios: {_named(short)}; the clock's own "
                "cost weighs on such figures: raise ops so the phase covers more blocks")))
    return warnings


NOT_COLD_FRACTION = 0.10  # a "cold" file with more than this resident before timing is not cold


def check_cold_cache(samples: pd.DataFrame, labels: Mapping[str, str]) -> list[NoiseWarning]:
    """Scenarios asked for a cold page cache whose file stayed resident (tmpfs evicts nothing)."""
    if "cache" not in samples or "resident_fraction_before" not in samples:
        return []
    cold = samples.loc[samples["cache"] == "cold", ["scenario_id", "resident_fraction_before"]]
    medians = cold.groupby("scenario_id", sort=False)["resident_fraction_before"].median()
    warm = [(labels[str(sid)], f"{fraction:.0%} resident") for sid, fraction in medians.items()
            if fraction > NOT_COLD_FRACTION]
    if not warm:
        return []
    return [NoiseWarning("cache", (
        f"cache cold did not make the file cold in {len(warm)} of {len(medians)} scenarios: "
        f"{_named(warm)}; the file system kept it in memory (tmpfs cannot evict), so these "
        "are warm-cache numbers — put file_dir on a disk file system for cold reads"))]


# The parameter that backs guest pages on the host before timing (true: the probe first maps,
# writes and unmaps a throwaway region). Looked up by name: where the vocabulary lacks it, the
# finding below is simply not made.
HOST_WARM = "host_warm"


def check_host_share(samples: pd.DataFrame, labels: Mapping[str, str],
                     field: str = HOST_WARM) -> list[NoiseWarning]:
    """Where scenarios differ only in host_warm: how much of first touch the host costs.

    The share is 1 - (first touch per page with host_warm true) / (with it false), medians of
    each scenario's samples; on a VM whose freed memory goes back to the host, first touch of
    cold memory pays for the host backing the guest's pages as well as the guest's own faults.
    """
    metric = "first_touch_ns_per_page"
    if field not in samples or metric not in samples or samples[field].nunique() < 2:
        return []  # nothing to pair (most runs: all scenarios hold it at its default)
    others = [c for c in PARAM_COLUMNS if c in samples and c != field]
    by_point: dict[tuple[Any, ...], dict[bool, tuple[str, float]]] = {}
    columns = samples[["scenario_id", *others, field, metric]]  # not every column per group
    for sid, group in columns.groupby("scenario_id", sort=False):
        first = group.iloc[0]
        point = tuple(first[c] for c in others)
        by_point.setdefault(point, {})[bool(first[field])] = (
            str(sid), float(group[metric].median()))
    shares = []
    for sides in by_point.values():
        if True in sides and False in sides and sides[False][1] > 0:
            (cold_id, cold), (_, warm) = sides[False], sides[True]
            label = labels.get(cold_id, cold_id).replace(f"{field}=false", "").strip()
            shares.append((label, 1 - warm / cold))
    if not shares:
        return []
    low, high = min(s for _, s in shares), max(s for _, s in shares)
    figure = f"{low:.0%}" if f"{low:.0%}" == f"{high:.0%}" else f"{low:.0%} to {high:.0%}"
    return [NoiseWarning("host_share", (
        f"first touch: the host's share is {figure} (first_touch time with {field} false vs "
        f"true): {_named([(label, f'{share:.0%}') for label, share in shares])}"))]


def conditions_text(run: StoredRun) -> str:
    """One line on the conditions of a run: load, other work, steal, frequency scaling."""
    parts = []
    for session in run.manifest.get("load", []):
        before = session.get("before", {}).get("loadavg_1m")
        after = session.get("after", {}).get("loadavg_1m")
        total, steal = (_delta(session, key) for key in ("total_jiffies", "steal_jiffies"))
        others = _other_cpus(session)
        text = f"load average {before} → {after}"
        if others is not None:
            text += f", other work {max(others, 0.0):.2f} CPUs"
        if total and steal is not None:
            text += f", steal {steal / total:.1%}"
        parts.append(text)
    governor = run.manifest.get("fingerprint", {}).get("cpu_governor")
    parts.append(f"frequency scaling: {governor or 'not readable'}")
    if len(parts) == 1:
        parts.insert(0, "load: not recorded")
    return "; ".join(parts)


def scenario_summaries(samples: pd.DataFrame, metrics: Sequence[str]) -> Summaries:
    """Each scenario x metric summarised once (no bootstrap CI: none is shown), in the order
    scenarios first appear in `samples`; the report's table, charts and checks share it."""
    # Only the columns used: grouping the whole frame would slice every column per group.
    columns = samples[["scenario_id", *dict.fromkeys(metrics)]]
    return {(str(sid), metric): summarize(group[metric].to_numpy(), interval=False)
            for sid, group in columns.groupby("scenario_id", sort=False) for metric in metrics}


def run_warnings(run: StoredRun, metrics: Sequence[str],
                 samples: pd.DataFrame | None = None,
                 summaries: Summaries | None = None) -> list[NoiseWarning]:
    """Every check on one run; `samples` are its measured samples and `summaries` their
    scenario_summaries when the caller has them."""
    if samples is None:
        samples = measured(build_frame(run))
    if summaries is None:
        summaries = scenario_summaries(samples, metrics)
    labels = run.labels
    by_metric: dict[str, list[tuple[str, Summary]]] = {metric: [] for metric in metrics}
    for (sid, metric), summary in summaries.items():
        if metric in by_metric:
            by_metric[metric].append((labels[sid], summary))
    return [
        *check_variation(by_metric),
        *check_first_process(samples, metrics, labels),
        *check_clock(samples, metrics, labels),
        *check_cold_cache(samples, labels),
        *(check_host_share(samples, labels, PARAMETERS_BY_KEY[HOST_WARM].field)
          if HOST_WARM in PARAMETERS_BY_KEY else []),
        *check_load(run.manifest.get("load", [])),
        *check_frequency(run.manifest.get("fingerprint", {}).get("cpu_governor")),
    ]
