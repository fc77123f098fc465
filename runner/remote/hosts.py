"""The machines a run reaches over SSH: `--host` arguments and the `hosts:` fleet file.

A Host is what alloclab needs to reach one machine: the label its results are stored under
(results/<label>/...), the SSH destination and port, extra `ssh -o` options, the directory
on the target under which each run makes its own directory, and the allocator variables its
probes run with. Parsing is pure: `parse_host_argument` and `parse_hosts_text` take text and
return values, with errors that name the argument or the file and line.

    parallel: 4                  # hosts measured at once (default: all, at most 8)
    hosts:
      - label: build-server      # results/<label>/...; default: the host name
        host: alice@build.example.com:2222
        ssh_options: {IdentityFile: ~/.ssh/alloclab, UserKnownHostsFile: ~/.ssh/fleet_hosts}
        work_dir: /var/tmp       # each run's directory is made under it (default: /tmp)
        env: {MALLOC_ARENA_MAX: "1"}   # allocator variables for every probe there
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.core import names
from runner.core.errors import UsageError
from runner.machine.system import ALLOCATOR_ENV_NAMES, ALLOCATOR_ENV_PREFIX
from runner.remote import inventory

DEFAULT_PORT = 22
DEFAULT_WORK_DIR = "/tmp"
MAX_PARALLEL_DEFAULT = 8
HOST_KEYS = ("label", "host", "ssh_options", "work_dir", "env")
FILE_KEYS = ("hosts", "parallel")
# Options alloclab sets itself (the connection sharing and the non-interactive mode its
# records depend on), and host key checking turned off, which the security model forbids.
RESERVED_OPTIONS = frozenset({"controlmaster", "controlpath", "controlpersist", "batchmode"})
UNSAFE_OPTIONS = {"stricthostkeychecking": ("no", "off")}
# What ssh is given as a user and a host: a name, an IPv4 address, or an IPv6 one in brackets;
# never an option (a leading '-'), a space, a quote or anything a shell or ssh_config would read.
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$")
_HOST_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]{2,45}(%[A-Za-z0-9_.-]{1,32})?$")
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


@dataclass(frozen=True)
class Host:
    """One machine reached over SSH."""

    label: str  # results/<label>/...
    destination: str  # [user@]host, as ssh takes it
    port: int = DEFAULT_PORT
    ssh_options: tuple[tuple[str, str], ...] = ()  # extra `-o Name=value`, in the given order
    work_dir: str = DEFAULT_WORK_DIR
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """[user@]host:port, for messages."""
        return f"{self.destination}:{self.port}"


@dataclass(frozen=True)
class Fleet:
    hosts: tuple[Host, ...]
    parallel: int | None = None  # hosts measured at once; None: all, at most 8

    @property
    def workers(self) -> int:
        return self.parallel or min(len(self.hosts), MAX_PARALLEL_DEFAULT)


def parse_address(text: str, where: str) -> tuple[str, int]:
    """'[user@]HOST[:PORT]' (IPv6 as [::1]:PORT) -> ('[user@]HOST', port)."""
    user, at, rest = text.rpartition("@")
    prefix = f"{user}@" if at else ""
    if rest.startswith("["):
        inner, bracket, after = rest[1:].partition("]")
        if not bracket or not inner or (after and not after.startswith(":")):
            raise UsageError(f"{where}: '{text}' is not [user@]HOST[:PORT] (IPv6: [::1]:22)")
        host, port_text = inner, after[1:]
        if not _IPV6.match(host) or ":" not in host:
            raise UsageError(f"{where}: '{host}' in '{text}' is not an IPv6 address")
    else:
        host, _, port_text = rest.partition(":")
        if not _HOST_NAME.match(host):
            raise UsageError(f"{where}: host '{host}' of '{text}' is not a host name or address "
                             "(letters, digits, '-', '_' and '.'; IPv6 in brackets: [::1]:22)")
    if at and not _USER.match(user):
        raise UsageError(f"{where}: user '{user}' of '{text}' is not a user name (letters, "
                         "digits, '.', '_' and '-', not starting with '-' or '.', at most 32)")
    if not port_text:
        return prefix + host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"{where}: port '{port_text}' of '{text}' is not a number 1-65535")
    return prefix + host, int(port_text)


def parse_host_argument(text: str) -> Host:
    """`--host [LABEL=][user@]HOST[:PORT]`: the label defaults to the host name."""
    label, equals, address = text.partition("=")
    if not equals:
        label, address = "", text
    destination, port = parse_address(address, f"--host {text}")
    label = label or names.label_from_host(_host_of(destination))
    _check_label(label, f"--host {text}")
    return Host(label=label, destination=destination, port=port)


def _host_of(destination: str) -> str:
    return destination.rpartition("@")[2]


def _check_label(label: str, where: str) -> None:
    """The store's own rule (runner.core.names), checked before any host is reached."""
    if not names.is_label(label):
        raise UsageError(f"{where}: label '{label}' is not a folder name alloclab accepts "
                         f"(it names results/<label>/): use {names.LABEL_HINT}")


def _line_of(text: str, needle: str) -> int:
    """The line a key or value first appears on, for error messages (1 when unknown)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def _ssh_options(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: ssh_options must be a mapping of ssh -o names to values, "
                         "e.g. {IdentityFile: ~/.ssh/alloclab}")
    options = []
    for name, option in value.items():
        # YAML reads `no` and `yes` as booleans; ssh spells them as words.
        name_text = str(name)
        option_text = ("yes" if option else "no") if isinstance(option, bool) else str(option)
        if not _OPTION_NAME.match(name_text):
            raise UsageError(f"{where}: ssh_options: '{name_text}' is not an ssh option name")
        lowered = name_text.lower()
        if lowered in RESERVED_OPTIONS:
            raise UsageError(f"{where}: ssh_options: {name_text} is set by alloclab (one shared "
                             "connection per host, never a password prompt)")
        if option_text.lower() in UNSAFE_OPTIONS.get(lowered, ()):
            raise UsageError(f"{where}: ssh_options: {name_text}={option_text} turns host key "
                             "checking off; add the host's key to a known_hosts file instead "
                             "(UserKnownHostsFile), or use accept-new to trust it on first use")
        if any(c in option_text for c in "\n\r\0"):
            raise UsageError(f"{where}: ssh_options: {name_text}: a value must be one line")
        options.append((name_text, option_text))
    return tuple(options)


def _env(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: env must be a mapping of variable names to values")
    env = {}
    for name, text in value.items():
        name_text = str(name)
        if not (name_text in ALLOCATOR_ENV_NAMES or name_text.startswith(ALLOCATOR_ENV_PREFIX)):
            allowed = ", ".join(ALLOCATOR_ENV_NAMES)
            raise UsageError(f"{where}: env: '{name_text}' is not an allocator variable "
                             f"({allowed} or {ALLOCATOR_ENV_PREFIX}*); the probe's environment "
                             "holds only those")
        env[name_text] = str(text)
    return env


def _host_entry(entry: Any, path: Path, text: str, index: int) -> Host:
    if not isinstance(entry, Mapping) or "host" not in entry:
        raise UsageError(f"{path}:{_line_of(text, 'hosts')}: hosts[{index}]: expected a mapping "
                         "with at least `host: [user@]HOST[:PORT]`")
    return host_from(entry, f"{path}:{_line_of(text, str(entry['host']))}: hosts[{index}]")


def host_from(entry: Mapping[str, Any], where: str) -> Host:
    """A Host from a fleet-file entry (or an inventory's host made into one), every value
    checked: the label by the store's rule, the address as ssh must get it."""
    unknown = sorted(set(map(str, entry)) - set(HOST_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(HOST_KEYS)})")
    destination, port = parse_address(str(entry["host"]), where)
    label = str(entry.get("label") or names.label_from_host(_host_of(destination)))
    _check_label(label, where)
    work_dir = str(entry.get("work_dir") or DEFAULT_WORK_DIR)
    if not work_dir.startswith("/") or "\n" in work_dir:
        raise UsageError(f"{where}: work_dir '{work_dir}' must be an absolute path on the target")
    return Host(label=label, destination=destination, port=port,
                ssh_options=_ssh_options(entry.get("ssh_options"), where), work_dir=work_dir,
                env=_env(entry.get("env"), where))


def parse_hosts_text(text: str, path: Path) -> Fleet:
    """Parse a fleet file's text (see the module docstring); `path` is for messages."""
    data = inventory.load_yaml(text, path)
    if not isinstance(data, Mapping) or not isinstance(data.get("hosts"), list) \
            or not data["hosts"]:
        raise UsageError(f"{path}:1: expected `hosts:` with a list of hosts, each "
                         "`- host: [user@]HOST[:PORT]`")
    unknown = sorted(set(map(str, data)) - set(FILE_KEYS))
    if unknown:
        raise UsageError(f"{path}:{_line_of(text, unknown[0])}: unknown key '{unknown[0]}' "
                         f"(allowed: {', '.join(FILE_KEYS)})")
    hosts = tuple(_host_entry(entry, path, text, i) for i, entry in enumerate(data["hosts"]))
    parallel = data.get("parallel")
    if parallel is not None and (not isinstance(parallel, int) or isinstance(parallel, bool)
                                 or parallel < 1):
        raise UsageError(f"{path}:{_line_of(text, 'parallel')}: parallel: '{parallel}' is not "
                         "a number of hosts of 1 or more")
    return Fleet(check_labels(hosts, str(path)), parallel)


def check_labels(hosts: Sequence[Host], where: str) -> tuple[Host, ...]:
    """The hosts, once each label: two hosts under one label would mix their results."""
    seen: dict[str, Host] = {}
    for host in hosts:
        if host.label in seen:
            raise UsageError(f"{where}: label '{host.label}' is given to {seen[host.label].address}"
                             f" and {host.address}: give each host its own label")
        seen[host.label] = host
    return tuple(hosts)


def load_fleet(host_arguments: Sequence[str], hosts_file: Path | None,
               limit: str | None = None) -> Fleet | None:
    """The hosts named by `--host` and `--hosts FILE` (a fleet file or an Ansible inventory,
    runner.remote.inventory) together, those of the file that `--limit` picks; None when
    neither was given."""
    if limit and hosts_file is None:
        raise UsageError(f"--limit {limit}: picks hosts of --hosts FILE, and none was given")
    if not host_arguments and hosts_file is None:
        return None
    hosts: list[Host] = [parse_host_argument(text) for text in host_arguments]
    parallel = None
    if hosts_file is not None:
        try:
            text = hosts_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise UsageError(f"--hosts {hosts_file}: cannot read it ({why})") from error
        if inventory.is_inventory(text, hosts_file):
            hosts += [host_from(entry, where)
                      for entry, where in inventory.fleet_entries(text, hosts_file, limit)]
        else:
            fleet = parse_hosts_text(text, hosts_file)
            hosts += _limited(fleet.hosts, limit, hosts_file)
            parallel = fleet.parallel
    return Fleet(check_labels(hosts, "--host/--hosts"), parallel)


def _limited(hosts: Sequence[Host], limit: str | None, path: Path) -> list[Host]:
    """A fleet file's hosts that --limit picks, by label (a fleet file has no groups)."""
    if not limit:
        return list(hosts)
    picked = inventory.Inventory()
    for number, host in enumerate(hosts, start=1):
        picked.add_host(inventory.UNGROUPED, host.label, {}, number)
    labels = set(inventory.select(picked, limit, path))
    return [host for host in hosts if host.label in labels]
