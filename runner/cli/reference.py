"""docs/reference/, generated from the code's own tables, so the reference cannot drift from
what alloclab does: parameters (runner.core.parameters), metrics and observations
(runner.core.metrics), spec keys and limits (runner.spec.keys), the command line
(runner.cli.parser), exit statuses (runner.core.errors) and the module map (the docstrings of
runner/, runner.cli.module_map).

`python -m runner.cli.reference` rewrites the pages; `--check` writes nothing, lists the pages
that differ from what it would write and exits 1 when any does (tests/cli/test_reference.py runs
it). The output is the same on every machine and terminal: nothing reads the host, the clock or
the terminal's width.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import assert_never

from runner.cli import parser as cli_parser
from runner.cli.module_map import modules_page as module_lines
from runner.core.errors import ExitStatus
from runner.core.kinds import Parameter
from runner.core.metrics import DETERMINISTIC, METRICS
from runner.core.names import EXPERIMENT_HINT
from runner.core.observation_types import Metric, Observation
from runner.core.observations import OBSERVATIONS
from runner.core.parameters import PARAMETERS
from runner.core.units import DURATION_HINT, SHARE_HINT, SIZE_HINT, format_size
from runner.probe.native import EXIT_SKIPPED
from runner.spec.keys import (
    CHART_KEYS,
    CHECK_KEYS,
    EXPECTATIONS,
    MAX_DEPTH,
    MAX_NODES,
    MAX_PROBE_RUNS,
    MAX_REPETITION,
    MAX_SCENARIOS,
    MAX_SHARE,
    MAX_SPEC_BYTES,
    MAX_TEXT_CHARS,
    MAX_TIMEOUT_S,
    MAX_TITLE_CHARS,
    METHODS,
    ORDERED_KINDS,
    QUANTIFIERS,
    RANGE_KEYS,
    REPETITION_KEYS,
    STATISTICS,
    TOP_KEYS,
    Y_FROMS,
    Key,
)

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "docs" / "reference"
COMMAND = "python -m runner.cli.reference"
# argparse wraps usage lines to the terminal; the reference wraps them to this many columns.
USAGE_COLUMNS = 100


def _code(value: object) -> str:
    text = str(value)
    return f"`{text}`" if text else "(empty)"


def _prose(text: str) -> str:
    """Text from the code as Markdown shows it: what would read as markup outside `code`
    spans (an HTML tag such as <pid>, emphasis) escaped."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts lie outside code spans
        parts[i] = parts[i].replace("\\", "\\\\").replace("<", "\\<").replace("*", "\\*")
    return "`".join(parts)


def _cell(text: str) -> str:
    """Prose in a table cell, where a bar would end the cell."""
    return _prose(text).replace("|", "\\|")


def _codes(values: Iterable[object]) -> str:
    return ", ".join(_code(v) for v in values)


def _header(title: str, source: str, intro: str) -> list[str]:
    """A page's title, where it comes from, and what it lists."""
    return [f"# {title}", "",
            f"> Generated from {source} by `{COMMAND}`; do not edit this page by hand.", "",
            intro, ""]


def _page(lines: Sequence[str]) -> str:
    """The lines as a file: no trailing blanks, one newline at the end."""
    return "\n".join(lines).rstrip("\n") + "\n"


def _index_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A table of short cells (links, names, one-line summaries)."""
    return [f"| {' | '.join(head)} |", f"|{'---|' * len(head)}",
            *(f"| {' | '.join(row)} |" for row in rows), ""]


def _link(name: str) -> str:
    """A link to the heading `## \\`name\\`` of the same page (its anchor is the name)."""
    return f"[`{name}`](#{name.lower()})"


# Parameters.

def _parameter_values(parameter: Parameter) -> str:
    """What a parameter accepts, in words."""
    match parameter.kind:
        case "size":
            return parameter.hint or f"a size: {SIZE_HINT}"
        case "choice":
            return f"one of {_codes(parameter.choices)}"
        case "bool":
            return "`true` or `false`"
        case "count":
            return "a whole number of at least 1, or `auto`"
        case "whole":
            most = f" to {parameter.maximum}" if parameter.maximum is not None else " or more"
            return f"a whole number from {parameter.minimum}{most}"
        case "share":
            return f"a share: {SHARE_HINT}"
        case "text":
            return parameter.hint
        case "path":
            return "an absolute directory path"
        case _:
            assert_never(parameter.kind)


def _parameter_section(parameter: Parameter) -> list[str]:
    facts = [f"- kind: {parameter.kind}; takes {_parameter_values(parameter)}",
             f"- default: {_code(parameter.format(parameter.default))}"]
    if parameter.aliases:
        facts.append("- also written: " + ", ".join(f"{_code(_yaml(written))} for {_code(choice)}"
                                                    for written, choice in parameter.aliases))
    if parameter.field != parameter.key:
        facts.append(f"- stored as: {_code(parameter.field)}" + (
            " (parts per million)" if parameter.kind == "share" else
            " (bytes)" if parameter.kind == "size" else ""))
    facts.append(f"- probe option: {_code(f'--{parameter.field}')}" if parameter.probe_option
                 else "- probe option: none; it reaches the probe through its environment")
    doc = [_prose(parameter.doc), ""] if parameter.doc else []
    return [f"## `{parameter.key}`", "", _sentence(parameter.help), "", *doc, *facts, ""]


def _yaml(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _sentence(text: str) -> str:
    """A help text as a sentence: capitalised, with its full stop."""
    text = text[:1].upper() + text[1:]
    return _prose(text if text.endswith(".") else f"{text}.")


def parameters_page() -> str:
    lines = _header("Parameters", "`runner/core/parameters.py` (PARAMETERS)",
                    "Every parameter a scenario has: the keys of a spec's `matrix`, `fixed`, "
                    "`include`, `exclude`, and of the `where`, `candidate` and `reference` of "
                    "charts and checks. A key left out takes its default.")
    lines += _index_table(("key", "kind", "default"),
                          ((_link(p.key), p.kind, _code(p.format(p.default)))
                           for p in PARAMETERS))
    for parameter in PARAMETERS:
        lines += _parameter_section(parameter)
    return _page(lines)


# Metrics.

def _observations() -> dict[str, Observation]:
    """Metric name -> the probe's observation it comes from."""
    return {o.metric.name: o for o in OBSERVATIONS}


def _per(name: str) -> str:
    """Whether a metric is per block (per op), and what else it is divided by."""
    if name.endswith("_per_op"):
        return "yes: the total over a phase's blocks, divided by `ops`"
    if name.endswith("_per_page"):
        return "no: per page of a block"
    return "no"


def _metric_section(metric: Metric, observed: Observation | None) -> list[str]:
    verdict = ("exact: a deterministic fact, every sample must agree" if metric.name in
               DETERMINISTIC else "statistical: a 95% interval over processes")
    facts = [f"- short name (chart axes, table headers): {metric.short_name}",
             f"- unit: {metric.unit}", f"- per block: {_per(metric.name)}",
             f"- checks: {verdict}"]
    doc: list[str] = []
    if observed is not None:
        million = " in parts per million" if observed.per_million else ""
        facts.append(f"- observation: the probe reports {_code(observed.name)}{million} where "
                     "the scenario makes it meaningful; empty elsewhere")
        doc = [_prose(observed.doc), ""] if observed.doc else []
    return [f"### `{metric.name}`", "", _sentence(metric.description), "", *doc, *facts, ""]


def metrics_page() -> str:
    observed = _observations()
    lines = _header(
        "Metrics", "`runner/core/metrics.py` (METRICS, OBSERVATIONS, DETERMINISTIC)",
        "Every metric a sample carries: the name a chart's or check's `metric` and `alloclab "
        "compare --metric` take. The probe times four phases over `ops` blocks; the phase "
        "metrics divide its totals per block or per page, derived metrics combine them, and "
        "observations are the numbers the probe reports beside the phases.")
    lines += _index_table(("metric", "unit", "checks"),
                          ((_link(m.name), m.unit,
                            "exact" if m.name in DETERMINISTIC else "statistical")
                           for m in METRICS))
    groups: tuple[tuple[str, Callable[[Metric], bool]], ...] = (
        ("Phase and derived metrics", lambda m: m.name not in observed),
        ("Observations", lambda m: m.name in observed))
    for title, member in groups:
        lines += [f"## {title}", ""]
        for metric in filter(member, METRICS):
            lines += _metric_section(metric, observed.get(metric.name))
    return _page(lines)


# Spec keys.

def _key_values(key: Key) -> str:
    """What a spec key takes, in words."""
    match key.kind:
        case "slug":
            return f"a name: {EXPERIMENT_HINT}"
        case "text" | "texts":
            return "some text" if key.kind == "text" else "a list of texts, each as a claim"
        case "duration":
            return f"a duration: {DURATION_HINT}; at most {MAX_TIMEOUT_S / 3600:g} hours"
        case "matrix":
            return "a mapping of parameter keys to a value or a list of values"
        case "parameters" | "selector":
            return "a mapping of parameter keys to one value each"
        case "entries" | "axis_entries":
            return "a list of mappings of parameter keys to one value each"
        case "repetitions":
            return "a mapping of the [repetitions keys](#repetitions-keys)"
        case "charts":
            return "a list of mappings of the [charts keys](#charts-keys)"
        case "checks":
            return "a list of mappings of the [checks keys](#checks-keys)"
        case "whole":
            return f"a whole number from {key.minimum} to {MAX_REPETITION}"
        case "flag":
            return "`true` or `false`"
        case "metric":
            return "a metric name (see [metrics](metrics.md))"
        case "axis":
            return "a parameter key"
        case "axes":
            return "a parameter key or a list of them"
        case "expectation":
            return f"one of {_codes(EXPECTATIONS)}"
        case "fraction":
            return "a percentage, e.g. 10%, or a fraction, e.g. 0.1"
        case "number":
            return "a number"
        case "where":
            return (f"a mapping of parameter keys to a value, a list of values, or for "
                    f"parameters of kind {', '.join(ORDERED_KINDS)} a range with "
                    f"{' and '.join(_code(end) for end in RANGE_KEYS)}")
        case "statistic":
            return f"one of {_codes(STATISTICS)}"
        case "method":
            return f"one of {_codes(METHODS)}"
        case "share":
            return f"a percentage from 0% to {MAX_SHARE:.0%}"
        case "quantifier":
            return f"one of {_codes(QUANTIFIERS)}"
        case "y_from":
            return f"one of {_codes(Y_FROMS)}"
        case _:
            assert_never(key.kind)


def _key_section(key: Key, within: str) -> list[str]:
    heading = f"{within}: `{key.name}`" if within else f"`{key.name}`"
    required = "required" if key.required else "optional"
    return [f"### {heading}", "", _sentence(key.help), "",
            f"- {required}; takes {_key_values(key)}", ""]


def _limits() -> list[str]:
    return [
        "## Limits", "",
        "What a spec may ask for is bounded, so that neither loading it nor running it can "
        "take the machine down:", "",
        f"- a spec is a regular file (not a FIFO, device or folder) of at most "
        f"{format_size(MAX_SPEC_BYTES)}",
        f"- nested at most {MAX_DEPTH} levels deep, with at most {MAX_NODES:,} values (an "
        "alias counts as what it repeats)",
        f"- `question` at most {MAX_TEXT_CHARS:,} characters, `title` and `claim` at most "
        f"{MAX_TITLE_CHARS}, no control characters",
        f"- at most {MAX_SCENARIOS:,} scenarios, and {MAX_PROBE_RUNS:,} probe runs "
        "(scenarios x processes, also with `run --processes`)",
        f"- `processes`, `warmup` and `iterations` at most {MAX_REPETITION:,} each",
        f"- `timeout` finite and at most {MAX_TIMEOUT_S / 3600:g} hours",
        "- every `file_dir` a file backing uses must exist (checked by `validate`, `plan` and "
        "`run`)", ""]


def spec_keys_page() -> str:
    lines = _header("Spec keys", "`runner/spec/keys.py` (the key tables and limits)",
                    "Every key of an experiment file, by the mapping that holds it. The "
                    "parameters a scenario takes are in [parameters](parameters.md); "
                    "`alloclab schema` prints the same as a JSON Schema for editors.")
    tables = (("Top-level keys", "", TOP_KEYS), ("repetitions", "repetitions", REPETITION_KEYS),
              ("charts", "charts", CHART_KEYS), ("checks", "checks", CHECK_KEYS))
    for title, within, keys in tables:
        lines += [f"## {title} keys" if within else f"## {title}", ""]
        lines += _index_table(("key", "required"), (
            (f"[`{k.name}`](#{_anchor(k, within)})", "yes" if k.required else "")
            for k in keys))
        for key in keys:
            lines += _key_section(key, within)
    return _page(lines + _limits())


def _anchor(key: Key, within: str) -> str:
    """The anchor a code host gives _key_section's heading."""
    return f"{within}-{key.name}" if within else key.name


# The command line.

def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each subcommand's one-line help, as `alloclab --help` lists it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: _help_text(choice) for choice in action._choices_actions}
    return {}


def _help_text(action: argparse.Action) -> str:
    """An argument's help as argparse shows it (%-placeholders filled, `%%` a percent sign)."""
    params = {name: value for name, value in vars(action).items()
              if value is not argparse.SUPPRESS}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(str(choice) for choice in params["choices"])
    return (action.help or "") % params


def _invocation(action: argparse.Action) -> str:
    """How an argument is written: `--results RESULTS`, `-q, --quiet`, `[SPEC ...]`."""
    shown = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper())
    assert isinstance(shown, str)
    if not action.option_strings:
        return {"*": f"[{shown} ...]", "+": f"{shown} [{shown} ...]"}.get(str(action.nargs),
                                                                            shown)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    return ", ".join(f"{option} {shown}" for option in action.option_strings)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_COLUMNS)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _arguments(parser: argparse.ArgumentParser) -> list[str]:
    return [f"- `{_invocation(a)}`: {_prose(_help_text(a))}" for a in parser._actions
            if a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)
            and not isinstance(a, argparse._SubParsersAction)]


def cli_page() -> str:
    parser = cli_parser.build_parser()
    summaries = _summaries(parser)
    subcommands = _subcommands(parser)
    lines = _header("Command line", "`runner/cli/parser.py` (build_parser)",
                    f"{cli_parser.DESCRIPTION} `alloclab COMMAND --help` shows the same. "
                    f"Commands that take SPEC arguments read experiments/ when none is given. "
                    "Exit statuses are in [exit statuses](exit-status.md).")
    lines += _index_table(("command", "what it does"),
                          ((_link(name), _cell(summaries[name])) for name in subcommands))
    lines += ["## `alloclab`", "", "```text", _usage(parser), "```", "", *_arguments(parser), ""]
    for name, sub in subcommands.items():
        lines += [f"## `{name}`", "", _sentence(sub.description or summaries[name]), "",
                  "```text", _usage(sub), "```", "", *_arguments(sub), ""]
    return _page(lines)


# Exit statuses.

def exit_status_page() -> str:
    lines = _header("Exit statuses", "`runner/core/errors.py` (ExitStatus)",
                    "What the exit status of an `alloclab` command says. Every expected failure "
                    "is one line on stderr; `--debug` adds its traceback.")
    lines += _index_table(("status", "meaning"),
                          ((f"[{int(s)}](#{int(s)}-{s.name.lower()})", _cell(s.meaning))
                           for s in ExitStatus))
    for status in ExitStatus:
        details = [_prose(status.details), ""] if status.details else []
        lines += [f"## {int(status)} {status.name}", "", _sentence(status.meaning), "",
                  *details]
    lines += [f"The probe itself (not a command) exits with {EXIT_SKIPPED} when this machine "
              "cannot run a scenario; alloclab records the scenario as skipped, with the "
              "probe's reason, and that is not a failure."]
    return _page(lines)


def modules_page() -> str:
    return _page(module_lines(_header(
        "Modules", "the docstrings of runner/", "The package's stages in pipeline order, each "
        "importing only the stages above it in this list, and every module of each, in the "
        "module's own words. Why the stages stand where they do: "
        "[architecture](../design/architecture.md).")))


def index_page() -> str:
    lines = _header("Reference", "the code", "The reference pages, each generated from the "
                    "table in the code that alloclab itself reads. After changing one of those "
                    f"tables, run `{COMMAND}` and commit the pages; a test fails while a "
                    "committed page differs from what the command writes.")
    lines += [f"- [{title}]({name}): {what}" for name, (title, what, _) in PAGES.items()
              if name != "README.md"]
    return _page(lines)


PAGES: dict[str, tuple[str, str, Callable[[], str]]] = {
    "README.md": ("Reference", "this index", index_page),
    "parameters.md": ("Parameters", "every scenario parameter, its values and default",
                      parameters_page),
    "metrics.md": ("Metrics", "every metric and observation, its unit and how checks judge it",
                   metrics_page),
    "spec-keys.md": ("Spec keys", "every key of an experiment file, and the limits of a spec",
                     spec_keys_page),
    "cli.md": ("Command line", "every command and option", cli_page),
    "exit-status.md": ("Exit statuses", "what each exit status says", exit_status_page),
    "modules.md": ("Modules", "the package's stages and every module, in its own words",
                   modules_page),
}


def build_pages() -> dict[str, str]:
    """File name -> text of every page."""
    return {name: build() for name, (_, _, build) in PAGES.items()}


def stale_pages(directory: Path = REFERENCE_DIR) -> list[str]:
    """The pages whose file in `directory` is missing or differs from what would be written."""
    return _stale(build_pages(), directory)


def _stale(pages: dict[str, str], directory: Path) -> list[str]:
    return [name for name, text in pages.items()
            if not (directory / name).is_file()
            or (directory / name).read_text(encoding="utf-8") != text]


def write_pages(directory: Path = REFERENCE_DIR) -> list[str]:
    """Write every page that changed; the names written."""
    pages = build_pages()
    stale = _stale(pages, directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (directory / name).write_text(pages[name], encoding="utf-8")
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Write docs/reference/ from the "
                                     "code's own tables.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; list the stale pages and exit 1 when there are any")
    parser.add_argument("--dir", type=Path, default=REFERENCE_DIR,
                        help="the folder of the pages (default: docs/reference)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages(args.dir)
        for name in stale:
            print(args.dir / name)
        if stale:
            print(f"stale: run `{COMMAND}` and commit", file=sys.stderr)
        return 1 if stale else 0
    for name in write_pages(args.dir):
        print(f"wrote {args.dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
