"""Where a chart's plot and legend go, computed from the texts it holds instead of by drawing.

matplotlib's tight_layout draws a chart once to measure it before savefig draws it again, and
its legend `loc="best"` tries every place against every line at draw time: together about half
of each chart's time, and a report draws dozens. The texts around the plot are known before
drawing (the title, the axis labels, the tick labels the locators will give), so the margins
are computed from their measured sizes, the same sizes the SVG backend measures them by; and
the legend goes to the place (of matplotlib's nine) with the fewest plotted points under it,
found from the data.

Margins are those tight_layout would leave, give or take a point: PAD_IN around the figure,
and matplotlib's own spacing between a tick, its label and the axis label. Texts are measured
(`measure`) by one text-to-path converter, which every renderer of a chart shares
(`shared_text_to_path`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.text
import numpy as np
from matplotlib import rcParams
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextToPath
from matplotlib.ticker import NullFormatter, NullLocator

PAD_IN = 0.135  # around the figure: tight_layout's 1.08 font heights of 9 pt
_PT = 1 / 72  # inches

# (width, height, descent) in points of a text at a font size, as the SVG backend measures it.
Measure = Callable[[str, FontProperties], tuple[float, float, float]]


@dataclass(frozen=True)
class Margins:
    """Distances from the figure's edges to the plot's, in inches."""

    left_in: float
    right_in: float
    bottom_in: float
    top_in: float


def _font(size: Any) -> FontProperties:
    return FontProperties(size=size)  # family and the rest from the rc context drawn in


def _shown(text: str) -> str:
    """The text as drawn: matplotlib writes an escaped dollar as a dollar."""
    return text.replace(r"\$", "$")


def _height_pt(text: str, size: Any, measure: Measure) -> float:
    """The height of a (possibly multi-line) label, lines spaced as matplotlib spaces them."""
    lines = text.split("\n")
    font = _font(size)
    _, line_pt, _ = measure("lp", font)
    return line_pt + (len(lines) - 1) * font.get_size_in_points() * 1.2


def _tick_labels(axis: Any) -> list[str]:
    """The labels the axis will draw: its major ticks', and minor ones' where labelled."""
    low, high = sorted(axis.get_view_interval())
    labels = []
    for locator, formatter in ((axis.get_major_locator(), axis.get_major_formatter()),
                               (axis.get_minor_locator(), axis.get_minor_formatter())):
        if isinstance(locator, NullLocator) or isinstance(formatter, NullFormatter):
            continue
        # A tick a hair outside the view is drawn (matplotlib allows a relative 1e-10).
        slack = (high - low) * 1e-9
        locs = [v for v in locator() if low - slack <= v <= high + slack]
        labels += [label for label in formatter.format_ticks(locs) if label]
    return labels


def _tick_room_pt(axis_name: str) -> float:
    """Tick length plus the gap between tick and label, outward ticks."""
    if axis_name == "x":
        return float(rcParams["xtick.major.size"]) + float(rcParams["xtick.major.pad"])
    return float(rcParams["ytick.major.size"]) + float(rcParams["ytick.major.pad"])


def compute_margins(axes: Any, x_labels: Sequence[str], title: str, x_label: str,
                    y_label: str, legend_under_in: float, measure: Measure) -> Margins:
    """The margins that fit the title above, the x tick and axis labels (and a legend of
    `legend_under_in`) below, the y tick and axis labels to the left, and the last x tick
    label's overhang to the right."""
    figure = axes.figure
    width_in, height_in = figure.get_figwidth(), figure.get_figheight()
    tick_font = rcParams["xtick.labelsize"]
    label_pad_pt = float(rcParams["axes.labelpad"])
    x_tick_pt = max((measure(_shown(t), _font(tick_font))[1] for t in x_labels), default=0.0)
    bottom_pt = (x_tick_pt + _tick_room_pt("x") + label_pad_pt
                 + _height_pt(x_label, rcParams["axes.labelsize"], measure))
    top_pt = float(rcParams["axes.titlepad"]) + _height_pt(title, rcParams["axes.titlesize"],
                                                            measure)
    bottom_in = PAD_IN + legend_under_in + bottom_pt * _PT
    top_in = PAD_IN + top_pt * _PT
    # The plot's height decides how many y ticks the locators give: set it first.
    figure.subplots_adjust(bottom=bottom_in / height_in, top=1 - top_in / height_in)
    y_font = _font(rcParams["ytick.labelsize"])
    y_tick_pt = max((measure(_shown(t), y_font)[0] for t in _tick_labels(axes.yaxis)),
                    default=0.0)
    left_in = PAD_IN + (_height_pt(y_label, rcParams["axes.labelsize"], measure)
                        + label_pad_pt + y_tick_pt + _tick_room_pt("y")) * _PT
    # Tick labels are centred on their ticks: the outermost may reach past the plot's side.
    plot_width_in = width_in - left_in - PAD_IN
    right_in = PAD_IN
    x_ticks = axes.get_xticks()
    if len(x_labels) and len(x_ticks) == len(x_labels):
        fractions = _axes_fractions(axes, np.column_stack(
            [x_ticks, np.full(len(x_ticks), axes.get_ylim()[0])]))[:, 0]
        x_font = _font(tick_font)
        for fraction, text in zip(fractions, x_labels, strict=True):
            half_in = measure(_shown(text), x_font)[0] * _PT / 2
            right_in = max(right_in, half_in - (1 - fraction) * plot_width_in)
            left_in = max(left_in, half_in - fraction * plot_width_in + PAD_IN)
    return Margins(left_in, right_in, bottom_in, top_in)


def title_width_in(figure: Any, margins: Margins) -> float:
    """The widest a title centred over the plot may be and stay within the figure's pad."""
    width_in = float(figure.get_figwidth())
    centre_in = (margins.left_in + width_in - margins.right_in) / 2
    return 2 * (min(centre_in, width_in - centre_in) - PAD_IN)


def wrap_to_width(text: str, size: Any, width_in: float, measure: Measure) -> str:
    """`text` broken between words into lines no wider than `width_in` (a word wider than
    that keeps a line of its own): a title must not run off the figure."""
    font = _font(size)
    lines: list[str] = []
    for word in text.split(" "):
        joined = f"{lines[-1]} {word}" if lines else word
        if lines and measure(joined, font)[0] * _PT > width_in:
            lines.append(word)
        elif lines:
            lines[-1] = joined
        else:
            lines = [word]
    return "\n".join(lines)


def apply_margins(axes: Any, margins: Margins) -> None:
    figure = axes.figure
    width_in, height_in = figure.get_figwidth(), figure.get_figheight()
    figure.subplots_adjust(left=margins.left_in / width_in,
                           right=1 - margins.right_in / width_in,
                           bottom=margins.bottom_in / height_in,
                           top=1 - margins.top_in / height_in)


def _axes_fractions(axes: Any, points: Any) -> Any:
    """Data points as fractions of the plot (0..1 inside it), on its scales and limits."""
    transform = axes.transScale + axes.transLimits
    return np.asarray(transform.transform(np.asarray(points, dtype=float)))


# matplotlib's own order of places for a legend inside the plot: the first of the least
# crowded wins, as with loc="best".
LEGEND_PLACES = ("upper right", "upper left", "lower left", "lower right", "center right",
                 "center left", "lower center", "upper center", "center")
_SEGMENT_SAMPLES = 16  # points looked at along each line between two data points
_CLEARANCE_PT = 6.0  # a point this close to the legend's box is under it: markers have a size


def _place_box(place: str, width: float, height: float,
               border: tuple[float, float]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in plot fractions of a legend of this size at `place`."""
    bx, by = border
    vertical, horizontal = place.split(" ") if " " in place else (place, place)
    x0 = {"left": bx, "right": 1 - bx - width, "center": (1 - width) / 2}[horizontal]
    y0 = {"lower": by, "upper": 1 - by - height, "center": (1 - height) / 2}[vertical]
    return x0, y0, x0 + width, y0 + height


def legend_place(axes: Any, lines: Sequence[Sequence[tuple[float, float]]], joined: bool,
                 labels: Sequence[str], title: str | None, measure: Measure) -> str:
    """The place inside the plot, of LEGEND_PLACES, whose legend box covers the fewest
    plotted points (each line's (x, y) data points, and where `joined` points along the line
    between them), ties going to the earlier place: matplotlib's "best", reckoned once from
    the data."""
    font = _font(8)
    size_pt = font.get_size_in_points()
    texts = [*labels, *([title] if title else [])]
    text_pt = max((measure(_shown(t), font)[0] for t in texts), default=0.0)
    # The legend's parts, in font sizes: border pad 0.4, handle 3 + pad 0.8, rows 1 + 0.5 apart.
    width_pt = text_pt + size_pt * (0.4 * 2 + 3 + 0.8)
    rows = len(labels) + (title is not None)
    height_pt = size_pt * (rows + 0.5 * (rows - 1) + 0.4 * 2)
    bbox = axes.get_position()
    plot_w_in = bbox.width * axes.figure.get_figwidth()
    plot_h_in = bbox.height * axes.figure.get_figheight()
    border = (size_pt * 0.5 * _PT / plot_w_in, size_pt * 0.5 * _PT / plot_h_in)
    size = (width_pt * _PT / plot_w_in, height_pt * _PT / plot_h_in)
    samples = []
    steps = np.linspace(0.0, 1.0, _SEGMENT_SAMPLES + 1)[None, :, None]
    for line in lines:
        if not len(line):
            continue
        points = _axes_fractions(axes, line)
        points = points[np.isfinite(points).all(axis=1)]  # not drawn on a log scale
        samples.append(points)
        if joined and len(points) > 1:
            starts, spans = points[:-1, None, :], (points[1:] - points[:-1])[:, None, :]
            samples.append((starts + steps * spans).reshape(-1, 2))
    if not samples:
        return LEGEND_PLACES[0]
    every = np.concatenate(samples)

    clear = (_CLEARANCE_PT * _PT / plot_w_in, _CLEARANCE_PT * _PT / plot_h_in)

    def covered(place: str) -> int:
        x0, y0, x1, y1 = _place_box(place, *size, border)
        x0, x1, y0, y1 = x0 - clear[0], x1 + clear[0], y0 - clear[1], y1 + clear[1]
        inside = ((every[:, 0] >= x0) & (every[:, 0] <= x1) & (every[:, 1] >= y0)
                  & (every[:, 1] <= y1))
        return int(inside.sum())

    return min(LEGEND_PLACES, key=lambda place: (covered(place), LEGEND_PLACES.index(place)))


class _MeasuredTextToPath(TextToPath):
    """matplotlib's text-to-path converter, remembering the size of each text it measured."""

    def __init__(self) -> None:
        super().__init__()
        self._sizes: dict[tuple[str, Any, Any], tuple[float, float, float]] = {}

    def get_text_width_height_descent(self, s: str, prop: Any,
                                      ismath: Any) -> tuple[float, float, float]:
        # FontProperties are mutable: the key holds a copy (matplotlib's own cache does so).
        key = (s, prop.copy(), ismath)
        size = self._sizes.get(key)
        if size is None:
            size = self._sizes[key] = super().get_text_width_height_descent(s, prop, ismath)
        return size


_TEXT_TO_PATH = _MeasuredTextToPath()


def measure(text: str, font: Any) -> tuple[float, float, float]:
    """A text's (width, height, descent) in points, as the SVG backend measures it."""
    return _TEXT_TO_PATH.get_text_width_height_descent(text, font, False)


@contextlib.contextmanager
def shared_text_to_path() -> Iterator[None]:
    """Every renderer made while drawing converts text with one converter, _TEXT_TO_PATH.

    matplotlib gives each renderer its own, so its own mathtext cache, and a chart makes
    several renderers (tight_layout's, savefig's, and one for each text measured without
    one): every tick label was measured, and each $10^{3}$ parsed, again in each. The same
    text gives the same sizes and paths, so the same bytes, with a quarter less drawing time.
    """
    original = matplotlib.text.TextToPath
    # RendererBase.__init__ looks the class up there; setattr, as mypy sees a class.
    setattr(matplotlib.text, "TextToPath", lambda: _TEXT_TO_PATH)  # noqa: B010
    try:
        yield
    finally:
        setattr(matplotlib.text, "TextToPath", original)  # noqa: B010
