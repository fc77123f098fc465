"""What a reader learns by resting the pointer on a chart's mark: its numbers, in an SVG
`<title>`, which browsers show as a tooltip and screen readers read, with no script or server.

runner.report.charts gives each artist that draws marks a gid (`mark_gid`); once matplotlib has
written the SVG, `add_titles` wraps each of that artist's marks (a marker's <use>, a quartile
bar's <path>) in a <g class="point"> whose <title> says the series, the x value, the median
and quartiles in the metric's unit and the number of processes (for the marks of a point's
processes, together, each one's value, lowest first), and puts a transparent circle around
each median's marker, so the pointer need not land exactly on a 4-point dot; processes' marks
lie under their median's, which wins where they meet. The gid becomes a class, since a page
holds many charts and an id must be unique. Plain text work on matplotlib's output: the same
data gives the same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from runner.core.metrics import BY_NAME, format_value
from runner.report.chart_data import Point, ProcessValue

POINT_CLASS = "point"  # a mark with its <title>; tests/browser.py looks for it
# What each kind of artist draws its marks as, and the class its group is given.
MarkKind = Literal["points", "bars", "processes"]
_ELEMENT: dict[MarkKind, str] = {"points": "use", "bars": "path", "processes": "use"}
# The radius of the circle around a marker that shows its title: a median's (a 4-point
# marker) reaches no further than the processes' marks beside it begin
# (runner.report.charts.PROCESS_OFFSET_PT); processes' marks, several together, need none.
HIT_RADIUS_PT: dict[MarkKind, float] = {"points": 3.5, "bars": 0.0, "processes": 0.0}


def mark_gid(kind: MarkKind, series_index: int) -> str:
    """The gid an artist drawing a series' marks is given, found again by add_titles."""
    return f"alloclab-{kind}-{series_index}"


@dataclass(frozen=True)
class Marks:
    """The titles of one artist's marks, in the order it draws them: each title stands for
    the next `sizes[i]` marks (one each where `sizes` is empty)."""

    kind: MarkKind
    series_index: int
    titles: tuple[str, ...]
    sizes: tuple[int, ...] = ()


def value_text(metric: str, value: float) -> str:
    """A value with its unit: `2.48 µs`, `1 MiB`, `3 faults`, `0.25 fraction`."""
    text = format_value(metric, value)
    unit = BY_NAME[metric].unit
    return text if unit in ("ns", "bytes", "0 or 1") else f"{text} {unit}"


def _where(series_label: str, x_text: str) -> str:
    return x_text if series_label == "all" else f"{series_label}, {x_text}"


def point_title(metric: str, series_label: str, x_text: str, point: Point) -> str:
    """`malloc, size 4KiB: median 250 ns, quartiles 245 ns – 255 ns, 3 processes (6
    samples)`."""
    processes = len(point.processes)
    return (f"{_where(series_label, x_text)}: median {value_text(metric, point.median)}, "
            f"quartiles {value_text(metric, point.q1)} – {value_text(metric, point.q3)}, "
            f"{processes} process{'es' if processes != 1 else ''} ({point.n} "
            f"sample{'s' if point.n != 1 else ''})")


def processes_title(metric: str, series_label: str, x_text: str,
                    processes: Sequence[ProcessValue]) -> str:
    """The title of a point's processes' marks, lowest first, so two modes read as two runs
    of numbers: `malloc, size 4KiB, each of 3 processes (median of its 2 iterations): 245 ns,
    250 ns, 255 ns`."""
    iterations = sorted({p.iterations for p in processes})
    each = (f"median of its {iterations[0]} iterations" if iterations != [1] else
            "its one iteration") if len(iterations) == 1 else "median of its iterations"
    values = ", ".join(value_text(metric, p.median)
                       for p in sorted(processes, key=lambda p: p.median))
    return (f"{_where(series_label, x_text)}, each of {len(processes)} processes ({each}): "
            f"{values}")


_GROUP_TAG = re.compile(r"<g[\s>]|</g>")


def _group_end(svg: str, start: int) -> int:
    """Where the <g> element opening at `start` closes (after its </g>)."""
    depth = 0
    for tag in _GROUP_TAG.finditer(svg, start):
        depth += -1 if tag.group() == "</g>" else 1
        if depth == 0:
            return tag.end()
    raise ValueError("an SVG group is not closed")


_STYLE = re.compile(r' style="[^"]*"')


def _wrap(marks: Sequence[str], title: str, radius_pt: float) -> str:
    """Marks in a g.point with their title; a style they share is said once, on the group
    (a <use> inherits it): a point's processes' marks are most of a chart's bytes."""
    styles = {found.group() for mark in marks for found in [_STYLE.search(mark)] if found}
    shared = ""
    if len(marks) > 1 and len(styles) == 1 and all(_STYLE.search(m) for m in marks):
        shared = styles.pop()
        marks = [_STYLE.sub("", mark, count=1) for mark in marks]
    hit = ""
    x = re.search(r' x="([^"]*)"', marks[0])
    y = re.search(r' y="([^"]*)"', marks[0])
    if radius_pt and x and y:
        hit = (f'<circle cx="{x.group(1)}" cy="{y.group(1)}" r="{radius_pt:g}" '
               'style="fill: none; pointer-events: all"/>')
    return (f'<g class="{POINT_CLASS}"{shared}><title>{html.escape(title)}</title>'
            f'{"".join(marks)}{hit}</g>')


def add_titles(svg: str, groups: Sequence[Marks]) -> str:
    """Each mark of each group titled (see the module's docstring). A group whose marks
    matplotlib drew in another number than it has titles keeps them bare rather than give a
    mark another point's numbers (the browser test fails on a bare mark)."""
    for group in groups:
        head = f'<g id="{mark_gid(group.kind, group.series_index)}">'
        start = svg.find(head)
        if start < 0:
            continue
        end = _group_end(svg, start)
        body = svg[start + len(head):end]
        element = _ELEMENT[group.kind]
        marks = list(re.finditer(rf"<{element} [^>]*/>", body))
        if element == "path":  # the <path> of a marker's shape is defined, not drawn
            marks = [m for m in marks if ' id="' not in m.group()]
        sizes = group.sizes or (1,) * len(group.titles)
        if len(marks) == sum(sizes) and len(sizes) == len(group.titles):
            pieces, last, first = [], 0, 0
            for size, title in zip(sizes, group.titles, strict=True):
                run = marks[first:first + size]
                first += size
                if not run:
                    continue
                pieces += [body[last:run[0].start()],
                           _wrap([m.group() for m in run], title, HIT_RADIUS_PT[group.kind])]
                last = run[-1].end()
            body = "".join([*pieces, body[last:]])
        svg = f'{svg[:start]}<g class="{group.kind}">{body}{svg[end:]}'
    return svg
