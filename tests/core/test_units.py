"""Sizes and durations: what users write parses, what alloclab prints reads back the same."""

from __future__ import annotations

import pytest

from runner.core.units import format_ns, format_size, parse_duration_s, parse_size


@pytest.mark.parametrize(("text", "size_bytes"), [
    ("4KiB", 4096),
    ("1MiB", 1 << 20),
    ("1GiB", 1 << 30),
    ("2TiB", 2 << 40),
    ("1.5MiB", 3 << 19),
    (" 4 KiB ", 4096),
    ("4096", 4096),
    ("512B", 512),
    (4096, 4096),
    (1, 1),
    ("18446744073709551615", (1 << 64) - 1),
    ((1 << 64) - 1, (1 << 64) - 1),
    ("16777215.5TiB", 16777215 * (1 << 40) + (1 << 39)),
])
def test_parse_size(text: str | int, size_bytes: int) -> None:
    assert parse_size(text) == size_bytes


@pytest.mark.parametrize(("text", "message"), [
    ("4 kb", "'4 kb' is not a size (use e.g. 4KiB, 1MiB, 1GiB or a plain number of bytes like "
             "4096; units are binary: KiB, MiB, GiB)"),
    ("4KB", "'4KB' is not a size"),
    ("lots", "'lots' is not a size"),
    ("", "'' is not a size"),
    ("0", "'0' is not a whole positive number of bytes"),
    ("1.5B", "'1.5B' is not a whole positive number of bytes"),
    (0, "0 is not a positive size"),
    (-4096, "-4096 is not a positive size"),
    (True, "True is not a size"),
    (1 << 64, "18446744073709551616 is too large: sizes are at most 2^64 - 1 bytes"),
    ("18446744073709551616", "'18446744073709551616' is too large"),
    ("18446744073709551617", "'18446744073709551617' is too large"),  # a float would round it
    ("16777216TiB", "'16777216TiB' is too large"),
    ("99999999999999999999999999GiB", "'99999999999999999999999999GiB' is too large"),
])
def test_parse_size_rejects(text: str | int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_size(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(("size_bytes", "text"), [
    (4096, "4KiB"),
    (1536, "1536B"),
    (1, "1B"),
    (3 << 20, "3MiB"),
    (1 << 30, "1GiB"),
    (5 << 40, "5TiB"),
    (1 << 50, "1024TiB"),
    (4096 + 1, "4097B"),
])
def test_format_size(size_bytes: int, text: str) -> None:
    assert format_size(size_bytes) == text


@pytest.mark.parametrize("size_bytes", [1, 1000, 1024, 1536, 4096, 65537, 3 << 20, 1 << 30,
                                        (1 << 30) + 4096, 7 << 40])
def test_size_round_trip(size_bytes: int) -> None:
    assert parse_size(format_size(size_bytes)) == size_bytes


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0),
    ("2min", 120.0),
    ("500ms", 0.5),
    ("1.5s", 1.5),
    (" 2 min ", 120.0),
    ("45", 45.0),
    (90, 90.0),
    (0.25, 0.25),
])
def test_parse_duration_s(text: str | int | float, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(("text", "message"), [
    ("2 hours", "'2 hours' is not a duration (use e.g. 30s, 2min, 500ms or a plain number of "
                "seconds)"),
    ("2h", "'2h' is not a duration"),
    ("", "'' is not a duration"),
    ("0s", "'0s' is not a positive duration"),
    (0, "0 is not a positive duration"),
    (-1.0, "-1.0 is not a positive duration"),
    (True, "True is not a duration"),
])
def test_parse_duration_s_rejects(text: str | int | float, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration_s(text)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(("seconds", "spellings"), [
    (0.001, ("1ms", "0.001s", "0.001")),
    (0.5, ("500ms", "0.5s", "0.5")),
    (90.0, ("90000ms", "90s", "1.5min", "90")),
    (3600.0, ("3600000ms", "3600s", "60min", "3600")),
])
def test_every_spelling_of_a_duration_agrees(seconds: float, spellings: tuple[str, ...]) -> None:
    assert [parse_duration_s(text) for text in spellings] == [seconds] * len(spellings)


@pytest.mark.parametrize(("ns", "text"), [
    (12.345, "12.3 ns"),
    (1500.0, "1.5 µs"),
    (2_340_000.0, "2.34 ms"),
    (3e9, "3 s"),
])
def test_format_ns(ns: float, text: str) -> None:
    assert format_ns(ns) == text
