"""Reading the kernel's /proc and /sys files: a file that is absent or unreadable is None, never
an error, since what a kernel lacks is a fact to record too."""

from __future__ import annotations

from pathlib import Path


def read_text(path: str | Path) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def selected_choice(text: str | None) -> str | None:
    """The selected mode of a sysfs choice file: 'always [madvise] never' -> 'madvise'."""
    if text is None:
        return None
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return text


def int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None
