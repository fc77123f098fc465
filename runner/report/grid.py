"""The index's verdicts as a claims × machines grid: one row per claim, grouped by experiment,
one column per machine label, each cell the claim's verdict there, linked to its row on the
experiment page (runner.report.permalinks).

A label whose runs set allocator variables on a machine another label holds without them is a
*configuration* of that machine (runner.analysis.conditions.machine_configurations): its column
stands beside the machine's and says so. Machines *disagree* on a claim when the full runs that
decided it (holds, holds only, does not hold, inconclusive; not "no data") on machines as they are
did not all reach the same verdict; a configuration whose verdict differs from its machine's is
told apart (the configuration changes the verdict: often what it was run to show). A quick or
smoke run (StoredRun.reduced) is shown, marked, but neither counted in
the headline nor taken as disagreeing: it measured too little to stand against a full run.
Pure: the index entries of runner.report.site in, plain values out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner.analysis import conditions, verdict

# Statuses that are a finding: "no data" is a machine that could not measure the claim.
DECIDED = ("holds", "holds-only", "does-not-hold", "inconclusive")


def machine_configurations(context: dict[str, Any]) -> dict[str, conditions.Configuration]:
    """Each machine label as the machine and configuration it names (a label is judged by its
    newest shown run)."""
    newest: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for experiment in context["experiments"]:
        for run in experiment["runs"]:
            if run["machine"] not in newest or run["run_id"] > newest[run["machine"]][0]:
                newest[run["machine"]] = (run["run_id"], run["identity"])
    return conditions.machine_configurations({label: identity for label, (_, identity)
                                              in newest.items()})


def _column(label: str, found: conditions.Configuration) -> dict[str, Any]:
    return {"label": label, "machine": found.machine, "configuration": found.name,
            "describe": found.describe()}


def _cell(page: str, run: Mapping[str, Any], v: Mapping[str, Any], describe: str
          ) -> dict[str, Any]:
    quick = " (a quick run: too few repetitions to conclude)" if run["reduced"] else ""
    return {"status": v["status"], "word": v["status"].replace("-", " "),
            "href": f"{page}#{v['id']}", "reduced": run["reduced"],
            "title": f"{describe}: {v['text']}{quick}"}


def disagrees(cells: Sequence[Mapping[str, Any] | None]) -> bool:
    """Whether the full runs' decided verdicts of one claim differ."""
    return len({c["status"] for c in cells
                if c is not None and not c["reduced"] and c["status"] in DECIDED}) > 1


def _differs(cells: Sequence[Mapping[str, Any] | None], labels: Sequence[str],
             found: Mapping[str, conditions.Configuration]) -> str:
    """'machines' when the machines as they are disagree, else 'configuration' when a
    configuration's verdict differs from its machine's, else ''."""
    by_label = dict(zip(labels, cells, strict=True))
    if disagrees([cell for label, cell in by_label.items() if not found[label].name]):
        return "machines"
    for label, cell in by_label.items():
        machine = found[label].machine
        if found[label].name and machine in by_label and disagrees([cell, by_label[machine]]):
            return "configuration"
    return ""


def _group(experiment: Mapping[str, Any], labels: Sequence[str],
           found: Mapping[str, conditions.Configuration]) -> dict[str, Any]:
    """One experiment's rows: its claims in the order its runs first show them."""
    rows: dict[str, dict[str, Any]] = {}
    for run in experiment["runs"]:
        describe = found[run["machine"]].describe()
        for v in run["verdicts"]:
            row = rows.setdefault(v["key"], {"claim": v["claim"], "key": v["key"], "cells": {}})
            row["cells"][run["machine"]] = _cell(experiment["page"], run, v, describe)
    finished = []
    for row in rows.values():
        cells = [row["cells"].get(label) for label in labels]
        finished.append({**row, "cells": cells, "differs": _differs(cells, labels, found)})
    return {"name": experiment["name"], "title": experiment["title"],
            "page": experiment["page"], "rows": finished}


def verdict_grid(context: dict[str, Any]) -> dict[str, Any]:
    """What index.html shows of the verdicts: the grid, the claims where machines disagree, and
    the headline counts, which are of full runs on machines as they are: configurations'
    verdicts and quick runs' are shown but counted apart."""
    found = machine_configurations(context)
    labels = sorted(found, key=lambda label: (found[label].machine, found[label].name, label))
    groups = [_group(e, labels, found) for e in context["experiments"]]
    groups = [g for g in groups if g["rows"]]
    counted: dict[str, int] = {}
    configured: dict[str, int] = {}
    reduced = 0
    for group in groups:
        for row in group["rows"]:
            for label, cell in zip(labels, row["cells"], strict=True):
                if cell is None:
                    continue
                if cell["reduced"]:
                    reduced += 1
                elif found[label].name:
                    configured[found[label].describe()] = configured.get(
                        found[label].describe(), 0) + 1
                else:
                    counted[cell["status"]] = counted.get(cell["status"], 0) + 1
    counts = [(status, counted.get(status.replace(" ", "-"), 0)) for status in verdict.STATUSES]
    return {
        "columns": [_column(label, found[label]) for label in labels],
        "groups": groups,
        "claims": sum(len(g["rows"]) for g in groups),
        "disagreements": [{**row, "experiment": g["title"], "page": g["page"]}
                          for g in groups for row in g["rows"] if row["differs"]],
        "counts": [(s, n) for s, n in counts if n],
        "configured": sorted(configured.items()),
        "reduced": reduced,
        "machines": {label: c.describe() for label, c in found.items()},
    }
