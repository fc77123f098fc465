"""Reading stored results as untrusted data: bounded reads, JSON parsed within bounds, and every
value of a manifest or a process record checked.

Stored results may come from elsewhere (a copied folder, an archive, another machine): every
read is bounded (open_regular, MAX_*_BYTES, MAX_JSON_VALUES) and every value other modules use
is checked, with the type they use it as, before any of them sees it (check_manifest,
check_record and the probe output in each record; the stored spec is validated as `alloclab
validate` would). A value that is off is a StoreError naming the file, the line and the key.
FORMAT_VERSION, the result format this version reads and writes, is checked here too.
"""

from __future__ import annotations

import json
import math
import operator
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard, get_args

import orjson

from runner.core import names
from runner.core.errors import SpecError, StoreError
from runner.core.model import (
    PHASES,
    ProcessRecord,
    Repetitions,
    Status,
)
from runner.core.parameters import PARAMETERS
from runner.core.upgrade import upgrade_params
from runner.spec import keys, load

FORMAT_VERSION = 1
# Every read of a stored run is bounded: the manifest, samples.jsonl, one line of it, in bytes.
MAX_MANIFEST_BYTES = 16 << 20
MAX_SAMPLES_BYTES = 1 << 30
MAX_RECORD_BYTES = 4 << 20
# Parsed JSON takes up to ~60 bytes per value however small its text ("[]," is three bytes):
# values are counted (an upper bound, from the text) before parsing.
MAX_JSON_VALUES = 500_000
MAX_PROCESS_INDEX = 1_000_000


def open_regular(path: Path, max_bytes: int) -> BinaryIO:
    """A stored file opened for reading: a regular file, not a link, of max_bytes at most."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise StoreError(f"{path}: cannot be read ({error.strerror}; a link is not read)") \
            from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        what = "not a regular file" if not stat.S_ISREG(info.st_mode) else \
            f"{info.st_size} bytes, more than the {max_bytes} a run may have here"
        raise StoreError(f"{path}: {what}")
    return os.fdopen(fd, "rb")


def parse_records(lines: Iterable[bytes], where: str, scenario_ids: frozenset[str],
                  columns: bool = False) -> Iterator[ProcessRecord]:
    """Checked records from samples.jsonl lines; a torn last line (a killed run) is dropped.
    `columns`: as in load_run; a line runner.store.iterations.decode_record takes is read by it
    (the usual finished process), any other as below."""
    pending: tuple[int, str] | None = None  # a bad line is an error only if another follows
    if columns:
        # Imported here: numpy is not needed by the commands that do not read samples.
        from runner.store.iterations import decode_record
    for number, raw in enumerate(lines, start=1):
        if pending is not None:
            raise StoreError(f"{where}:{pending[0]}: {pending[1]}")
        if not raw.strip():
            continue
        if len(raw) > MAX_RECORD_BYTES:
            raise StoreError(f"{where}:{number}: a record of more than {MAX_RECORD_BYTES} bytes")
        if columns and not _too_many_values(raw) and (decoded := decode_record(raw)) is not None:
            yield check_record(decoded, f"{where}:{number}", scenario_ids, columns)
            continue
        try:
            data = parse_json(raw, f"{where}:{number}")
        except StoreError as error:
            pending = (number, f"not a JSON record ({str(error).split(': ', 1)[-1]})")
            continue
        yield check_record(data, f"{where}:{number}", scenario_ids, columns)


def samples_lines(handle: BinaryIO) -> Iterator[bytes]:
    """samples.jsonl's lines, none read past MAX_RECORD_BYTES + 1 (parse_records refuses it)."""
    return iter(lambda: handle.readline(MAX_RECORD_BYTES + 1), b"")


def _too_many_values(data: bytes) -> bool:
    # Each value counted is one byte of the text: a shorter text cannot hold too many (and a
    # sample line, a few hundred KB, need not be scanned three times more).
    return len(data) > MAX_JSON_VALUES and (
        data.count(b",") + data.count(b"[") + data.count(b"{")) > MAX_JSON_VALUES


def parse_json(data: bytes, where: str) -> object:
    """Untrusted JSON bytes parsed, or StoreError: not UTF-8, not JSON, too many values (see
    MAX_JSON_VALUES), nested too deeply.

    orjson parses (several times faster over a million samples; it checks UTF-8 and stops at
    1024 levels itself); what it refuses is parsed again by json, which also reads NaN, lone
    surrogates and integers past 64 bits as before, and says what is wrong.
    """
    if _too_many_values(data):
        raise StoreError(f"{where}: more than {MAX_JSON_VALUES} JSON values")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise StoreError(f"{where}: not UTF-8 text ({error.reason})") from None
    except json.JSONDecodeError as error:
        raise StoreError(f"{where}:{error.lineno}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise StoreError(f"{where}: nested too deeply") from None


def load_manifest(data: bytes, where: str) -> dict[str, Any]:
    """A manifest's bytes as a checked manifest, its scenarios in today's vocabulary."""
    return check_manifest(parse_json(data, where), where)


# ---------------------------------------------------------------------------------------------
# Checking what was read: every value other modules use, with the type they use it as.

Check = Callable[[object], bool]


def _is_int(value: object, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _is_object(value: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def _is_shallow(levels: int) -> Check:
    """JSON nested at most `levels` deep below this value (the report formats such values
    recursively: a deep one would exhaust the stack)."""
    def check(value: object, depth: int = 0) -> bool:
        if isinstance(value, dict | list):
            items = value.values() if isinstance(value, dict) else value
            return depth < levels and all(check(item, depth + 1) for item in items)
        return True
    return check


def _is_list_of(check: Check) -> Check:
    return lambda value: isinstance(value, list) and all(check(v) for v in value)


def _is_text_map(value: object) -> bool:
    return _is_object(value) and all(isinstance(v, str) for v in value.values())


# Repetitions as runs before extra rounds stored them; later runs store every field.
_FIRST_REPETITIONS = frozenset({"processes", "warmup", "iterations"})


def _is_repetitions(value: object) -> bool:
    if not _is_object(value) or set(value) not in (_FIRST_REPETITIONS,
                                                  {f.name for f in fields(Repetitions)}):
        return False
    most, extra = value.get("max_processes"), value.get("extra_time", 0)
    return (_is_int(value["processes"], 1) and _is_int(value["warmup"])
            and _is_int(value["iterations"], 1) and (most is None or _is_int(most, 1))
            and _is_number(extra) and extra >= 0)


def _is_dropped(value: object) -> bool:
    return _is_object(value) and _is_text(value.get("label")) and _is_text(value.get("reason"))


def _is_probe_info(value: object) -> bool:
    return (_is_object(value)
            and all(_is_optional_text(value.get(k)) for k in ("source_hash", "compiler"))
            and _is_list_of(_is_text)(value.get("flags", [])))


_PARAMETER_KEYS = frozenset(p.key for p in PARAMETERS)
# key -> (required, check): the manifest keys readers use. Others are kept as they are.
_MANIFEST_KEYS: dict[str, tuple[bool, Check]] = {
    "experiment": (True, names.is_experiment_name),
    "run_id": (True, names.is_label),
    "machine_label": (True, names.is_label),
    "spec_text": (True, _is_text),
    "scenarios": (True, lambda v: isinstance(v, list) and 0 < len(v) <= keys.MAX_SCENARIOS),
    "label_keys": (True, _is_list_of(lambda k: isinstance(k, str) and k in _PARAMETER_KEYS)),
    "repetitions": (True, _is_repetitions),
    "seed": (True, _is_int),
    "timeout_s": (True, lambda v: _is_number(v) and v > 0),  # type: ignore[operator]
    "started_utc": (True, _is_text),
    "finished_utc": (True, _is_optional_text),
    "profile": (False, lambda v: v in ("full", "reduced")),
    "reused_from": (False, _is_text_map),
    "dropped": (False, _is_list_of(_is_dropped)),
    "load": (False, lambda v: _is_list_of(_is_object)(v) and _is_shallow(4)(v)),
    "fingerprint": (False, lambda v: _is_object(v) and _is_shallow(3)(v)),
    "probe": (False, _is_probe_info),
    "command": (False, _is_optional_text),
    "spec_source": (False, _is_text),
    "spec_hash": (False, _is_text),
    "measurement_hash": (False, _is_text),
    "alloclab_version": (False, _is_text),
}


def check_manifest(manifest: object, where: str) -> dict[str, Any]:
    """The manifest if every key readers use has the expected type, its scenarios' parameters
    valid (upgraded to today's vocabulary) and its stored spec valid as `alloclab validate`
    would say; else StoreError naming the key."""
    if not _is_object(manifest):
        raise StoreError(f"{where}: not a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise StoreError(f"{where}: result format {version!r}, this alloclab reads "
                         f"{FORMAT_VERSION}")
    for key, (required, check) in _MANIFEST_KEYS.items():
        if key not in manifest:
            if required:
                raise StoreError(f"{where}: {key}: missing")
            continue
        if not check(manifest[key]):
            raise StoreError(f"{where}: {key}: {_shown(manifest[key])} is not what this key "
                             "holds")
    manifest["scenarios"] = [_check_scenario(s, f"{where}: scenarios[{i}]")
                             for i, s in enumerate(manifest["scenarios"])]
    try:
        stored = load.parse_spec(manifest["spec_text"], f"{where}#spec")
    except SpecError as error:
        raise StoreError(f"stored spec invalid: {error}") from None
    if stored.name != manifest["experiment"]:
        raise StoreError(f"{where}: the stored spec is experiment {stored.name!r}, the run "
                         f"{manifest['experiment']!r}")
    return manifest


def _check_scenario(scenario: object, where: str) -> dict[str, Any]:
    if not (_is_object(scenario) and isinstance(scenario.get("id"), str)
            and isinstance(scenario.get("label"), str) and _is_object(scenario.get("params"))):
        raise StoreError(f"{where}: expected an object with id, label and params")
    try:
        params = upgrade_params(scenario["params"])
        for parameter in PARAMETERS:
            parameter.parse_stored(params[parameter.field])
    except (ValueError, TypeError, KeyError) as error:
        raise StoreError(f"{where}.params: {error}") from None
    if params["ops"] == 0 or len(scenario["id"]) > 64 or len(scenario["label"]) > 1000:
        raise StoreError(f"{where}: ops, id or label out of range")
    return {**scenario, "params": params}


_RECORD_CHECKS: dict[str, Check] = {
    "scenario_id": _is_text,
    "process_index": lambda v: _is_int(v) and v < MAX_PROCESS_INDEX,  # type: ignore[operator]
    "status": lambda v: v in get_args(Status),
    "exit_code": lambda v: v is None or _is_int(v, -(1 << 31)),
    "signal": _is_optional_text,
    "wall_s": lambda v: _is_number(v) and v >= 0,  # type: ignore[operator]
    "stderr_tail": _is_text,
    "probe": lambda v: v is None or _is_object(v),
}


def check_record(data: object, where: str, scenario_ids: frozenset[str],
                 columns: bool = False) -> ProcessRecord:
    """One samples line as a ProcessRecord, or StoreError naming the field that is off;
    `columns`: as in load_run."""
    if not _is_object(data) or set(data) != set(_RECORD_CHECKS):
        raise StoreError(f"{where}: not a process record (expected the keys "
                         f"{', '.join(_RECORD_CHECKS)})")
    for key, check in _RECORD_CHECKS.items():
        if not check(data[key]):
            raise StoreError(f"{where}: {key}: {_shown(data[key])} is not what this key holds")
    if data["scenario_id"] not in scenario_ids:
        raise StoreError(f"{where}: scenario {_shown(data['scenario_id'])} is not in the "
                         "manifest")
    if data["status"] == "ok":
        if data["probe"] is None:
            raise StoreError(f"{where}: probe: a finished process without its output")
        _check_probe_output(data["probe"], f"{where}: probe", columns)
    return ProcessRecord(**data)


def _check_probe_output(probe: dict[str, Any], where: str, columns: bool = False) -> None:
    """The parts of the probe's output readers use (runner.analysis.frame,
    runner.machine.system), typed; `columns`: the iterations replaced by their columns when
    they pass in bulk."""
    if not _is_int(probe.get("page_size_bytes"), 1):
        raise StoreError(f"{where}.page_size_bytes: expected a whole number >= 1")
    libc = probe.get("libc")
    if libc is not None and not (_is_object(libc) and _is_text(libc.get("name"))
                                 and _is_optional_text(libc.get("version"))):
        raise StoreError(f"{where}.libc: expected an object with a name")
    iterations = probe.get("iterations")
    if columns:
        # Imported here: numpy is not needed by the commands that do not read samples.
        from runner.store.iterations import IterationColumns, columns_of

        if isinstance(iterations, IterationColumns):
            return  # checked as runner.store.iterations.decode_record decoded them
    if not isinstance(iterations, list) or not iterations:
        raise StoreError(f"{where}.iterations: expected a non-empty list")
    if columns:
        converted = columns_of(iterations)
        if converted is not None:
            probe["iterations"] = converted
            return
    elif _iterations_pass(iterations):
        return
    for index, iteration in enumerate(iterations):
        at = f"{where}.iterations[{index}]"
        if not (_is_object(iteration) and isinstance(iteration.get("warmup"), bool)
                and _is_int(iteration.get("rss_before_bytes"))
                and _is_object(iteration.get("phases"))):
            raise StoreError(f"{at}: expected warmup, rss_before_bytes and phases")
        for phase in PHASES:
            values = iteration["phases"].get(phase)
            if not (_is_object(values) and all(
                    _is_int(values.get(k)) for k in ("ns", "minor_faults", "major_faults",
                                                     "rss_bytes"))):
                raise StoreError(f"{at}.phases.{phase}: expected whole numbers ns, "
                                 "minor_faults, major_faults and rss_bytes")
        observations = iteration.get("observations", {})
        if not (_is_object(observations) and all(_is_int(v) for v in observations.values())):
            raise StoreError(f"{at}.observations: expected whole numbers")


_PHASES_OF = operator.itemgetter(*PHASES)
_PHASE_VALUES_OF = operator.itemgetter("ns", "minor_faults", "major_faults", "rss_bytes")


def _iterations_pass(iterations: list[Any]) -> bool:
    """True only when every iteration passes the checks of _check_probe_output, found out in
    bulk (by exact types, which JSON gives), since one by one they cost seconds over a million
    samples; False leaves it to those checks, which name what is off."""
    if not all(type(iteration) is dict for iteration in iterations):
        return False
    objects: list[dict[Any, Any]] = list(iterations)
    flags, numbers = [], []
    try:
        for iteration in iterations:
            phases, observations = iteration["phases"], iteration.get("observations", {})
            if type(phases) is not dict or type(observations) is not dict:
                return False
            flags.append(iteration["warmup"])
            numbers.append(iteration["rss_before_bytes"])
            objects += (phases, observations)
            for values in _PHASES_OF(phases):
                if type(values) is not dict:
                    return False
                objects.append(values)
                numbers += _PHASE_VALUES_OF(values)
            numbers += observations.values()
    except KeyError:
        return False
    return ({type(flag) for flag in flags} == {bool}
            and {type(number) for number in numbers} == {int} and min(numbers) >= 0
            and {type(key) for values in objects for key in values} <= {str})


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
