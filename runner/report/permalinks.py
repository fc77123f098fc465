"""Stable ids for what a page shows, so a link to "this claim on this machine" keeps working.

An experiment page shows each machine's run as a section; its headings, charts and verdict rows
get ids derived from what they are, never from where they stand, so adding, removing or
reordering checks, charts or machines moves no other id:

  machine section   m-<label>                      the h2 of a machine label's run
  section heading   m-<label>-<section>            verdicts, summary, failures, oom,
                                                   skipped, dropped
  chart             m-<label>-chart-<title slug>   a second chart of the same title gets -2
                                                   (on a compare page: chart-<title slug>)
  verdict row       v-<label>--<claim slug>-<hash> hash: 6 hex digits of sha256(experiment NUL
                                                   claim); the same claim twice in one spec
                                                   gets -2 on its second row

A claim slug is the claim's words, lowercased, runs of other characters made one '-', cut at a
word boundary to at most SLUG_CHARS; the hash tells apart claims whose slugs are cut alike, and
ties the id to the experiment. Editing a claim's words gives it a new id (it is another claim),
unless the check lists its earlier words under `formerly`: the ids those had are kept as anchors
in its row (former_keys), so links made before a rewording still lead to it.
Labels are runner.core.names labels (letters, digits, '.', '_', '-'): valid in an id as they are.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

SLUG_CHARS = 40
HASH_DIGITS = 6


def slugify(text: str) -> str:
    """'mmap reads a file faster than read()' -> 'mmap-reads-a-file-faster-than-read', cut at a
    word boundary to SLUG_CHARS; 'x' for text with no letter or digit."""
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(words) > SLUG_CHARS:
        cut = words[:SLUG_CHARS + 1]
        words = cut[:cut.rfind("-")] if "-" in cut else words[:SLUG_CHARS]
    return words or "x"


def claim_key(experiment: str, claim: str) -> str:
    """A claim's id within the whole site, the same on every machine: slug and short hash."""
    digest = hashlib.sha256(f"{experiment}\0{claim}".encode()).hexdigest()[:HASH_DIGITS]
    return f"{slugify(claim)}-{digest}"


def machine_id(label: str) -> str:
    """The id of a machine label's section (its h2) on an experiment page."""
    return f"m-{label}"


def section_id(label: str, section: str) -> str:
    """The id of a heading inside a machine's section: 'verdicts', 'summary'…"""
    return f"{machine_id(label)}-{section}"


def _unique(keys: Iterable[str]) -> list[str]:
    """Each key, with -2, -3… on its second and later occurrences."""
    seen: dict[str, int] = {}
    found = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        found.append(key if seen[key] == 1 else f"{key}-{seen[key]}")
    return found


def claim_keys(experiment: str, claims: Iterable[str]) -> list[str]:
    """The keys of one run's claims, in check order (a repeated claim's with -2…)."""
    return _unique(claim_key(experiment, claim) for claim in claims)


def former_keys(experiment: str, formerly: Iterable[str], taken: Iterable[str]) -> list[str]:
    """The keys a claim had under its earlier words, but those `taken` by the run's claims as
    they read now (an id names one row)."""
    now = set(taken)
    keys = dict.fromkeys(claim_key(experiment, words) for words in formerly)
    return [key for key in keys if key not in now]


def verdict_id(label: str, key: str) -> str:
    """The id of the verdict row of the claim `key` (claim_keys) on machine `label`."""
    return f"v-{label}--{key}"


def chart_ids(label: str | None, titles: Iterable[str]) -> list[str]:
    """The ids of one run's charts, in chart order, from their titles; `label` None: a page
    of one set of charts (compare's overlays), 'chart-<title slug>'."""
    keys = [f"chart-{key}" for key in _unique(map(slugify, titles))]
    return keys if label is None else [section_id(label, key) for key in keys]
