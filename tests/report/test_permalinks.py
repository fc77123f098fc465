"""Permalinks: ids from what a row, heading or chart is, not where it stands."""

from __future__ import annotations

import re

from runner.report.permalinks import (
    SLUG_CHARS,
    chart_ids,
    claim_key,
    claim_keys,
    former_keys,
    machine_id,
    slugify,
    verdict_id,
)

A = "mmap reads a file in the page cache faster than read()"
B = "For very large allocations mmap is the better choice"
C = "A second thread makes malloc no slower per block"


def test_a_claim_keeps_its_id_when_checks_are_added_or_reordered() -> None:
    first = dict(zip([A, B], claim_keys("file-read", [A, B]), strict=True))
    later = dict(zip([C, B, A], claim_keys("file-read", [C, B, A]), strict=True))
    assert first[A] == later[A] and first[B] == later[B]


def test_ids_name_the_claim_and_machine_and_differ_across_experiments() -> None:
    key = claim_key("file-read", A)
    assert re.fullmatch(r"mmap-reads-a-file-in-the-page-cache-[0-9a-f]{6}", key)
    assert verdict_id("vm-6.18.44", key) == f"v-vm-6.18.44--{key}"
    assert claim_key("page-cache", A) != key  # the hash covers the experiment


def test_slugs_cut_at_a_word_and_claims_cut_alike_stay_apart() -> None:
    long_one = "the first touch of a page costs the same from mmap as from malloc"
    assert slugify(long_one) == "the-first-touch-of-a-page-costs-the-same"
    assert len(slugify(long_one)) <= SLUG_CHARS
    twin = long_one.replace("malloc", "calloc")
    assert slugify(twin) == slugify(long_one)
    assert claim_key("x", twin) != claim_key("x", long_one)
    assert slugify("≠ ✓") == "x"


def test_a_repeated_claim_or_chart_title_gets_a_suffix() -> None:
    keys = claim_keys("x", [A, A])
    assert keys[1] == f"{keys[0]}-2"
    assert chart_ids("vm", ["First touch (per page)", "Allocate", "First touch, per page"]) == [
        "m-vm-chart-first-touch-per-page", "m-vm-chart-allocate",
        "m-vm-chart-first-touch-per-page-2"]
    assert machine_id("vm") == "m-vm"


def test_a_claims_earlier_words_keep_their_keys_unless_a_claim_has_them_now() -> None:
    now = claim_keys("x", [A, B])
    assert former_keys("x", [C, C, B], now) == [claim_key("x", C)]
    assert former_keys("x", [], now) == []
