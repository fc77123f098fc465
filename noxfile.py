"""Developer and user sessions. `nox -s run` measures; `nox -s tests` checks; see README.md."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"
# Sessions run on the Python that runs nox (3.11 or newer, as pyproject.toml requires): a
# pinned version would make nox skip the session, and exit 0, on a machine without it.
PYTHON = None
# The allocators of parameter allocator (experiments/allocators.yaml), by soname and the Debian
# package that installs it: `run` and `tests` install those missing where they can (root and
# apt-get), as .ci/run installs its packages; elsewhere their scenarios skip, naming the package.
ALLOCATOR_PACKAGES = {"libjemalloc.so.2": "libjemalloc2",
                      "libtcmalloc_minimal.so.4": "libtcmalloc-minimal4",
                      "libmimalloc.so.2": "libmimalloc2.0"}


def install_allocators(session: nox.Session) -> None:
    """apt-get install the allocator libraries ldconfig does not list, when root with apt-get."""
    import os
    import shutil
    import subprocess

    listed = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True,
                            check=False).stdout if shutil.which("ldconfig") else ""
    missing = [package for soname, package in ALLOCATOR_PACKAGES.items()
               if f"{soname} (" not in listed]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        session.warn(f"allocators not installed: {' '.join(missing)} (their scenarios skip; "
                     f"install with: apt-get install {' '.join(missing)})")
        return
    session.run("apt-get", "install", "-y", "-qq", *missing, external=True,
                env={"DEBIAN_FRONTEND": "noninteractive"}, success_codes=[0, 100])


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the test suite, including end-to-end tests that build and run the real probe."""
    # Not the parquet extra: pandas imports pyarrow whenever it is installed, which adds about
    # 100 MB to every process (the memory bounds tested here are alloclab's own).
    session.install("-e", ".[test]")
    install_allocators(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and strict mypy over the package."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", "runner", "tests", "bench", "noxfile.py")
    session.run("mypy")


@nox.session(python=PYTHON)
def run(session: nox.Session) -> None:
    """Measure the experiments in experiments/ on this machine, then render reports/."""
    session.install("-e", ".")
    install_allocators(session)
    session.run("alloclab", "run", *session.posargs)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Re-render reports/ from stored results only; nothing is measured."""
    session.install("-e", ".")
    session.run("alloclab", "report", *session.posargs)


@nox.session(python=PYTHON)
def harness(session: nox.Session) -> None:
    """alloclab's own cost per probe process over a bare spawn of the same command (bound 1 ms)."""
    session.install("-e", ".")
    session.run("python", "bench/harness_overhead.py", *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Fidelity: alloclab's probe against independent plain C, interleaved, exit 1 off bound;
    then latency percentiles against every latency kept and sorted; then the per-process
    overhead of a run over SSH against a local one (loopback sshd)."""
    session.install("-e", ".")
    session.run("python", "bench/fidelity.py", *session.posargs)
    session.run("python", "bench/latency_fidelity.py")
    session.run("python", "bench/remote_overhead.py")


@nox.session(python=PYTHON)
def aa(session: nox.Session) -> None:
    """A/A: one scenario as candidate and reference, 210 pairs judged by the verdict rule with
    its extra rounds; exit 1 when more than 5% are told apart."""
    session.install("-e", ".")
    session.run("python", "bench/aa.py", *session.posargs)


@nox.session(python=PYTHON, name="report-scale")
def report_scale(session: nox.Session) -> None:
    """Time `alloclab report` over 1M synthetic stored samples: wall time and peak RSS."""
    session.install("-e", ".")
    session.run("python", "bench/report_scale.py", *session.posargs)


@nox.session(python=PYTHON)
def eta(session: nox.Session) -> None:
    """How well the progress bar's ETA predicts the end of a run, read off a pseudo-terminal
    (arguments after -- go to `alloclab run`; bound 25% from a tenth of the run on)."""
    session.install("-e", ".")
    session.run("python", "bench/eta_accuracy.py", "--", *session.posargs)


@nox.session(python=PYTHON)
def screenshot(session: nox.Session) -> None:
    """Re-take docs/index.png, README's picture of reports/index.html, in headless Chromium,
    and docs/index-phone.png, the same page on a 400 px phone (the guide's)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "tests.browser", "reports/index.html", "docs/index.png",
                *session.posargs)
    session.run("python", "-m", "tests.browser", "reports/index.html", "docs/index-phone.png",
                "--size", "400x1000")
