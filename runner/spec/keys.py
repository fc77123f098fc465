"""The spec file format's vocabulary: the keys each mapping of a spec may hold and the limits
on what a spec may ask for.

Each key table (TOP_KEYS, REPETITION_KEYS, CHART_KEYS, CHECK_KEYS) lists a mapping's keys with
their kind, whether they are required and their help text; the words a key takes
(EXPECTATIONS, STATISTICS, QUANTIFIERS, METHODS) come from runner.core.model, parameter keys
from runner.core.parameters, metric names from runner.core.metrics. runner.spec.load and the
modules it reads with interpret these tables, and runner.spec.schema turns them into the JSON
Schema for editors: one source for both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, get_args

from runner.core import names
from runner.core.metrics import BY_NAME as METRICS_BY_NAME
from runner.core.model import (
    ADAPTIVE_FACTOR,
    CheckSpec,
    Expectation,
    ExperimentSpec,
    Method,
    Quantifier,
    Repetitions,
    Statistic,
    YFrom,
)
from runner.core.parameters import PARAMETERS
from runner.core.units import DURATION_HINT

# What a key takes. The validator and schema.py both interpret these; "whole" uses Key.minimum.
KeyKind = Literal[
    "slug", "text", "duration", "matrix", "parameters", "entries", "axis_entries",
    "repetitions", "charts", "whole", "flag", "metric", "axis", "axes", "checks", "expectation",
    "fraction", "selector", "number", "where", "statistic", "method", "share", "quantifier",
    "y_from", "texts",
]


@dataclass(frozen=True)
class Key:
    """One key a spec mapping may hold: what it takes, whether it must be there, what it means."""

    name: str
    kind: KeyKind
    help: str
    required: bool = False
    minimum: int = 0


_DEFAULT_REPETITIONS = Repetitions()
DEFAULT_TIMEOUT_S = float(
    next(f.default for f in fields(ExperimentSpec) if f.name == "timeout_s"))  # type: ignore[arg-type]

TOP_KEYS: tuple[Key, ...] = (
    Key("name", "slug", "identifier of the experiment: lowercase letters, digits and '-', "
        "unique across the experiments loaded together", required=True),
    Key("title", "text", "heading of the experiment in the report", required=True),
    Key("question", "text", "what the experiment asks, in prose shown in the report",
        required=True),
    Key("matrix", "matrix", "parameter key -> list of values (a single value means one); every "
        "combination is a scenario, the last axis varying fastest", required=True),
    Key("fixed", "parameters", "parameter key -> one value, for every scenario; a key is either "
        "in matrix or in fixed"),
    Key("exclude", "axis_entries", "matrix points to remove: each entry removes the points that "
        "match all of its keys (matrix axes)"),
    Key("include", "entries", "extra scenarios, one per entry; unset keys come from fixed, then "
        "from the parameter defaults"),
    Key("repetitions", "repetitions", "how often each scenario is measured"),
    Key("timeout", "duration", f"limit for one probe process ({DURATION_HINT}); "
        f"default {DEFAULT_TIMEOUT_S:g}s"),
    Key("charts", "charts", "charts shown in the report"),
    Key("checks", "checks", "claims the data decides: each compares a metric of candidate "
        "scenarios with the reference scenarios they pair with, and gets a verdict"),
)

REPETITION_KEYS: tuple[Key, ...] = (
    Key("processes", "whole", "fresh probe processes per scenario "
        f"(default {_DEFAULT_REPETITIONS.processes})", minimum=1),
    Key("warmup", "whole", "unrecorded iterations at the start of each process "
        f"(default {_DEFAULT_REPETITIONS.warmup})", minimum=0),
    Key("iterations", "whole", "recorded iterations per process "
        f"(default {_DEFAULT_REPETITIONS.iterations})", minimum=1),
    Key("max_processes", "whole", "the most processes per scenario a check pair still "
        "undecided after `processes` may take: more rounds of its two scenarios, `processes` "
        f"at a time (default {ADAPTIVE_FACTOR} x processes; equal to processes: none)",
        minimum=1),
    Key("extra_time", "share", "the most time a run spends on those extra rounds, as a share "
        "of what its base rounds took (default "
        f"{_DEFAULT_REPETITIONS.extra_time:.0%}; 0% turns extra rounds off)"),
)

CHART_KEYS: tuple[Key, ...] = (
    Key("title", "text", "heading of the chart", required=True),
    Key("metric", "metric", "what the y axis shows", required=True),
    Key("x", "axis", "the parameter on the x axis: an axis of the experiment", required=True),
    Key("series", "axes", "axis or axes that split the data into one line each"),
    Key("where", "parameters", "parameter key -> value: only scenarios with these values"),
    Key("log_x", "flag", "logarithmic x axis (default false)"),
    Key("log_y", "flag", "logarithmic y axis (default false)"),
    Key("y_from", "y_from", "where a linear y axis starts: zero (default; a line's height is "
        "its value, so a 12% change looks like 12%) or data (the data's own range, for a "
        "small difference far from 0); a log y axis always spans the data"),
)

CHECK_KEYS: tuple[Key, ...] = (
    Key("claim", "text", "the claim, in words, as the verdict table shows it", required=True),
    Key("metric", "metric", "what is compared", required=True),
    Key("expect", "expectation", "what the claim says of the candidate's metric against the "
        "reference's: lower, higher or same, or no-higher or no-lower (one-sided: not above "
        "the tolerance band, not below it)", required=True),
    Key("candidate", "selector", "parameter key -> value picking the candidate scenarios",
        required=True),
    Key("reference", "selector", "parameter key -> value picking the reference scenarios; "
        "candidates and references pair up where every other parameter agrees (give "
        "reference or value)"),
    Key("value", "number", "a fixed value every candidate is compared with, instead of "
        "reference scenarios (e.g. 1 for protection_enforced)"),
    Key("tolerance", "fraction", "differences smaller than this count as no difference "
        f"(default {CheckSpec.tolerance:.0%}; e.g. 10%)"),
    Key("where", "where", "parameter key -> a value, a list of values, or for an ordered "
        "parameter (size, grow_factor, threads) a range {from: .., to: ..} (both ends "
        "included, either may be left out): the claim is about these scenarios only, "
        "candidates and references alike"),
    Key("statistic", "statistic", "what stands for each process in a statistical comparison: "
        "median (default) or minimum of its iterations"),
    Key("method", "method", "exact (every sample must agree: deterministic facts such as "
        "faults or flags) or statistical (a 95% interval over processes: timings); default "
        "exact for deterministic metrics, statistical otherwise"),
    Key("max_processes", "whole", "the most processes per scenario this check's undecided "
        "pairs may take (default: repetitions' max_processes); at least repetitions' "
        "processes", minimum=1),
    Key("quantifier", "quantifier", "all (default: the claim is about every pair, and holds "
        "where they all hold) or some (an existence claim, such as 'malloc does not zero "
        "memory': it holds where any pair shows it, and the verdict names where it does not)"),
    Key("formerly", "texts", "the claim's earlier words, a list: links to its verdict row made "
        "while it read so keep leading to it. For a claim reworded without changing what it "
        "asserts; a claim that asserts something else is another claim, with a link of its "
        "own"),
)
EXPECTATIONS: tuple[str, ...] = get_args(Expectation)
STATISTICS: tuple[str, ...] = get_args(Statistic)
QUANTIFIERS: tuple[str, ...] = get_args(Quantifier)
METHODS: tuple[str, ...] = get_args(Method)
Y_FROMS: tuple[str, ...] = get_args(YFrom)
ORDERED_KINDS = ("size", "whole", "share")  # parameter kinds a `where` range applies to
RANGE_KEYS = ("from", "to")

NAME_PATTERN = names.EXPERIMENT_PATTERN
# Bounds on what a spec may ask for, so that neither loading it nor running it can take the
# machine down: the file, its nesting and node count (aliases counted as expanded), texts, the
# scenarios a matrix makes, the probe runs they make with the processes, the timeout.
MAX_SPEC_BYTES = 1 << 20  # a spec file, in bytes (1 MiB)
MAX_DEPTH = 32  # levels of YAML nesting
MAX_NODES = 100_000  # YAML values in a file, an alias counting as what it repeats
MAX_TEXT_CHARS = 4000  # a question
MAX_TITLE_CHARS = 200  # a title or claim
MAX_SCENARIOS = 10_000  # scenarios a matrix makes, with include
MAX_PROBE_RUNS = 100_000  # scenarios x processes
MAX_REPETITION = 10_000  # processes, warmup or iterations
MAX_SHARE = 10.0  # extra_time: at most ten times the base rounds' time
MAX_TIMEOUT_S = 24 * 3600.0  # timeout: one probe process, at most 24 hours
PARAMETER_KEYS: tuple[str, ...] = tuple(p.key for p in PARAMETERS)
METRIC_NAMES: tuple[str, ...] = tuple(METRICS_BY_NAME)
