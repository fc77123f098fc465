"""Every text colour of the report reads against every background it may sit on (WCAG AA).

The page's CSS (templates/base.html) and the charts' text are checked with the WCAG 2
contrast ratio, (L1 + 0.05) / (L2 + 0.05) of relative luminances, against 4.5:1, the AA level
for normal text. Conservatively, any text colour is checked against every background the CSS
declares (a muted note can land in a highlighted cell, a header, a regression row).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.report import charts

BASE = Path(__file__).parents[2] / "templates" / "base.html"
AA = 4.5
_HEX = re.compile(r"#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of '#rgb' or '#rrggbb'."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_ratio_matches_known_values() -> None:
    assert contrast_ratio("#000", "#fff") == pytest.approx(21.0)
    assert contrast_ratio("#fff", "#fff") == pytest.approx(1.0)
    assert contrast_ratio("#777", "#fff") == pytest.approx(4.48, abs=0.01)  # just short of AA


def _declarations() -> list[tuple[str, str, str]]:
    """(selector, property, value) of every declaration in the page's <style>."""
    style = BASE.read_text().split("<style>", 1)[1].split("</style>", 1)[0]
    found = []
    for selector, body in re.findall(r"([^{}]+)\{([^}]*)\}", style):
        for declaration in body.split(";"):
            if ":" in declaration:
                prop, value = (part.strip() for part in declaration.split(":", 1))
                found.append((selector.strip(), prop, value))
    return found


def _text_colours() -> dict[str, str]:
    colours = {}
    for selector, prop, value in _declarations():
        if prop == "color":
            assert _HEX.fullmatch(value), f"{selector}: color {value!r} is not #hex (checkable)"
            colours[f"{selector} {value}"] = value
    return colours


def _backgrounds() -> dict[str, str]:
    backgrounds = {}
    for selector, prop, value in _declarations():
        if prop in ("background", "background-color"):
            assert _HEX.fullmatch(value), f"{selector}: {prop} {value!r} is not #hex (checkable)"
            backgrounds[f"{selector} {value}"] = value
    return backgrounds


def test_the_page_background_is_declared_white() -> None:
    assert _backgrounds()["body #fff"] == "#fff"


def test_every_css_text_colour_meets_aa_on_every_background() -> None:
    texts, backgrounds = _text_colours(), _backgrounds()
    # The CSS really has these (a parser that found nothing would pass trivially).
    selectors = {key.rsplit(" ", 1)[0] for key in (*texts, *backgrounds)}
    assert {".muted", ".spread", ".noisy", "th", ".regression", "a", "a:visited"} <= selectors
    assert len(texts) >= 15
    failing = [(text, background, round(contrast_ratio(fg, bg), 2))
               for text, fg in texts.items() for background, bg in backgrounds.items()
               if contrast_ratio(fg, bg) < AA]
    assert failing == []


def test_chart_text_meets_aa_on_the_chart_and_the_page() -> None:
    assert contrast_ratio(charts.TEXT_COLOUR, charts.BACKGROUND) >= AA
    for background in _backgrounds().values():
        assert contrast_ratio(charts.TEXT_COLOUR, background) >= AA
