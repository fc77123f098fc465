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

BACKINGS = ("malloc", "calloc", "posix-memalign", "mmap-anon", "mmap-file", "read-file",
            "memfd", "shm", "mmap-hugetlb")
# Backings whose memory comes from the C heap: no sharing, protection or populate flags apply,
# and it goes back with free().
HEAP_BACKINGS = ("malloc", "calloc", "posix-memalign", "read-file")
# Backings that are one mapping per block: mmap flags, protection, populate and madvise apply.
MAPPING_BACKINGS = ("mmap-anon", "mmap-file", "memfd", "shm", "mmap-hugetlb")
# Backings that need a file: the probe creates it (outside the timed phases) in `file_dir`.
FILE_BACKINGS = ("mmap-file", "read-file")
WRITING_ACCESSES = ("write-page", "write-all")
POPULATES = ("none", "map-populate", "madv-populate-write", "mlock")
THP_MODES = ("default", "huge", "nohuge")
RELEASES = ("auto", "free", "munmap", "madv-dontneed", "madv-free", "malloc-trim")
# How heap memory and mappings can be given back (`auto` picks free or munmap).
HEAP_RELEASES = ("free", "malloc-trim")
MAPPING_RELEASES = ("munmap", "madv-dontneed", "madv-free")
# hugetlb blocks take whole huge pages of this size (MAP_HUGE_2MB); THP aligns to it too.
HUGE_PAGE_BYTES = 2 << 20


@dataclass(frozen=True)
class Parameter:
    """One scenario parameter: the spec key, the Scenario field, its type and its default."""

    key: str
    field: str
    kind: Kind
    default: Value
    help: str
    choices: tuple[str, ...] = ()
    # Other spellings a choice accepts, each with the choice it means: (written, choice). The
    # first spelling of a choice is also what Scenario.id hashes, so renaming values (populate
    # was true/false) keeps the ids of stored scenarios.
    aliases: tuple[tuple[Value, str], ...] = ()
    # Labels show `key=value` (as for bool and count kinds): for values like `none` or
    # `default` that do not say what they are about.
    keyed_label: bool = False

    def parse(self, raw: object) -> Value:
        """Convert one value as written in YAML; raise ValueError saying what is allowed."""
        if self.kind == "size":
            if not isinstance(raw, str | int):
                raise ValueError(f"{raw!r} is not a size ({SIZE_HINT})")
            return parse_size(raw)
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
    Parameter("populate", "populate", "choice", "none",
              "fault every page in during the allocate phase (mapping backings only): not at "
              "all, by MAP_POPULATE, by madvise(MADV_POPULATE_WRITE) (Linux 5.14+) or by mlock "
              "(pins the pages; skipped past RLIMIT_MEMLOCK unless root); true and false mean "
              "map-populate and none",
              POPULATES, aliases=((True, "map-populate"), (False, "none")), keyed_label=True),
    Parameter("access", "access", "choice", "write-page",
              "what the first-touch and second-pass phases do to each block: nothing, one byte "
              "per page, every byte (memset), or read them",
              ("none", "write-page", "write-all", "read-page", "read-all")),
    Parameter("ops", "ops", "count", 0,
              "blocks allocated per timed phase, so short operations rise above the clock; "
              "'auto' picks enough blocks to cover at least 16 MiB (at most 65536 blocks)"),
    Parameter("file_dir", "file_dir", "path", "/tmp",
              "directory of the file behind file backings (its filesystem changes the results)"),
    Parameter("thp", "thp", "choice", "default",
              "transparent huge pages for mmap-anon: as the system decides, or each block "
              "aligned to 2 MiB and madvise(MADV_HUGEPAGE) or madvise(MADV_NOHUGEPAGE); the "
              "memory that really became huge is reported as anon_huge_bytes_per_op",
              THP_MODES, keyed_label=True),
    Parameter("release", "release", "choice", "auto",
              "how the free phase gives memory back: auto (free for heap backings, munmap for "
              "mappings), free, free then malloc_trim(0), munmap, or madvise(MADV_DONTNEED) or "
              "madvise(MADV_FREE), whose mappings are unmapped after the phase, untimed",
              RELEASES, keyed_label=True),
)

BY_KEY: Mapping[str, Parameter] = {p.key: p for p in PARAMETERS}
DEFAULTS: Mapping[str, Value] = {p.key: p.default for p in PARAMETERS}

AUTO_OPS_TARGET_BYTES = 16 << 20
AUTO_OPS_MAX = 65536


def _yaml_text(value: Value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def block_bytes(backing: str, size_bytes: int) -> int:
    """Memory one block really takes: a hugetlb block is rounded up to whole huge pages."""
    if backing == "mmap-hugetlb":
        return -(-size_bytes // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
    return size_bytes


def resolve_ops(ops: int, size_bytes: int, backing: str = "") -> int:
    """The inner-loop count: as given, or for 'auto' (0) enough blocks to cover 16 MiB."""
    if ops:
        return ops
    blocks = -(-AUTO_OPS_TARGET_BYTES // block_bytes(backing, size_bytes))  # rounded up
    return max(1, min(AUTO_OPS_MAX, blocks))


def upgrade_params(stored: Mapping[str, object]) -> dict[str, Value]:
    """Scenario parameters by field as a stored manifest has them, in today's vocabulary.

    Parameters added since the run was stored take their defaults (which is what the probe did
    then), and renamed values get today's spelling (populate true -> map-populate), so results
    of every age compare with each other.
    """
    return {p.field: p.upgrade(stored[p.field]) if p.field in stored else p.default
            for p in PARAMETERS}


def find_conflict(params: Mapping[str, Value]) -> str | None:
    """Why this combination of parameters cannot be measured, or None when it can.

    Only the physics of the combination counts here; what this machine lacks (huge pages, an
    mlock limit) is runner.preconditions' business, and is skipped at run time, not refused.
    """
    backing = params["backing"]
    if backing in HEAP_BACKINGS:
        for key in ("sharing", "protection", "populate"):
            if params[key] != DEFAULTS[key]:
                return (f"backing {backing} takes memory from the C heap, so "
                        f"{key}: {BY_KEY[key].format(params[key])} cannot apply "
                        f"(use an mmap backing, or {key}: {BY_KEY[key].format(DEFAULTS[key])})")
    reason = _thp_conflict(params) or _release_conflict(params)
    if reason is not None:
        return reason
    if params["populate"] == "madv-populate-write" and params["protection"] != "read-write":
        return (f"MADV_POPULATE_WRITE faults pages in for writing, which protection "
                f"{params['protection']} forbids (use populate: map-populate or mlock)")
    if params["protection"] == "none" and params["access"] != "none":
        return (f"protection none forbids every access, so access {params['access']} would "
                "crash (use access: none)")
    if params["protection"] == "read" and params["access"] in WRITING_ACCESSES:
        return (f"protection read forbids writing, so access {params['access']} would crash "
                "(use access: read-page, read-all or none)")
    return None


def _thp_conflict(params: Mapping[str, Value]) -> str | None:
    if params["thp"] == "default":
        return None
    if params["backing"] != "mmap-anon":
        return (f"thp {params['thp']} asks for (or against) transparent huge pages of anonymous "
                f"memory, which backing {params['backing']} is not (use backing mmap-anon, or "
                "thp: default)")
    if params["populate"] == "map-populate":
        return ("MAP_POPULATE faults the pages in inside mmap, before madvise can ask for huge "
                f"pages, so thp {params['thp']} would not apply (use populate: "
                "madv-populate-write or mlock)")
    return None


def _release_conflict(params: Mapping[str, Value]) -> str | None:
    backing, release = params["backing"], params["release"]
    if backing in HEAP_BACKINGS and release in MAPPING_RELEASES:
        return (f"release {release} works on mappings, and backing {backing} takes memory from "
                "the C heap (use release: free, malloc-trim or auto)")
    if backing in MAPPING_BACKINGS and release in HEAP_RELEASES:
        return (f"release {release} gives memory back to the C heap, and backing {backing} is a "
                "mapping (use release: munmap, madv-dontneed, madv-free or auto)")
    if release == "madv-free" and (backing != "mmap-anon" or params["sharing"] != "private"):
        return ("MADV_FREE works only on private anonymous memory (use backing mmap-anon with "
                "sharing: private, or release: madv-dontneed)")
    if release in ("madv-dontneed", "madv-free") and params["populate"] == "mlock":
        return (f"locked pages cannot be released by madvise, so release {release} fails "
                "after populate mlock (use release: munmap)")
    return None


def scenario_memory_bytes(size_bytes: int, ops: int, backing: str = "") -> int:
    """Memory one probe process needs at its peak: every block of the inner loop at once."""
    return block_bytes(backing, size_bytes) * ops
