"""The documentation holds together: the README stays short, and every relative link in it and
in docs/ names a file that exists and, with a #fragment, a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
README_MAX_LINES = 200
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def anchor(heading: str) -> str:
    """A heading's fragment as a code host makes it: lowercase, the text of links and code
    kept, other punctuation but hyphens and underscores dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            base = anchor(line.lstrip("#"))
            name, n = base, 1
            while name in found:  # a repeated heading gets -1, -2...
                name, n = f"{base}-{n}", n + 1
            found.add(name)
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


def test_the_readme_is_short() -> None:
    lines = len((ROOT / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, "the README gives the two commands and links; " \
        "the rest belongs in docs/guide/ or docs/reference/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.is_file() and resolved.suffix == ".md" \
                and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading #{fragment} in {resolved.relative_to(ROOT)}")
    assert broken == []


def test_the_link_check_sees_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# One Two: three\n\n## `read_buffer`\n\n"
                                   "[x](b.md) [y](#one-two-three) [z](#none)\n")
    assert anchors(tmp_path / "a.md") == {"one-two-three", "read_buffer"}
    assert links(tmp_path / "a.md") == ["b.md", "#one-two-three", "#none"]


def test_the_readme_counts_the_shipped_experiments_and_claims() -> None:
    from runner.spec import load

    specs = load.load_specs([ROOT / "experiments"])
    said = re.search(r"(\d+) experiments deciding (\d+) claims", (ROOT / "README.md").read_text())
    assert said, "README.md no longer says how many experiments and claims ship"
    assert (int(said.group(1)), int(said.group(2))) == (
        len(specs), sum(len(spec.checks) for spec in specs))
