"""Shell completion, driven as bash drives it: the script `register-python-argcomplete alloclab`
prints is loaded into a real bash, which runs the installed `alloclab` with `_ARGCOMPLETE`,
`COMP_LINE` and `COMP_POINT` set and reads the candidates from file descriptor 8."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner.cli import completion
from tests.synthetic import SMALL_SPEC

BIN = Path(sys.executable).parent
HEAVY_MODULES = ("pandas", "numpy", "matplotlib", "scipy", "jinja2")

BASH_COMPLETE = r"""
eval "$(register-python-argcomplete alloclab)"
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
_python_argcomplete alloclab
printf '%s\n' "${COMPREPLY[@]}"
"""


def _require_installed() -> None:
    for program in ("alloclab", "register-python-argcomplete"):
        if not (BIN / program).exists():
            pytest.skip(f"{program} is not installed beside {sys.executable} (pip install -e .)")
    if shutil.which("bash") is None:
        pytest.skip("no bash on this machine")


def complete(line: str, cwd: Path) -> list[str]:
    """What bash offers after typing `line` and pressing Tab, through argcomplete's own hook."""
    _require_installed()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("_ARGCOMPLETE", None)
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", BASH_COMPLETE, "bash", line],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working folder as a user's: experiments/ with specs, results/ with two machines."""
    (tmp_path / "experiments").mkdir()
    for name in ("first-touch.yaml", "file-read.yaml", "fixtures.txt"):
        (tmp_path / "experiments" / name).write_text(SMALL_SPEC)
    for run in ("vm/first-touch/20260101T000000Z", "vm-epyc/first-touch/20260102T000000Z"):
        (tmp_path / "results" / run).mkdir(parents=True)
    (tmp_path / "results" / ".import-staging").mkdir()
    (tmp_path / "results" / "README.txt").write_text("not a machine")
    return tmp_path


def test_subcommands_complete(project: Path) -> None:
    # A single candidate ends in a space, so the shell moves on to the next word; a folder
    # ends in '/' and no space, so the next Tab descends into it.
    assert complete("alloclab ", project)[-8:] == [
        "run", "report", "compare", "export", "import", "validate", "plan", "schema"]
    assert complete("alloclab va", project) == ["validate "]
    assert complete("alloclab sc", project) == ["schema "]


def test_options_of_a_subcommand_complete(project: Path) -> None:
    offered = complete("alloclab run --", project)
    assert {"--machine", "--quick", "--processes", "--fresh", "--hosts", "--force"} <= set(offered)
    assert "--fail-above" not in offered  # compare's, not run's
    assert complete("alloclab run --pro", project) == ["--processes "]
    assert complete("alloclab compare --fail", project) == ["--fail-above "]


@pytest.mark.parametrize("command", ["run", "validate", "plan"])
def test_spec_arguments_complete_to_yaml_files_and_folders(project: Path, command: str) -> None:
    assert complete(f"alloclab {command} experiments/fi", project) == [
        "experiments/file-read.yaml", "experiments/first-touch.yaml"]  # not fixtures.txt


def test_a_folder_completes_without_a_space_to_descend_into(project: Path) -> None:
    assert complete("alloclab plan exp", project) == ["experiments/"]


def test_machine_completes_to_the_labels_in_results(project: Path) -> None:
    assert complete("alloclab run --machine ", project) == ["vm", "vm-epyc"]
    assert complete("alloclab run --machine vm-", project) == ["vm-epyc "]
    elsewhere = project / "elsewhere"
    (elsewhere / "old-box" / "x").mkdir(parents=True)
    assert complete(f"alloclab run --results {elsewhere} --machine ", project) == ["old-box "]


def test_compare_completes_run_folders_from_results(project: Path) -> None:
    assert complete("alloclab compare ", project)[-2:] == ["results/vm/", "results/vm-epyc/"]
    assert complete("alloclab compare results/vm/", project) == ["results/vm/first-touch/"]
    assert complete("alloclab compare results/vm-epyc/first-touch/", project) == [
        "results/vm-epyc/first-touch/20260102T000000Z/"]
    assert complete("alloclab compare results/vm/first-touch --metric first_touch_ns_per_p",
                    project) == ["first_touch_ns_per_page "]


def test_choices_complete(project: Path) -> None:
    assert complete("alloclab export results/vm -o x --format ", project) == [
        "tar.gz", "csv", "parquet", "json"]


COMPLETING = """
import os, sys
os.environ.update(_ARGCOMPLETE="1", COMP_LINE="alloclab validate exp", COMP_POINT="21",
                  _ARGCOMPLETE_STDOUT_FILENAME=sys.argv[1])
from runner.cli.main import main
main([])
"""


def test_completing_imports_no_data_or_plotting_library(tmp_path: Path) -> None:
    # A Tab must answer at once: argcomplete and the CLI, not pandas or matplotlib (~2 s).
    out = tmp_path / "candidates"
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", COMPLETING, str(out)],
                          cwd=Path(__file__).parents[2], capture_output=True, text=True,
                          timeout=60)
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")}
    assert "argcomplete" in imported and "runner.cli.main" in imported
    assert imported.isdisjoint(HEAVY_MODULES), sorted(imported & set(HEAVY_MODULES))
    assert out.read_text().split("\013") == ["experiments/"]


def test_completers_return_only_candidates_that_start_with_the_prefix(project: Path,
                                                                      monkeypatch:
                                                                      pytest.MonkeyPatch
                                                                      ) -> None:
    monkeypatch.chdir(project)
    assert completion.complete_specs("") == ["experiments/", "results/"]
    assert completion.complete_specs("missing/") == []
    assert completion.complete_machines("", parsed_args=None) == ["vm", "vm-epyc"]
    assert completion.complete_machines("", parsed_args=type("A", (), {"results": "none"})) == []
    assert completion.complete_runs("results/.") == ["results/.import-staging/"]
    metrics = completion.complete_metrics("first_touch_")
    assert metrics and all(m.startswith("first_touch_") for m in metrics)
