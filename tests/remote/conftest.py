"""The private OpenSSH server on 127.0.0.1 that the remote tests run against (tests/sshd_server.py):
one per test module, skipped with the reason where there is no sshd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runner.probe import native
from tests.sshd_server import Sshd, SshdUnavailable, start_sshd


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    native.build_probe()  # once, so no test's timing includes the compiler
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except SshdUnavailable as reason:
        pytest.skip(f"no OpenSSH server to test against: {reason}")
    yield server
    server.stop()
