"""The package's shape: one subpackage per pipeline stage, each importing only the stages below
it, docstring-only subpackage faces, no module over 500 lines without a stated reason, and no
module that shares its name with a folder.

Every import counts, including the ones a function makes when it starts (the lazy imports
that keep light commands fast) and the ones made only for type checking: each is a dependency
of the code that reads it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from runner.cli.module_map import STAGE_ORDER

PACKAGE = Path(__file__).parents[2] / "runner"

# The stages bottom-up; a stage may import the ones of a lower rank, never a peer of its own
# rank nor one above. runner/__init__.py tells the same order in words.
RANKS = {
    "core": 0,
    "spec": 1, "probe": 1, "machine": 1,
    "store": 2,
    "analysis": 3,
    "measure": 4, "report": 4,
    "remote": 5,
    "cli": 6,
}
MAX_LINES = 500
REASON_MARK = "Longer than 500 lines:"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _stage(module: Path) -> str | None:
    parts = module.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _imported_stages(module: Path) -> list[tuple[int, str]]:
    """(line, stage) of every runner subpackage the module imports, in any form."""
    found = []
    for node in ast.walk(ast.parse(module.read_text(), str(module))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "runner":
                names = [f"runner.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{module}:{node.lineno}: relative import; the package imports "
                                 "by absolute name (runner.<stage>.<module>)")
        for name in names:
            parts = name.split(".")
            if parts[0] == "runner" and len(parts) > 1 and parts[1] in RANKS:
                found.append((node.lineno, parts[1]))
    return found


def test_the_ranks_follow_the_stage_order_the_docs_are_generated_in() -> None:
    assert tuple(RANKS) == STAGE_ORDER
    assert sorted(RANKS.values()) == list(RANKS.values())


def test_every_module_lives_in_a_stage() -> None:
    flat = [m.name for m in PACKAGE.glob("*.py") if m.name not in ("__init__.py", "__main__.py")]
    assert flat == [], "modules outside every stage's subpackage"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(RANKS)


@pytest.mark.parametrize("module", _modules(), ids=lambda m: str(m.relative_to(PACKAGE)))
def test_a_stage_imports_only_the_stages_below_it(module: Path) -> None:
    stage = _stage(module)
    if stage is None:
        return  # runner/__init__.py and __main__.py stand above every stage
    wrong = [f"{module.relative_to(PACKAGE)}:{line}: {stage} imports {other}"
             for line, other in _imported_stages(module)
             if other != stage and RANKS[other] >= RANKS[stage]]
    assert wrong == []


def test_the_rule_sees_an_import_back_up(tmp_path: Path) -> None:
    upward = tmp_path / "verdict.py"
    upward.write_text("def f():\n    from runner.report import site\n"
                      "from runner import measure, core\n")
    assert sorted(_imported_stages(upward)) == [(2, "report"), (3, "core"), (3, "measure")]


@pytest.mark.parametrize("stage", sorted(RANKS))
def test_a_subpackage_face_is_its_docstring_alone(stage: str) -> None:
    # Importing runner.analysis must not pull pandas into `alloclab validate`: the faces hand
    # nothing on and import nothing.
    tree = ast.parse((PACKAGE / stage / "__init__.py").read_text())
    assert ast.get_docstring(tree), f"runner/{stage}/__init__.py: say what the stage holds"
    assert len(tree.body) == 1


@pytest.mark.parametrize("module", _modules(), ids=lambda m: str(m.relative_to(PACKAGE)))
def test_a_module_over_500_lines_says_why(module: Path) -> None:
    text = module.read_text()
    if len(text.splitlines()) > MAX_LINES:
        docstring = ast.get_docstring(ast.parse(text)) or ""
        assert REASON_MARK in docstring, (
            f"{module.relative_to(PACKAGE)}: {len(text.splitlines())} lines; split it at a seam "
            f"or say why not in its docstring ('{REASON_MARK} ...')")


def test_no_module_shares_its_name_with_a_folder() -> None:
    folders = {p.name for p in PACKAGE.rglob("*") if p.is_dir() and p.name != "__pycache__"}
    clashes = sorted(str(m.relative_to(PACKAGE)) for m in _modules() if m.stem in folders)
    assert clashes == []
