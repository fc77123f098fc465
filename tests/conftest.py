"""Shared fixtures and the --update-golden switch."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.synthetic import SMALL_SPEC


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output (review the diff!)")


@pytest.fixture
def small_spec(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_SPEC)
    return path
