"""The JSON Schema of spec files, generated from the definitions the validator itself uses.

Nothing here is a second list: keys, which are required and what they mean come from the key
tables in runner.spec.keys; parameter keys, kinds, choices, defaults and help from
runner.core.parameters; metric names from runner.core.metrics. The schema serves editors (completion
and squiggles); runner.spec.load stays the authority, and checks more (e.g. that chart axes are axes
of the experiment, that sizes parse). `python -m runner.spec.schema` rewrites
runner/spec/spec.schema.json; a test fails when the committed file differs from build_schema().
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, assert_never

from runner.core.kinds import Parameter
from runner.core.parameters import BY_KEY, PARAMETERS
from runner.core.units import DURATION_HINT, SHARE_HINT, SIZE_HINT
from runner.spec.keys import (
    CHART_KEYS,
    CHECK_KEYS,
    EXPECTATIONS,
    MAX_SHARE,
    METHODS,
    METRIC_NAMES,
    NAME_PATTERN,
    ORDERED_KINDS,
    PARAMETER_KEYS,
    QUANTIFIERS,
    RANGE_KEYS,
    REPETITION_KEYS,
    STATISTICS,
    TOP_KEYS,
    Y_FROMS,
    Key,
)

Schema = dict[str, Any]
SCHEMA_PATH = Path(__file__).with_name("spec.schema.json")
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def build_schema() -> Schema:
    """The JSON Schema (draft 2020-12) of one experiment file."""
    return {
        "$schema": DRAFT,
        "title": "alloclab experiment",
        "description": "One alloclab experiment: a matrix of scenarios to measure, and charts.",
        **_object(TOP_KEYS),
        "$defs": {p.key: _parameter_schema(p) for p in PARAMETERS},
    }


def write_schema(path: Path = SCHEMA_PATH) -> None:
    """Write build_schema() as JSON: sorted keys, indent 2, trailing newline."""
    path.write_text(render_schema(), encoding="utf-8")


def render_schema() -> str:
    """The text write_schema writes."""
    return json.dumps(build_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _object(keys: Sequence[Key]) -> Schema:
    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {key.name: {**_key_schema(key), "description": key.help} for key in keys},
    }
    required = [key.name for key in keys if key.required]
    if required:
        schema["required"] = required
    return schema


def _key_schema(key: Key) -> Schema:
    match key.kind:
        case "slug":
            return {"type": "string", "pattern": NAME_PATTERN}
        case "text":
            return {"type": "string", "minLength": 1}
        case "texts":
            return {"type": "array", "items": {"type": "string", "minLength": 1},
                    "minItems": 1}
        case "duration":
            return {"anyOf": [{"type": "number", "exclusiveMinimum": 0},
                              {"type": "string", "description": DURATION_HINT}]}
        case "whole":
            return {"type": "integer", "minimum": key.minimum}
        case "flag":
            return {"type": "boolean"}
        case "metric":
            return {"enum": list(METRIC_NAMES)}
        case "axis":
            return _axis()
        case "axes":
            return {"anyOf": [_axis(), {"type": "array", "items": _axis(), "minItems": 1}]}
        case "matrix":
            return {**_parameters(_one_or_more), "minProperties": 1}
        case "parameters":
            return _parameters(_ref)
        case "entries" | "axis_entries":
            return {"type": "array", "items": {**_parameters(_ref), "minProperties": 1}}
        case "repetitions":
            return _object(REPETITION_KEYS)
        case "charts":
            return {"type": "array", "items": _object(CHART_KEYS)}
        case "checks":
            return {"type": "array", "items": _object(CHECK_KEYS)}
        case "expectation":
            return {"enum": list(EXPECTATIONS)}
        case "fraction":
            return {"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"}]}
        case "share":
            return {"anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_SHARE},
                              {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$"}]}
        case "number":
            return {"type": "number"}
        case "selector":
            return {**_parameters(_ref), "minProperties": 1}
        case "where":
            return {**_parameters(_condition), "minProperties": 1}
        case "statistic":
            return {"enum": list(STATISTICS)}
        case "method":
            return {"enum": list(METHODS)}
        case "quantifier":
            return {"enum": list(QUANTIFIERS)}
        case "y_from":
            return {"enum": list(Y_FROMS)}
        case _:
            assert_never(key.kind)


def _axis() -> Schema:
    return {"enum": list(PARAMETER_KEYS)}


def _ref(key: str) -> Schema:
    return {"$ref": f"#/$defs/{key}"}


def _condition(key: str) -> Schema:
    """A `where` value: one value, a list of values, or for ordered parameters a range."""
    options = [_ref(key), {"type": "array", "items": _ref(key), "minItems": 1}]
    if BY_KEY[key].kind in ORDERED_KINDS:
        options.append({"type": "object", "additionalProperties": False, "minProperties": 1,
                        "properties": {end: _ref(key) for end in RANGE_KEYS}})
    return {"anyOf": options}


def _one_or_more(key: str) -> Schema:
    return {"anyOf": [_ref(key), {"type": "array", "items": _ref(key), "minItems": 1}]}


def _parameters(value: Callable[[str], Schema]) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {key: value(key) for key in PARAMETER_KEYS},
    }


def _parameter_schema(parameter: Parameter) -> Schema:
    description = f"{parameter.help} (default: {parameter.format(parameter.default)})"
    match parameter.kind:
        case "size":
            return {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
                    "description": f"{description}; {SIZE_HINT}"}
        case "choice":
            # Aliases (populate: true/false) are accepted spellings, so the schema lists them.
            return {"enum": [*parameter.choices, *(written for written, _ in parameter.aliases)],
                    "description": description}
        case "bool":
            return {"type": "boolean", "description": description}
        case "count":
            return {"anyOf": [{"type": "integer", "minimum": 1}, {"const": "auto"}],
                    "description": description}
        case "whole":
            bounds: Schema = {"minimum": parameter.minimum}
            if parameter.maximum is not None:
                bounds["maximum"] = parameter.maximum
            return {"type": "integer", **bounds, "description": description}
        case "path":
            return {"type": "string", "pattern": "^/", "description": description}
        case "share":
            return {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*%\s*$",
                    "description": f"{description}; {SHARE_HINT}"}
        case "text":
            return {"type": "string", "pattern": f"^(?:{parameter.pattern})?$",
                    "description": f"{description}; {parameter.hint}"}
        case _:
            assert_never(parameter.kind)


if __name__ == "__main__":
    write_schema()
