"""Reading a spec's YAML node tree as plain values, remembering the line of every key path.

Walker reads mappings, lists and scalars, the scalars built by SafeConstructor from the
standard tags only (any other tag is refused, never constructed), and records the line of
each key path it visits so that every error can name it. The readers beside it are the generic
ones every section of a spec uses: a mapping's keys against a key table of runner.spec.keys
(unknown keys with a "did you mean", missing required ones), simple values by key kind, one
parameter's values parsed by its Parameter, numbers, percentages, words, flags and metric
names. Each refusal is a SpecError saying where, what was found and what is allowed.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from runner.core import names
from runner.core.errors import SpecError
from runner.core.kinds import Value
from runner.core.metrics import BY_NAME as METRICS_BY_NAME
from runner.core.parameters import BY_KEY
from runner.spec.bounded_yaml import MAP_TAG, SEQ_TAG, one_line
from runner.spec.keys import (
    MAX_REPETITION,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    METRIC_NAMES,
    PARAMETER_KEYS,
    Key,
    KeyKind,
)


@dataclass(frozen=True)
class Item:
    """A node and where it is: its key path and the line to report (the key's, for values)."""

    path: str
    node: Node
    line: int


class Walker:
    """Reads one node tree as plain values, remembering the line of every key path visited."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[str, int] = {}
        self._constructor = SafeConstructor()

    def item(self, path: str, node: Node, line: int) -> Item:
        self.lines.setdefault(path, line)
        return Item(path, node, line)

    def error(self, item: Item, message: str, path: str | None = None) -> SpecError:
        return SpecError(self.source, item.line, item.path if path is None else path, message)

    def mapping(self, item: Item, expected: str) -> dict[str, Item]:
        """The entries of a mapping, by key; reject other nodes, non-string and repeated keys."""
        node = item.node
        if not isinstance(node, MappingNode) or node.tag != MAP_TAG:
            raise self.error(item, f"expected {expected}, found {self.describe(node)}")
        entries: dict[str, Item] = {}
        for key_node, value_node in node.value:
            key_item = Item(item.path, key_node, key_node.start_mark.line + 1)
            key = self.scalar(key_item)
            if not isinstance(key, str):
                raise self.error(key_item, f"expected a key name, found {self.describe(key_node)}")
            if key in entries:
                raise self.error(key_item, f"key {key!r} appears twice "
                                 f"(first on line {entries[key].line})")
            path = f"{item.path}.{key}" if item.path else key
            entries[key] = self.item(path, value_node, key_item.line)
        return entries

    def sequence(self, item: Item, expected: str) -> list[Item]:
        node = item.node
        if not isinstance(node, SequenceNode) or node.tag != SEQ_TAG:
            raise self.error(item, f"expected {expected}, found {self.describe(node)}")
        return [self.item(f"{item.path}[{index}]", child, child.start_mark.line + 1)
                for index, child in enumerate(node.value)]

    def scalar(self, item: Item, expected: str = "one value") -> object:
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
                             f"{one_line(str(error))}") from None

    def describe(self, node: Node) -> str:
        """What a node is, in words, for "expected X, found Y"."""
        if isinstance(node, MappingNode | SequenceNode):
            kind = "a mapping" if isinstance(node, MappingNode) else "a list"
            standard = node.tag in (MAP_TAG, SEQ_TAG)
            return kind if standard else f"{kind} tagged {_short_tag(node.tag)}"
        if node.tag not in SafeConstructor.yaml_constructors:
            return f"a value tagged {_short_tag(node.tag)}"
        try:
            value = self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError):
            return f"a value tagged {_short_tag(node.tag)}"
        return describe_value(value)

    def plain(self, node: Node) -> Any:
        """The node as plain data (dicts, lists, scalars), for ExperimentSpec.raw."""
        if isinstance(node, MappingNode):
            return {self.plain(key): self.plain(value) for key, value in node.value}
        if isinstance(node, SequenceNode):
            return [self.plain(child) for child in node.value]
        return self._constructor.construct_object(node)


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


def describe_value(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"a {type(value).__name__}"


def unknown(word: str, allowed: Sequence[str], what: str) -> str:
    """"unknown key 'titel'; did you mean 'title'?" or the list of what is allowed."""
    close = difflib.get_close_matches(word, allowed, n=1)
    if close:
        return f"unknown {what} {word!r}; did you mean {close[0]!r}?"
    return f"unknown {what} {word!r} (allowed: {', '.join(allowed)})"


def check_names(walker: Walker, parent: Item, entries: dict[str, Item],
                allowed: Sequence[str], what: str) -> None:
    for name, entry in entries.items():
        if name not in allowed:
            raise walker.error(entry, unknown(name, allowed, what), path=parent.path)


def check_keys(walker: Walker, parent: Item, entries: dict[str, Item],
               table: Sequence[Key]) -> None:
    """Unknown keys (with a "did you mean"), then missing required ones, against a key table."""
    check_names(walker, parent, entries, [key.name for key in table], "key")
    for key in table:
        if key.required and key.name not in entries:
            # The line is the mapping's first: the key belongs among the keys from there on.
            raise walker.error(parent, f"missing required key {key.name!r} (add it to the "
                                       "keys that start on this line)")


def read_simple(walker: Walker, item: Item, key: Key) -> Value:
    """A value of a simple kind (slug, text, whole, flag), as the key table says."""
    value = walker.scalar(item, _expected(key))
    if key.kind == "slug":
        if not isinstance(value, str) or not names.is_experiment_name(value):
            raise walker.error(item, f"{shown(value)} is not a valid name (use "
                               f"{names.EXPERIMENT_HINT}, e.g. first-touch)")
        return value
    if key.kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise walker.error(item, f"expected {_expected(key)}, found {describe_value(value)}")
        problem = _text_problem(value.strip(), MAX_TEXT_CHARS if key.name == "question"
                                else MAX_TITLE_CHARS)
        if problem:
            raise walker.error(item, problem)
        return value.strip()
    if key.kind == "whole":
        if (isinstance(value, bool) or not isinstance(value, int) or value < key.minimum
                or value > MAX_REPETITION):
            raise walker.error(item, f"expected {_expected(key)} and at most {MAX_REPETITION}, "
                               f"found {describe_value(value)}")
        return value
    if not isinstance(value, bool):
        raise walker.error(item, f"expected {_expected(key)}, found {describe_value(value)}")
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


def shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else describe_value(value)


def read_parameter(walker: Walker, key: str, item: Item) -> Value:
    """One parameter value, parsed by its Parameter; unknown choices get a "did you mean"."""
    raw = walker.scalar(item)
    parameter = BY_KEY[key]
    if parameter.kind == "choice" and isinstance(raw, str) and raw not in parameter.choices:
        raise walker.error(item, unknown(raw, parameter.choices, key))
    try:
        return parameter.parse(raw)
    except ValueError as error:
        raise walker.error(item, str(error)) from None


def read_parameter_entries(walker: Walker, item: Item, expected: str,
                           allowed: Sequence[str] = PARAMETER_KEYS,
                           what: str = "parameter") -> list[tuple[str, Value, Item]]:
    """A mapping of parameter keys to one value each: (key, parsed value, where it is)."""
    entries = walker.mapping(item, expected)
    check_names(walker, item, entries, allowed, what)
    return [(key, read_parameter(walker, key, entry), entry) for key, entry in entries.items()]


def read_parameters(walker: Walker, item: Item, expected: str) -> tuple[tuple[str, Value], ...]:
    return tuple((key, value) for key, value, _ in read_parameter_entries(walker, item, expected))


def read_distinct(walker: Walker, key: str, children: list[Item]) -> tuple[Value, ...]:
    """A list of one parameter's values, each listed once."""
    values: list[Value] = []
    for child in children:
        value = read_parameter(walker, key, child)
        if value in values:
            raise walker.error(child, f"{BY_KEY[key].format(value)} is listed twice")
        values.append(value)
    return tuple(values)


def percentage(walker: Walker, item: Item, expected: str) -> tuple[object, float | None]:
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


def read_flag(walker: Walker, item: Item | None, key: Key) -> bool:
    return item is not None and bool(read_simple(walker, item, key))


def read_metric(walker: Walker, item: Item) -> str:
    value = walker.scalar(item, "a metric name")
    if not isinstance(value, str) or value not in METRICS_BY_NAME:
        raise walker.error(item, unknown(str(value), METRIC_NAMES, "metric"))
    return value


def read_word(walker: Walker, item: Item | None, allowed: tuple[str, ...],
              what: str) -> str | None:
    """One of a few words (None when the key is absent); a "did you mean" otherwise."""
    if item is None:
        return None
    value = walker.scalar(item, " or ".join(allowed))
    if value not in allowed:
        raise walker.error(item, unknown(str(value), allowed, what))
    return str(value)


def read_number(walker: Walker, item: Item) -> float:
    value = walker.scalar(item, "a number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise walker.error(item, f"expected a number, found {describe_value(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        number = math.inf
    if not math.isfinite(number):
        # .nan would make every comparison false, .inf every one true: neither is a claim.
        raise walker.error(item, f"expected a finite number, found {describe_value(value)}")
    return number
