"""Whether a run may go under a machine label: a label names one machine, not one host name.

The label stays the user's choice (default: the host name), but host names like `vm`, `ubuntu`
or `localhost` are common, and a run from another machine under the same label would replace
the reference on every page. So a run whose fingerprint differs from the newest run under its
label in a fact that tells machines apart (IDENTITY_FACTS) goes under a label of its own,
named by what sets it apart (vm-epyc), and the run says so — unless the label was chosen
explicitly (--machine or $ALLOCLAB_MACHINE): then the user has said it is the same machine
(say, after a kernel upgrade). A refusal would make the README's run command fail on the
second machine with a common host name; a silent mix would replace the first machine's
reference; a label of its own does neither. Reading the stored
manifests is the only side effect here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runner.core import names
from runner.core.errors import StoreError
from runner.machine.system import format_fact
from runner.store import folders, select

# Facts of runner.machine.system.FACTS whose difference means another machine (or this one rebuilt):
# what it is (CPU, architecture, memory) and the system it runs (kernel, C library, page
# size, THP mode). Not the allocator environment or filesystems: one machine varies those
# on purpose between runs.
IDENTITY_FACTS = ("cpu_model", "machine", "kernel", "libc", "page_size_bytes", "thp_enabled",
                  "memory_bytes")
# MemTotal moves by a few MiB between boots and kernels of one machine (reserved memory).
MEMORY_TOLERANCE = 0.02
# Words of CPU model names that say nothing about which CPU it is.
_VENDOR_WORDS = {"amd", "intel", "intel(r)", "(r)", "(tm)", "cpu", "processor", "genuine",
                 "core(tm)", "xeon(r)", "common", "virtual", "qemu"}


def _differs(key: str, stored: object, current: object) -> bool:
    if key == "memory_bytes" and isinstance(stored, int) and isinstance(current, int):
        return abs(stored - current) > MEMORY_TOLERANCE * max(stored, current)
    return stored != current


def identity_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The IDENTITY_FACTS both fingerprints record, with values that tell the machines apart.

    A fact one of them lacks (an older alloclab, or a machine that does not expose it) is
    unknown, not different.
    """
    return [key for key in IDENTITY_FACTS
            if stored.get(key) is not None and current.get(key) is not None
            and _differs(key, stored[key], current[key])]


def _cpu_word(cpu_model: object) -> str | None:
    """'AMD EPYC 7B13 64-Core Processor' -> 'epyc'; 'Intel(R) Xeon(R) CPU @ 2.20GHz' -> 'xeon'."""
    if not isinstance(cpu_model, str):
        return None
    for word in cpu_model.lower().split():
        word = re.sub(r"\((r|tm)\)", "", word)
        if word and word not in _VENDOR_WORDS and re.fullmatch(r"[a-z][a-z0-9-]*", word):
            return word
    return None


def suggest_label(label: str, differing: list[str], current: Mapping[str, Any],
                  taken: set[str]) -> str:
    """A label for this machine: the old one with what sets it apart (CPU, else kernel), not
    one of the labels `taken` under results/."""
    kernel = current.get("kernel")
    suffix = (_cpu_word(current.get("cpu_model")) if "cpu_model" in differing else None) or (
        re.sub(r"[^0-9.]", "", kernel.split("-")[0]) if isinstance(kernel, str) else None)
    base = names.label_from_host(f"{label}-{suffix or 'other'}")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _newest_manifest(results_dir: Path, label: str) -> dict[str, Any] | None:
    """The manifest of the run started last under results/<label>/, of any experiment. Runs
    are ordered by their manifests' start time read lightly (select.start_key), and only the
    newest that reads is checked in full: checking every manifest (its stored spec parsed)
    took ~1 s over a few dozen runs, on every `run` and `plan`."""
    keyed = [(key, path.parent) for path in (results_dir / label).glob(f"*/*/{folders.MANIFEST}")
             if (key := select.start_key(path.parent)) is not None]
    for _, run_dir in sorted(keyed, reverse=True):
        try:
            return folders.read_manifest(run_dir)
        except StoreError:
            continue  # reported where the report reads it, not twice
    return None


def _differences_under(results_dir: Path, label: str,
                       fingerprint: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The identity facts in which the newest run under `label` differs from this machine
    (empty: none, or no run there yet), and that run's manifest ({} when there is none)."""
    newest = _newest_manifest(results_dir, label)
    if newest is None:
        return [], {}
    return identity_differences(newest.get("fingerprint", {}), fingerprint), newest


def choose_label(results_dir: Path, label: str, fingerprint: Mapping[str, Any], *,
                 explicit: bool) -> tuple[str, str | None]:
    """The label this machine's runs go under, and a one-line notice when it is not `label`.

    An explicit label is the user's word. A defaulted one (the host name) that already holds
    another machine's runs is not reused: the runs go under a label of this machine's own —
    one that already holds this machine's runs, else a new one named by what sets it apart
    (vm-epyc) — and the notice says so. Hosts called `vm` or `localhost` are common: neither
    machine's results are mixed with the other's, and the README's run command still works
    on the second machine.
    """
    if explicit:
        return label, None
    differing, newest = _differences_under(results_dir, label, fingerprint)
    if not differing:
        return label, None
    taken = {p.name for p in results_dir.iterdir()} if results_dir.is_dir() else set()
    base = suggest_label(label, differing, fingerprint, set())
    candidate, n = base, 1
    while candidate in taken and _differences_under(results_dir, candidate, fingerprint)[0]:
        n += 1
        candidate = f"{base}-{n}"
    what = "; ".join(f"{key} {format_fact(key, fingerprint[key])!r} here, "
                     f"{format_fact(key, newest['fingerprint'][key])!r} there"
                     for key in differing)
    return candidate, (
        f"{results_dir / label} holds runs of another machine ({what}, in "
        f"{newest['experiment']}/{newest['run_id']}): this machine's runs go under "
        f"{results_dir / candidate} (--machine {label} if it is the same machine)")
