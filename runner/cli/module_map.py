"""docs/reference/modules.md: the package's stages in pipeline order and each module under them,
told by its own docstring, so the map cannot drift from the code it describes.

Docstrings are read with ast, not by importing: the map names the modules without running them
(and without pulling pandas into the reference command)."""

from __future__ import annotations

import ast
from pathlib import Path

import runner

PACKAGE = Path(runner.__file__).resolve().parent
# The stages bottom-up, as runner/__init__.py tells them; each imports only those before it
# (spec, probe and machine are peers, as are measure and report: tests/whole/test_layers.py).
STAGE_ORDER = ("core", "spec", "probe", "machine", "store", "analysis", "measure", "report",
               "remote", "cli")


def _docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def _first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n", 1)[0].split())


def _stage_text(stage: str) -> str:
    return _first_paragraph(_docstring(PACKAGE / stage / "__init__.py"))


def modules_page(header: list[str]) -> list[str]:
    """The page's lines after `header`: one section per stage, one row per module."""
    lines = [*header, "| stage | what it holds |", "| --- | --- |"]
    lines += [f"| [{stage}](#{stage}) | {_stage_text(stage)} |" for stage in STAGE_ORDER]
    lines.append("")
    for stage in STAGE_ORDER:
        folder = PACKAGE / stage
        lines += [f"## {stage}", "", _stage_text(stage), "",
                  "| module | what it does |", "| --- | --- |"]
        for module in sorted(folder.glob("*.py")):
            if module.name == "__init__.py":
                continue
            link = f"../../runner/{stage}/{module.name}"
            text = _first_paragraph(_docstring(module)).replace("|", "\\|")
            lines.append(f"| [`{module.stem}`]({link}) | {text} |")
        lines.append("")
        if stage == "probe":
            lines += ["The probe's C sources are mapped, file by file, in the header comment of "
                      "[probe.c](../../runner/probe/probe.c).", ""]
    return lines
