"""Stored records -> one pandas DataFrame, one row per sample (one iteration of one process).

This is the one place column names are defined. Parameter columns use the Scenario field
names (`size_bytes`, `backing`, ...), in today's vocabulary whatever the age of the run
(runner.store.folders.load_run upgrades them); metric columns are those of runner.core.metrics,
observations included: an observation the probe did not report for a sample is NaN there.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from runner.core.metrics import METRICS
from runner.core.model import PHASES
from runner.core.observations import OBSERVATIONS
from runner.core.parameters import PARAMETERS
from runner.core.sizing import blocks_handled
from runner.store.folders import StoredRun
from runner.store.iterations import PHASE_VALUES, iteration_columns

ID_COLUMNS = ("machine", "experiment", "run_id", "scenario_index", "scenario_id", "label",
              "process_index", "iteration", "warmup")
PARAM_COLUMNS = tuple(p.field for p in PARAMETERS)
RAW_COLUMNS = (
    "page_size_bytes",
    "pages_per_op",
    "rss_before_bytes",
    *(f"{phase}_{what}" for phase in PHASES
      for what in ("ns", "minor_faults", "major_faults", "rss_after_bytes")),
)
METRIC_COLUMNS = tuple(m.name for m in METRICS)
COLUMNS = (*ID_COLUMNS, *PARAM_COLUMNS, *RAW_COLUMNS, *METRIC_COLUMNS)


class _Columns:
    """What the stored iterations say, one numpy array per raw value and record
    (runner.store.iterations)."""

    def __init__(self) -> None:
        self.scenario_index: list[npt.NDArray[np.int64]] = []
        self.process_index: list[npt.NDArray[np.int64]] = []
        self.iteration: list[npt.NDArray[np.int64]] = []
        self.warmup: list[npt.NDArray[np.bool_]] = []
        self.page_size_bytes: list[npt.NDArray[np.int64]] = []
        self.rss_before_bytes: list[npt.NDArray[np.int64]] = []
        self.phase: dict[tuple[str, str], list[npt.NDArray[np.int64]]] = {
            (phase, what): [] for phase in PHASES for what in PHASE_VALUES}
        self.observed: dict[str, list[npt.NDArray[np.float64]]] = {
            o.name: [] for o in OBSERVATIONS}

    def add(self, scenario_index: int, process_index: int, probe: dict[str, Any]) -> None:
        iterations = iteration_columns(probe["iterations"])
        count = len(iterations)
        if not count:
            return
        self.scenario_index.append(np.full(count, scenario_index, dtype=np.int64))
        self.process_index.append(np.full(count, process_index, dtype=np.int64))
        self.iteration.append(np.arange(count, dtype=np.int64))
        self.page_size_bytes.append(np.full(count, int(probe["page_size_bytes"]),
                                            dtype=np.int64))
        self.warmup.append(iterations.warmup)
        self.rss_before_bytes.append(iterations.rss_before_bytes)
        for key, chunks in self.phase.items():
            chunks.append(iterations.phases[key])
        # Absent before probe version 2, and each iteration reports the observations of its
        # workload only: NaN where not reported (one array of them serves every such name,
        # as the columns are only ever read and concatenated).
        missing = np.full(count, np.nan, dtype=np.float64)
        for name, observed in self.observed.items():
            column = iterations.observations.get(name)
            observed.append(column if column is not None else missing)


def _parameter_column(values: list[Any], rows: npt.NDArray[np.intp],
                      categorical: bool) -> pd.Series:
    """One scenario parameter per row, with the dtype pandas gives the same values per row;
    text as a categorical when asked."""
    if categorical and values and all(type(value) is str for value in values):
        code = {value: index for index, value in enumerate(dict.fromkeys(values))}
        codes = np.asarray([code[value] for value in values], dtype=np.int64)
        return pd.Series(pd.Categorical.from_codes(codes[rows], pd.Index(list(code))))
    return pd.Series(values).take(rows).reset_index(drop=True)


def build_frame(run: StoredRun, *, categorical: bool = False) -> pd.DataFrame:
    """Every sample of every successful process of a run, warm-up iterations flagged.

    Built column by column (numpy arrays, not a dict per sample): the values are those of the
    per-sample definitions in the comments below, computed on whole columns.

    `categorical`: the text columns of a scenario (its id, label and text parameters) as
    pandas categoricals, the same values held as codes: grouping and filtering by them then
    compares small integers, not a million strings each time (the report groups by them some
    hundred times per run). Exports keep plain text.
    """
    scenarios = run.manifest["scenarios"]
    position = {s["id"]: i for i, s in enumerate(scenarios)}
    raw = _Columns()
    for record in run.records:
        if record.status == "ok" and record.probe is not None:
            raw.add(position[record.scenario_id], record.process_index, record.probe)
    if not raw.scenario_index:
        return pd.DataFrame([], columns=list(COLUMNS))
    # Plan order, so tables and chart series read in the order the spec declares them.
    process_index, iteration = np.concatenate(raw.process_index), np.concatenate(raw.iteration)
    unsorted_scenario = np.concatenate(raw.scenario_index)
    order = np.lexsort((iteration, process_index, unsorted_scenario))
    scenario_index = unsorted_scenario[order]
    # Scenario-level values are inferred over the scenarios that have samples, as pandas
    # would over the rows, then repeated per row.
    present, rows = np.unique(scenario_index, return_inverse=True)
    shown = [scenarios[i] for i in present]

    def ints(chunks: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.int64]:
        return np.concatenate(chunks)[order]

    columns: dict[str, Any] = {
        "machine": run.machine, "experiment": run.experiment, "run_id": run.run_id,
        "scenario_index": scenario_index,
        "scenario_id": _parameter_column([s["id"] for s in shown], rows, categorical),
        "label": _parameter_column([s["label"] for s in shown], rows, categorical),
        "process_index": process_index[order], "iteration": iteration[order],
        "warmup": np.concatenate(raw.warmup)[order],
    }
    for field in PARAM_COLUMNS:
        columns[field] = _parameter_column([s["params"][field] for s in shown], rows,
                                           categorical)
    size = np.asarray([int(s["params"]["size_bytes"]) for s in shown], dtype=np.int64)[rows]
    declared_ops = np.asarray([int(s["params"]["ops"]) for s in shown], dtype=np.int64)[rows]
    # churn's threads each run ops pairs: its phases handled ops x threads blocks.
    declared_blocks = np.asarray([blocks_handled(int(s["params"]["ops"]),
                                                 int(s["params"].get("threads", 1)),
                                                 str(s["params"]["workload"])) for s in shown],
                                 dtype=np.int64)[rows]
    observed = {name: np.concatenate(chunks)[order] for name, chunks in raw.observed.items()}
    page = ints(raw.page_size_bytes)
    # Workload limits maps as many blocks as the system allows, whatever ops says: its phases
    # are per block it really mapped (at least the one mmap call that was refused).
    refused = observed["mappings_until_refused"]
    ops = np.where(np.isnan(refused), declared_blocks,
                   np.maximum(1, np.nan_to_num(refused)).astype(np.int64))
    pages_per_op = np.maximum(1, -(-size // page))
    rss_first = ints(raw.rss_before_bytes)
    columns |= {"page_size_bytes": page, "pages_per_op": pages_per_op,
                "rss_before_bytes": rss_first}
    rss_before = rss_first
    total_ns = np.zeros(len(order), dtype=np.int64)
    phase_ns = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for phase in PHASES:
            ns = ints(raw.phase[phase, "ns"])
            minor = ints(raw.phase[phase, "minor_faults"])
            major = ints(raw.phase[phase, "major_faults"])
            rss_after = ints(raw.phase[phase, "rss_bytes"])
            phase_ns[phase], total_ns = ns, total_ns + ns
            columns |= {
                f"{phase}_ns": ns, f"{phase}_minor_faults": minor,
                f"{phase}_major_faults": major, f"{phase}_rss_after_bytes": rss_after,
                f"{phase}_ns_per_op": ns / ops,
                f"{phase}_ns_per_page": ns / (ops * pages_per_op),
                f"{phase}_minor_faults_per_op": minor / ops,
                f"{phase}_minor_faults_per_page": minor / (ops * pages_per_op),
                f"{phase}_major_faults_per_op": major / ops,
                f"{phase}_major_faults_per_page": major / (ops * pages_per_op),
                f"{phase}_rss_growth_bytes_per_op": (rss_after - rss_before) / ops,
            }
            rss_before = rss_after
        columns["total_ns_per_op"] = total_ns / ops
        # Workload reuse times its second pass after the free phase: releasing memory and
        # writing it again is what MADV_FREE and MADV_DONTNEED are chosen between.
        reuse = np.asarray([s["params"]["workload"] == "reuse" for s in shown])[rows]
        columns["reuse_ns_per_op"] = np.where(
            reuse, (phase_ns["free"] + phase_ns["second_pass"]) / ops, np.nan)
        columns["single_pass_ns_per_op"] = (total_ns - phase_ns["second_pass"]) / ops
        # Allocate and first touch as one window: the cost of faulting memory in wherever it
        # lands (populate moves it from first touch into allocate; malloc's headers fault in
        # allocate).
        fault_in_ns = phase_ns["allocate"] + phase_ns["first_touch"]
        fault_in_faults = columns["allocate_minor_faults"] + columns["first_touch_minor_faults"]
        columns["fault_in_ns_per_op"] = fault_in_ns / ops
        columns["fault_in_ns_per_page"] = fault_in_ns / (ops * pages_per_op)
        columns["fault_in_minor_faults_per_page"] = fault_in_faults / (ops * pages_per_op)
        second_pass_rss = columns["second_pass_rss_after_bytes"]
        resident = second_pass_rss - rss_first
        given_back = second_pass_rss - rss_before  # rss_before: after the last phase (free)
        columns["free_returned_fraction"] = np.where(resident > 0, given_back / resident,
                                                     float("nan"))
        # The same share once the program has gone on (free_pause_ms); NaN without a pause.
        after_pause = second_pass_rss - observed["rss_after_pause_bytes"]
        columns["pause_returned_fraction"] = np.where(resident > 0, after_pause / resident,
                                                      float("nan"))
        for observation in OBSERVATIONS:
            columns[observation.metric.name] = observation.metric_value(
                observed[observation.name], ops, declared_ops)
        # Growth as a share of what was asked for: "malloc grows the heap by what you ask" is
        # a claim about this ratio (1: exactly the request).
        requested = size * ops
        columns["resident_per_requested_byte"] = resident / requested
        columns["brk_growth_per_requested_byte"] = columns["brk_growth_bytes_per_op"] / size
        columns["vm_size_growth_per_requested_byte"] = (
            columns["vm_size_growth_bytes_per_op"] / size)
        columns["usable_per_requested_byte"] = columns["usable_bytes_per_op"] / size
        columns["brk_step_per_requested_byte"] = columns["brk_step_median_bytes"] / size
        columns["vm_step_per_requested_byte"] = columns["vm_step_median_bytes"] / size
        columns["vm_call_growth_per_requested_byte"] = (
            columns["vm_call_growth_median_bytes"] / size)
        columns["page_table_per_requested_byte"] = columns["vm_pte_growth_bytes_per_op"] / size
        retained = columns["free_rss_after_bytes"] - rss_first
        columns["retained_per_requested_byte"] = retained / requested
        # NaN where a phase's count was not reported, as in each phase's own column.
        single_pass = ("allocate", "first_touch", "free")
        columns["single_pass_syscalls_per_op"] = sum(
            columns[f"{phase}_syscalls_per_op"] for phase in single_pass)
        # A mapping enters the kernel by page faults where read() makes calls: the two summed.
        for window, phases in (("single_pass", single_pass), ("total", PHASES)):
            columns[f"{window}_kernel_entries_per_op"] = sum(
                columns[f"{phase}_syscalls_per_op"] + columns[f"{phase}_minor_faults_per_op"]
                + columns[f"{phase}_major_faults_per_op"] for phase in phases)
        for way in ("read", "write"):
            columns[f"single_pass_io_{way}_bytes_per_op"] = sum(
                columns[f"{phase}_io_{way}_bytes_per_op"] for phase in single_pass)
        # The tail as a multiple of the median, within one iteration: "the worst case is N
        # times the median" is a claim about this ratio, checked against a value.
        median = columns["latency_p50_ns"]
        for tail in ("p999", "max"):
            columns[f"latency_{tail}_per_p50"] = np.where(
                median > 0, columns[f"latency_{tail}_ns"] / median, float("nan"))
        touched = columns["touched_pages_per_op"]
        columns["cached_per_touched_page"] = np.where(
            touched > 0, columns["cached_pages_added_per_op"] / touched, float("nan"))
        # Storage reads per page visited count read-around even where a memory limit evicted
        # it before mincore could see it, and each time it was read again.
        columns["io_read_per_touched_page"] = np.where(
            touched > 0, columns["single_pass_io_read_bytes_per_op"] / page / touched,
            float("nan"))
        columns["single_pass_ns_per_touched_page"] = np.where(
            touched > 0, columns["single_pass_ns_per_op"] / touched, float("nan"))
        # THP bloat: a sparse touch makes a whole 2 MiB page resident where it faults one.
        columns["first_touch_rss_per_touched_page"] = np.where(
            touched > 0, columns["first_touch_rss_growth_bytes_per_op"] / touched, float("nan"))
        columns["anon_huge_per_requested_byte"] = columns["anon_huge_bytes_per_op"] / size
        # workload fragment: what the program holds against what its blocks ask for.
        peak, kept = observed["peak_live_bytes"], observed["kept_bytes"]
        columns["rss_per_live_byte"] = np.where(peak > 0, resident / peak, float("nan"))
        columns["held_per_live_byte"] = np.where(peak > 0, observed["held_bytes"] / peak,
                                                 float("nan"))
        columns["retained_per_kept_byte"] = np.where(kept > 0, retained / kept, float("nan"))
        # Every sample here is of a process that ran to its end (with_outcomes adds those the
        # OOM killer ended).
        columns["oom_killed"] = np.zeros(len(order))
    return pd.DataFrame({name: columns[name] for name in COLUMNS},
                        index=pd.RangeIndex(len(order)))


def with_outcomes(samples: pd.DataFrame, run: StoredRun) -> pd.DataFrame:
    """`samples` and one row per process the OOM killer ended (oom_killed 1, every other
    metric NaN): how a scenario ends under a memory limit is a fact a check may judge, and
    such a process has no sample of its own."""
    ended = [(r.scenario_id, r.process_index) for r in run.records if r.status == "oom"]
    if not ended:
        return samples
    rows = pd.DataFrame({"scenario_id": [sid for sid, _ in ended],
                         "process_index": [index for _, index in ended],
                         "warmup": False, "oom_killed": 1.0})
    # Text, not categories: the ended scenarios may have no category among the samples.
    return pd.concat([samples.astype({"scenario_id": str}), rows], ignore_index=True)


def measured(frame: pd.DataFrame) -> pd.DataFrame:
    """The samples that count: warm-up iterations are kept in storage but not summarised."""
    return frame[~frame["warmup"].astype(bool)]
