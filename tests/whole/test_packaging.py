"""A normal install renders: the wheel ships the templates; its pages are the editable's bytes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from runner.report.site import default_templates_dir, render_reports
from tests.synthetic import write_synthetic_run

ROOT = Path(__file__).parents[2]


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the build leaves nothing in the checkout."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "runner", source / "runner",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    # No build isolation: setuptools comes from the test environment, nothing is downloaded.
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                    "--no-build-isolation", "--no-index", "-q", "-w", str(tmp_path / "wheel")],
                   check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "wheel").glob("alloclab-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A venv holding only the wheel; the libraries come from this test environment's
    site-packages through a .pth file (read after the venv's own, so its runner wins)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-index", "--no-deps", str(wheel)], check=True)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz-alloclab-test-libraries.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return venv


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_renders_the_pages_an_editable_install_renders(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, crash=("mmap-anon 1MiB", 2))
    editable = tmp_path / "editable"
    render_reports(results, editable, default_templates_dir())

    venv = _fresh_venv(tmp_path, _build_wheel(tmp_path))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    # Run away from the checkout, so nothing can be found there instead of in the install.
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import runner.report.site as r; print(r.default_templates_dir())"],
                           check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    installed = tmp_path / "installed"
    subprocess.run([str(venv / "bin" / "alloclab"), "report", "--results", str(results),
                    "--reports", str(installed)], check=True, cwd=tmp_path, env=env)

    pages = sorted(path.relative_to(editable).as_posix() for path in editable.rglob("*")
                   if path.is_file())
    assert "index.html" in pages and "small.html" in pages  # and each page's CSV under data/
    assert any(page.startswith("data/") and page.endswith(".csv") for page in pages), pages
    assert sorted(path.relative_to(installed).as_posix() for path in installed.rglob("*")
                  if path.is_file()) == pages
    for name in pages:
        assert (installed / name).read_bytes() == (editable / name).read_bytes(), name
