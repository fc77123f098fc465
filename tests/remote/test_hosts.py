"""The hosts of a run over SSH: --host arguments and fleet files, parsed and checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.core.errors import UsageError
from runner.remote.hosts import load_fleet, parse_host_argument, parse_hosts_text


def test_host_argument_takes_a_label_a_user_and_a_port() -> None:
    host = parse_host_argument("old=root@10.0.0.5:2222")
    assert (host.label, host.destination, host.port) == ("old", "root@10.0.0.5", 2222)
    plain = parse_host_argument("build.example.com")
    assert (plain.label, plain.destination, plain.port) == ("build.example.com",
                                                            "build.example.com", 22)
    for bad in ("-oProxyCommand=x", "a@", "h:99999", "h:port", "bad label=h"):
        with pytest.raises(UsageError, match="--host"):
            parse_host_argument(bad)


def test_fleet_joins_arguments_and_file_and_refuses_a_label_twice(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("hosts:\n  - {host: a.example, label: a}\n")
    fleet = load_fleet(["b=b.example"], path)
    assert fleet is not None and [h.label for h in fleet.hosts] == ["b", "a"]
    assert fleet.parallel is None and fleet.workers == 2
    assert load_fleet([], None) is None
    with pytest.raises(UsageError, match="label 'a' is given to"):
        load_fleet(["a=c.example"], path)
    with pytest.raises(UsageError, match="cannot read it"):
        load_fleet([], tmp_path / "missing.yaml")


def test_hosts_file_parses_and_refuses_unsafe_options(tmp_path: Path) -> None:
    fleet = parse_hosts_text(
        "parallel: 3\nhosts:\n  - host: alice@example.org:2222\n"
        "    ssh_options: {IdentityFile: /k}\n  - label: b\n    host: '[::1]'\n",
        tmp_path / "f.yaml")
    first, second = fleet.hosts
    assert (first.label, first.destination, first.port) == ("example.org", "alice@example.org",
                                                           2222)
    assert first.ssh_options == (("IdentityFile", "/k"),)
    assert (second.label, second.destination, second.port) == ("b", "::1", 22)
    assert fleet.parallel == 3
    with pytest.raises(UsageError, match=r"f.yaml:\d+: .*StrictHostKeyChecking=no turns host key"):
        parse_hosts_text("hosts:\n  - host: h\n    ssh_options:\n"
                         "      StrictHostKeyChecking: no\n", tmp_path / "f.yaml")
    with pytest.raises(UsageError, match="label 'x' is given to"):
        parse_hosts_text("hosts:\n  - {host: a, label: x}\n  - {host: b, label: x}\n",
                         tmp_path / "f.yaml")
    with pytest.raises(UsageError, match="not an allocator variable"):
        parse_hosts_text("hosts:\n  - {host: a, env: {PATH: /x}}\n", tmp_path / "f.yaml")
