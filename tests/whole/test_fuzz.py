"""Property-based fuzzing of everything that reads untrusted text: the spec loader and the
stored-results readers. Each either accepts its input or raises its documented error
(SpecError, StoreError) — nothing else — within a time bound per input. Derandomized, so a
failure reproduces; bounded to a few seconds per test."""

from __future__ import annotations

import contextlib
import json
import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.core.errors import SpecError, StoreError
from runner.core.model import ExperimentSpec
from runner.core.parameters import PARAMETERS
from runner.spec import keys, load
from runner.store import folders, untrusted
from tests.synthetic import SMALL_SPEC, write_synthetic_run

FUZZ = settings(max_examples=100, deadline=timedelta(seconds=2), derandomize=True,
                database=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.function_scoped_fixture])

KEYS = [k.name for k in keys.TOP_KEYS + keys.REPETITION_KEYS + keys.CHART_KEYS
        + keys.CHECK_KEYS] + [p.key for p in PARAMETERS] + ["x", "size", "backing"]
WORDS = ["malloc", "mmap-anon", "4KiB", "1GiB", "99999999999999999999999KiB", "auto", "true",
         "60s", ".nan", "-1", "0", "first_touch_ns_per_page", "lower", "10%", "/tmp", "..",
         "\ud800", "$\\frac{1}{2}$", "x\n", "a" * 300]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS),
                    st.text(max_size=20))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=6)),
    max_leaves=40)


def _parse(text: str) -> ExperimentSpec | None:
    try:
        return load.parse_spec(text, "fuzz.yaml")
    except SpecError as error:
        assert str(error).startswith("fuzz.yaml")
        return None


@FUZZ
@given(documents)
def test_spec_loader_on_structured_documents(document: Any) -> None:
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    _parse(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(["matrix", "fixed", "repetitions", "timeout", "charts",
                                        "include", "exclude", "title", "name"]),
                       documents, max_size=4))
def test_spec_loader_on_a_valid_spec_with_parts_replaced(parts: dict[str, Any]) -> None:
    document = yaml.safe_load(SMALL_SPEC)
    document.update(parts)
    try:
        text = yaml.safe_dump(document, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    _parse(text)


@FUZZ
@given(st.integers(0, len(SMALL_SPEC)), st.integers(0, 40),
       st.text(alphabet=string.printable + "&*!|>{}[]\ud800", max_size=40))
def test_spec_loader_on_damaged_text(at: int, cut: int, insert: str) -> None:
    _parse(SMALL_SPEC[:at] + insert + SMALL_SPEC[at + cut:])


@FUZZ
@given(st.binary(max_size=200))
def test_manifest_reader_on_bytes(data: bytes) -> None:
    with contextlib.suppress(StoreError):
        untrusted.load_manifest(data, "fuzz/manifest.json")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**65, 2**65), st.floats(),
              st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=20)


def _valid_run(tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    (tmp_path / "small.yaml").write_text(SMALL_SPEC)
    run_dir = write_synthetic_run(tmp_path / "results", tmp_path / "small.yaml")
    manifest = json.loads((run_dir / folders.MANIFEST).read_text())
    records = [json.loads(line) for line in (run_dir / folders.SAMPLES).read_text().splitlines()]
    return manifest, records


def _replace_at(tree: Any, path: list[int], value: Any) -> Any:
    """`tree` with the node `path` picks (indices into children, modulo their count) replaced."""
    if not path or not isinstance(tree, dict | list) or not tree:
        return value
    keys = list(tree) if isinstance(tree, dict) else list(range(len(tree)))
    key = keys[path[0] % len(keys)]
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    copy[key] = _replace_at(tree[key], path[1:], value)  # type: ignore[index]
    return copy


def test_manifest_and_record_readers_on_valid_runs_with_one_value_replaced(
        tmp_path: Path) -> None:
    manifest, records = _valid_run(tmp_path)
    ids = frozenset(s["id"] for s in manifest["scenarios"])

    @FUZZ
    @given(st.lists(st.integers(0, 50), max_size=6), json_values)
    def manifests(path: list[int], value: Any) -> None:
        data = json.dumps(_replace_at(manifest, path, value)).encode()
        with contextlib.suppress(StoreError):
            untrusted.load_manifest(data, "fuzz/manifest.json")

    @FUZZ
    @given(st.integers(0, len(records) - 1), st.lists(st.integers(0, 50), max_size=7),
           json_values)
    def samples(index: int, path: list[int], value: Any) -> None:
        line = json.dumps(_replace_at(records[index], path, value)).encode()
        with contextlib.suppress(StoreError):
            list(untrusted.parse_records([line, b""], "fuzz/samples.jsonl", ids))

    manifests()
    samples()


@FUZZ
@given(st.lists(st.binary(max_size=60), max_size=5))
def test_record_reader_on_lines_of_bytes(lines: list[bytes]) -> None:
    with contextlib.suppress(StoreError):
        list(untrusted.parse_records(lines, "fuzz/samples.jsonl", frozenset({"abc"})))
