"""The JSON Schema: generated from the validator's tables, committed, and agreeing with them.

Validation against the schema runs only where the `jsonschema` package is importable (it is
not a runtime dependency of alloclab).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from runner.core.metrics import METRICS
from runner.core.parameters import PARAMETERS
from runner.spec.keys import CHART_KEYS, REPETITION_KEYS, TOP_KEYS
from runner.spec.schema import SCHEMA_PATH, build_schema, render_schema, write_schema

TESTS = Path(__file__).parents[1]
VALID = sorted((TESTS / "spec_cases" / "valid").glob("*.yaml"))
EXPERIMENTS = sorted((TESTS.parent / "experiments").glob("*.yaml"))
INVALID = TESTS / "spec_cases" / "invalid"
# Invalid cases that the schema alone can see (the others need the validator's context).
SCHEMA_REJECTS = ["unknown_top_key", "unknown_matrix_key", "unknown_backing", "matrix_is_list",
                  "processes_not_int", "processes_zero", "chart_unknown_metric",
                  "chart_missing_metric", "empty_matrix_list", "empty_matrix", "missing_title",
                  "bad_name", "relative_file_dir", "ops_zero", "chart_unknown_key"]


def test_committed_schema_is_current() -> None:
    """If this fails, run `python -m runner.spec.schema` and commit runner/spec/spec.schema.json."""
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema()


def test_write_schema_writes_sorted_indented_json(tmp_path: Path) -> None:
    path = tmp_path / "spec.schema.json"
    write_schema(path)
    text = path.read_text(encoding="utf-8")
    assert text == render_schema()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "$defs": {\n')


def test_schema_follows_the_key_tables() -> None:
    schema = build_schema()
    properties = schema["properties"]
    assert list(properties) == [key.name for key in TOP_KEYS]
    assert schema["required"] == [key.name for key in TOP_KEYS if key.required]
    assert list(properties["repetitions"]["properties"]) == [key.name for key in REPETITION_KEYS]
    assert list(properties["charts"]["items"]["properties"]) == [key.name for key in CHART_KEYS]
    assert all(entry["description"] for entry in properties.values())


def test_schema_follows_parameters_and_metrics() -> None:
    schema = build_schema()
    keys = [p.key for p in PARAMETERS]
    assert list(schema["$defs"]) == keys
    assert list(schema["properties"]["matrix"]["properties"]) == keys
    chart = schema["properties"]["charts"]["items"]["properties"]
    assert chart["metric"]["enum"] == [metric.name for metric in METRICS]
    assert chart["x"]["enum"] == keys
    for parameter in PARAMETERS:
        if parameter.choices:
            aliases = [written for written, _ in parameter.aliases]
            assert schema["$defs"][parameter.key]["enum"] == [*parameter.choices, *aliases]
        assert parameter.help in schema["$defs"][parameter.key]["description"]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    schema = build_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", VALID + EXPERIMENTS, ids=lambda path: path.stem)
def test_valid_files_match_the_schema(validator: Any, path: Path) -> None:
    errors = [error.message for error in validator.iter_errors(load_yaml(path))]
    assert errors == []


@pytest.mark.parametrize("name", SCHEMA_REJECTS)
def test_schema_rejects_what_it_can_see(validator: Any, name: str) -> None:
    assert not validator.is_valid(load_yaml(INVALID / f"{name}.yaml"))
