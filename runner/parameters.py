"""The vocabulary of a scenario: every parameter a spec may set, declared once.

The spec validator, the JSON Schema, `plan`, the probe's command line and the stored records
all derive from PARAMETERS, so adding a parameter is one entry here plus its meaning in the
probe. Rules about which combinations make no physical sense live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from runner.units import SIZE_HINT, format_size, parse_size

Value = str | int | bool
Kind = Literal["size", "choice", "bool", "count", "path"]

BACKINGS = ("malloc", "calloc", "mmap-anon", "mmap-file", "read-file")
# Backings whose memory comes from the C heap: no sharing, protection or populate flags apply.
HEAP_BACKINGS = ("malloc", "calloc", "read-file")
# Backings that need a file: the probe creates it (outside the timed phases) in `file_dir`.
FILE_BACKINGS = ("mmap-file", "read-file")
WRITING_ACCESSES = ("write-page", "write-all")


@dataclass(frozen=True)
class Parameter:
    """One scenario parameter: the spec key, the Scenario field, its type and its default."""

    key: str
    field: str
    kind: Kind
    default: Value
    help: str
    choices: tuple[str, ...] = ()

    def parse(self, raw: object) -> Value:
        """Convert one value as written in YAML; raise ValueError saying what is allowed."""
        if self.kind == "size":
            if not isinstance(raw, str | int):
                raise ValueError(f"{raw!r} is not a size ({SIZE_HINT})")
            return parse_size(raw)
        if self.kind == "choice":
            if not isinstance(raw, str) or raw not in self.choices:
                raise ValueError(f"{raw!r} is not one of: {', '.join(self.choices)}")
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
        if not isinstance(raw, str) or not raw.startswith("/"):
            raise ValueError(f"{raw!r} is not an absolute directory path")
        return raw

    def format(self, value: Value) -> str:
        """The value as a user would write it (used in labels, plan and the report)."""
        if self.kind == "size":
            return format_size(int(value))
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "count" and value == 0:
            return "auto"
        return str(value)


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("backing", "backing", "choice", "malloc",
              "where the memory comes from: the C heap, an anonymous or file mapping, or a "
              "heap buffer filled by read() from a file", BACKINGS),
    Parameter("size", "size_bytes", "size", 4096, "bytes per allocated block"),
    Parameter("sharing", "sharing", "choice", "private",
              "MAP_PRIVATE or MAP_SHARED (mmap backings only)", ("private", "shared")),
    Parameter("protection", "protection", "choice", "read-write",
              "PROT_READ|PROT_WRITE, PROT_READ or PROT_NONE (mmap backings only)",
              ("read-write", "read", "none")),
    Parameter("populate", "populate", "bool", False,
              "MAP_POPULATE: fault every page in during the allocate phase (mmap backings only)"),
    Parameter("access", "access", "choice", "write-page",
              "what the first-touch and second-pass phases do to each block: nothing, one byte "
              "per page, every byte (memset), or read them",
              ("none", "write-page", "write-all", "read-page", "read-all")),
    Parameter("ops", "ops", "count", 0,
              "blocks allocated per timed phase, so short operations rise above the clock; "
              "'auto' picks enough blocks to cover at least 16 MiB (at most 65536 blocks)"),
    Parameter("file_dir", "file_dir", "path", "/tmp",
              "directory of the file behind file backings (its filesystem changes the results)"),
)

BY_KEY: Mapping[str, Parameter] = {p.key: p for p in PARAMETERS}
DEFAULTS: Mapping[str, Value] = {p.key: p.default for p in PARAMETERS}

AUTO_OPS_TARGET_BYTES = 16 << 20
AUTO_OPS_MAX = 65536


def resolve_ops(ops: int, size_bytes: int) -> int:
    """The inner-loop count: as given, or for 'auto' (0) enough blocks to cover 16 MiB."""
    if ops:
        return ops
    return max(1, min(AUTO_OPS_MAX, AUTO_OPS_TARGET_BYTES // size_bytes))


def find_conflict(params: Mapping[str, Value]) -> str | None:
    """Why this combination of parameters cannot be measured, or None when it can."""
    backing = params["backing"]
    if backing in HEAP_BACKINGS:
        for key in ("sharing", "protection", "populate"):
            if params[key] != DEFAULTS[key]:
                return (f"backing {backing} takes memory from the C heap, so "
                        f"{key}: {BY_KEY[key].format(params[key])} cannot apply "
                        f"(use an mmap backing, or {key}: {BY_KEY[key].format(DEFAULTS[key])})")
    if params["protection"] == "none" and params["access"] != "none":
        return (f"protection none forbids every access, so access {params['access']} would "
                "crash (use access: none)")
    if params["protection"] == "read" and params["access"] in WRITING_ACCESSES:
        return (f"protection read forbids writing, so access {params['access']} would crash "
                "(use access: read-page, read-all or none)")
    return None


def scenario_memory_bytes(size_bytes: int, ops: int) -> int:
    """Memory one probe process needs at its peak: every block of the inner loop at once."""
    return size_bytes * ops
