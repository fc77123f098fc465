"""Loading specs: every invalid case file fails with its declared one-line error; valid ones load.

Each file in spec_cases/invalid/ starts with `# error: <message>`, `{file}` standing for its path.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from runner.core.errors import SpecError
from runner.core.model import ChartSpec, Repetitions
from runner.spec import bounded_yaml
from runner.spec.load import load_spec, load_specs, parse_spec

CASES = Path(__file__).parents[1] / "spec_cases"
INVALID = sorted((CASES / "invalid").glob("*.yaml"))
VALID = sorted((CASES / "valid").glob("*.yaml"))
EXPERIMENTS = sorted((Path(__file__).parents[2] / "experiments").glob("*.yaml"))
ERROR_PREFIX = "# error: "


def expected_error(path: Path) -> str:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith(ERROR_PREFIX), f"{path} must start with '{ERROR_PREFIX}...'"
    return first_line.removeprefix(ERROR_PREFIX).replace("{file}", str(path))


@pytest.mark.parametrize("path", INVALID, ids=lambda path: path.stem)
def test_invalid_case_reports_its_error(path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == expected_error(path)


def test_the_required_invalid_cases_exist() -> None:
    required = {
        "yaml_syntax", "unknown_top_key", "unknown_matrix_key", "bad_size", "unknown_backing",
        "matrix_is_list", "processes_not_int", "fixed_conflict", "include_conflict",
        "fixed_and_matrix", "chart_unknown_metric", "chart_x_not_axis", "empty_matrix_list",
        "duplicate_key", "missing_title",
    }
    assert required <= {path.stem for path in INVALID}


@pytest.mark.parametrize("path", VALID + EXPERIMENTS, ids=lambda path: path.stem)
def test_valid_file_loads(path: Path) -> None:
    spec = load_spec(path)
    assert spec.source == str(path)
    assert spec.raw == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_brief_example_is_read_completely() -> None:
    spec = load_spec(CASES / "valid" / "brief-example.yaml")
    assert spec.name == "brief-example"
    assert spec.title == "First touch — malloc vs mmap"
    assert spec.question == ("What does it cost to allocate, touch and free memory from "
                             "malloc vs mmap?")
    assert spec.matrix == (("size", (4096, 1 << 20, 1 << 30)),
                           ("backing", ("malloc", "mmap-anon")),
                           ("populate", ("none", "map-populate")))
    assert spec.fixed == (("access", "write-page"),)
    assert spec.exclude == ((("backing", "malloc"), ("populate", "map-populate")),)
    assert spec.include == ((("backing", "calloc"), ("size", 1 << 20)),)
    assert spec.repetitions == Repetitions(processes=5, warmup=0, iterations=1)
    assert spec.timeout_s == 120.0
    assert spec.charts == (ChartSpec(
        title="First touch per page", metric="first_touch_ns_per_page", x="size",
        series=("backing", "populate"), where=(("access", "write-page"),),
        log_x=True, log_y=True),)
    assert spec.charts[0].y_from == "zero"  # unused on a log axis, the default elsewhere


@pytest.mark.parametrize(("written", "read"), [("", "zero"), ("\n    y_from: data", "data"),
                                               ("\n    y_from: zero", "zero")])
def test_a_linear_y_axis_starts_at_zero_unless_the_chart_asks_for_the_data_range(
        written: str, read: str) -> None:
    spec = parse_spec("name: x\ntitle: t\nquestion: q\nmatrix:\n  size: [4KiB, 8KiB]\n"
                      "charts:\n  - title: c\n    metric: total_ns_per_op\n    x: size"
                      + written + "\n", "y.yaml")
    assert spec.charts[0].y_from == read


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def spec_text(name: str = "small", extra: str = "") -> str:
    return (f"name: {name}\ntitle: Small\nquestion: Does it load?\n"
            f"matrix:\n  size: [4KiB, 1MiB]\n{extra}")


def test_defaults_when_optional_keys_are_absent(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "small.yaml", spec_text()))
    assert (spec.fixed, spec.exclude, spec.include, spec.charts) == ((), (), (), ())
    assert spec.repetitions == Repetitions()
    assert spec.timeout_s == 120.0


@pytest.mark.parametrize(("written", "parsed"), [
    ("fixed: {ops: auto}", (("ops", 0),)),
    ("fixed: {ops: 12, populate: false}", (("ops", 12), ("populate", "none"))),
    ("fixed: {size: 8192}", None),
    ("fixed: {file_dir: /dev/shm}", (("file_dir", "/dev/shm"),)),
])
def test_fixed_values_are_parsed(tmp_path: Path, written: str,
                                 parsed: tuple[tuple[str, object], ...] | None) -> None:
    path = write(tmp_path, "small.yaml", spec_text(extra=written + "\n"))
    if parsed is None:
        with pytest.raises(SpecError, match="size is also a matrix axis"):
            load_spec(path)
    else:
        assert load_spec(path).fixed == parsed


@pytest.mark.parametrize(("written", "seconds"), [
    ("timeout: 500ms", 0.5), ("timeout: 90", 90.0), ("timeout: 1.5min", 90.0)])
def test_timeout(tmp_path: Path, written: str, seconds: float) -> None:
    path = write(tmp_path, "t.yaml", spec_text(extra=written + "\n"))
    assert load_spec(path).timeout_s == seconds


def test_a_scalar_in_the_matrix_is_one_value(tmp_path: Path) -> None:
    text = "name: one\ntitle: One\nquestion: One?\nmatrix:\n  size: 64KiB\n  backing: calloc\n"
    spec = load_spec(write(tmp_path, "one.yaml", text))
    assert spec.matrix == (("size", (65536,)), ("backing", ("calloc",)))


def test_source_is_the_path_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    write(tmp_path / "experiments", "x.yaml", spec_text(extra="timeout: soon\n"))
    with pytest.raises(SpecError) as info:
        load_spec(Path("experiments/x.yaml"))
    assert str(info.value).startswith("experiments/x.yaml:6: timeout: 'soon' is not a duration")
    assert (info.value.source, info.value.line, info.value.key_path) == (
        "experiments/x.yaml", 6, "timeout")


def test_formatting_does_not_change_the_hash(tmp_path: Path) -> None:
    block = load_spec(write(tmp_path, "a.yaml", spec_text(extra="# a comment\n")))
    flow = load_spec(write(tmp_path, "b.yaml", "{name: small, title: Small, question: 'Does it "
                           "load?', matrix: {size: [4KiB, 1MiB]}}"))
    assert replace(flow, source=block.source) == block
    assert block.hash == flow.hash


def test_raw_is_plain_json_data(tmp_path: Path) -> None:
    spec = load_spec(CASES / "valid" / "file-backings.yaml")
    assert json.loads(json.dumps(spec.raw)) == spec.raw
    assert spec.raw["matrix"]["size"] == [65536, "1MiB"]


def test_load_specs_reads_a_directory_sorted_by_name(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", spec_text("bravo"))
    write(tmp_path, "a.yaml", spec_text("alpha"))
    write(tmp_path, "notes.txt", "not a spec")
    other = write(tmp_path.parent, f"{tmp_path.name}-c.yaml", spec_text("charlie"))
    specs = load_specs([other, tmp_path])
    assert [spec.name for spec in specs] == ["charlie", "alpha", "bravo"]


def test_load_specs_rejects_duplicate_names(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", spec_text("same"))
    second = write(tmp_path, "b.yaml", "# the same name again\n" + spec_text("same"))
    with pytest.raises(SpecError) as info:
        load_specs([tmp_path])
    assert str(info.value) == (f"{second}:2: name: experiment name 'same' is also used by "
                               f"{first}")


def test_load_specs_rejects_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_specs([tmp_path])
    assert str(info.value) == f"{tmp_path}: no experiment files (*.yaml) in this directory"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}: no such file"


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(spec_text().replace("Small", "Gr\xf6\xdfe").encode("latin-1"))
    with pytest.raises(SpecError, match=r"latin1\.yaml: not UTF-8 text"):
        load_spec(path)


def test_tags_never_build_objects(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = spec_text(extra=f"fixed:\n  file_dir: !!python/object/apply:os.system "
                           f"['touch {marker}']\n")
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, "evil.yaml", text))
    assert str(info.value).endswith(
        "fixed.file_dir: expected one value, found a list tagged !!python/object/apply:os.system")
    assert not marker.exists()


def test_parse_spec_validates_text_without_a_file() -> None:
    text = spec_text(extra="include:\n  - {backing: malloc, populate: true}\n")
    with pytest.raises(SpecError) as info:
        parse_spec(text, "run/manifest.json#spec")
    assert str(info.value) == (
        "run/manifest.json#spec:7: include[0]: backing malloc takes memory from the C heap, so "
        "populate: map-populate cannot apply (use an mmap backing, or populate: none)")
    assert parse_spec(spec_text(), "x").matrix == (("size", (4096, 1 << 20)),)


def test_check_scope_statistic_and_method_are_read() -> None:
    from runner.core.model import CheckSpec, Span
    spec = load_spec(CASES / "valid" / "scoped-checks.yaml")
    large, small, faults = spec.checks
    assert large.where == (("size", Span(low=64 << 20)),)
    assert (large.statistic, large.method) == ("minimum", None)
    assert small.where == (("size", Span(low=4096, high=1 << 20)),)
    assert small.tolerance == pytest.approx(0.10)
    assert faults.where == (("backing", ("malloc", "calloc")),)
    assert (faults.statistic, faults.method, faults.value) == ("median", "statistical", 1.0)
    assert CheckSpec.statistic == "median" and CheckSpec.method is None


@pytest.mark.parametrize(("where", "sizes"), [
    ("{size: {from: 64MiB}}", [64 << 20, 256 << 20]),
    ("{size: {to: 1MiB}}", [4096, 1 << 20]),
    ("{size: {from: 1MiB, to: 64MiB}}", [1 << 20, 64 << 20]),
    ("{size: [4KiB, 256MiB]}", [4096, 256 << 20]),
])
def test_a_where_range_selects_by_order(where: str, sizes: list[int]) -> None:
    from runner.core.scope import selects
    from runner.spec.matrix import expand
    text = (CASES / "valid" / "scoped-checks.yaml").read_text().replace(
        "{size: {from: 64MiB}}", where)
    spec = parse_spec(text, "scoped.yaml")
    chosen = sorted({s.size_bytes for s in expand(spec).scenarios
                     if selects(s.params(), spec.checks[0].where)})
    assert chosen == sizes
MINIMAL = "name: x\ntitle: t\nquestion: q\nmatrix:\n  size: 4KiB\n"


def _load_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path)
    return str(info.value)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert _load_error(fifo) == f"{fifo}: not a regular file (a spec is a YAML file)"


def test_a_link_to_a_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    assert _load_error(link) == f"{link}: not a regular file (a spec is a YAML file)"


def test_a_file_over_one_mib_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(MINIMAL + "#" * (1 << 20) + "\n")
    assert _load_error(big).startswith(f"{big}: {big.stat().st_size} bytes; a spec may have "
                                       "at most 1048576 (1 MiB)")
    with pytest.raises(SpecError, match="more than 1048576 characters"):
        parse_spec(MINIMAL + "#" * (1 << 20), "stored")


def test_a_link_to_a_regular_spec_is_read(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text(MINIMAL)
    (tmp_path / "link.yaml").symlink_to(target)
    assert load_spec(tmp_path / "link.yaml").name == "x"


def test_limits_leave_the_shipped_experiments_valid() -> None:
    for path in sorted((Path(__file__).parents[2] / "experiments").glob("*.yaml")):
        load_spec(path)


def test_a_stored_spec_parsed_again_is_the_same_spec_and_an_invalid_one_fails_each_time(
        tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "experiments" / "zeroing.yaml").read_text()
    assert parse_spec(text, "a#spec") is parse_spec(text, "a#spec")  # remembered
    for _ in range(2):  # errors are not remembered: each read says so
        with pytest.raises(SpecError, match="b#spec"):
            parse_spec("name: [", "b#spec")


def _tree(node: object) -> object:
    """A node tree as plain data: tag, value and where each node starts."""
    from yaml.nodes import MappingNode, SequenceNode

    mark = node.start_mark  # type: ignore[attr-defined]
    where = (mark.line, mark.column)
    if isinstance(node, MappingNode):
        return (node.tag, where, [(_tree(k), _tree(v)) for k, v in node.value])
    if isinstance(node, SequenceNode):
        return (node.tag, where, [_tree(child) for child in node.value])
    return (node.tag, where, node.value)  # type: ignore[attr-defined]


EXPERIMENTS = Path(__file__).parents[2] / "experiments"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml"))
                         + sorted((CASES / "valid").glob("*.yaml")), ids=lambda p: p.stem)
def test_libyaml_and_pure_python_parsing_give_the_same_nodes(path: Path) -> None:
    """Valid specs are parsed by libyaml for speed: what it gives must be what PyYAML's own
    parser gives, line numbers included (errors come from PyYAML's parser either way)."""
    if bounded_yaml._FAST_LOADER is None:
        pytest.skip("PyYAML was built without libyaml")
    text = path.read_text()
    fast = yaml.compose(text, Loader=bounded_yaml._FAST_LOADER)
    slow = yaml.compose(text, Loader=bounded_yaml._BoundedLoader)
    assert _tree(fast) == _tree(slow)
