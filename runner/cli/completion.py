"""Shell completion: the candidates `alloclab <Tab>` offers beyond what argparse declares.

argcomplete (imported by runner.cli.main only when a shell asks, `_ARGCOMPLETE` set) completes the
subcommands, options and `choices` by itself; these completers add what only the file system
knows: experiment files, the machine labels and run folders of results/, metric names. Each is
called as argcomplete calls a completer (keyword arguments: `prefix`, the word typed so far,
and `parsed_args`) and returns candidates starting with `prefix`. They read folder listings
only, never a file's contents, so a Tab stays instant on a results folder of any size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from runner.core import names

SPEC_SUFFIXES = (".yaml", ".yml")
DEFAULT_RESULTS = "results"


def _entries(prefix: str) -> list[tuple[str, bool]]:
    """(candidate, is a folder) for every entry whose path starts with `prefix`, as typed.

    Hidden entries appear only once a '.' is typed after the last '/', as shells do. A folder
    candidate ends in '/', so the shell does not add a space and the next Tab descends.
    """
    folder, _, start = prefix.rpartition("/")
    listed = Path(os.path.expanduser(folder + "/" if folder else "."))
    if prefix.startswith("/") and not folder:
        listed = Path("/")
    try:
        children = sorted(os.scandir(listed), key=lambda e: e.name)
    except OSError:
        return []
    head = prefix[: len(prefix) - len(start)]
    found = []
    for child in children:
        if not child.name.startswith(start) or (child.name.startswith(".") and
                                                not start.startswith(".")):
            continue
        try:
            is_dir = child.is_dir()
        except OSError:
            continue
        found.append((head + child.name + ("/" if is_dir else ""), is_dir))
    return found


def complete_specs(prefix: str, **_: Any) -> list[str]:
    """Experiment files (`.yaml`, `.yml`) and the folders that may hold them."""
    return [path for path, is_dir in _entries(prefix)
            if is_dir or path.endswith(SPEC_SUFFIXES)]


def complete_folders(prefix: str, **_: Any) -> list[str]:
    """Folders only (e.g. --templates)."""
    return [path for path, is_dir in _entries(prefix) if is_dir]


def _results_dir(parsed_args: Any) -> str:
    """The results folder the command line names so far (--results), else the default."""
    chosen = getattr(parsed_args, "results", None)
    return str(chosen) if chosen else DEFAULT_RESULTS


def complete_machines(prefix: str, parsed_args: Any = None, **_: Any) -> list[str]:
    """Machine labels with a folder in results/ (--machine): to add a run beside theirs."""
    try:
        children = os.scandir(_results_dir(parsed_args))
    except OSError:
        return []
    return sorted(child.name for child in children
                  if child.name.startswith(prefix) and names.is_label(child.name)
                  and child.is_dir())


def complete_runs(prefix: str, parsed_args: Any = None, **_: Any) -> list[str]:
    """Run folders `results/<machine>/<experiment>[/<run>]` (compare, export): folders only,
    and with nothing typed yet the machines of the results folder, where runs live."""
    if not prefix:
        results = _results_dir(parsed_args).rstrip("/") + "/"
        inside = complete_folders(results)
        if inside:
            return inside
    return complete_folders(prefix)


def complete_metrics(prefix: str, **_: Any) -> list[str]:
    """Metric names (compare --metric), as `alloclab schema` lists them."""
    from runner.core.metrics import METRICS

    return [m.name for m in METRICS if m.name.startswith(prefix)]
