"""One name rule: every label an entry point accepts is one the results store accepts, and
every other is refused before anything runs or any host is reached."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runner.cli.main import main
from runner.core import names
from runner.core.errors import UsageError
from runner.remote.hosts import load_fleet, parse_host_argument

HOSTILE = [
    "ok-label", "a.b_c-d", "x" * 64, "x" * 65, "a..b", "..", ".hidden", "-dash", "_under",
    "sp ace", "new\nline", "tab\t", "semi;colon", "quote'", 'dq"', "back`tick", "$(id)",
    "a/b", "a\\b", "javascript:alert(1)", "é", "ü-x", "", "0", "a" * 10 + "..",
    "nul\0", "star*", "q?", "%2e%2e",
]

SPEC = """\
name: names
title: names
question: q
matrix:
  size: [4KiB]
repetitions:
  processes: 1
  iterations: 1
"""


def _accepted(call: object) -> bool:
    try:
        call()  # type: ignore[operator]
    except UsageError:
        return False
    return True


@pytest.mark.parametrize("label", HOSTILE)
def test_host_labels_follow_the_store_s_rule(label: str, tmp_path: Path) -> None:
    allowed = names.is_label(label) or label == ""  # no label: the host name's, made one
    assert _accepted(lambda: parse_host_argument(f"{label}=h.example")) == allowed
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(yaml.safe_dump({"hosts": [{"host": "h.example", "label": label}]}))
    assert _accepted(lambda: load_fleet([], fleet)) == allowed
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"web": {"hosts": {"h1": {"alloclab_label": label}}}}))
    assert _accepted(lambda: load_fleet([], inventory)) == allowed


@pytest.mark.parametrize("host", ["a'b", "-oProxyCommand=x", "h;reboot", "$(id)", "h\nx",
                                  "user name@h", "@h", "h`x`", "[::1;x]", "a b"])
def test_hostile_hosts_and_users_never_reach_ssh(host: str) -> None:
    with pytest.raises(UsageError, match="--host"):
        parse_host_argument(host)


@pytest.mark.parametrize("host", ["example.org", "10.0.0.1:2222", "[::1]:22", "u_1@h-2.x"])
def test_a_label_made_from_a_host_name_is_always_a_store_label(host: str) -> None:
    assert names.is_label(parse_host_argument(host).label)


@pytest.mark.parametrize("label", [n for n in HOSTILE if n and "\0" not in n])
@pytest.mark.parametrize("via", ["--machine", "ALLOCLAB_MACHINE"])
def test_machine_labels_are_refused_before_anything_runs(
        label: str, via: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    if names.is_label(label):
        return  # accepted ones measure: covered by the runs of tests/cli
    spec = tmp_path / "names.yaml"
    spec.write_text(SPEC)
    args = ["run", str(spec), "--results", str(tmp_path / "results"), "--no-report"]
    if via == "--machine":
        args += [f"--machine={label}"]
    else:
        monkeypatch.setenv("ALLOCLAB_MACHINE", label)
    assert main(args) == 2
    assert "is not a folder name alloclab accepts" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
