"""What invalidates cached report pages: the code hash must see every module of the package."""

from __future__ import annotations

from pathlib import Path

import pytest

import runner
from runner.report import render_cache


def _package(root: Path) -> Path:
    (root / "pkg" / "analysis").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text('"""p"""\n')
    (root / "pkg" / "analysis" / "__init__.py").write_text('"""a"""\n')
    (root / "pkg" / "analysis" / "verdict.py").write_text("RULE = 1\n")
    (root / "templates").mkdir()
    (root / "templates" / "page.html").write_text("<p></p>\n")
    return root


def test_a_change_in_a_subpackage_changes_the_code_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _package(tmp_path)
    monkeypatch.setattr(runner, "__file__", str(root / "pkg" / "__init__.py"))
    before = render_cache.code_hash(root / "templates")
    assert render_cache.code_hash(root / "templates") == before
    (root / "pkg" / "analysis" / "verdict.py").write_text("RULE = 2\n")
    assert render_cache.code_hash(root / "templates") != before


def test_moving_a_module_between_subpackages_changes_the_code_hash(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _package(tmp_path)
    monkeypatch.setattr(runner, "__file__", str(root / "pkg" / "__init__.py"))
    before = render_cache.code_hash(root / "templates")
    (root / "pkg" / "core").mkdir()
    (root / "pkg" / "analysis" / "verdict.py").rename(root / "pkg" / "core" / "verdict.py")
    assert render_cache.code_hash(root / "templates") != before


def test_the_templates_count_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _package(tmp_path)
    monkeypatch.setattr(runner, "__file__", str(root / "pkg" / "__init__.py"))
    before = render_cache.code_hash(root / "templates")
    (root / "templates" / "page.html").write_text("<p>changed</p>\n")
    assert render_cache.code_hash(root / "templates") != before
