"""Reports: byte-identical re-renders, a golden page, and nothing hidden."""

import re
from pathlib import Path

import pytest

from runner.report import render_reports
from tests.synthetic import write_synthetic_run

TEMPLATES = Path(__file__).parent.parent / "templates"
GOLDEN = Path(__file__).parent / "golden"


def _without_svg(html: str) -> str:
    """Charts are checked in test_charts; the golden file pins everything around them."""
    return re.sub(r"<svg.*?</svg>", "<svg/>", html, flags=re.DOTALL)


@pytest.fixture
def reports(tmp_path: Path, small_spec: Path) -> Path:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, crash=("mmap-anon 1MiB", 2))
    out = tmp_path / "reports"
    render_reports(results, out, TEMPLATES)
    return out


def test_rendering_twice_gives_identical_bytes(reports: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    render_reports(tmp_path / "results", again, TEMPLATES)
    for page in sorted(reports.iterdir()):
        assert page.read_bytes() == (again / page.name).read_bytes(), page.name


def test_pages_match_golden(reports: Path, request: pytest.FixtureRequest) -> None:
    for name in ("index.html", "small.html"):
        actual = _without_svg((reports / name).read_text())
        golden = GOLDEN / name
        if request.config.getoption("--update-golden"):
            golden.write_text(actual)
        assert actual == golden.read_text(), f"{name} differs; review, then --update-golden"


def test_experiment_page_shows_question_charts_crashes_and_machine(reports: Path) -> None:
    html = (reports / "small.html").read_text()
    assert "How do two backings compare at three sizes?" in html
    assert html.count("<svg") == 1
    assert "crashed" in html and "SIGSEGV" in html
    assert "2/3" in html  # processes ok for the crashed scenario
    assert "Test CPU" in html and "6.0.0-test" in html
    assert "http://" not in _without_svg(html) and "https://" not in _without_svg(html)
