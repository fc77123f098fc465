"""Axis ticks: values in a metric's unit -> the labels a reader sees."""

from __future__ import annotations

import pytest

from runner.report.ticks import (
    UnitFormatter,
    UnitLocator,
    binary_log_ticks,
    linear_tick_labels,
    log_tick_labels,
    ticks_carry_unit,
)


def test_log_time_ticks_read_in_engineering_units() -> None:
    decades = [10.0 ** e for e in range(-1, 11)]
    assert log_tick_labels(decades, "ns") == [
        "0.1 ns", "1 ns", "10 ns", "100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms",
        "100 ms", "1 s", "10 s"]


def test_log_byte_ticks_are_binary() -> None:
    values = [1.0, 32.0, 1024.0, 32768.0, 2.0 ** 20, 2.0 ** 30, 2.0 ** 40, 4096.0]
    assert log_tick_labels(values, "bytes") == [
        "1 B", "32 B", "1 KiB", "32 KiB", "1 MiB", "1 GiB", "1 TiB", "4 KiB"]


@pytest.mark.parametrize("unit", ["faults", "calls", "blocks", "mappings"])
def test_counts_take_k_and_m_and_small_ones_stay_decimals(unit: str) -> None:
    values = [1e-6, 0.01, 1.0, 10.0, 1e3, 1e4, 1e6, 1e9]
    assert log_tick_labels(values, unit) == [
        "0.000001", "0.01", "1", "10", "1 k", "10 k", "1 M", "1 G"]
    assert not ticks_carry_unit(unit)  # "faults" stays in the axis label


def test_other_units_are_plain_numbers() -> None:
    assert log_tick_labels([0.001, 1.0, 1000.0], "bytes per byte") == ["0.001", "1", "1000"]
    assert linear_tick_labels([0.0, 0.2, 0.4, 0.6000000001, 0.8, 1.0], "fraction") == [
        "0", "0.2", "0.4", "0.6", "0.8", "1.0"]


def test_linear_ticks_share_the_scale_of_the_largest_and_have_no_offset() -> None:
    assert linear_tick_labels([0.0, 2.5e5, 5e5, 7.5e5, 1e6], "ns") == [
        "0", "0.25 ms", "0.50 ms", "0.75 ms", "1.00 ms"]
    assert linear_tick_labels([-2e6, 0.0, 2e6, 4e6], "ns") == ["-2 ms", "0", "2 ms", "4 ms"]
    gib = float(1 << 30)
    assert linear_tick_labels([0.0, 0.5 * gib, gib, 1.5 * gib], "bytes") == [
        "0", "0.5 GiB", "1.0 GiB", "1.5 GiB"]
    assert linear_tick_labels([-1e-12, 1.0], "faults") == ["0", "1"]  # never "-0"


def test_linear_byte_ticks_fall_on_round_numbers_of_the_unit_shown() -> None:
    ticks = UnitLocator("bytes").tick_values(0, 3e9)
    assert [t / (1 << 30) for t in ticks] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_binary_log_ticks_thin_out_to_powers_of_1024_on_wide_axes() -> None:
    assert binary_log_ticks(4.0, 64.0) == [4.0, 8.0, 16.0, 32.0, 64.0]
    assert binary_log_ticks(2.0 ** 12, 2.0 ** 30) == [2.0 ** e for e in (15, 20, 25, 30)]
    assert binary_log_ticks(1.0, 2.0 ** 60) == [2.0 ** e for e in range(0, 61, 10)]


def test_formatter_labels_the_ticks_it_is_given() -> None:
    log = UnitFormatter("ns", log=True)
    assert log.format_ticks([1e3, 1e4, 1e6]) == ["1 µs", "10 µs", "1 ms"]
    linear = UnitFormatter("ns", log=False)
    assert linear.format_ticks([0.0, 5e5, 1e6]) == ["0", "0.5 ms", "1.0 ms"]
    assert linear(2.5e6) == "2.5 ms"  # a value it was not given: on its own scale
