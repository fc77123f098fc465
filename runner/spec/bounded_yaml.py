"""Spec files read as YAML within bounds: text in, YAML's node tree out, or one SpecError.

The trust boundary of specs: a spec may come from anyone (a colleague's file, a run copied
from elsewhere with its spec text stored in the manifest), so reading one must neither take
the machine down nor run anything. A file is read only when it is a regular file of
MAX_SPEC_BYTES at most, and composed by PyYAML's composer bounded to MAX_DEPTH levels of
nesting and MAX_NODES values (an alias counting as the values it repeats); nothing is built
from the nodes here, so no tag can construct an object. runner.spec.walker reads the nodes as
plain values and refuses every tag but the standard ones (MAP_TAG, SEQ_TAG and the scalars
SafeConstructor knows). Text that is not YAML gets PyYAML's message and, for the usual
mistakes, what to do about it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from runner.core.errors import SpecError
from runner.spec.keys import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_SPEC_BYTES,
)

# The only tags a spec's mappings and lists may carry (runner.spec.walker checks them).
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"


def read_file(path: Path, source: str) -> str:
    """A spec file's text: a regular file (not a FIFO, device or directory) of MAX_SPEC_BYTES at
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


def compose(text: str, source: str) -> Node:
    """The text's node tree, within the bounds; SpecError with the line for text that is not
    YAML, is out of bounds or is empty."""
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
        raise SpecError(source, None, "", f"invalid YAML: {one_line(str(error))}") from None
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


def one_line(text: str) -> str:
    """A message on one line, its whitespace runs as single spaces."""
    return " ".join(text.split())
