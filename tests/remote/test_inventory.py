"""Ansible inventories as --hosts: INI and YAML, groups, variables, --limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.core.errors import UsageError
from runner.remote import inventory
from runner.remote.hosts import Host, load_fleet

INI = """\
# the lab
bastion.example.org ansible_user=ops

[web]
web[01:03].example.org
canary ansible_host=10.0.0.9 ansible_port=2222 alloclab_label=web-canary

[db]
db-a ansible_host=fd00::5 ansible_ssh_private_key_file=/keys/db

[web:vars]
ansible_user=deploy
alloclab_work_dir=/var/tmp

[prod:children]
web
db

[prod:vars]
ansible_user=root
ansible_ssh_common_args='-o ProxyJump=bastion.example.org -o ConnectTimeout=5'
"""

YAML = """\
all:
  vars:
    ansible_user: admin
  children:
    web:
      hosts:
        web1: {ansible_host: 192.0.2.1}
        web2:
          ansible_host: 192.0.2.2
          alloclab_env: {MALLOC_ARENA_MAX: "1"}
      vars:
        ansible_port: 2200
    db:
      hosts:
        db1: {ansible_user: postgres}
"""


def _fleet(tmp_path: Path, name: str, text: str, limit: str | None = None) -> list[Host]:
    path = tmp_path / name
    path.write_text(text)
    fleet = load_fleet([], path, limit)
    assert fleet is not None
    return list(fleet.hosts)


def test_an_ini_inventory_gives_every_host_with_its_resolved_variables(tmp_path: Path) -> None:
    hosts = {h.label: h for h in _fleet(tmp_path, "hosts", INI)}
    assert list(hosts) == ["bastion.example.org", "web01.example.org", "web02.example.org",
                           "web03.example.org", "web-canary", "db-a"]
    assert hosts["bastion.example.org"].destination == "ops@bastion.example.org"
    # web's own vars are more specific than prod's, which holds web: deploy, not root.
    web = hosts["web02.example.org"]
    assert (web.destination, web.port, web.work_dir) == ("deploy@web02.example.org", 22,
                                                         "/var/tmp")
    assert web.ssh_options == (("ProxyJump", "bastion.example.org"), ("ConnectTimeout", "5"))
    canary = hosts["web-canary"]
    assert (canary.destination, canary.port) == ("deploy@10.0.0.9", 2222)
    db = hosts["db-a"]
    assert (db.destination, db.port) == ("root@fd00::5", 22)
    assert ("IdentityFile", "/keys/db") in db.ssh_options


def test_limit_picks_groups_and_hosts_as_ansible_does(tmp_path: Path) -> None:
    def labels(limit: str) -> list[str]:
        return [h.label for h in _fleet(tmp_path, "hosts.ini", INI, limit)]

    assert labels("db") == ["db-a"]
    assert labels("web:!canary") == ["web01.example.org", "web02.example.org",
                                     "web03.example.org"]
    assert labels("prod:&db") == ["db-a"]
    assert labels("web0[12]*,db-a") == ["web01.example.org", "web02.example.org", "db-a"]
    with pytest.raises(UsageError, match=r"--limit cache: no group or host of .*hosts.ini is "
                                         r"named 'cache' \(groups: db, prod, web;"):
        labels("cache")
    with pytest.raises(UsageError, match="picks no host"):
        labels("db:!db-a")


def test_a_yaml_inventory_with_two_groups(tmp_path: Path) -> None:
    hosts = {h.label: h for h in _fleet(tmp_path, "inventory.yml", YAML)}
    assert (hosts["web1"].destination, hosts["web1"].port) == ("admin@192.0.2.1", 2200)
    assert hosts["web2"].env == {"MALLOC_ARENA_MAX": "1"}
    assert (hosts["db1"].destination, hosts["db1"].port) == ("postgres@db1", 22)
    assert [h.label for h in _fleet(tmp_path, "inventory.yml", YAML, "db")] == ["db1"]


def test_the_fleet_file_keeps_its_own_format_and_takes_limit_by_label(tmp_path: Path) -> None:
    text = "hosts:\n  - {host: a.example, label: a}\n  - {host: b.example, label: b}\n"
    assert [h.label for h in _fleet(tmp_path, "fleet.yaml", text, "b")] == ["b"]
    with pytest.raises(UsageError, match=r"--limit web: picks hosts of --hosts FILE"):
        load_fleet(["a.example"], None, "web")


@pytest.mark.parametrize("text, error", [
    ("[web]\nh1 ansible_connection=local\n", "alloclab reaches hosts over ssh only"),
    ("[web]\nh1 ansible_ssh_extra_args='-J jump'\n", "is not an ssh -o Name=value option"),
    ("[web]\nh1 alloclab_lable=x\n", "unknown variable alloclab_lable"),
    ("[web]\nh1 ansible_port\n", "is not name=value"),
    ("[web]\nweb[1:x]\n", "mixes numbers and letters"),
    ("[web\nh1\n", "is not a section"),
    ("[web]\nh1 ansible_ssh_common_args='-o StrictHostKeyChecking=no'\n",
     "turns host key checking off"),
    ("[web]\nh1 ansible_host='x;reboot'\n", "is not a host name or address"),
    ("[web]\nh1 ansible_user=-oProxyCommand=x\n", "is not a user name"),
    ("[web]\nh..1\n", "is not a folder name alloclab accepts"),
])
def test_a_bad_inventory_says_where_and_what(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(UsageError, match=error) as raised:
        load_fleet([], path)
    assert str(path) in str(raised.value)


def test_a_range_keeps_its_leading_zeros_and_steps() -> None:
    assert inventory.expand("n[08:10]", "x") == ["n08", "n09", "n10"]
    assert inventory.expand("r[a:e:2]-[1:2]", "x") == ["ra-1", "ra-2", "rc-1", "rc-2",
                                                      "re-1", "re-2"]
