"""A verdict's console line carries the numbers that decide it: which pairs, their ratio or
difference with its interval, or an exact check's sample ranges."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from runner.analysis.verdict import Comparison, Verdict, conclude, evaluate
from runner.analysis.verdict_line import decisive_pairs, short_names, summary_line
from runner.core.model import CheckSpec
from tests.analysis.test_verdict import CHECK, LABEL_KEYS, SCENARIOS, SIZES, _all, _samples

INTERVAL = r"\[\d\.\d+–\d\.\d+\]"


def test_a_claim_that_holds_everywhere_shows_the_ends_of_its_range_and_counts_the_rest() -> None:
    scale = {**_all(0.5), SIZES[2]: 0.3}
    line = summary_line(evaluate(CHECK, _samples(scale), SCENARIOS, LABEL_KEYS))
    # The labels keep what tells the pair apart; the second pair, the same two, drops them.
    assert re.fullmatch(
        rf"holds: mmap-anon 0\.3× malloc {INTERVAL} at size=256KiB; 0\.5\d*× {INTERVAL} at "
        r"size=\S+; and 3 more \(3 hold\) — mmap is cheaper than malloc", line), line


def test_holds_only_shows_one_pair_that_holds_and_one_that_contradicts() -> None:
    scale = {**_all(0.5), SIZES[0]: 1.5, SIZES[4]: 0.2}
    verdict = evaluate(CHECK, _samples(scale), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "holds only"
    line = summary_line(verdict)
    # The contradicting pair, then the clearest holding one (0.2×, not the 0.5× ones).
    assert re.fullmatch(
        rf"holds only: mmap-anon 1\.5× malloc {INTERVAL} at size=4KiB; 0\.2× {INTERVAL} at "
        r"size=1GiB; and 3 more \(3 hold\) — mmap is cheaper than malloc", line), line


def test_a_claim_that_does_not_hold_shows_its_contradicting_pairs() -> None:
    verdict = evaluate(CHECK, _samples(_all(1.3)), SCENARIOS, LABEL_KEYS)
    assert verdict.status == "does not hold"
    assert [verdict.comparisons[i].outcome for i in decisive_pairs(verdict)] == [
        "contradicts"] * 2
    assert summary_line(verdict).startswith("does not hold: mmap-anon 1.3× malloc [")


def _pair(**fields: object) -> Comparison:
    base = Comparison("size=4KiB", "malloc 4KiB", "mmap-anon 4KiB", 12.0, 0.0, 12.0, 3.0, 20.0,
                      "holds", point=(("size", 4096),), reference_id="r", candidate_id="c")
    return replace(base, **fields)  # type: ignore[arg-type]


def _verdict(metric: str, *pairs: Comparison, claim: str = "the claim") -> Verdict:
    check = CheckSpec(claim=claim, metric=metric, expect="higher",
                      candidate=(("backing", "malloc"),), reference=(("backing", "mmap-anon"),))
    status, text = conclude(pairs)
    return Verdict(check, status, text, pairs)


def test_where_the_reference_is_zero_the_difference_is_given_in_the_metrics_unit() -> None:
    pair = _pair(difference=True)
    assert summary_line(_verdict("usable_bytes_per_op", pair)) == (
        "holds: malloc +12 B vs mmap-anon [+3 B to +20 B] at size=4KiB — the claim")


def test_an_exact_check_gives_both_sample_ranges() -> None:
    pair = _pair(method="exact", candidate_minimum=0.0, candidate_maximum=2.0,
                 reference_minimum=1.0, reference_maximum=1.0, outcome="contradicts",
                 ci_low=0.0, ci_high=2.0, ratio=1.0)
    line = summary_line(_verdict("first_touch_minor_faults_per_page", pair))
    assert line == "does not hold: malloc 0–2 vs mmap-anon 1 at size=4KiB — the claim"


def test_against_a_fixed_value_the_value_is_said_in_its_unit() -> None:
    pair = _pair(reference_label="100", reference_id="", reference_median=100.0, ratio=1.5,
                 ci_low=1.2, ci_high=1.8, where="all", point=())
    # The candidate named by what the check selects it by (backing: malloc), not its label.
    assert summary_line(_verdict("total_ns_per_op", pair)) == (
        "holds: malloc 1.5× 100 ns [1.2–1.8] — the claim")
    # A pair with too few processes has no interval, and says so.
    undecided = replace(pair, ci_low=math.nan, ci_high=math.nan, outcome="undecided")
    assert summary_line(_verdict("total_ns_per_op", undecided)) == (
        "inconclusive: malloc 1.5× 100 ns [no interval] — the claim")


def test_no_pair_means_no_numbers() -> None:
    assert summary_line(_verdict("total_ns_per_op")) == (
        "no data: no candidate/reference pair was measured — the claim")


def test_names_keep_what_tells_candidate_and_reference_apart() -> None:
    assert short_names(_pair(candidate_label="mmap-file 4KiB warm",
                             reference_label="read-file 4KiB warm")) == ("mmap-file", "read-file")
    # One label inside the other: both said in full, not one of them empty.
    assert short_names(_pair(candidate_label="malloc 4KiB heap_pad=keep",
                             reference_label="malloc 4KiB")) == (
        "malloc 4KiB heap_pad=keep", "malloc 4KiB")


def test_many_pairs_stay_one_short_line() -> None:
    verdict = evaluate(CHECK, _samples({**_all(0.5), SIZES[0]: 1.5}), SCENARIOS, LABEL_KEYS)
    line = summary_line(verdict)
    assert len(line) - len(CHECK.claim) < 120 and line.count("×") == 2


def test_a_ratio_under_a_tenth_reads_as_a_fraction() -> None:
    """"1/221 of", as a reader says it, not "0.00453×"."""
    pair = _pair(ratio=1 / 221, ci_low=1 / 266, ci_high=1 / 175)
    line = summary_line(_verdict("allocate_ns_per_op", pair))
    assert line == "holds: malloc 1/221 of mmap-anon [1/266–1/175] at size=4KiB — the claim"


def test_too_few_processes_for_any_interval_says_how_many_would_do() -> None:
    pair = _pair(ratio=0.5, ci_low=math.nan, ci_high=math.nan, outcome="undecided")
    verdict = replace(_verdict("allocate_ns_per_op", pair),
                      note="1 of 1 pairs had too few processes: run at least 8 per scenario")
    assert summary_line(verdict).endswith(
        "— the claim (1 of 1 pairs had too few processes: run at least 8 per scenario)")


def test_a_large_denominator_is_written_whole() -> None:
    pair = _pair(ratio=1 / 822, ci_low=1 / 1020, ci_high=1 / 652)
    assert "malloc 1/822 of mmap-anon [1/1020–1/652]" in summary_line(
        _verdict("allocate_ns_per_op", pair))
