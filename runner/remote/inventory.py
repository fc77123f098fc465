"""Ansible inventories, INI or YAML, read as alloclab's hosts (no Ansible needed).

People who run commands on many machines keep them in an Ansible inventory: groups of hosts,
groups of groups, variables per group and per host. `--hosts FILE` reads one, and `--limit`
picks groups and hosts as `ansible --limit` does (`web,db`, `web:!canary`, `web:&staging`,
`db*`). Each host becomes one entry of alloclab's own fleet file (runner.remote.hosts checks
it): its inventory name is its label (unless `alloclab_label` says otherwise), and the
variables that say how to reach it map to ssh's:

    ansible_host -> the address    ansible_port -> the port    ansible_user -> the user
    ansible_ssh_private_key_file -> ssh -o IdentityFile
    ansible_ssh_common_args, ansible_ssh_extra_args -> their `-o Name=value` options
    alloclab_label, alloclab_work_dir, alloclab_env -> label, work_dir, env (allocator variables)

Other variables are Ansible's business and are left alone; a connection that is not ssh, or
ssh arguments other than `-o` options, are refused rather than ignored (a host reached some
other way than the inventory says would be measured somewhere else). Variables apply as
Ansible applies them: `all`'s first, then each group's from the outermost to the innermost
(groups at one depth by name), the host's own last.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from runner.core.errors import UsageError

ALL, UNGROUPED = "all", "ungrouped"
# A host pattern's ranges: web[01:10].example.com, db-[a:c] (an optional step: [1:9:2]).
_RANGE = re.compile(r"\[([0-9]+|[a-z]):([0-9]+|[a-z])(?::([0-9]+))?\]")
_SECTION = re.compile(r"^\[([^\]:\s]+)(?::(vars|children))?\]$")
ALLOCLAB_VARIABLES = ("alloclab_label", "alloclab_work_dir", "alloclab_env")
SSH_ARGUMENT_VARIABLES = ("ansible_ssh_common_args", "ansible_ssh_extra_args")


@dataclass
class _Group:
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class Inventory:
    """Groups by name (hosts, child groups, variables), each host's own variables, and where
    each host was first named (for messages)."""

    groups: dict[str, _Group] = field(default_factory=dict)
    host_variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def group(self, name: str) -> _Group:
        return self.groups.setdefault(name, _Group())

    def add_host(self, group: str, host: str, variables: Mapping[str, Any], line: int) -> None:
        if host not in self.group(group).hosts:
            self.group(group).hosts.append(host)
        self.host_variables.setdefault(host, {}).update(variables)
        self.lines.setdefault(host, line)

    @property
    def hosts(self) -> list[str]:
        """Every host, in the order the file first names them."""
        return list(self.lines)


def is_inventory(text: str, path: Path) -> bool:
    """Whether a --hosts file is an Ansible inventory rather than alloclab's fleet file: an
    INI file (its first line that says anything is a [section] or a host), or YAML whose top
    level is groups rather than `hosts:` with a list."""
    if path.suffix in (".ini", ".cfg") or _first_line(text).startswith("["):
        return True
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return not _first_line(text).endswith(":")  # a host line, not a broken YAML key
    if isinstance(data, Mapping):
        return not isinstance(data.get("hosts"), list)
    return isinstance(data, str)  # one bare host name on a line is an INI inventory


def _first_line(text: str) -> str:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";", "---")):
            return stripped
    return ""


def fleet_entries(text: str, path: Path, limit: str | None) -> list[tuple[dict[str, Any], str]]:
    """The inventory's hosts (those --limit picks) as fleet-file entries, each with where it is
    named ("FILE:LINE: host NAME") for the checks runner.remote.hosts makes of it."""
    inventory = parse_yaml(text, path) if _is_yaml(text, path) else parse_ini(text, path)
    chosen = select(inventory, limit, path)
    return [(_entry(inventory, host, path), f"{path}:{inventory.lines[host]}: host {host}")
            for host in chosen]


def _is_yaml(text: str, path: Path) -> bool:
    if path.suffix in (".yaml", ".yml"):
        return True
    if path.suffix in (".ini", ".cfg") or _first_line(text).startswith("["):
        return False
    try:
        return isinstance(yaml.safe_load(text), Mapping)
    except yaml.YAMLError:
        return False


def parse_ini(text: str, path: Path) -> Inventory:
    """An INI inventory: host lines (`NAME key=value ...`, ranges expanded) under [group],
    `key=value` under [group:vars], group names under [group:children]."""
    inventory = Inventory()
    group, kind = UNGROUPED, "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        where = f"{path}:{number}"
        section = _SECTION.match(line)
        if section:
            group, kind = section.group(1), section.group(2) or "hosts"
            inventory.group(group)
            continue
        if line.startswith("["):
            raise UsageError(f"{where}: '{line}' is not a section ([group], [group:vars] or "
                             "[group:children])")
        if kind == "children":
            inventory.group(group).children.append(line)
            inventory.group(line)
        elif kind == "vars":
            name, equals, value = line.partition("=")
            if not equals or not name.strip():
                raise UsageError(f"{where}: '{line}' is not name=value (under [{group}:vars])")
            inventory.group(group).variables[name.strip()] = _unquote(value.strip(), where)
        else:
            words = _split(line, where)
            variables = dict(_assignment(word, where) for word in words[1:])
            for host in expand(words[0], where):
                inventory.add_host(group, host, variables, number)
    return inventory


def _split(line: str, where: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError as error:
        raise UsageError(f"{where}: cannot split '{line}' into words ({error})") from None


def _assignment(word: str, where: str) -> tuple[str, str]:
    name, equals, value = word.partition("=")
    if not equals or not name:
        raise UsageError(f"{where}: '{word}' is not name=value (a host line is the host's name, "
                         "then its variables)")
    return name, value


def _unquote(value: str, where: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        words = _split(value, where)
        return words[0] if words else ""
    return value


def expand(pattern: str, where: str) -> list[str]:
    """A host pattern's names: web[01:03] -> web01, web02, web03 (ranges in every place)."""
    found = _RANGE.search(pattern)
    if found is None:
        if "[" in pattern or "]" in pattern:
            raise UsageError(f"{where}: '{pattern}' has a range that is not [START:END] "
                             "(numbers, or single lowercase letters)")
        return [pattern]
    start, end, step_text = found.groups()
    step = int(step_text or 1)
    if start.isdigit() != end.isdigit() or step < 1:
        raise UsageError(f"{where}: range [{start}:{end}] of '{pattern}' mixes numbers and "
                         "letters or has a step under 1")
    if start.isdigit():
        width = len(start) if start.startswith("0") else 0
        values = [str(n).zfill(width) for n in range(int(start), int(end) + 1, step)]
    else:
        values = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    if not values or len(values) > 10_000:
        raise UsageError(f"{where}: range [{start}:{end}] of '{pattern}' names no host or more "
                         "than 10000")
    head, tail = pattern[:found.start()], pattern[found.end():]
    return [name for value in values for name in expand(f"{head}{value}{tail}", where)]


def parse_yaml(text: str, path: Path) -> Inventory:
    """A YAML inventory: groups mapping to `hosts` (name: variables), `children` (groups, the
    same way) and `vars`."""
    data = load_yaml(text, path)
    if not isinstance(data, Mapping):
        raise UsageError(f"{path}:1: an inventory maps group names to their hosts, children "
                         "and vars")
    inventory = Inventory()
    for name, body in data.items():
        _yaml_group(inventory, str(name), body, path, text)
    return inventory


def load_yaml(text: str, path: Path) -> Any:
    """A --hosts file's YAML (a fleet file's or an inventory's); UsageError naming its line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise UsageError(f"{path}:{line}: not valid YAML ({error})") from None


def _yaml_group(inventory: Inventory, name: str, body: Any, path: Path, text: str) -> None:
    where = f"{path}:{_line_of(text, name)}: group {name}"
    inventory.group(name)
    if body is None:
        return
    if not isinstance(body, Mapping) or set(map(str, body)) - {"hosts", "children", "vars"}:
        raise UsageError(f"{where}: expected a mapping of hosts, children and vars")
    for host, variables in (body.get("hosts") or {}).items():
        if variables is not None and not isinstance(variables, Mapping):
            raise UsageError(f"{where}: host {host}: its variables must be a mapping")
        for expanded in expand(str(host), where):
            inventory.add_host(name, expanded, dict(variables or {}),
                               _line_of(text, str(host)))
    variables = body.get("vars") or {}
    if not isinstance(variables, Mapping):
        raise UsageError(f"{where}: vars must be a mapping")
    inventory.group(name).variables.update(variables)
    for child, child_body in (body.get("children") or {}).items():
        if str(child) not in inventory.group(name).children:
            inventory.group(name).children.append(str(child))
        _yaml_group(inventory, str(child), child_body, path, text)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 1


def members(inventory: Inventory, group: str) -> list[str]:
    """A group's hosts, its children's included (every host for `all`)."""
    if group == ALL:
        return inventory.hosts
    found: list[str] = []
    stack, seen = [group], set()
    while stack:
        name = stack.pop(0)
        if name in seen:
            continue
        seen.add(name)
        found += [h for h in inventory.group(name).hosts if h not in found]
        stack += inventory.group(name).children
    return found


def select(inventory: Inventory, limit: str | None, path: Path) -> list[str]:
    """The hosts `--limit` picks, in the file's order: a union of groups and hosts (`a,b` or
    `a:b`, shell wildcards allowed), then `&x` keeps only those also in x and `!x` drops
    those in x. Every host without a limit."""
    if not limit:
        return inventory.hosts
    chosen: set[str] = set()
    keep: set[str] | None = None
    drop: set[str] = set()
    for term in (t for t in re.split(r"[,:]", limit) if t):
        name = term.lstrip("!&")
        matched = _matching(inventory, name)
        if not matched and not term.startswith("!"):
            groups = ", ".join(sorted(g for g in inventory.groups if g != UNGROUPED)) or "none"
            raise UsageError(f"--limit {limit}: no group or host of {path} is named '{name}' "
                             f"(groups: {groups}; hosts: {', '.join(inventory.hosts[:8])}"
                             f"{' ...' if len(inventory.hosts) > 8 else ''})")
        if term.startswith("!"):
            drop |= matched
        elif term.startswith("&"):
            keep = matched if keep is None else keep & matched
        else:
            chosen |= matched
    if not chosen and keep is not None:
        chosen = set(inventory.hosts)
    picked = [h for h in inventory.hosts if h in chosen and h not in drop
              and (keep is None or h in keep)]
    if not picked:
        raise UsageError(f"--limit {limit}: picks no host of {path}")
    return picked


def _matching(inventory: Inventory, name: str) -> set[str]:
    hosts = {h for h in inventory.hosts if fnmatch.fnmatchcase(h, name)}
    for group in [ALL, *inventory.groups]:
        if fnmatch.fnmatchcase(group, name):
            hosts |= set(members(inventory, group))
    return hosts


def variables_of(inventory: Inventory, host: str) -> dict[str, Any]:
    """A host's variables as Ansible resolves them: all's, its groups' outermost first (by
    name at one depth), its own."""
    depth = {name: _depth(inventory, name) for name in inventory.groups}
    groups = sorted((g for g in inventory.groups if g != ALL and host in members(inventory, g)),
                    key=lambda g: (depth[g], g))
    merged: dict[str, Any] = dict(inventory.groups[ALL].variables) \
        if ALL in inventory.groups else {}
    for group in groups:
        merged.update(inventory.groups[group].variables)
    merged.update(inventory.host_variables.get(host, {}))
    return merged


def _depth(inventory: Inventory, group: str, seen: frozenset[str] = frozenset()) -> int:
    """How many groups enclose `group` at most (0: a top-level group)."""
    parents = [name for name, g in inventory.groups.items()
               if group in g.children and name not in seen and name != ALL]
    return max((1 + _depth(inventory, p, seen | {group}) for p in parents), default=0)


def _entry(inventory: Inventory, host: str, path: Path) -> dict[str, Any]:
    """A fleet-file entry for the host, from its variables."""
    variables = variables_of(inventory, host)
    where = f"{path}:{inventory.lines[host]}: host {host}"
    connection = str(variables.get("ansible_connection", "ssh"))
    if connection not in ("ssh", "smart", "paramiko"):
        raise UsageError(f"{where}: ansible_connection={connection}: alloclab reaches hosts "
                         "over ssh only (remove the host, or --limit it out)")
    unknown = sorted(k for k in variables if k.startswith("alloclab_")
                     and k not in ALLOCLAB_VARIABLES)
    if unknown:
        raise UsageError(f"{where}: unknown variable {unknown[0]} (alloclab reads "
                         f"{', '.join(ALLOCLAB_VARIABLES)})")
    address = str(variables.get("ansible_host", host))
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"  # an IPv6 address, as hosts.parse_address takes it
    user = variables.get("ansible_user")
    port = variables.get("ansible_port")
    options = dict(_ssh_arguments(variables, where))
    if "ansible_ssh_private_key_file" in variables:
        options["IdentityFile"] = str(variables["ansible_ssh_private_key_file"])
    entry = {"label": variables.get("alloclab_label", host),
             "host": f"{f'{user}@' if user else ''}{address}{f':{port}' if port else ''}",
             "ssh_options": options or None, "work_dir": variables.get("alloclab_work_dir"),
             "env": variables.get("alloclab_env")}
    return {key: value for key, value in entry.items() if value is not None}


def _ssh_arguments(variables: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    """The `-o Name=value` options of ansible_ssh_common_args and _extra_args; anything else
    there (a jump host as -J, a command) is refused: spell it as an ssh option."""
    options = []
    for key in SSH_ARGUMENT_VARIABLES:
        words = _split(str(variables.get(key) or ""), f"{where}: {key}")
        while words:
            word = words.pop(0)
            value = word[2:] if word.startswith("-o") and len(word) > 2 else \
                (words.pop(0) if word == "-o" and words else None)
            name, equals, option = (value or "").partition("=")
            if not equals:
                name, _, option = (value or "").partition(" ")
            if not value or not name or not option:
                raise UsageError(f"{where}: {key}: '{word}' is not an ssh -o Name=value option "
                                 "(a jump host is -o ProxyJump=HOST)")
            options.append((name, option))
    return options
