"""The reports in a real browser: every committed page, and a freshly rendered synthetic site,
loaded from disk in headless Chromium (tests/browser.py) with no network.

Each page must show no console error, every chart rendered (an inline SVG with its <title> and
<desc> and each point's value in a <title> of its own, an image that loaded), its verdict tables
where its checks are, and no local link or resource pointing nowhere; and at 1280 px and at a
phone's 400 px, no sideways page scroll and no text drawn under 10 px. Skipped where Chromium
is absent, but a failure when $CI is set: CI installs it (.ci/run), so a skip there would hide
a missing install.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from runner.analysis.compare import compare_runs
from runner.report.compare_page import render_compare_html
from runner.report.site import render_reports
from runner.store.folders import load_run
from tests import browser
from tests.synthetic import COMPARE_SPEC, FINGERPRINT, SMALL_SPEC, write_synthetic_run

ROOT = Path(__file__).parents[2]
REPORTS = ROOT / "reports"
TEMPLATES = ROOT / "templates"
COMMITTED_PAGES = sorted(REPORTS.rglob("*.html"))


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def chromium() -> Iterator[WebDriver]:
    """One headless Chromium for every page of the session (starting one takes a second)."""
    missing = browser.missing_browser()
    if missing is not None:
        if _in_ci():
            pytest.fail(f"CI is set but the browser tests cannot run: {missing}")
        pytest.skip(missing)
    with browser.start_browser() as driver:
        yield driver


def _verdicts_per_page(reports: Path) -> Counter[str]:
    """How many verdict rows each experiment page must show, from the site's verdicts.json."""
    verdicts = json.loads((reports / "verdicts.json").read_text())["verdicts"]
    return Counter(f"{v['experiment']}.html" for v in verdicts)


def _claims(reports: Path) -> int:
    """How many claims the index grid must show: one row each, whatever the machines."""
    verdicts = json.loads((reports / "verdicts.json").read_text())["verdicts"]
    return len({(v["experiment"], v["claim"]) for v in verdicts})


def _check_site(driver: WebDriver, reports: Path, page: Path) -> browser.PageAudit:
    """Audit one page and check what its kind must show: the index's verdict summary and its
    links to every experiment page, each experiment page's verdict rows, compare verdicts."""
    audit = browser.audit_page(driver, page)
    assert audit.problems == (), "\n".join(audit.problems)
    layout = browser.layout_problems(driver)
    assert layout == [], "\n".join(layout)
    assert audit.title.endswith("alloclab") or audit.title == "alloclab", audit.title
    expected = _verdicts_per_page(reports)
    relative = page.relative_to(reports)
    if relative == Path("index.html"):
        assert audit.grid_rows == _claims(reports)
        # every verdict in the grid (and again in the disagreements table), each to its row
        assert len(audit.grid_links) >= expected.total()
        assert {link.partition("#")[0] for link in audit.grid_links} == set(expected)
        linked = {p.resolve() for p in reports.glob("*.html")} - {page.resolve()}
        linked |= {p.resolve() for p in reports.glob("compare/*/compare.html")}
        assert audit.local_pages == linked
    elif relative.parts[0] == "compare":
        assert audit.charts > 0 and audit.verdict_cells > 0
    else:  # an experiment's page: one table per run with checks, a row per check
        assert sum(audit.verdict_rows) == expected[page.name]
        assert audit.charts > 0
    return audit


def test_the_committed_reports_have_every_kind_of_page() -> None:
    # The parametrized test below is only as good as this list.
    names = {p.relative_to(REPORTS).as_posix() for p in COMMITTED_PAGES}
    assert "index.html" in names and "first-touch.html" in names
    assert any(name.startswith("compare/") for name in names)
    assert set(_verdicts_per_page(REPORTS)) <= names


@pytest.mark.parametrize("page", COMMITTED_PAGES,
                         ids=[p.relative_to(REPORTS).as_posix() for p in COMMITTED_PAGES])
def test_every_committed_page_shows_whole_in_a_browser(chromium: WebDriver, page: Path) -> None:
    _check_site(chromium, REPORTS, page)


@pytest.fixture(scope="module")
def synthetic_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A site rendered now from synthetic runs: an experiment with checks and a crashed process,
    one without checks, and a compare page of two runs."""
    root = tmp_path_factory.mktemp("site")
    results, reports = root / "results", root / "reports"
    (root / "small.yaml").write_text(SMALL_SPEC)
    (root / "cmp.yaml").write_text(COMPARE_SPEC)
    write_synthetic_run(results, root / "small.yaml", crash=("mmap-anon 1MiB", 2))
    baseline = write_synthetic_run(results, root / "cmp.yaml", run_id="20260101T000000Z")
    candidate = write_synthetic_run(results, root / "cmp.yaml", run_id="20260102T000000Z",
                                    scale=1.2, noise=0.02, seed=3)
    write_synthetic_run(results, root / "small.yaml", machine="other-machine",
                        fingerprint={**FINGERPRINT, "cpu_model": "Another CPU"})
    render_reports(results, reports, TEMPLATES)
    runs = [load_run(baseline), load_run(candidate)]
    comparison = compare_runs(runs[0], runs[1:], metrics=["first_touch_ns_per_page"])
    render_compare_html(comparison, runs, "alloclab compare", reports / "compare" / "cmp",
                        TEMPLATES)
    render_reports(results, reports, TEMPLATES)  # the index lists the compare page
    return reports


def test_a_freshly_rendered_site_shows_whole_in_a_browser(chromium: WebDriver,
                                                          synthetic_site: Path) -> None:
    pages = sorted(synthetic_site.rglob("*.html"))
    assert [p.relative_to(synthetic_site).as_posix() for p in pages] == [
        "cmp.html", "compare/cmp/compare.html", "index.html", "small.html"]
    audits = {p.name: _check_site(chromium, synthetic_site, p) for p in pages}
    assert audits["small.html"].verdict_rows == (2, 2)  # two machines
    assert audits["cmp.html"].verdict_rows == ()  # no checks, no table
    assert audits["index.html"].grid_rows == 2  # one row per claim, two machines each
    assert len(audits["index.html"].grid_links) == 4
    # the compare page links back to the index and to the experiment page's machine section
    assert {(synthetic_site / name).resolve() for name in ("index.html", "cmp.html")} <= \
        audits["compare.html"].local_pages


BROKEN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>broken — alloclab</title>
<link rel="stylesheet" href="http://127.0.0.1:9/style.css"></head>
<!-- Port 9 is one Chromium refuses to connect to: nothing leaves the machine. -->
<body>
<a href="nowhere.html">a page that was never written</a>
<a href="#no-such-id">an anchor</a>
<a href="other.html#gone">an anchor elsewhere</a>
<img src="missing.svg" alt="a chart file that is not there">
<figure><svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">
  <path d="M 0 0 L 100 50" stroke="black"/></svg></figure>
<figure><svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">
  <title>cut</title><desc>d</desc><path d="M 0 0 L 1 1"/>
  <text x="60" y="20" style="font: 12px sans-serif">a label too long</text></svg></figure>
<figure><svg xmlns="http://www.w3.org/2000/svg" width="0" height="0">
  <title>t</title><desc>d</desc><path d="M 0 0 L 1 1"/></svg></figure>
<figure><p>chart failed</p></figure>
<table class="verdicts"><tr><th>claim</th></tr><tr><td>a row with no id</td></tr></table>
<table class="grid"><tr class="claim" id="claim-x"><td><a class="verdict holds"
  href="other.html">holds</a></td></tr></table>
<figure><svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">
  <title>hover</title><desc>d</desc><defs><path id="m" d="M 0 0 L 1 1"/></defs>
  <g class="points"><g class="point"><title>malloc: median</title><use href="#m" x="1" y="1"/></g>
  <use href="#m" x="2" y="2"/></g>
  <g class="processes"><g class="point"><title>process 1: 3 ns</title><use href="#m"/></g></g>
  </svg></figure>
<script>console.error("the chart script failed");</script>
</body></html>
"""


def test_the_audit_sees_what_a_reader_would_find_broken(chromium: WebDriver,
                                                        tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(BROKEN_PAGE)
    (tmp_path / "other.html").write_text('<p id="here">here</p>')
    problems = "\n".join(browser.audit_page(chromium, page).problems)
    for expected in ('SEVERE: file://', '"the chart script failed"',
                     "missing.svg - Failed to load resource: net::ERR_FILE_NOT_FOUND",
                     "'nowhere.html'", "does not exist", "link '#no-such-id': no such id",
                     "'other.html#gone': no id 'gone' there",
                     "image 'missing.svg' did not load",
                     "an SVG chart lacks a <title> or <desc>",
                     "a chart (svg) is not rendered: its box is 0x0",
                     "SVG chart 'cut' has text past its edge: 'a label too long'",
                     "SVG chart 'hover': 2 of its 3 points lack their value in a <title>",
                     "SVG chart 'cut' has no point with its value in a <title>",
                     "1 <figure>(s) hold no chart",
                     "1 verdict row(s) without an id",
                     "grid cell links to 'other.html', not to a verdict row",
                     "<link> loads 'http://127.0.0.1:9/style.css' from outside the report"):
        assert expected in problems, f"{expected!r} not in:\n{problems}"


CRAMPED_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>cramped</title></head>
<body>
<table><tr><td style="white-space: nowrap">a row far wider than a phone, which the page
  scrolls sideways to show, since nothing around it scrolls instead</td></tr></table>
<p style="font-size: 8px">small print</p>
<p style="font-size: 8px; visibility: hidden">hidden by design</p>
<details><summary>more</summary><p style="font-size: 6px">closed</p></details>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 100" style="width: 100%">
  <title>a chart scaled to its box</title>
  <text x="10" y="50" style="font: 14px sans-serif">legend</text></svg>
</body></html>
"""


def test_the_layout_check_sees_a_page_too_wide_and_text_too_small(chromium: WebDriver,
                                                                  tmp_path: Path) -> None:
    page = tmp_path / "cramped.html"
    page.write_text(CRAMPED_PAGE)
    chromium.get(page.as_uri())
    problems = browser.layout_problems(chromium)
    desktop, phone = problems[0], "\n".join(problems[1:])
    # 14 user units of a 1000-unit chart: 14 * (1280 - 16) / 1000 = 17.7 px on a desktop,
    # 14 * 384 / 1000 = 5.4 px on a phone, where the row also no longer fits.
    assert desktop == "at 1280 px 1 text(s) are drawn under 10 px: 'small print' 8 px"
    assert "at 400 px the page is" in phone and "scrolls sideways" in phone
    assert ("at 400 px 2 text(s) are drawn under 10 px: 'small print' 8 px, 'legend' 5.4 px"
            in phone)
    assert "hidden by design" not in phone and "closed" not in phone
    assert chromium.execute_script("return window.innerWidth") == browser.SCREENSHOT_SIZE[0]
