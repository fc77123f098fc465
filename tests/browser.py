"""Headless Chromium over the rendered reports: what a reader's browser makes of each page.

The system's Chromium and ChromeDriver (Debian's `chromium` and `chromium-driver`, which
`.ci/run` installs) driven by Selenium, with the flags that keep a headless Chromium off the
network: the reports must need none. One browser serves every page (`start_browser`);
`audit_page` loads a page from disk and lists what a reader would find wrong — console errors,
charts that did not render or lack their title and description, chart points without their
value in a <title> (what hovering shows), local links and resources that point nowhere (a
#fragment naming no element included: permalinks), verdict rows without an id, index grid cells
that link no verdict row, anything fetched from the network; `layout_problems` what the loaded
page shows wrong on a desktop and on a phone — a page that scrolls sideways, text too small to
read.
`python -m tests.browser PAGE PNG` takes the README's screenshot with the same browser
(`nox -s screenshot`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "chromium"
CHROMEDRIVER = "chromedriver"
# Without the networking flags Chromium looks up Google's hosts and opens connections at every
# start, which a closed network refuses (and which would hide a report that fetches something).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars")
SCREENSHOT_SIZE = (1280, 1600)
PAGE_SETTLE_S = 30  # the most a loaded page may take to be complete after get() returns

# What a chart says when none of its scenarios has a sample (runner.report.charts): it has
# no marks to title.
NO_SAMPLES = "no sample of this chart's scenarios"
# Everything the checks need from a loaded page, in one round trip.
AUDIT_SCRIPT = """
const XLINK = 'http://www.w3.org/1999/xlink';
const NO_SAMPLES = arguments[0];
const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
const text = (el, tag) => {
  const child = Array.from(el.children).find((c) => c.localName === tag);
  return child ? child.textContent.trim() : '';
};
// Texts drawn past the chart's edge (by more than 2 px: anti-aliasing), which a reader sees
// cut off: the labels are laid out from matplotlib's measure of the font, drawn in the browser's.
const cut = (svg) => {
  const edge = svg.getBoundingClientRect();
  return Array.from(svg.querySelectorAll('text')).filter((t) => {
    const b = t.getBoundingClientRect();
    return b.width > 0 && (b.left < edge.left - 2 || b.right > edge.right + 2 ||
                           b.top < edge.top - 2 || b.bottom > edge.bottom + 2);
  }).map((t) => t.textContent.trim());
};
// A chart's marks that stand for values (runner.report.chart_hover): each must sit in a
// g.point whose <title> holds a number, which is what hovering over it shows.
const valueMarks = (svg) => Array.from(
  svg.querySelectorAll('g.points use, g.processes use, g.bars path'));
const untitled = (mark) => {
  const point = mark.closest('g.point');
  return !point || !/[0-9]/.test(text(point, 'title'));
};
const charts = [];
for (const svg of document.querySelectorAll('svg')) {
  if (svg.parentElement.closest('svg')) continue;  // a nested <svg> is part of its chart
  const values = valueMarks(svg);
  charts.push({kind: 'svg', title: text(svg, 'title'), desc: text(svg, 'desc'), box: box(svg),
               marks: svg.querySelectorAll('path, use, line, rect, circle, polyline').length,
               cut: cut(svg), valueMarks: values.length,
               untitledMarks: values.filter(untitled).length,
               noSamples: svg.textContent.includes(NO_SAMPLES)});
}
for (const img of document.images) {
  charts.push({kind: 'img', src: img.getAttribute('src') || '', box: box(img),
               complete: img.complete, naturalWidth: img.naturalWidth});
}
for (const obj of document.querySelectorAll('object')) {
  charts.push({kind: 'object', src: obj.getAttribute('data') || '', box: box(obj)});
}
const emptyFigures = Array.from(document.querySelectorAll('figure'))
  .filter((f) => !f.querySelector('svg, img, object')).length;
const links = [];
for (const el of document.querySelectorAll('[href], [src], object[data]')) {
  for (const attr of ['href', 'src', 'data']) {
    const raw = el.getAttribute(attr);
    if (raw !== null && !(attr === 'data' && el.localName !== 'object')) {
      links.push({tag: el.localName, raw: raw, loads: !(el.localName === 'a' && attr === 'href')});
    }
  }
}
for (const el of document.querySelectorAll('*')) {
  const raw = el.getAttributeNS(XLINK, 'href');
  if (raw !== null) links.push({tag: el.localName, raw: raw, loads: el.localName !== 'a'});
}
const ids = new Set(Array.from(document.querySelectorAll('[id]'), (el) => el.id));
const verdictTables = Array.from(document.querySelectorAll('table.verdicts'),
                                 (t) => t.querySelectorAll('tr').length - 1);
// A verdict row must carry its permalink id; an index grid cell must link to one.
const unnamedVerdictRows = Array.from(document.querySelectorAll('table.verdicts tr'))
  .filter((tr) => tr.querySelector('td') && !tr.id).length;
const gridLinks = Array.from(document.querySelectorAll('table.grid a.verdict'),
                             (a) => a.getAttribute('href'));
const gridRows = document.querySelectorAll('table.grid tr.claim[id]').length;
const unique = new Map(links.map((l) => [JSON.stringify(l), l]));  // a chart's glyphs repeat
return {
  url: document.URL, title: document.title, charts: charts, emptyFigures: emptyFigures,
  links: Array.from(unique.values(),
                    (l) => ({...l, url: new URL(l.raw, document.baseURI).href})),
  missingFragments: links.filter((l) => l.raw.startsWith('#') && !ids.has(l.raw.slice(1)))
                         .map((l) => l.raw),
  verdictRows: verdictTables, verdictCells: document.querySelectorAll('td.verdict').length,
  unnamedVerdictRows: unnamedVerdictRows, gridLinks: gridLinks, gridRows: gridRows,
  fetched: performance.getEntriesByType('resource').map((e) => e.name),
};
"""


@dataclass(frozen=True)
class PageAudit:
    """What loading one page showed: its problems (empty when a reader sees it whole)."""

    page: Path
    title: str
    charts: int
    verdict_rows: tuple[int, ...]  # data rows of each table.verdicts, in page order
    verdict_cells: int  # td.verdict anywhere (compare pages' verdict column)
    grid_rows: int  # claim rows of the index's grid (table.grid tr.claim with an id)
    grid_links: tuple[str, ...]  # where the index grids' verdict cells link
    local_pages: frozenset[Path]  # the .html files it links to
    problems: tuple[str, ...]


def missing_browser() -> str | None:
    """Why the browser cannot run here, or None."""
    absent = [name for name in (CHROMIUM, CHROMEDRIVER) if shutil.which(name) is None]
    if not absent:
        return None
    return (f"{' and '.join(absent)} not found on PATH: install Debian's chromium and "
            "chromium-driver (`apt-get install chromium chromium-driver`, as .ci/run does)")


@contextmanager
def start_browser(window: tuple[int, int] = SCREENSHOT_SIZE) -> Iterator[WebDriver]:
    """One headless Chromium with a fresh profile, its console log kept; quit on exit."""
    with tempfile.TemporaryDirectory(prefix="alloclab-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(shutil.which(CHROMIUM))
        for flag in (*FLAGS, f"--user-data-dir={profile}",
                     f"--window-size={window[0]},{window[1]}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # The driver is the system's: Selenium must not look for (or download) another.
        driver = webdriver.Chrome(options=options,
                                  service=Service(str(shutil.which(CHROMEDRIVER))))
        try:
            driver.set_page_load_timeout(60)
            yield driver
        finally:
            driver.quit()


def _chart_problems(chart: dict[str, Any]) -> list[str]:
    kind, (width, height) = chart["kind"], chart["box"]
    if width <= 0 or height <= 0:
        return [f"a chart ({kind}) is not rendered: its box is {width}x{height}"]
    if kind == "svg":
        found = []
        if not chart["title"] or not chart["desc"]:
            found.append(f"an SVG chart lacks a <title> or <desc> (title {chart['title']!r})")
        if chart["marks"] == 0:
            found.append(f"SVG chart {chart['title']!r} draws nothing")
        if chart["cut"]:
            found.append(f"SVG chart {chart['title']!r} has text past its edge: "
                         + ", ".join(repr(t) for t in chart["cut"][:5]))
        if chart["untitledMarks"]:
            found.append(f"SVG chart {chart['title']!r}: {chart['untitledMarks']} of its "
                         f"{chart['valueMarks']} points lack their value in a <title>")
        elif chart["valueMarks"] == 0 and not chart["noSamples"]:
            found.append(f"SVG chart {chart['title']!r} has no point with its value in a "
                         "<title>: hovering over it shows no number")
        return found
    if kind == "img" and not (chart["complete"] and chart["naturalWidth"] > 0):
        return [f"image {chart['src']!r} did not load (naturalWidth {chart['naturalWidth']})"]
    return []


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def _link_problems(links: list[dict[str, Any]], page: Path) -> tuple[list[str], set[Path]]:
    """Local targets that do not exist (or lack the #id linked to), and resources from afar."""
    problems, pages = [], set()
    for link in links:
        url, raw = link["url"], link["raw"]
        target = _local_path(url)
        if target is None:
            if link["loads"] and not url.startswith(("data:", "about:")):
                problems.append(f"<{link['tag']}> loads {raw!r} from outside the report")
            continue
        if target == page:
            continue  # the page's own #ids: missingFragments
        if not target.is_file():
            problems.append(f"<{link['tag']}> links to {raw!r}: {target} does not exist")
            continue
        if target.suffix == ".html":
            pages.add(target)
        fragment = urlsplit(url).fragment
        if fragment and not re.search(rf'\bid="{re.escape(fragment)}"', target.read_text()):
            problems.append(f"<{link['tag']}> links to {raw!r}: no id {fragment!r} there")
    return problems, pages


def audit_page(driver: WebDriver, page: Path) -> PageAudit:
    """Load `page` from disk (file://) and check what a reader would see of it."""
    page = page.resolve()
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(page.as_uri())
    # get() should return at the load event, yet on a loaded machine the audit of a large page
    # twice saw it incomplete (one machine's verdict table of two; an id of the page missing):
    # the audit waits until this page is the document and the document is complete.
    WebDriverWait(driver, PAGE_SETTLE_S).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && document.URL.split('#')[0] === "
        "arguments[0]", page.as_uri()))
    found: dict[str, Any] = driver.execute_script(AUDIT_SCRIPT, NO_SAMPLES)
    problems = []
    if _local_path(found["url"]) != page:
        problems.append(f"the browser shows {found['url']}, not the page")
    problems += [f"console {entry['level']}: {entry['message']}"
                 for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    for chart in found["charts"]:
        problems += _chart_problems(chart)
    if found["emptyFigures"]:
        problems.append(f"{found['emptyFigures']} <figure>(s) hold no chart")
    link_problems, pages = _link_problems(found["links"], page)
    problems += link_problems
    problems += [f"link {raw!r}: no such id on the page" for raw in
                 sorted(set(found["missingFragments"]))]
    problems += [f"fetched {url} from outside the report" for url in found["fetched"]
                 if _local_path(url) is None]
    if found["unnamedVerdictRows"]:
        problems.append(f"{found['unnamedVerdictRows']} verdict row(s) without an id "
                        "(a permalink)")
    problems += [f"grid cell links to {href!r}, not to a verdict row (#id)"
                 for href in found["gridLinks"] if "#" not in href]
    return PageAudit(page=page, title=found["title"], charts=len(found["charts"]),
                     verdict_rows=tuple(found["verdictRows"]),
                     verdict_cells=found["verdictCells"], grid_rows=found["gridRows"],
                     grid_links=tuple(found["gridLinks"]), local_pages=frozenset(pages),
                     problems=tuple(problems))


# The widths a reader brings: a desktop window and a phone (CSS pixels).
DESKTOP_WIDTH, PHONE_WIDTH = 1280, 400
# The smallest text a reader can read, in CSS pixels, as rendered (an SVG's scale included).
MIN_TEXT_PX = 10.0

# How wide the page is against its window, and the texts drawn smaller than MIN_TEXT_PX.
LAYOUT_SCRIPT = """
const minPx = arguments[0];
const small = [];
for (const el of document.querySelectorAll('body *')) {
  const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const r = el.getBoundingClientRect();
  // Text hidden by design (a closed <details>, an SVG <title>, visibility: hidden) is not read.
  const shown = el.checkVisibility({visibilityProperty: true, checkVisibilityCSS: true,
                                    opacityProperty: true, checkOpacity: true});
  if (r.width === 0 || r.height === 0 || !shown) continue;
  let px = parseFloat(getComputedStyle(el).fontSize);
  if (el instanceof SVGElement) {  // user units, drawn at the SVG's scale
    const m = el.getScreenCTM();
    if (m) px *= Math.sqrt(Math.abs(m.a * m.d - m.b * m.c));
  }
  if (px < minPx) small.push([Math.round(px * 10) / 10, el.textContent.trim().slice(0, 40)]);
}
const root = document.documentElement;
return {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, small: small};
"""


def layout_problems(driver: WebDriver, widths: tuple[int, ...] = (DESKTOP_WIDTH, PHONE_WIDTH)
                    ) -> list[str]:
    """What the loaded page shows wrong at each window width: a page wider than the window (it
    scrolls sideways) and text drawn under MIN_TEXT_PX. A width under 600 is a phone (its
    viewport tag honoured). The viewport is set back to the window's size after (clearing the
    override leaves the last width in place until the next page loads)."""
    problems = []
    own = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    try:
        for width in widths:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
            found: dict[str, Any] = driver.execute_script(LAYOUT_SCRIPT, MIN_TEXT_PX)
            if found["scrollWidth"] > found["clientWidth"]:
                problems.append(f"at {width} px the page is {found['scrollWidth']} px wide: it "
                                "scrolls sideways (put what is wide in a scroll box)")
            if found["small"]:
                shown = ", ".join(f"{text!r} {px:g} px" for px, text in found["small"][:5])
                problems.append(f"at {width} px {len(found['small'])} text(s) are drawn under "
                                f"{MIN_TEXT_PX:g} px: {shown}")
    finally:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": own[0], "height": own[1], "deviceScaleFactor": 1, "mobile": False})
    return problems


def take_screenshot(page: Path, png: Path, size: tuple[int, int] = SCREENSHOT_SIZE) -> Path:
    """The top `size` pixels of `page` as a reader's 1280-pixel-wide window shows it."""
    with start_browser(size) as driver:
        # The window size includes no frame in headless mode, but pin the viewport exactly.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": False})
        driver.get(page.resolve().as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(driver.get_screenshot_as_png())
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.browser",
        description="Screenshot a report page in headless Chromium (README's picture).")
    parser.add_argument("page", type=Path, nargs="?", default=Path("reports/index.html"))
    parser.add_argument("png", type=Path, nargs="?", default=Path("docs/index.png"))
    parser.add_argument("--size", default="{}x{}".format(*SCREENSHOT_SIZE),
                        help="WIDTHxHEIGHT in CSS pixels (default: %(default)s)")
    args = parser.parse_args(argv)
    missing = missing_browser()
    if missing:
        print(missing, file=sys.stderr)
        return 3
    width, height = (int(n) for n in args.size.split("x"))
    print(f"wrote {take_screenshot(args.page, args.png, (width, height))} "
          f"({width}x{height} of {args.page})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
