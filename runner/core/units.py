"""Human units for sizes and durations: parsing what users write, formatting what they read."""

from __future__ import annotations

import re

_SIZE_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")
SIZE_HINT = "use e.g. 4KiB, 1MiB, 1GiB or a plain number of bytes like 4096"
# The probe holds sizes in 64-bit unsigned integers: anything larger would wrap around there.
MAX_SIZE_BYTES = (1 << 64) - 1


def parse_size(text: str | int) -> int:
    """Bytes in `text` ("4KiB", "1.5MiB", 4096); raise ValueError saying what is allowed."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size ({SIZE_HINT})")
    if isinstance(text, int):
        if text <= 0:
            raise ValueError(f"{text} is not a positive size ({SIZE_HINT})")
        return _at_most_max(text, text)
    match = _SIZE_RE.match(str(text))
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size ({SIZE_HINT}; units are binary: KiB, MiB, GiB)")
    number, unit = match.groups()
    # Integer arithmetic: a float would round "18446744073709551617" to 2^64 and accept it.
    whole, _, fraction = number.partition(".")
    scaled, scale = int(whole + fraction) * _SIZE_UNITS[unit], 10 ** len(fraction)
    if scaled % scale or scaled <= 0:
        raise ValueError(f"{text!r} is not a whole positive number of bytes ({SIZE_HINT})")
    return _at_most_max(scaled // scale, text)


def _at_most_max(size_bytes: int, text: str | int) -> int:
    if size_bytes > MAX_SIZE_BYTES:
        raise ValueError(f"{text!r} is too large: sizes are at most 2^64 - 1 bytes "
                         f"({MAX_SIZE_BYTES}, just under 16 EiB)")
    return size_bytes


def format_size(size_bytes: int) -> str:
    """Shortest exact binary-unit spelling: 4096 -> "4KiB", 1536 -> "1536B"."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit]
        if size_bytes >= factor and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return f"{size_bytes}B"


# A share of something, as a percentage, held as whole parts per million (so that ids and
# stored values are exact integers): "1%" is 10000, "0.5%" 5000, "100%" 1000000.
PPM = 1_000_000
_SHARE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
SHARE_HINT = "use a percentage above 0% and at most 100%, e.g. 1%, 5% or 100%"


def parse_share_ppm(text: object) -> int:
    """Parts per million in a percentage ("1%", "0.5%", "100%"); raise ValueError saying what
    is allowed. A bare number is refused: 1 could mean 1% or all of it."""
    match = _SHARE_RE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a share ({SHARE_HINT})")
    whole, _, fraction = match.group(1).partition(".")
    scaled, scale = int(whole + fraction) * (PPM // 100), 10 ** len(fraction)
    if scaled % scale:
        raise ValueError(f"{text!r} is finer than a millionth ({SHARE_HINT})")
    return check_share_ppm(scaled // scale, text)


def check_share_ppm(ppm: object, shown: object = None) -> int:
    """A share as stored (parts per million), checked: 1 to 1000000."""
    if isinstance(ppm, bool) or not isinstance(ppm, int) or not 0 < ppm <= PPM:
        raise ValueError(f"{shown if shown is not None else ppm!r} is not a share "
                         f"({SHARE_HINT})")
    return ppm


def format_share(ppm: int) -> str:
    """The percentage a share in parts per million stands for: 10000 -> "1%", 5000 -> "0.5%"."""
    whole, rest = divmod(ppm, PPM // 100)
    fraction = f"{rest:04d}".rstrip("0")
    return f"{whole}.{fraction}%" if fraction else f"{whole}%"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, None: 1.0}
DURATION_HINT = "use e.g. 30s, 2min, 500ms or a plain number of seconds"


def parse_duration_s(text: str | int | float) -> float:
    """Return seconds for "30s", "2min", "500ms" or a plain number of seconds."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION_RE.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a duration ({DURATION_HINT})")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration ({DURATION_HINT})")
    return seconds


def format_ns(ns: float) -> str:
    """A duration in nanoseconds with three significant digits and the most readable unit."""
    for unit, factor in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= factor:
            return f"{ns / factor:.3g} {unit}"
    return f"{ns:.3g} ns"


def format_bytes(value: float) -> str:
    """An approximate byte count with three significant digits: 25769803776 -> "24 GiB"."""
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit]
        if magnitude >= factor:
            return f"{sign}{magnitude / factor:.3g} {unit}"
    return f"{sign}{magnitude:.3g} B"
