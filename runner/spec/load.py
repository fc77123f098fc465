"""Loading experiment specs: YAML in, a validated ExperimentSpec out, or one SpecError.

spec.py owns the spec file format: the tables of keys each mapping may hold (TOP_KEYS,
REPETITION_KEYS, CHART_KEYS, which schema.py turns into the JSON Schema), reading YAML as data
only (SafeLoader's composer and scalar constructor; no object is ever built from a tag), and
every validation rule. Parameter keys and values come from runner.core.parameters, metric names from
runner.core.metrics.

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
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from runner.core import names
from runner.core.errors import SpecError
from runner.core.kinds import Value
from runner.core.metrics import BY_NAME as METRICS_BY_NAME
from runner.core.model import (
    ADAPTIVE_FACTOR,
    ChartSpec,
    CheckSpec,
    Condition,
    Expectation,
    ExperimentSpec,
    Method,
    Plan,
    Quantifier,
    Repetitions,
    Span,
    Statistic,
)
from runner.core.parameters import BY_KEY, PARAMETERS
from runner.core.scope import describe_where, pair_up, selects
from runner.core.units import DURATION_HINT, parse_duration_s
from runner.spec.matrix import expand

# What a key takes. The validator and schema.py both interpret these; "whole" uses Key.minimum.
KeyKind = Literal[
    "slug", "text", "duration", "matrix", "parameters", "entries", "axis_entries",
    "repetitions", "charts", "whole", "flag", "metric", "axis", "axes", "checks", "expectation",
    "fraction", "selector", "number", "where", "statistic", "method", "share", "quantifier",
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
_DEFAULT_TIMEOUT_S = float(
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
        f"default {_DEFAULT_TIMEOUT_S:g}s"),
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
)
EXPECTATIONS: tuple[str, ...] = get_args(Expectation)
STATISTICS: tuple[str, ...] = get_args(Statistic)
QUANTIFIERS: tuple[str, ...] = get_args(Quantifier)
METHODS: tuple[str, ...] = get_args(Method)
ORDERED_KINDS = ("size", "whole", "share")  # parameter kinds a `where` range applies to
RANGE_KEYS = ("from", "to")

NAME_PATTERN = names.EXPERIMENT_PATTERN
# Bounds on what a spec may ask for, so that neither loading it nor running it can take the
# machine down: the file, its nesting and node count (aliases counted as expanded), texts, the
# scenarios a matrix makes, the probe runs they make with the processes, the timeout.
MAX_SPEC_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 100_000
MAX_TEXT_CHARS = 4000  # a question
MAX_TITLE_CHARS = 200  # a title or claim
MAX_SCENARIOS = 10_000
MAX_PROBE_RUNS = 100_000  # scenarios x processes
MAX_REPETITION = 10_000  # processes, warmup or iterations
MAX_SHARE = 10.0  # extra_time: at most ten times the base rounds' time
MAX_TIMEOUT_S = 24 * 3600.0
PARAMETER_KEYS: tuple[str, ...] = tuple(p.key for p in PARAMETERS)
METRIC_NAMES: tuple[str, ...] = tuple(METRICS_BY_NAME)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


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
    return _read_file(path, str(path))


@functools.lru_cache(maxsize=64)
def parse_spec(text: str, source: str) -> ExperimentSpec:
    """Validate spec text (e.g. as stored with a run); `source` names it in errors.

    Remembered (a spec is immutable; errors are raised again each time): rendering a report
    reads each stored spec several times (manifest checks, the page), at ~10 ms a parse.
    """
    return _parse(text, source)[0]


def _load(path: Path) -> tuple[ExperimentSpec, dict[str, int]]:
    source = str(path)
    return _parse(_read_file(path, source), source)


def _parse(text: str, source: str) -> tuple[ExperimentSpec, dict[str, int]]:
    """The spec and the line of every key path in it."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(source, None, "", f"more than {MAX_SPEC_BYTES} characters (1 MiB)")
    root = _compose(text, source)
    walker = _Walker(source)
    spec = _build_spec(walker, walker.item("", root, root.start_mark.line + 1))
    _check_size(spec, walker)
    try:
        plan = expand(spec)
    except SpecError as error:
        raise SpecError(error.source, walker.lines.get(error.key_path), error.key_path,
                        error.message) from None
    _check_probe_runs(spec, len(plan.scenarios), spec.repetitions.processes, walker.lines)
    _check_scopes(plan, walker.lines)
    return spec, walker.lines


def _check_size(spec: ExperimentSpec, walker: _Walker) -> None:
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


def _read_file(path: Path, source: str) -> str:
    """The file's text: a regular file (not a FIFO, device or directory) of MAX_SPEC_BYTES at
    most. O_NONBLOCK: opening a FIFO must not wait for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SpecError(source, None, "", "no such file") from None
    except OSError as error:
        raise SpecError(source, None, "", f"cannot read: {error.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecError(source, None, "", "not a regular file (a spec is a YAML file)")
        if info.st_size > MAX_SPEC_BYTES:
            raise SpecError(source, None, "", f"{info.st_size} bytes; a spec may have at most "
                            f"{MAX_SPEC_BYTES} (1 MiB)")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as error:
        raise SpecError(source, None, "", f"cannot read: {error.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SPEC_BYTES:  # grew while being read
        raise SpecError(source, None, "", f"more than {MAX_SPEC_BYTES} bytes (1 MiB)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(source, None, "", f"not UTF-8 text ({error.reason})") from None


class _Bounded(Composer):
    """A composer with MAX_DEPTH levels of nesting and MAX_NODES nodes at most, an
    alias counting as the nodes it stands for (so `&a [*b, *b, ...]` chains cannot explode)."""

    # The parser's, from the class this is mixed with (yaml.SafeLoader, or libyaml's).
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def _start(self) -> None:
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if node is not None:
                self._count(self._size(node), node)
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                self._refuse(f"nested more than {MAX_DEPTH} levels deep")
            self._count(1, None)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _count(self, nodes: int, node: Node | None) -> None:
        self._nodes += nodes
        if self._nodes > MAX_NODES:
            self._refuse(f"more than {MAX_NODES} values (aliases counted as what they repeat)")

    def _size(self, node: Node) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size

    def _refuse(self, problem: str) -> None:
        mark = self.peek_event().start_mark
        raise ComposerError(None, None, problem, mark)


class _BoundedLoader(_Bounded, yaml.SafeLoader):
    """_Bounded over PyYAML's own parser: the messages users get for text that is not YAML."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start()


def _fast_loader() -> type[Any] | None:
    """_Bounded's composer over libyaml's parser, where PyYAML was built with it: the same
    events, nodes and marks, and a spec parsed about six times faster (~3 ms instead of ~16,
    which keeps `alloclab validate` of the whole suite under half a second). None without."""
    try:
        from yaml._yaml import CParser
    except ImportError:
        return None

    class Fast(_Bounded, CParser, SafeConstructor, Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start()

    return Fast


_FAST_LOADER = _fast_loader()


def _compose(text: str, source: str) -> Node:
    # libyaml first; any text it refuses is parsed again by the pure-Python loader, whose
    # messages (line, what was found, the tab hint) are the ones users get.
    if _FAST_LOADER is not None:
        try:
            fast = yaml.compose(text, Loader=_FAST_LOADER)
            if fast is not None:
                return fast
        except (yaml.YAMLError, UnicodeError, ValueError):
            pass
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError(source, line, "", f"invalid YAML: {_yaml_problem(error)}") from None
    except yaml.YAMLError as error:
        raise SpecError(source, None, "", f"invalid YAML: {_one_line(str(error))}") from None
    if root is None:
        raise SpecError(source, None, "", "the file is empty (expected a mapping with name, "
                        "title, question and matrix)")
    return root


# What the usual mistakes behind yaml's problem texts are, said as what to do.
_YAML_HINTS = (
    ("'\\t'", "indent with spaces: YAML does not allow tabs"),
    ("expected <block end>", "this line does not line up: every key of a mapping, and every "
     "'- ' item of a list, starts in the same column as the ones before it"),
    ("mapping values are not allowed here", "a ': ' inside a value, or a key indented under "
     "a value: quote the value, or line the key up with the keys beside it"),
    ("expected ',' or '}'", "a { ... } left open: close it on the line it starts"),
    ("expected ',' or ']'", "a [ ... ] left open: close it on the line it starts"),
    ("could not find expected ':'", "a key without ':' after it, or a quote left open"),
    ("found unexpected end of stream", "a quote or bracket left open"),
)


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    """yaml's problem text (with its context when the problem only continues it, "but ..."),
    and what to do about it where the mistake behind it is a usual one (_YAML_HINTS)."""
    problem = error.problem or error.context or "unreadable"
    if error.context and problem.startswith("but "):
        problem = f"{error.context}, {problem}"
    hint = next((hint for text, hint in _YAML_HINTS if text in problem), None)
    return f"{problem} ({hint})" if hint else problem


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Walking the node tree


@dataclass(frozen=True)
class _Item:
    """A node and where it is: its key path and the line to report (the key's, for values)."""

    path: str
    node: Node
    line: int


class _Walker:
    """Reads one node tree as plain values, remembering the line of every key path visited."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}
        self._constructor = SafeConstructor()

    def item(self, path: str, node: Node, line: int) -> _Item:
        self.lines.setdefault(path, line)
        return _Item(path, node, line)

    def error(self, item: _Item, message: str, path: str | None = None) -> SpecError:
        return SpecError(self.source, item.line, item.path if path is None else path, message)

    def mapping(self, item: _Item, expected: str) -> dict[str, _Item]:
        """The entries of a mapping, by key; reject other nodes, non-string and repeated keys."""
        node = item.node
        if not isinstance(node, MappingNode) or node.tag != _MAP_TAG:
            raise self.error(item, f"expected {expected}, found {self.describe(node)}")
        entries: dict[str, _Item] = {}
        for key_node, value_node in node.value:
            key_item = _Item(item.path, key_node, key_node.start_mark.line + 1)
            key = self.scalar(key_item)
            if not isinstance(key, str):
                raise self.error(key_item, f"expected a key name, found {self.describe(key_node)}")
            if key in entries:
                raise self.error(key_item, f"key {key!r} appears twice "
                                 f"(first on line {entries[key].line})")
            path = f"{item.path}.{key}" if item.path else key
            entries[key] = self.item(path, value_node, key_item.line)
        return entries

    def sequence(self, item: _Item, expected: str) -> list[_Item]:
        node = item.node
        if not isinstance(node, SequenceNode) or node.tag != _SEQ_TAG:
            raise self.error(item, f"expected {expected}, found {self.describe(node)}")
        return [self.item(f"{item.path}[{index}]", child, child.start_mark.line + 1)
                for index, child in enumerate(node.value)]

    def scalar(self, item: _Item, expected: str = "one value") -> object:
        node = item.node
        if not isinstance(node, ScalarNode):
            raise self.error(item, f"expected {expected}, found {self.describe(node)}")
        if node.tag not in SafeConstructor.yaml_constructors:
            raise self.error(item, f"unsupported YAML tag {_short_tag(node.tag)} "
                             "(a spec holds plain values: text, numbers, true or false)")
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError) as error:
            raise self.error(item, f"cannot read this value as {_short_tag(node.tag)}: "
                             f"{_one_line(str(error))}") from None

    def describe(self, node: Node) -> str:
        """What a node is, in words, for "expected X, found Y"."""
        if isinstance(node, MappingNode | SequenceNode):
            kind = "a mapping" if isinstance(node, MappingNode) else "a list"
            standard = node.tag in (_MAP_TAG, _SEQ_TAG)
            return kind if standard else f"{kind} tagged {_short_tag(node.tag)}"
        if node.tag not in SafeConstructor.yaml_constructors:
            return f"a value tagged {_short_tag(node.tag)}"
        try:
            value = self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError):
            return f"a value tagged {_short_tag(node.tag)}"
        return _describe_value(value)

    def plain(self, node: Node) -> Any:
        """The node as plain data (dicts, lists, scalars), for ExperimentSpec.raw."""
        if isinstance(node, MappingNode):
            return {self.plain(key): self.plain(value) for key, value in node.value}
        if isinstance(node, SequenceNode):
            return [self.plain(child) for child in node.value]
        return self._constructor.construct_object(node)


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def _describe_value(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"a {type(value).__name__}"


def _unknown(word: str, allowed: Sequence[str], what: str) -> str:
    """"unknown key 'titel'; did you mean 'title'?" or the list of what is allowed."""
    close = difflib.get_close_matches(word, allowed, n=1)
    if close:
        return f"unknown {what} {word!r}; did you mean {close[0]!r}?"
    return f"unknown {what} {word!r} (allowed: {', '.join(allowed)})"


def _check_names(walker: _Walker, parent: _Item, entries: dict[str, _Item],
                 allowed: Sequence[str], what: str) -> None:
    for name, entry in entries.items():
        if name not in allowed:
            raise walker.error(entry, _unknown(name, allowed, what), path=parent.path)


def _check_keys(walker: _Walker, parent: _Item, entries: dict[str, _Item],
                table: Sequence[Key]) -> None:
    """Unknown keys (with a "did you mean"), then missing required ones, against a key table."""
    _check_names(walker, parent, entries, [key.name for key in table], "key")
    for key in table:
        if key.required and key.name not in entries:
            # The line is the mapping's first: the key belongs among the keys from there on.
            raise walker.error(parent, f"missing required key {key.name!r} (add it to the "
                                       "keys that start on this line)")


# ---------------------------------------------------------------------------------------------
# Simple values, by key kind


def _read_simple(walker: _Walker, item: _Item, key: Key) -> Value:
    """A value of a simple kind (slug, text, whole, flag), as the key table says."""
    value = walker.scalar(item, _expected(key))
    if key.kind == "slug":
        if not isinstance(value, str) or not names.is_experiment_name(value):
            raise walker.error(item, f"{_shown(value)} is not a valid name (use "
                               f"{names.EXPERIMENT_HINT}, e.g. first-touch)")
        return value
    if key.kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise walker.error(item, f"expected {_expected(key)}, found {_describe_value(value)}")
        problem = _text_problem(value.strip(), MAX_TEXT_CHARS if key.name == "question"
                                else MAX_TITLE_CHARS)
        if problem:
            raise walker.error(item, problem)
        return value.strip()
    if key.kind == "whole":
        if (isinstance(value, bool) or not isinstance(value, int) or value < key.minimum
                or value > MAX_REPETITION):
            raise walker.error(item, f"expected {_expected(key)} and at most {MAX_REPETITION}, "
                               f"found {_describe_value(value)}")
        return value
    if not isinstance(value, bool):
        raise walker.error(item, f"expected {_expected(key)}, found {_describe_value(value)}")
    return value


def _text_problem(text: str, max_chars: int) -> str | None:
    """Why a text cannot be shown as it is: too long, a lone surrogate, a control character."""
    if len(text) > max_chars:
        return f"{len(text)} characters; at most {max_chars} are allowed here"
    for char in text:
        if 0xD800 <= ord(char) <= 0xDFFF:
            return f"contains an unpaired surrogate (U+{ord(char):04X}), not text"
        if (ord(char) < 0x20 and char not in "\n\t") or 0x7F <= ord(char) < 0xA0:
            return f"contains the control character U+{ord(char):04X}"
    return None


def _expected(key: Key) -> str:
    words: dict[KeyKind, str] = {
        "slug": "a name", "text": "some text", "whole": f"a whole number >= {key.minimum}",
        "flag": "true or false",
    }
    return words.get(key.kind, "one value")


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else _describe_value(value)


def _read_parameter(walker: _Walker, key: str, item: _Item) -> Value:
    """One parameter value, parsed by its Parameter; unknown choices get a "did you mean"."""
    raw = walker.scalar(item)
    parameter = BY_KEY[key]
    if parameter.kind == "choice" and isinstance(raw, str) and raw not in parameter.choices:
        raise walker.error(item, _unknown(raw, parameter.choices, key))
    try:
        return parameter.parse(raw)
    except ValueError as error:
        raise walker.error(item, str(error)) from None


def _read_parameter_entries(walker: _Walker, item: _Item, expected: str,
                            allowed: Sequence[str] = PARAMETER_KEYS,
                            what: str = "parameter") -> list[tuple[str, Value, _Item]]:
    """A mapping of parameter keys to one value each: (key, parsed value, where it is)."""
    entries = walker.mapping(item, expected)
    _check_names(walker, item, entries, allowed, what)
    return [(key, _read_parameter(walker, key, entry), entry) for key, entry in entries.items()]


def _read_parameters(walker: _Walker, item: _Item, expected: str) -> tuple[tuple[str, Value], ...]:
    return tuple((key, value) for key, value, _ in _read_parameter_entries(walker, item, expected))


# ---------------------------------------------------------------------------------------------
# The experiment


Matrix = tuple[tuple[str, tuple[Value, ...]], ...]
Entries = tuple[tuple[tuple[str, Value], ...], ...]


def _build_spec(walker: _Walker, root: _Item) -> ExperimentSpec:
    entries = walker.mapping(root, "a mapping with name, title, question and matrix")
    _check_keys(walker, root, entries, TOP_KEYS)
    top = {key.name: key for key in TOP_KEYS}
    matrix = _read_matrix(walker, entries["matrix"])
    include = _read_include(walker, entries.get("include"))
    return ExperimentSpec(
        name=str(_read_simple(walker, entries["name"], top["name"])),
        title=str(_read_simple(walker, entries["title"], top["title"])),
        question=str(_read_simple(walker, entries["question"], top["question"])),
        source=walker.source,
        matrix=matrix,
        fixed=_read_fixed(walker, entries.get("fixed"), matrix),
        exclude=_read_exclude(walker, entries.get("exclude"), matrix),
        include=include,
        repetitions=_read_repetitions(walker, entries.get("repetitions")),
        timeout_s=_read_timeout(walker, entries.get("timeout")),
        charts=_read_charts(walker, entries.get("charts"), _axes(matrix, include)),
        checks=_read_checks(walker, entries.get("checks"), _axes(matrix, include)),
        raw=walker.plain(root.node),
    )


def _axes(matrix: Matrix, include: Entries) -> tuple[str, ...]:
    """The keys that vary between scenarios: matrix axes, then keys set by include entries."""
    axes = [key for key, _ in matrix]
    axes += [key for entry in include for key, _ in entry if key not in axes]
    return tuple(dict.fromkeys(axes))


def _read_matrix(walker: _Walker, item: _Item) -> Matrix:
    entries = walker.mapping(item, "a mapping of parameter keys to lists of values")
    if not entries:
        raise walker.error(item, "expected at least one parameter to vary "
                           "(e.g. size: [4KiB, 1MiB])")
    _check_names(walker, item, entries, PARAMETER_KEYS, "parameter")
    return tuple((key, _read_axis_values(walker, key, entry)) for key, entry in entries.items())


def _read_axis_values(walker: _Walker, key: str, item: _Item) -> tuple[Value, ...]:
    if isinstance(item.node, ScalarNode):
        return (_read_parameter(walker, key, item),)
    children = walker.sequence(item, "a list of values (or one value)")
    if not children:
        raise walker.error(item, "expected at least one value (an empty list makes no scenario)")
    return _read_distinct(walker, key, children)


def _read_distinct(walker: _Walker, key: str, children: list[_Item]) -> tuple[Value, ...]:
    """A list of one parameter's values, each listed once."""
    values: list[Value] = []
    for child in children:
        value = _read_parameter(walker, key, child)
        if value in values:
            raise walker.error(child, f"{BY_KEY[key].format(value)} is listed twice")
        values.append(value)
    return tuple(values)


def _read_fixed(walker: _Walker, item: _Item | None,
                matrix: Matrix) -> tuple[tuple[str, Value], ...]:
    if item is None:
        return ()
    axes = dict(matrix)
    fixed = []
    for key, value, entry in _read_parameter_entries(
            walker, item, "a mapping of parameter keys to one value each"):
        if key in axes:
            raise walker.error(entry, f"{key} is also a matrix axis; "
                               "set it either in matrix or in fixed")
        fixed.append((key, value))
    return tuple(fixed)


def _read_exclude(walker: _Walker, item: _Item | None, matrix: Matrix) -> Entries:
    if item is None:
        return ()
    return tuple(_read_exclude_entry(walker, child, dict(matrix))
                 for child in walker.sequence(item, "a list of mappings of matrix axes to values"))


def _read_exclude_entry(walker: _Walker, item: _Item,
                        axes: dict[str, tuple[Value, ...]]) -> tuple[tuple[str, Value], ...]:
    entries = _read_parameter_entries(walker, item, "a mapping of matrix axes to values",
                                      allowed=tuple(axes), what="matrix axis")
    if not entries:
        raise walker.error(item, "expected at least one matrix axis to match")
    for key, value, entry in entries:
        if value not in axes[key]:
            listed = ", ".join(BY_KEY[key].format(v) for v in axes[key])
            raise walker.error(entry, f"{BY_KEY[key].format(value)} is not a value of matrix "
                               f"axis {key} ({listed}), so this entry excludes nothing")
    return tuple((key, value) for key, value, _ in entries)


def _read_include(walker: _Walker, item: _Item | None) -> Entries:
    if item is None:
        return ()
    entries = []
    for child in walker.sequence(item, "a list of mappings of parameter keys to values"):
        entry = _read_parameters(walker, child, "a mapping of parameter keys to values")
        if not entry:
            raise walker.error(child, "expected at least one parameter")
        entries.append(entry)
    return tuple(entries)


def _read_repetitions(walker: _Walker, item: _Item | None) -> Repetitions:
    if item is None:
        return Repetitions()
    entries = walker.mapping(item, "a mapping with processes, warmup and/or iterations")
    _check_keys(walker, item, entries, REPETITION_KEYS)
    counts: dict[str, Any] = {
        key.name: int(_read_simple(walker, entries[key.name], key))
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


def _read_share(walker: _Walker, item: _Item) -> float:
    """A share like 100% or 50% (or a number, 1.0), from 0% to MAX_SHARE."""
    value, share = _percentage(walker, item, "a percentage like 100%")
    if share is None or not 0 <= share <= MAX_SHARE:
        raise walker.error(item, f"{_shown(value)} is not a share (use a percentage from "
                           f"0% to {MAX_SHARE:.0%}, e.g. 100%, or a number like 1.0)")
    return share


def _percentage(walker: _Walker, item: _Item, expected: str) -> tuple[object, float | None]:
    """A scalar as written, and read as a fraction (5% as 0.05, a plain number as it is), or
    None when it is neither."""
    value = walker.scalar(item, expected)
    if isinstance(value, bool):
        return value, None
    text = str(value).strip()
    try:
        return value, float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        return value, None


def _read_timeout(walker: _Walker, item: _Item | None) -> float:
    if item is None:
        return _DEFAULT_TIMEOUT_S
    value = walker.scalar(item, f"a duration ({DURATION_HINT})")
    if not isinstance(value, str | int | float):
        raise walker.error(item, f"expected a duration ({DURATION_HINT}), "
                           f"found {_describe_value(value)}")
    try:
        seconds = parse_duration_s(value)
    except ValueError as error:
        raise walker.error(item, str(error)) from None
    if not math.isfinite(seconds) or seconds > MAX_TIMEOUT_S:
        raise walker.error(item, f"{_shown(value)} is not a duration of at most 24 hours "
                           f"({DURATION_HINT})")
    return seconds


# ---------------------------------------------------------------------------------------------
# Charts


def _read_charts(walker: _Walker, item: _Item | None,
                 axes: tuple[str, ...]) -> tuple[ChartSpec, ...]:
    if item is None:
        return ()
    return tuple(_read_chart(walker, child, axes)
                 for child in walker.sequence(item, "a list of charts"))


def _read_chart(walker: _Walker, item: _Item, axes: tuple[str, ...]) -> ChartSpec:
    entries = walker.mapping(item, "a chart: a mapping with title, metric and x")
    _check_keys(walker, item, entries, CHART_KEYS)
    table = {key.name: key for key in CHART_KEYS}
    x = _read_axis(walker, entries["x"], axes)
    series = _read_series(walker, entries.get("series"), axes)
    if x in series:
        raise walker.error(entries["series"], f"{x} is already the x axis")
    where = entries.get("where")
    return ChartSpec(
        title=str(_read_simple(walker, entries["title"], table["title"])),
        metric=_read_metric(walker, entries["metric"]),
        x=x,
        series=series,
        where=() if where is None else _read_parameters(
            walker, where, "a mapping of parameter keys to one value each"),
        log_x=_read_flag(walker, entries.get("log_x"), table["log_x"]),
        log_y=_read_flag(walker, entries.get("log_y"), table["log_y"]),
    )


def _read_flag(walker: _Walker, item: _Item | None, key: Key) -> bool:
    return item is not None and bool(_read_simple(walker, item, key))


def _read_metric(walker: _Walker, item: _Item) -> str:
    value = walker.scalar(item, "a metric name")
    if not isinstance(value, str) or value not in METRICS_BY_NAME:
        raise walker.error(item, _unknown(str(value), METRIC_NAMES, "metric"))
    return value


def _read_axis(walker: _Walker, item: _Item, axes: tuple[str, ...]) -> str:
    value = walker.scalar(item, "a parameter key")
    if isinstance(value, str) and value in axes:
        return value
    close = difflib.get_close_matches(str(value), axes, n=1)
    if close:
        raise walker.error(item, f"unknown axis {_shown(value)}; did you mean {close[0]!r}?")
    raise walker.error(item, f"{_shown(value)} is not an axis of this experiment "
                       f"(axes: {', '.join(axes)})")


def _read_series(walker: _Walker, item: _Item | None,
                 axes: tuple[str, ...]) -> tuple[str, ...]:
    if item is None:
        return ()
    if isinstance(item.node, ScalarNode):
        return (_read_axis(walker, item, axes),)
    children = walker.sequence(item, "an axis or a list of axes")
    return tuple(dict.fromkeys(_read_axis(walker, child, axes) for child in children))


# ---------------------------------------------------------------------------------------------
# Checks


def _read_checks(walker: _Walker, item: _Item | None,
                 axes: tuple[str, ...]) -> tuple[CheckSpec, ...]:
    if item is None:
        return ()
    return tuple(_read_check(walker, child, axes)
                 for child in walker.sequence(item, "a list of checks"))


def _read_check(walker: _Walker, item: _Item, axes: tuple[str, ...]) -> CheckSpec:
    entries = walker.mapping(item, "a check: a mapping with claim, metric, expect, candidate "
                             "and reference")
    _check_keys(walker, item, entries, CHECK_KEYS)
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
        value = _read_number(walker, entries["value"])
    return CheckSpec(
        claim=str(_read_simple(walker, entries["claim"], table["claim"])),
        metric=_read_metric(walker, entries["metric"]),
        expect=_read_expectation(walker, entries["expect"]),
        candidate=candidate,
        reference=reference,
        tolerance=_read_fraction(walker, entries.get("tolerance")),
        value=value,
        where=_read_where(walker, entries.get("where")),
        statistic=cast(Statistic, _read_word(walker, entries.get("statistic"), STATISTICS,
                                             "statistic") or CheckSpec.statistic),
        method=cast(Method | None, _read_word(walker, entries.get("method"), METHODS,
                                              "method")),
        max_processes=(None if "max_processes" not in entries
                       else int(_read_simple(walker, entries["max_processes"],
                                             table["max_processes"]))),
        quantifier=cast(Quantifier, _read_word(walker, entries.get("quantifier"), QUANTIFIERS,
                                               "quantifier") or CheckSpec.quantifier),
    )


def _read_word(walker: _Walker, item: _Item | None, allowed: tuple[str, ...],
               what: str) -> str | None:
    """One of a few words (None when the key is absent); a "did you mean" otherwise."""
    if item is None:
        return None
    value = walker.scalar(item, " or ".join(allowed))
    if value not in allowed:
        raise walker.error(item, _unknown(str(value), allowed, what))
    return str(value)


def _read_where(walker: _Walker, item: _Item | None) -> tuple[tuple[str, Condition], ...]:
    """A check's scope: per parameter one value, a list of values, or a range {from, to}."""
    if item is None:
        return ()
    entries = walker.mapping(item, "a mapping of parameters to a value, a list of values or "
                             "a range like {from: 64MiB}")
    _check_names(walker, item, entries, PARAMETER_KEYS, "parameter")
    if not entries:
        raise walker.error(item, "expected at least one parameter (e.g. size: {from: 64MiB})")
    return tuple((key, _read_condition(walker, key, entry)) for key, entry in entries.items())


def _read_condition(walker: _Walker, key: str, item: _Item) -> Condition:
    if isinstance(item.node, SequenceNode):
        children = walker.sequence(item, "a list of values")
        if not children:
            raise walker.error(item, "expected at least one value (an empty list matches "
                               "nothing)")
        return _read_distinct(walker, key, children)
    if not isinstance(item.node, MappingNode):
        return _read_parameter(walker, key, item)
    parameter = BY_KEY[key]
    ordered = [p.key for p in PARAMETERS if p.kind in ORDERED_KINDS]
    if parameter.kind not in ORDERED_KINDS:
        raise walker.error(item, f"a range needs an ordered parameter ({', '.join(ordered)}); "
                           f"give {key} one value or a list of values")
    ends = walker.mapping(item, "a range like {from: 64MiB, to: 1GiB}")
    _check_names(walker, item, ends, RANGE_KEYS, "range key")
    if not ends:
        raise walker.error(item, "expected from, to or both (e.g. {from: 64MiB})")
    low, high = (None if end not in ends else int(_read_parameter(walker, key, ends[end]))
                 for end in RANGE_KEYS)
    if low is not None and high is not None and low > high:
        raise walker.error(ends["to"], f"to {parameter.format(high)} lies below from "
                           f"{parameter.format(low)}, so the range is empty")
    return Span(low, high)


def _check_scopes(plan: Plan, lines: dict[str, int]) -> None:
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


def _read_number(walker: _Walker, item: _Item) -> float:
    value = walker.scalar(item, "a number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise walker.error(item, f"expected a number, found {_describe_value(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not math.isfinite(number):
        # .nan would make every comparison false, .inf every one true: neither is a claim.
        raise walker.error(item, f"expected a finite number, found {_describe_value(value)}")
    return number


def _read_selector(walker: _Walker, item: _Item,
                   axes: tuple[str, ...]) -> tuple[tuple[str, Value], ...]:
    """Parameter values picking scenarios (a parameter fixed for all of them matches all)."""
    entries = _read_parameter_entries(walker, item, "a mapping of parameters to one value each")
    if not entries:
        raise walker.error(item, "expected at least one axis and value (e.g. backing: malloc)")
    return tuple((key, value) for key, value, _ in entries)


def _read_expectation(walker: _Walker, item: _Item) -> Expectation:
    value = walker.scalar(item, "lower, higher, same, no-higher or no-lower")
    if value not in EXPECTATIONS:
        raise walker.error(item, _unknown(str(value), EXPECTATIONS, "expectation"))
    return value  # type: ignore[return-value]


def _read_fraction(walker: _Walker, item: _Item | None) -> float:
    if item is None:
        return CheckSpec.tolerance
    value, fraction = _percentage(walker, item, "a percentage like 5%")
    if fraction is None or not 0 <= fraction < 1:
        raise walker.error(item, f"{_shown(value)} is not a tolerance (use a percentage "
                           "from 0% to 99%, e.g. 5%, or a fraction like 0.05)")
    return fraction

