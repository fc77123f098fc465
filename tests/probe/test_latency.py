"""latency: histogram: the probe's log-bucketed histogram, checked through a harness with known
latencies (bucket placement, percentiles within the stated precision) and through the real
probe (one latency per operation, percentiles in order, the raw buckets kept)."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.core.combinations import find_conflict
from runner.core.parameters import DEFAULTS
from runner.probe.native import (
    CFLAGS,
    LATENCY_SUB_BUCKET_BITS,
    ProbeBinary,
    find_compiler,
    parse_probe_output,
)
from tests.probe.running import PAGE, PROBE_DIR, measured, scenario

PERCENTILES = {"latency_p50_ns": 0.5, "latency_p90_ns": 0.9, "latency_p99_ns": 0.99,
               "latency_p999_ns": 0.999}
ORDERED = ("latency_p50_ns", "latency_p90_ns", "latency_p99_ns", "latency_p999_ns",
           "latency_max_ns")
SUB = 1 << LATENCY_SUB_BUCKET_BITS


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler, _ = find_compiler()
    binary = tmp_path_factory.mktemp("harness") / "latency_harness"
    here = Path(__file__).parent
    subprocess.run([*compiler, *CFLAGS, "-Werror", f"-I{PROBE_DIR}", "-o", str(binary),
                    str(here / "latency_harness.c"), str(PROBE_DIR / "latency.c")],
                   check=True, capture_output=True)
    return binary


def run_harness(harness: Path, values: list[int]) -> dict[str, Any]:
    result = subprocess.run([str(harness)], input="\n".join(map(str, values)), text=True,
                            capture_output=True, check=True)
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def nearest_rank(values: list[int], quantile: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * quantile)) - 1]


def test_every_value_lands_in_a_bucket_that_holds_it_no_wider_than_the_precision(
        harness: Path) -> None:
    """Exact below 2^7 ns; above, a bucket is at most 1/128 of its lower bound wide, at each
    power of two and either side of it, up to 2^40 ns."""
    values = [0, 1, 127, 128, 129, 255, 256, 257, 1000, 4095, 4096, 123_456, 10**9, 2**40 - 1]
    values += [2**e + d for e in range(7, 40) for d in (-1, 0, 1)]
    placed = run_harness(harness, values)["placed"]
    for value, lower, width in placed:
        assert lower <= value < lower + width, (value, lower, width)
        assert width == 1 if value < SUB else width * SUB <= lower, (value, lower, width)


def test_values_past_the_range_share_the_last_bucket(harness: Path) -> None:
    placed = run_harness(harness, [2**40, 2**50, 2**63])["placed"]
    assert len({(lower, width) for _, lower, width in placed}) == 1
    assert placed[0][1] + placed[0][2] == 2**40


def test_percentiles_are_the_exact_ones_within_half_a_bucket(harness: Path) -> None:
    """Known latencies, some spread over six powers of ten with a far tail: each percentile is
    the exact nearest-rank one within half its bucket (0.4%), the maximum exact, the count the
    number fed, the buckets adding up to it."""
    values = [50 + (k * 7919) % 900 for k in range(5000)]  # a body from 50 to 950 ns
    values += [20_000 + k * 1013 for k in range(60)]       # a tail: 1.2% of the values
    values += [3_000_000, 123_456_789]
    out = run_harness(harness, values)
    observed, latency = out["observations"], out["latency"]
    assert observed["latency_count"] == latency["count"] == len(values)
    assert sum(count for _, count in latency["buckets"]) == len(values)
    assert observed["latency_max_ns"] == latency["max_ns"] == max(values)
    for name, quantile in PERCENTILES.items():
        exact = nearest_rank(values, quantile)
        assert abs(observed[name] - exact) <= max(exact / (2 * SUB), 0.5), (name, exact)
    reported = [observed[name] for name in ORDERED]
    assert reported == sorted(reported)


def test_an_empty_or_single_value_histogram(harness: Path) -> None:
    assert all(run_harness(harness, [])["observations"][name] == 0 for name in ORDERED)
    single = run_harness(harness, [777])["observations"]
    assert single["latency_max_ns"] == 777
    assert all(abs(single[name] - 777) <= 777 / (2 * SUB) for name in ORDERED)


def check_histogram(iteration: dict[str, Any], operations: int) -> None:
    """One latency per operation, percentiles in order, the raw buckets agreeing."""
    observed, latency = iteration["observations"], iteration["latency"]
    assert observed["latency_count"] == latency["count"] == operations
    assert sum(count for _, count in latency["buckets"]) == operations
    assert observed["latency_max_ns"] == latency["max_ns"]
    reported = [observed[name] for name in ORDERED]
    assert reported[0] > 0 and reported == sorted(reported)
    assert observed["latency_clock_ns"] > 0


@pytest.mark.probe
@pytest.mark.parametrize("backing", ["malloc", "mmap-anon"])
@pytest.mark.parametrize("threads", [1, 2])
def test_churn_records_every_pair_of_every_thread(probe: ProbeBinary, backing: str,
                                                  threads: int) -> None:
    ops = 2000
    s = scenario(backing=backing, size_bytes=PAGE, ops=ops, workload="churn", threads=threads,
                 latency="histogram")
    for iteration in measured(probe, s, 2):
        check_histogram(iteration, ops * threads)


@pytest.mark.probe
@pytest.mark.usefixtures("no_thp_always")
def test_cycle_records_the_first_write_of_every_page(probe: ProbeBinary) -> None:
    """Each 4 KiB page of a fresh mapping: one first write, one fault, one latency; the
    phase takes the faults it always took."""
    ops, pages = 4, 64
    s = scenario(backing="mmap-anon", size_bytes=pages * PAGE, ops=ops, latency="histogram")
    for iteration in measured(probe, s, 2):
        check_histogram(iteration, ops * pages)
        assert iteration["phases"]["first_touch"]["minor_faults"] == ops * pages


@pytest.mark.probe
def test_without_latency_nothing_is_reported(probe: ProbeBinary) -> None:
    (iteration,) = measured(probe, scenario(workload="churn", ops=100))
    assert "latency" not in iteration
    assert not any(name.startswith("latency_") for name in iteration["observations"])


@pytest.mark.probe
def test_the_stored_histogram_is_checked(probe: ProbeBinary) -> None:
    """parse_probe_output takes the probe's histogram, and refuses buckets that do not add
    up to the count."""
    from runner.probe.native import probe_argv
    s = scenario(workload="churn", ops=100, latency="histogram")
    text = subprocess.run(probe_argv(probe, s, 0, 1), capture_output=True, text=True,
                          check=True).stdout
    data = parse_probe_output(text)
    data["iterations"][0]["latency"]["count"] += 1
    with pytest.raises(ValueError, match="add up to count"):
        parse_probe_output(json.dumps(data))


@pytest.mark.parametrize(("changes", "word"), [
    ({"workload": "fork"}, "workload fork"),
    ({"access": "write-all"}, "access is write-all"),
    ({"threads": 2, "ops": 2}, "threads is 2"),
    ({"backing": "mmap-file"}, "backing mmap-file"),
])
def test_latency_applies_to_churn_and_cycle_write_page_only(changes: dict[str, Any],
                                                            word: str) -> None:
    params = {**DEFAULTS, "latency": "histogram", **changes}
    reason = find_conflict(params)
    assert reason is not None and word in reason
    assert find_conflict({**DEFAULTS, "latency": "histogram", "workload": "churn"}) is None
