"""What a scenario parameter is: its spec key and Scenario field, its kind (size, choice, bool,
count, whole, path, text, share), how a spec's value parses and is checked, and how it is
stored, labelled and shown. runner.core.parameters declares every parameter with it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from runner.core.units import (
    SIZE_HINT,
    check_share_ppm,
    format_share,
    format_size,
    parse_share_ppm,
    parse_size,
)

Value = str | int | bool


Kind = Literal["size", "choice", "bool", "count", "whole", "path", "text", "share"]


@dataclass(frozen=True)
class Parameter:
    """One scenario parameter: the spec key, the Scenario field, its type and its default."""

    key: str
    field: str
    kind: Kind
    default: Value
    # What it does, in one paragraph: also the JSON Schema's description, which editors show
    # as a tooltip, so it stays short.
    help: str
    choices: tuple[str, ...] = ()
    # Other spellings a choice accepts, each with the choice it means: (written, choice). The
    # first spelling of a choice is also what Scenario.id hashes, so renaming values (populate
    # was true/false) keeps the ids of stored scenarios.
    aliases: tuple[tuple[Value, str], ...] = ()
    # Labels show `key=value` (as for bool and count kinds): for values like `none` or
    # `default` that do not say what they are about.
    keyed_label: bool = False
    # The probe takes it as --<field>=<value>; a parameter that is not a probe option reaches
    # the probe another way (tunables: its environment, runner.probe.native.probe_env).
    probe_option: bool = True
    minimum: int = 1  # whole kind: the smallest value allowed
    maximum: int | None = None  # whole kind: the largest value allowed
    pattern: str = ""  # text kind: a regular expression a non-empty value must match
    hint: str = ""  # text kind: what the pattern means, for error messages
    # size kind: words that stand for a value (read_buffer: whole is 0), and the sizes allowed
    # besides them: from size_minimum to size_maximum (when given), in whole size_units
    words: tuple[tuple[str, int], ...] = ()
    size_minimum: int = 1
    size_maximum: int | None = None
    size_unit: int = 1
    # What the help leaves out (the details of each value, what it takes along, what it
    # needs), for docs/reference/parameters.md (runner.cli.reference) alone.
    doc: str = ""

    def parse_stored(self, stored: object) -> Value:
        """A value as stored results hold it, where a word is what it stands for (read_buffer
        whole is stored as 0); raise ValueError as parse does."""
        if any(stored == meaning and type(stored) is int for _, meaning in self.words):
            return stored  # type: ignore[return-value]
        if self.kind == "share":  # stored as parts per million
            return check_share_ppm(stored)
        return self.parse(stored)

    def parse(self, raw: object) -> Value:
        """Convert one value as written in YAML; raise ValueError saying what is allowed."""
        if self.kind == "size":
            for word, meaning in self.words:
                if raw == word:
                    return meaning
            if not isinstance(raw, str | int):
                raise ValueError(f"{raw!r} is not a size ({SIZE_HINT})")
            try:
                size = parse_size(raw)
            except ValueError:
                if not self.words:
                    raise
                raise ValueError(f"{raw!r} is not {self.hint}") from None
            if (size < self.size_minimum or size % self.size_unit
                    or (self.size_maximum is not None and size > self.size_maximum)):
                raise ValueError(f"{raw!r} is not {self.hint}")
            return size
        if self.kind == "choice":
            for written, choice in self.aliases:
                if raw == written and type(raw) is type(written):  # True is not 1
                    return choice
            if not isinstance(raw, str) or raw not in self.choices:
                raise ValueError(f"{raw!r} is not one of: {', '.join(self.choices)}"
                                 + self._alias_hint())
            return raw
        if self.kind == "bool":
            if not isinstance(raw, bool):
                raise ValueError(f"{raw!r} is not true or false")
            return raw
        if self.kind == "count":
            if raw == "auto":
                return 0
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
                raise ValueError(f"{raw!r} is not a positive whole number or 'auto'")
            return raw
        if self.kind == "whole":
            if (isinstance(raw, bool) or not isinstance(raw, int) or raw < self.minimum
                    or (self.maximum is not None and raw > self.maximum)):
                most = f" and at most {self.maximum}" if self.maximum is not None else ""
                raise ValueError(f"{raw!r} is not a whole number of at least {self.minimum}"
                                 f"{most}")
            return raw
        if self.kind == "share":
            return parse_share_ppm(raw)
        if self.kind == "text":
            if not isinstance(raw, str) or (raw and not re.fullmatch(self.pattern, raw)):
                raise ValueError(f"{raw!r} is not {self.hint}")
            return raw
        if not isinstance(raw, str) or not raw.startswith("/"):
            raise ValueError(f"{raw!r} is not an absolute directory path")
        return raw

    def _alias_hint(self) -> str:
        if not self.aliases:
            return ""
        shown = ", ".join(f"{_yaml_text(written)} for {choice}" for written, choice in self.aliases)
        return f" (or {shown})"

    def id_value(self, value: Value) -> Value:
        """The value as Scenario.id hashes it: a choice's first alias where it has one."""
        return next((written for written, choice in self.aliases if choice == value), value)

    def upgrade(self, stored: object) -> Value:
        """A value read from stored results, in today's spelling (aliases resolved)."""
        if self.kind == "choice" and self.aliases:
            return self.parse(stored)
        return stored  # type: ignore[return-value]

    def format(self, value: Value) -> str:
        """The value as a user would write it (used in labels, plan and the report)."""
        if self.kind == "size":
            word = next((w for w, meaning in self.words if meaning == value), None)
            return word if word is not None else format_size(int(value))
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "count" and value == 0:
            return "auto"
        if self.kind == "share":
            return format_share(int(value))
        return str(value)

    def label_text(self, value: Value) -> str:
        """The value in a scenario label or chart legend: `threads=2`, but `4KiB`, `malloc`."""
        text = self.format(value)
        keyed = self.kind in ("bool", "count", "whole", "text", "share") or self.keyed_label
        return f"{self.key}={text}" if keyed else text


def _yaml_text(value: Value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
