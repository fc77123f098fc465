"""Frozen values that cross module boundaries: what the user wrote, what runs, what came back."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.core.kinds import Value
from runner.core.parameters import BY_KEY, PARAMETERS, applies
from runner.core.sizing import reserves_untouched, scenario_memory_bytes
from runner.core.upgrade import id_defaults

PHASES = ("allocate", "first_touch", "second_pass", "free")
# The confidence of every verdict's interval, shared among the looks at a pair.
CONFIDENCE = 0.95
# Spec keys that change what a report shows but not what is measured.
PRESENTATION_KEYS = frozenset({"title", "question", "charts", "checks"})
# "skipped": the machine lacks what the scenario needs (huge pages, an mlock limit...); the
# reason is in stderr_tail, and no measurement was taken.
# "oom": the kernel's OOM killer ended the process in its memory cgroup (memory_limit): the
# scenario's outcome, recorded and shown, not a failure of the run.
Status = Literal["ok", "failed", "crashed", "timeout", "skipped", "oom"]


@dataclass(frozen=True)
class Scenario:
    """One expanded point of an experiment's matrix: exactly what one probe process measures."""

    backing: str
    size_bytes: int
    sharing: str
    protection: str
    populate: str
    access: str
    ops: int
    file_dir: str
    thp: str
    release: str
    # Parameters added later default to what the probe did before them (their Parameter's
    # default; a test checks the two agree), so a Scenario written out by hand still builds.
    workload: str = "cycle"
    cache: str = "warm"
    order: str = "sequential"
    sync: str = "none"
    grow_method: str = "realloc"
    grow_factor: int = 2
    check_zero: bool = False
    threads: int = 1
    tunables: str = ""
    history: str = "fresh"
    host_warm: bool = False
    advice: str = "none"
    read_buffer_bytes: int = 1 << 20
    write_buffer_bytes: int = 1 << 20
    grow_steps: int = 1
    touch_grown: bool = False
    heap_pad: str = "default"
    touch_share_ppm: int = 1_000_000
    file_origin: str = "existing"
    file_layout: str = "whole"
    check_content: bool = False
    file_open: str = "once"
    noreserve: bool = False
    keep_every: int = 0
    pause_ms: int = 0
    memory_limit_bytes: int = 0
    memlock_limit_bytes: int = 0
    bystanders: int = 0
    free_pause_ms: int = 0
    thread_turns: bool = False
    hugetlb_pool: int = 0
    latency: str = "off"
    allocator: str = "glibc"

    @classmethod
    def from_params(cls, params: dict[str, Value]) -> Scenario:
        """Build from spec keys (`size`, not `size_bytes`); `ops` must already be resolved."""
        return cls(**{p.field: params[p.key] for p in PARAMETERS})  # type: ignore[arg-type]

    def params(self) -> dict[str, Value]:
        """The scenario by spec keys, in PARAMETERS order."""
        return {p.key: getattr(self, p.field) for p in PARAMETERS}

    @property
    def id(self) -> str:
        """Stable identity: a hash of the parameters that differ from their defaults.

        Leaving defaults out means a parameter added to the vocabulary later does not change
        the id of scenarios that never set it, so stored results stay matched to their specs;
        renamed values hash by their old spelling (Parameter.id_value) for the same reason.
        What counts as a default may depend on the backing (runner.core.upgrade.id_defaults).
        """
        defaults = id_defaults(self.backing)
        distinct = {k: BY_KEY[k].id_value(v) for k, v in self.params().items()
                    if v != defaults[k] or k == "size"}
        canonical = json.dumps(distinct, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def label(self, keys: tuple[str, ...]) -> str:
        """Readable name from the given parameters, e.g. "mmap-anon 4KiB populate=true"."""
        params = self.params()
        return " ".join(BY_KEY[key].label_text(params[key]) for key in keys
                        if applies(key, params))

    @property
    def memory_bytes(self) -> int:
        if reserves_untouched(self.params()):
            return 0
        return scenario_memory_bytes(self.size_bytes, self.ops, self.backing, self.workload,
                                     self.grow_factor, self.grow_steps, self.threads)


@dataclass(frozen=True)
class Repetitions:
    """How often a scenario is measured: fresh processes, and iterations inside each.

    `processes` run for every scenario (the base rounds). A check pair still undecided after
    them gets more rounds of its two scenarios, `processes` at a time, up to `max_processes`
    (None: ADAPTIVE_FACTOR times `processes`; equal to `processes`: no extra rounds), while the
    run's extra rounds have taken at most `extra_time` times what its base rounds took
    (runner.analysis.adaptive).
    """

    processes: int = 5
    warmup: int = 0
    iterations: int = 1
    max_processes: int | None = None
    extra_time: float = 1.0

    @property
    def most_processes(self) -> int:
        """The most processes a scenario of an undecided pair gets, extra rounds included."""
        if self.max_processes is None:
            return ADAPTIVE_FACTOR * self.processes
        return max(self.processes, self.max_processes)

    @property
    def adaptive(self) -> bool:
        return self.most_processes > self.processes and self.extra_time > 0


# Without max_processes, an undecided pair may take four times the base processes: three more
# looks, enough to decide a pair whose per-round noise is about a third of the smallest
# difference the band tells apart (runner.analysis.sequential's simulations in
# tests/analysis/test_sequential.py).
ADAPTIVE_FACTOR = 4


@dataclass(frozen=True)
class Looks:
    """When a pair is judged: after `base` rounds, then every `batch` more, up to `most`."""

    base: int
    batch: int
    most: int

    @property
    def rounds(self) -> tuple[int, ...]:
        """The round counts of the looks: base, base + batch, ..., most (the last may come
        after a shorter batch)."""
        if self.most <= self.base or self.batch < 1:
            return (self.base,)
        counts = list(range(self.base, self.most, self.batch))
        return (*counts, self.most)

    @property
    def confidence(self) -> float:
        """Each look's confidence: the 5% error shared evenly among the planned looks."""
        return 1 - (1 - CONFIDENCE) / len(self.rounds)


def one_look(base: int) -> Looks:
    """No extra rounds: a single look after the base rounds, at the plain 95%."""
    return Looks(base, base, base)


# Where a linear y axis starts: at 0, so a line's height is its value and a 12% change looks
# like 12%; or at the data's own range, for a small difference far from 0.
YFrom = Literal["zero", "data"]


@dataclass(frozen=True)
class ChartSpec:
    """One declared chart: a metric on y against a parameter on x, one line per series."""

    title: str
    metric: str
    x: str
    series: tuple[str, ...] = ()
    where: tuple[tuple[str, Value], ...] = ()
    log_x: bool = False
    log_y: bool = False
    y_from: YFrom = "zero"


Expectation = Literal["lower", "higher", "same", "no-higher", "no-lower"]
# What stands for a process in a statistical comparison: the median or the minimum of its
# iterations (minima: where the machine is bimodal, the fast mode without the slow one).
Statistic = Literal["median", "minimum"]
# exact: every sample of a deterministic fact must agree; statistical: a confidence interval.
Method = Literal["exact", "statistical"]
# all: the claim is about every pair (holds where all hold); some: an existence claim ("malloc
# does not zero memory": one block holding old bytes shows it), which one pair proves.
Quantifier = Literal["all", "some"]


@dataclass(frozen=True)
class Span:
    """An inclusive range of an ordered parameter (size, threads...): `low` to `high`, either
    end open (None)."""

    low: int | None = None
    high: int | None = None

    def contains(self, value: Value) -> bool:
        number = int(value)
        return ((self.low is None or number >= self.low)
                and (self.high is None or number <= self.high))


# What a `where` asks of one parameter: one value, any of several values, or a range.
Condition = Value | tuple[Value, ...] | Span


@dataclass(frozen=True)
class CheckSpec:
    """A claim and how the data decides it: is `metric` of the candidate scenarios lower than,
    higher than or the same as that of the reference scenarios they pair with?

    Candidates and references pair up when they agree on every parameter the two selectors
    do not name, so one check covers every size (say) and the verdict can say where it holds.
    `where` limits both to the scenarios the claim is about (e.g. sizes from 64 MiB up).
    `tolerance` is the equivalence band: differences smaller than it count as no difference.
    `method` None means: exact for a deterministic metric, statistical otherwise.
    """

    claim: str
    metric: str
    expect: Expectation
    candidate: tuple[tuple[str, Value], ...]
    reference: tuple[tuple[str, Value], ...] = ()
    tolerance: float = 0.05
    value: float | None = None  # instead of reference scenarios: a fixed value to compare with
    where: tuple[tuple[str, Condition], ...] = ()
    statistic: Statistic = "median"
    method: Method | None = None
    # The most processes per scenario this check's undecided pairs may take (None: the
    # experiment's repetitions say); above the experiment's, the run measures more for them.
    max_processes: int | None = None
    quantifier: Quantifier = "all"
    # The claim's earlier words, whose permalinks still lead to its row (runner.report.permalinks)
    formerly: tuple[str, ...] = ()


@dataclass(frozen=True)
class DroppedCombination:
    """A matrix point that cannot be measured, kept so plan and report can show it."""

    params: tuple[tuple[str, Value], ...]
    reason: str


@dataclass(frozen=True)
class ExperimentSpec:
    """An experiment as the user wrote it, validated. `source` is the YAML file it came from."""

    name: str
    title: str
    question: str
    source: str
    matrix: tuple[tuple[str, tuple[Value, ...]], ...]
    fixed: tuple[tuple[str, Value], ...] = ()
    exclude: tuple[tuple[tuple[str, Value], ...], ...] = ()
    include: tuple[tuple[tuple[str, Value], ...], ...] = ()
    repetitions: Repetitions = field(default_factory=Repetitions)
    timeout_s: float = 120.0
    charts: tuple[ChartSpec, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def hash(self) -> str:
        """Hash of the spec's content (not its formatting), recorded with every run."""
        canonical = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def measurement_hash(self) -> str:
        """Hash of what is measured, leaving out words and presentation (title, question,
        charts, checks): an interrupted run resumes after a chart is edited, not after the
        matrix is."""
        measured = {k: v for k, v in self.raw.items() if k not in PRESENTATION_KEYS}
        canonical = json.dumps(measured, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    """An experiment expanded: the scenarios to run, in order, and the points dropped."""

    spec: ExperimentSpec
    scenarios: tuple[Scenario, ...]
    dropped: tuple[DroppedCombination, ...]
    label_keys: tuple[str, ...]


# Recorded in stderr_tail of a process whose connection to a remote machine failed.
CONNECTION_NOTE = "alloclab: ssh connection failed"


@dataclass(frozen=True)
class ProcessRecord:
    """What one probe process left: its status and, when it finished, the probe's JSON."""

    scenario_id: str
    process_index: int
    status: Status
    exit_code: int | None
    signal: str | None
    wall_s: float
    stderr_tail: str
    probe: dict[str, Any] | None

    @property
    def skip_reason(self) -> str | None:
        """Why this machine could not measure the scenario, when the record is a skip: the
        last stderr line after "skipped: " (from the probe or from runner.measure.schedule)."""
        if self.status != "skipped":
            return None
        lines = self.stderr_tail.strip().splitlines()
        return lines[-1].split("skipped: ", 1)[-1] if lines else ""

    @property
    def lost_connection(self) -> bool:
        """Whether the record stands for a process the connection to its machine failed, not
        the probe: a resumed run measures it again."""
        return self.status == "failed" and CONNECTION_NOTE in self.stderr_tail

    def describe(self, timeout_s: float) -> str:
        """What went wrong, in one line: "crashed (SIGSEGV): <last stderr line>",
        "timeout after 60 s", "failed (exit 3): ...", "skipped: <reason>"."""
        if self.status == "timeout":
            return f"timeout after {timeout_s:g} s"
        if self.status == "skipped":
            return f"skipped: {self.skip_reason}"
        detail = self.signal or f"exit {self.exit_code}"
        tail = self.stderr_tail.strip().splitlines()[-1:]
        return f"{self.status} ({detail})" + (f": {tail[0]}" if tail else "")

    def to_json(self) -> dict[str, Any]:
        """The record as stored; `probe` is the record's own dict, shared, not copied (a deep
        copy of every record cost the runner ~0.1 ms per process)."""
        return {"scenario_id": self.scenario_id, "process_index": self.process_index,
                "status": self.status, "exit_code": self.exit_code, "signal": self.signal,
                "wall_s": self.wall_s, "stderr_tail": self.stderr_tail, "probe": self.probe}
