"""docs/reference/: generated from the code's own tables, committed, and current."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from runner.cli import parser as cli_parser
from runner.cli import reference
from runner.core.errors import ExitStatus
from runner.core.observations import OBSERVATIONS
from runner.core.parameters import PARAMETERS

ROOT = Path(__file__).parents[2]
LINK = re.compile(r"\]\(([^)\s]*)\)")


def test_committed_reference_is_current() -> None:
    """If this fails, run `python -m runner.cli.reference` and commit docs/reference/."""
    assert reference.stale_pages() == [], (
        "docs/reference/ is stale: run `python -m runner.cli.reference` and commit")


def test_a_changed_declaration_makes_its_page_stale(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert reference.main(["--dir", str(tmp_path)]) == 0
    assert reference.main(["--check", "--dir", str(tmp_path)]) == 0
    size = replace(PARAMETERS[1], help="bytes per block, said otherwise")
    monkeypatch.setattr(reference, "PARAMETERS", (PARAMETERS[0], size, *PARAMETERS[2:]))
    observation = replace(OBSERVATIONS[0], doc="A longer text nobody wrote before.")
    monkeypatch.setattr(reference, "OBSERVATIONS", (observation, *OBSERVATIONS[1:]))
    monkeypatch.setattr(cli_parser, "TEMPLATES_HELP", "where the templates are")
    capsys.readouterr()
    assert reference.main(["--check", "--dir", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        str(tmp_path / name) for name in ("parameters.md", "metrics.md", "cli.md")]
    assert "Bytes per block, said otherwise." in reference.parameters_page()
    assert "A longer text nobody wrote before." in reference.metrics_page()
    assert "where the templates are" in reference.cli_page()


def test_pages_do_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    wide = reference.build_pages()
    monkeypatch.setenv("COLUMNS", "40")
    assert reference.build_pages() == wide


def test_every_declaration_has_its_heading() -> None:
    pages = reference.build_pages()
    assert all(f"\n## `{p.key}`\n" in pages["parameters.md"] for p in PARAMETERS)
    assert all(f"\n### `{o.metric.name}`\n" in pages["metrics.md"] for o in OBSERVATIONS)
    assert all(f"\n## {int(s)} {s.name}\n" in pages["exit-status.md"] for s in ExitStatus)
    assert all(p.doc in pages["parameters.md"] for p in PARAMETERS if "<" not in p.doc)
    assert all(f"{int(s)}: {s.meaning}." in cli_parser.exit_status_epilog() for s in ExitStatus)


def _anchors(page: str) -> set[str]:
    """The anchors a code host gives a page's headings: lower case, punctuation dropped,
    spaces made hyphens (no heading of these pages repeats another)."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in page.splitlines() if line.startswith("#")}


def test_links_into_the_reference_land_on_a_heading() -> None:
    """Every link with an anchor, from a reference page to itself or from the README and the
    guide into docs/reference/, names a heading the generated page has."""
    pages = reference.build_pages()
    anchors = {name: _anchors(text) for name, text in pages.items()}
    links = [(name, target) for name, text in pages.items()
             for target in LINK.findall(text) if target.startswith("#")]
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for document in documents:
        if document.parent.name == "reference":
            continue
        for target in LINK.findall(document.read_text(encoding="utf-8")):
            page, _, anchor = target.partition("#")
            if "reference/" in page and anchor:
                links.append((Path(page).name, f"#{anchor}"))
    assert links
    missing = [(page, target) for page, target in links if target[1:] not in anchors[page]]
    assert missing == []
