"""Noise checks: each one fires on the pattern it names and stays quiet otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from runner.analysis import noise
from runner.analysis.stats import summarize
from runner.store.folders import load_run
from tests.synthetic import write_synthetic_run


def _samples(values: dict[str, list[float]]) -> pd.DataFrame:
    """One sample per process: {scenario id: [process 0, process 1, ...]}."""
    return pd.DataFrame([{"scenario_id": sid, "process_index": i, "total_ns_per_op": v}
                         for sid, per_process in values.items() for i, v in enumerate(per_process)])


def test_variation_names_the_noisiest_scenarios_first() -> None:
    summaries = {"total_ns_per_op": [("quiet", summarize([100, 101, 99, 100])),
                                     ("loud", summarize([50, 100, 150, 200, 250])),
                                     ("louder", summarize([10, 100, 200, 300, 400]))]}
    [warning] = noise.check_variation(summaries)
    assert warning.check == "variation"
    assert "in 2 of 3 scenarios" in warning.message
    assert warning.message.index("louder") < warning.message.index("loud (")
    assert "quiet" not in warning.message
    assert noise.check_variation({"total_ns_per_op": summaries["total_ns_per_op"][:1]}) == []


def test_a_slow_first_process_is_reported_with_its_ratio() -> None:
    samples = _samples({"a": [300, 100, 102, 98, 100], "b": [101, 100, 102, 98, 100],
                        "c": [900, 100]})  # c has too few other processes to judge
    assert noise.first_process_ratios(samples, "total_ns_per_op") == {
        "a": 3.0, "b": 1.01}
    [warning] = noise.check_first_process(samples, ["total_ns_per_op"], {"a": "malloc 4KiB"})
    assert "malloc 4KiB (3.0×)" in warning.message and "1 of 2 scenarios" in warning.message


def test_first_process_check_looks_at_times_only() -> None:
    samples = _samples({"a": [300, 100, 100, 100]}).rename(
        columns={"total_ns_per_op": "first_touch_minor_faults_per_page"})
    assert noise.check_first_process(samples, ["first_touch_minor_faults_per_page"], {}) == []


def _session(busy: int, steal: int, own_s: float = 5.0, total: int = 1000,
             cpus: int = 2) -> dict[str, object]:
    """Snapshots 1000 jiffies apart (5 s of two CPUs); alloclab itself used `own_s` of CPU."""
    zero = {"busy_jiffies": 0, "steal_jiffies": 0, "total_jiffies": 0, "cpus": cpus,
            "loadavg_1m": 0.5, "own_cpu_s": 1.0}
    return {"before": zero, "after": {**zero, "busy_jiffies": busy, "steal_jiffies": steal,
                                      "total_jiffies": total, "loadavg_1m": 1.5,
                                      "own_cpu_s": 1.0 + own_s}}


def test_load_beyond_alloclabs_own_and_steal_are_reported() -> None:
    assert noise.check_load([_session(busy=550, steal=0)]) == []  # 5.5 s busy, 5 s ours
    [load] = noise.check_load([_session(busy=900, steal=0)])
    assert load.check == "load" and "0.8 of 2 CPUs" in load.message
    [steal] = noise.check_load([_session(busy=500, steal=50)])
    assert steal.check == "steal" and "5%" in steal.message
    assert noise.check_load([{"before": {}, "after": {}}]) == []  # unreadable: no claim
    assert noise.check_load([_session(busy=90, steal=9, total=100)]) == []  # 0.5 s: too short


def test_frequency_governor_warns_only_when_readable_and_not_performance() -> None:
    assert noise.check_frequency(None) == []
    assert noise.check_frequency("performance") == []
    [warning] = noise.check_frequency("performance,powersave")
    assert "powersave" in warning.message


def test_a_synthetic_run_is_quiet_and_says_what_it_could_not_read(
        tmp_path: Path, small_spec: Path) -> None:
    run = load_run(write_synthetic_run(tmp_path, small_spec))
    assert noise.run_warnings(run, ["first_touch_ns_per_page"]) == []
    assert noise.conditions_text(run) == "load: not recorded; frequency scaling: not readable"
    run.manifest["load"] = [_session(busy=500, steal=5)]
    assert noise.conditions_text(run).startswith(
        "load average 0.5 → 1.5, other work 0.00 CPUs, steal 0.5%; frequency scaling")


def test_phases_too_short_for_the_clock_are_named() -> None:
    samples = pd.DataFrame({
        "scenario_id": ["a", "a", "b", "b"],
        "allocate_ns": [400, 600, 50_000, 60_000],
        "allocate_ns_per_op": [400, 600, 50_000, 60_000],
    })
    [warning] = noise.check_clock(samples, ["allocate_ns_per_op", "total_ns_per_op"],
                                  {"a": "mmap 64MiB", "b": "malloc 4KiB"})
    assert warning.check == "clock"
    assert "1 of 2 scenarios: mmap 64MiB (500 ns)" in warning.message
    assert noise.check_clock(samples[samples["scenario_id"] == "b"], ["allocate_ns_per_op"],
                             {"b": "x"}) == []


def test_a_cold_cache_that_stayed_resident_is_called_warm() -> None:
    samples = pd.DataFrame({
        "scenario_id": ["shm", "shm", "disk", "disk", "warm"],
        "cache": ["cold", "cold", "cold", "cold", "warm"],
        "resident_fraction_before": [1.0, 1.0, 0.0, 0.01, 1.0],
    })
    [warning] = noise.check_cold_cache(samples, {"shm": "/dev/shm", "disk": "/tmp",
                                                 "warm": "warm"})
    assert warning.check == "cache"
    assert "1 of 2 scenarios: /dev/shm (100% resident)" in warning.message


def _host_frame() -> pd.DataFrame:
    """mmap-anon at two sizes, host_warm false and true; warm first touch costs 40% / 75%."""
    rows = []
    for size, cold_ns, warm_ns in ((1 << 20, 500.0, 300.0), (1 << 30, 800.0, 200.0)):
        for warm, ns in ((False, cold_ns), (True, warm_ns)):
            for process in range(3):
                rows.append({"scenario_id": f"{size}-{warm}", "backing": "mmap-anon",
                             "size_bytes": size, "host_warm": warm,
                             "first_touch_ns_per_page": ns * (1 + 0.01 * process)})
    return pd.DataFrame(rows)


def test_host_share_of_first_touch_from_pairs_that_differ_in_host_warm_only() -> None:
    labels = {"1048576-False": "1MiB host_warm=false", "1073741824-False": "1GiB host_warm=false"}
    [finding] = noise.check_host_share(_host_frame(), labels, field="host_warm")
    assert finding.check == "host_share"
    assert finding.message == (
        "first touch: the host's share is 40% to 75% (first_touch time with host_warm false vs "
        "true): 1MiB (40%), 1GiB (75%)")


def test_host_share_needs_both_sides_of_a_pair_and_the_column() -> None:
    frame = _host_frame()
    assert noise.check_host_share(frame[~frame["host_warm"]], {}, field="host_warm") == []
    assert noise.check_host_share(frame.drop(columns="host_warm"), {}, field="host_warm") == []
    # pairs differing in size as well as host_warm are no pair
    only_mixed = frame[((frame["size_bytes"] == 1 << 20) & ~frame["host_warm"])
                       | ((frame["size_bytes"] == 1 << 30) & frame["host_warm"])]
    assert noise.check_host_share(only_mixed, {}, field="host_warm") == []


def test_run_warnings_look_for_the_host_share_only_with_the_parameter(
        tmp_path: Path, small_spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.core.parameters import BY_KEY
    calls: list[str] = []
    monkeypatch.setattr(noise, "check_host_share",
                        lambda samples, labels, field: calls.append(field) or [])
    noise.run_warnings(load_run(write_synthetic_run(tmp_path, small_spec)), ["total_ns_per_op"])
    assert calls == ([BY_KEY[noise.HOST_WARM].field] if noise.HOST_WARM in BY_KEY else [])
