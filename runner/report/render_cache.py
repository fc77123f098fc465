"""Which report pages must be rendered again: a content hash of each page's inputs.

An experiment's page is a function of its shown runs' data (their checksums), the templates,
the alloclab code and version (and those of the libraries that draw and format), and its own
name; not the other experiments (its navigation links the index alone, so adding an experiment
renders its page and the index, not every page). That hash is kept beside the reports in
reports/.render-cache.json, with what the index and verdicts.json need from the page (so a kept
page need not be rebuilt for them) and the sha256 of the page and of its data files as written:
a page whose inputs and bytes all match is kept as it is. Checksums of run data are remembered
by the size and modification time of its two files, so an unchanged run is not read.
The cache only saves work: deleting it re-renders everything, and `report --check` never
reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import runner
from runner.store.folders import MANIFEST, SAMPLES, data_checksum

CACHE_FILE = ".render-cache.json"
CACHE_FORMAT = 3  # 2: a page's data files (runner.report.site.data_file) with it; 3: no nav


def _sha256_files(root: Path, paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0"
                      + path.read_bytes() + b"\0")
    return digest.hexdigest()


# Libraries whose version can change a page's bytes (charts, numbers, markup).
RENDERING_LIBRARIES = ("matplotlib", "numpy", "pandas", "jinja2")


def code_hash(templates_dir: Path) -> str:
    """The alloclab version, its Python code (every module of every subpackage, by its path in
    the package), the templates and the versions of the libraries that draw and format: what
    renders every page."""
    package = Path(runner.__file__).parent
    return hashlib.sha256(json.dumps([
        runner.__version__,
        [metadata.version(name) for name in RENDERING_LIBRARIES],
        _sha256_files(package, sorted(package.rglob("*.py"))),
        _sha256_files(templates_dir, sorted(p for p in templates_dir.iterdir() if p.is_file())),
    ]).encode()).hexdigest()


def page_hash(code: str, page: str, runs: list[tuple[str, str]]) -> str:
    """One page's inputs: the code hash, its name, (run folder, checksum) of each run."""
    return hashlib.sha256(json.dumps([CACHE_FORMAT, code, page, runs]).encode()).hexdigest()


def bytes_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


Stamp = list[list[int]]  # (size, mtime in ns) of a run's manifest and samples


def stamp_of(run_dir: Path) -> Stamp:
    return [_stamp(run_dir / MANIFEST), _stamp(run_dir / SAMPLES)]


def _stamp(path: Path) -> list[int]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return [-1, -1]
    return [info.st_size, info.st_mtime_ns]


@dataclass
class RenderCache:
    """What the last render left: run checksums by file stamps, and each page's inputs."""

    checksums: dict[str, dict[str, Any]] = field(default_factory=dict)
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # the runs asked about by this render

    def checksum(self, run_dir: Path) -> str:
        """data_checksum of a run, recomputed only when its files' sizes or times changed."""
        stamp = stamp_of(run_dir)
        known = self.checksums.get(str(run_dir))
        if known is not None and known["stamp"] == stamp:
            self.used.add(str(run_dir))
            return str(known["sha256"])
        checksum = data_checksum(run_dir)
        self.learn(run_dir, stamp, checksum)
        return checksum

    def learn(self, run_dir: Path, stamp: Stamp, checksum: str) -> None:
        """Remember a run's checksum, computed elsewhere from its files as `stamp` found them
        (taken first: files changed since have another stamp, so are hashed again)."""
        self.used.add(str(run_dir))
        self.checksums[str(run_dir)] = {"stamp": stamp, "sha256": checksum}

    def has_page(self, page: str) -> bool:
        """Whether the last render left `page` (else it is rendered whatever its inputs)."""
        return page in self.pages

    def kept(self, reports_dir: Path, page: str, inputs: str) -> dict[str, Any] | None:
        """The cached index entry of `page` when its inputs and written bytes are unchanged."""
        known = self.pages.get(page)
        path = reports_dir / page
        if known is None or known["inputs"] != inputs or not path.exists():
            return None
        if bytes_hash(path.read_bytes()) != known["sha256"]:
            return None
        for name, sha256 in known["files"].items():
            written = reports_dir / name
            if not written.is_file() or bytes_hash(written.read_bytes()) != sha256:
                return None
        entry: dict[str, Any] = known["entry"]
        return entry

    def files(self, page: str) -> list[str]:
        """The data files `page` wrote (relative to the reports folder) when it was rendered."""
        return list(self.pages[page]["files"])

    def remember(self, page: str, inputs: str, html: str, entry: dict[str, Any],
                 files: dict[str, str] | None = None) -> None:
        """Keep a rendered page's inputs, its hash and its data files' (text by path)."""
        self.pages[page] = {"inputs": inputs, "sha256": bytes_hash(html.encode()),
                            "entry": entry,
                            "files": {name: bytes_hash(text.encode())
                                      for name, text in sorted((files or {}).items())}}


def load_cache(reports_dir: Path) -> RenderCache:
    """The cache of reports_dir; an absent, unreadable or older one is an empty cache."""
    try:
        data = json.loads((reports_dir / CACHE_FILE).read_text())
    except (OSError, ValueError):
        return RenderCache()
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return RenderCache()
    return RenderCache(dict(data.get("checksums", {})), dict(data.get("pages", {})))


def write_cache(reports_dir: Path, cache: RenderCache, pages: list[str]) -> None:
    """Keep the entries of the pages just produced (and checksums of their runs), atomically."""
    checksums = {run: cache.checksums[run] for run in sorted(cache.used)}
    body = {"format": CACHE_FORMAT, "checksums": checksums,
            "pages": {page: cache.pages[page] for page in pages if page in cache.pages}}
    tmp = reports_dir / (CACHE_FILE + ".tmp")
    tmp.write_text(json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n")
    os.replace(tmp, reports_dir / CACHE_FILE)
