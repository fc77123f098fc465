"""A comparison -> an HTML page (templates/compare.html) and a Markdown summary for a PR comment.

pandas and the statistics stop in runner.analysis.compare; this module only turns its Comparison,
and the runs it came from, into preformatted strings. Like the reports, the output is a pure
function of the stored runs and the command's options: the same inputs give the same bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.analysis import noise
from runner.analysis.compare import (
    ALPHA,
    LOAD_DIFFERENCE_CPUS,
    STEAL_DIFFERENCE,
    VERDICTS,
    CandidateComparison,
    Comparison,
    MetricComparison,
    RunRef,
    Verdict,
    by_effect,
    effect_size,
)
from runner.analysis.frame import build_frame, measured
from runner.core.metrics import direction, format_value
from runner.report import charts, permalinks, site
from runner.report.chart_data import chart_data
from runner.store import folders
from runner.store.folders import StoredRun, data_checksum

MARKDOWN_ROWS = 30  # per candidate; the HTML page has them all
REGRESSIONS_NAMED = 5  # the worst, in the summary line; the table lists every one


def format_ratio(row: MetricComparison) -> str:
    """'1.20× (1.18–1.22)': the ratio of medians and its 95% interval."""
    if math.isnan(row.ratio):
        return "–"
    return f"{row.ratio:.3g}× ({row.ci_low:.3g}–{row.ci_high:.3g})"


def format_p(p: float) -> str:
    return "–" if math.isnan(p) else f"{p:.2g}"


def verdict_text(verdict: Verdict, equivalence: float, load: str = "") -> str:
    """'same within ±5%'; 'different, under different load (1.07 vs 0.02 CPUs of other work)'
    where the runs' load differed (`load`: CandidateComparison.load_text)."""
    if verdict == "same":
        return f"same within ±{equivalence:.0%}"
    if verdict == "different" and load:
        return f"different, under different load ({load})"
    return verdict


def change_text(row: MetricComparison) -> str:
    """Which way the median went, in the metric's words: '20% slower', '3× faster',
    '5% fewer faults' reads as '5% fewer'; '–' without a ratio."""
    return ratio_change_text(row.metric, row.ratio)


def ratio_change_text(metric: str, ratio: float) -> str:
    """change_text of a ratio of `metric`."""
    words = direction(metric)
    if math.isnan(ratio):
        return "–"
    if ratio == 1:
        return "no change"
    if math.isinf(ratio):
        return f"{words.up} (from 0)"
    word = words.up if ratio > 1 else words.down
    factor = ratio if ratio > 1 else (1 / ratio if ratio > 0 else math.inf)
    if factor >= 2 and math.isfinite(factor):
        return f"{factor:.3g}× {word}"
    percent = abs(ratio - 1) * 100
    return f"{percent:.2g}% {word}" if percent < 10 else f"{percent:.0f}% {word}"


def change_cell(row: MetricComparison) -> str:
    """The change as a row shows it: bare where the verdict is different, else qualified, so
    the median's drift is never read as a finding: '60% slower (unsure)'."""
    text = change_text(row)
    if row.verdict == "inconclusive" and text != "no change":
        return f"{text} (unsure)"
    if row.verdict == "same" and text != "no change":
        return f"{text} (within the band)"
    return text


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _row_context(row: MetricComparison, equivalence: float) -> dict[str, Any]:
    return {
        "id": row.scenario_id, "label": row.label, "metric": row.metric,
        "baseline": format_value(row.metric, row.baseline_median),
        "candidate": format_value(row.metric, row.candidate_median),
        "processes": f"{row.baseline_processes} / {row.candidate_processes}",
        "ratio": format_ratio(row), "change": change_cell(row),
        "p": format_p(row.p_value), "p_adjusted": format_p(
            row.p_adjusted), "verdict": row.verdict.replace(" ", "-"),
        "verdict_text": verdict_text(row.verdict, equivalence, row.load_difference),
        "regression": row.regression,
    }


# Rows a compare page shows at once; the others (the data cannot tell, or no change beyond the
# band) are folded away, as pyperf hides the insignificant ones.
SHOWN_VERDICTS = ("different",)


def _directions_text(rows: Sequence[MetricComparison]) -> str:
    """'6 slower, 2 fewer faults': which way the different rows went, largest group first."""
    phrases: dict[str, int] = {}
    for row in rows:
        if row.verdict == "different" and not math.isnan(row.ratio) and row.ratio != 1:
            phrase = direction(row.metric).phrase(row.ratio > 1)
            phrases[phrase] = phrases.get(phrase, 0) + 1
    ordered = sorted(phrases.items(), key=lambda item: -item[1])  # stable: first seen first
    return ", ".join(f"{n} {phrase}" for phrase, n in ordered)


def _counts_text(counts: dict[Verdict, int], equivalence: float,
                 rows: Sequence[MetricComparison] = ()) -> str:
    """'8 different (6 slower, 2 faster), 4 same within ±5%'."""
    parts = []
    for verdict, n in counts.items():
        if n:
            ways = _directions_text(rows) if verdict == "different" else ""
            parts.append(f"{n} {verdict_text(verdict, equivalence)}"
                         + (f" ({ways})" if ways else ""))
    return ", ".join(parts) or "nothing compared"


def _candidate_counts(candidate: CandidateComparison, equivalence: float) -> str:
    counts = {v: candidate.count(v) for v in VERDICTS}
    text = _counts_text(counts, equivalence, candidate.rows)
    if candidate.load:
        text += f"; measured under different load ({candidate.load_text})"
    return text


def geometric_mean_texts(candidate: CandidateComparison) -> list[str]:
    """'first_touch_ns_per_page: 1.02× (2% slower), geometric mean of 8 ratios'."""
    return [f"{g.metric}: {g.ratio:.3g}× ({ratio_change_text(g.metric, g.ratio)}), geometric "
            f"mean of {g.count} ratio{'s' if g.count != 1 else ''}"
            for g in candidate.geometric_means()]


def _load_cells(run: StoredRun) -> dict[str, str]:
    load = noise.run_load(run.manifest.get("load", []))
    return {"other_work": "not recorded" if load.other_work_cpus is None
            else f"{load.other_work_cpus:.2f} CPUs",
            "steal": "not recorded" if load.steal_fraction is None
            else f"{load.steal_fraction:.1%}"}


def _run_context(role: str, run: StoredRun, metrics: Sequence[str],
                 links: ReportLinks) -> dict[str, Any]:
    return {
        "role": role, "name": RunRef.of(run).name, "machine": run.machine,
        "id": f"run-{run.machine}-{run.run_id}",
        "page": links.machine_section(run.experiment, run.machine), **_load_cells(run),
        "run_id": run.run_id, "started": run.manifest.get("started_utc"),
        "finished": run.manifest.get("finished_utc"),
        "alloclab_version": run.manifest.get("alloclab_version"),
        "checksum": data_checksum(run.path), "command": run.manifest.get("command"),
        "warnings": [w.message for w in noise.run_warnings(run, metrics)],
        "conditions": noise.conditions_text(run),
    }


def _overlay_charts(runs: Sequence[StoredRun], metrics: Sequence[str]) -> list[dict[str, str]]:
    """The baseline spec's charts of the compared metrics, every run drawn on each, with ids
    from their titles (runner.report.permalinks) and their captions."""
    experiment = folders.experiment_of(runs[0])
    label_keys = tuple(runs[0].manifest["label_keys"])
    samples = [measured(build_frame(run)) for run in runs]
    names = legend_names([RunRef.of(run) for run in runs])
    shown = [chart for chart in experiment.charts if chart.metric in metrics]
    ids = permalinks.chart_ids(None, (chart.title for chart in shown))
    return [{"id": chart_id, "svg": charts.render_overlay_svg(
                [(name, chart_data(s, chart, label_keys))
                 for name, s in zip(names, samples, strict=True)]),
             "caption": charts.chart_caption(chart)}
            for chart, chart_id in zip(shown, ids, strict=True)]


def legend_names(refs: Sequence[RunRef]) -> list[str]:
    """Each run as a chart legend names it: what tells it apart from the other runs compared
    (machine, run id or both), not the whole path every entry would repeat."""
    machines = len({ref.machine for ref in refs}) > 1
    run_ids = len({ref.run_id for ref in refs}) > 1 or not machines
    return [" ".join(part for part, shown in ((ref.machine, machines), (ref.run_id, run_ids))
                     if shown) for ref in refs]


@dataclass(frozen=True)
class ReportLinks:
    """Where a compare page in a reports folder links: the index and the experiment pages'
    machine sections, relative to the page; nothing for a page written elsewhere, or for a
    section the experiment page does not show (a link must not point nowhere)."""

    root: Path | None  # the reports folder holding the page, if any
    page_dir: Path

    @classmethod
    def find(cls, out_dir: Path) -> ReportLinks:
        """The nearest folder at or above out_dir (up to REPORT_DEPTH) holding a report."""
        out_dir = out_dir.resolve()
        for folder in [out_dir, *out_dir.parents][:REPORT_DEPTH + 1]:
            if (folder / "index.html").is_file() and (folder / site.VERDICTS_JSON).is_file():
                return cls(folder, out_dir)
        return cls(None, out_dir)

    def page(self, name: str) -> str | None:
        """A page of the report, relative to the compare page; None if there is none."""
        return self._href(name)

    def _href(self, name: str) -> str | None:
        if self.root is None or not (self.root / name).is_file():
            return None
        return Path(os.path.relpath(self.root / name, self.page_dir)).as_posix()

    @property
    def index(self) -> str | None:
        return self._href("index.html")

    def machine_section(self, experiment: str, machine: str) -> str | None:
        page = f"{experiment}.html"
        href = self._href(page)
        section = permalinks.machine_id(machine)
        if href is None or self.root is None \
                or f'id="{section}"' not in (self.root / page).read_text(errors="replace"):
            return None
        return f"{href}#{section}"


REPORT_DEPTH = 2  # reports/compare/NAME/compare.html: the report is two folders up


def _load_rows(runs: Sequence[StoredRun], comparison: Comparison) -> list[dict[str, Any]]:
    """The comparability table's rows of run conditions, flagged where a candidate's differ."""
    cells = [_load_cells(run) for run in runs]
    differs = {what: any(d.what == what for c in comparison.candidates for d in c.load)
               for what in ("other work", "steal")}
    return [{"key": "other work", "description": "CPUs kept busy by anything but alloclab and "
             "its probes during the run (load recorded around it)",
             "confounds": differs["other work"], "cells": [c["other_work"] for c in cells]},
            {"key": "steal", "description": "share of CPU time the hypervisor took",
             "confounds": differs["steal"], "cells": [c["steal"] for c in cells]}]


def build_compare_context(comparison: Comparison, runs: Sequence[StoredRun],
                          command: str, links: ReportLinks | None = None) -> dict[str, Any]:
    """Everything templates/compare.html shows; `runs` are the baseline then the candidates."""
    equivalence = comparison.equivalence
    links = links or ReportLinks(None, Path("."))
    candidates = []
    for candidate in comparison.candidates:
        # Largest change first: what moved most is what a reader looks for.
        rows = by_effect(candidate.rows)
        candidates.append({
            "name": candidate.run.name, "pairs": len(candidate.rows),
            "id": f"candidate-{candidate.run.machine}-{candidate.run.run_id}",
            "summary": _candidate_counts(candidate, equivalence),
            "load": candidate.load_text,
            "geometric_means": geometric_mean_texts(candidate),
            "rows": [_row_context(row, equivalence) for row in rows
                     if row.verdict in SHOWN_VERDICTS or row.regression],
            "folded": [_row_context(row, equivalence) for row in rows
                       if not (row.verdict in SHOWN_VERDICTS or row.regression)],
            "only_in_baseline": list(candidate.only_in_baseline),
            "only_in_candidate": list(candidate.only_in_candidate),
        })
    return {
        "experiment": comparison.baseline.experiment,
        "baseline": comparison.baseline.name,
        "equivalence": f"±{_percent(equivalence)}",
        "fail_above": None if comparison.fail_above is None
        else f"+{_percent(comparison.fail_above)}",
        "alpha": f"{ALPHA:g}",
        "metrics": list(comparison.metrics),
        "differences": [{"key": d.key, "description": d.description, "confounds": d.confounds,
                         "cells": list(d.values)} for d in comparison.differences],
        "confounders": len(comparison.confounders),
        "load_rows": _load_rows(runs, comparison),
        "load_differences": [{"name": c.run.name, "text": c.load_text}
                             for c in comparison.candidates if c.load],
        "index": links.index,
        "experiment_page": links.page(f"{comparison.baseline.experiment}.html"),
        "load_limits": {"cpus": f"{LOAD_DIFFERENCE_CPUS:g}", "steal": _percent(STEAL_DIFFERENCE)},
        "runs": [_run_context("baseline" if i == 0 else "candidate", run, comparison.metrics,
                              links) for i, run in enumerate(runs)],
        "candidates": candidates,
        "regressions": [{"run": ref.name, "label": row.label, "metric": row.metric,
                         "ratio": format_ratio(row), "change": change_text(row),
                         "load": row.load_difference}
                        for ref, row in _worst_first(comparison.regressions)],
        "charts": _overlay_charts(runs, comparison.metrics),
        "command": command,
    }


def _worst_first(regressions: Sequence[tuple[RunRef, MetricComparison]]
                 ) -> list[tuple[RunRef, MetricComparison]]:
    """Regressions by effect size, largest first (ties in the comparison's order)."""
    return sorted(regressions, key=lambda item: effect_size(item[1]), reverse=True)


def render_compare_html(comparison: Comparison, runs: Sequence[StoredRun], command: str,
                        out_dir: Path, templates_dir: Path) -> Path:
    """Write out_dir/compare.html and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    context = build_compare_context(comparison, runs, command, ReportLinks.find(out_dir))
    page = out_dir / "compare.html"
    page.write_text(site.render_page(templates_dir, "compare.html", **context, experiments=[]))
    return page


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(comparison: Comparison) -> str:
    """A summary fit for a pull-request comment: comparability, counts, regressions, changes."""
    equivalence = comparison.equivalence
    lines = [f"## alloclab compare: {comparison.baseline.experiment}", ""]
    names = ", ".join(f"`{c.run.name}`" for c in comparison.candidates)
    lines += [f"Baseline `{comparison.baseline.name}` against {names}. Per scenario: ratio of "
              "medians over fresh processes with a bootstrap 95% CI, Mann–Whitney U with "
              f"Benjamini–Hochberg correction at {ALPHA:g}, equivalence band "
              f"±{_percent(equivalence)}. Metrics: "
              + ", ".join(f"`{m}`" for m in comparison.metrics) + ".", ""]
    confounders = comparison.confounders
    others = [d for d in comparison.differences if not d.confounds]
    if confounders:
        lines.append(f"**Comparability:** ⚠️ {len(confounders)} confounding difference(s): "
                     + "; ".join(f"`{d.key}` ({' → '.join(d.values)})" for d in confounders)
                     + ". Differences below may come from these, not from the code alone.")
    else:
        lines.append("**Comparability:** no confounding fingerprint difference.")
    if others:
        lines.append("Also differ: " + ", ".join(f"`{d.key}`" for d in others) + ".")
    for candidate in comparison.candidates:
        if candidate.load:
            lines.append(f"⚠️ `{candidate.run.name}` was measured under different load than the "
                         f"baseline ({candidate.load_text}): a busy machine alone can make a "
                         "scenario slower.")
    lines.append("")
    if comparison.fail_above is not None:
        regressions = comparison.regressions
        if regressions:
            worst = _worst_first(regressions)
            more = len(worst) - REGRESSIONS_NAMED
            lines.append(f"❌ **{len(regressions)} regression(s) above "
                         f"+{_percent(comparison.fail_above)}:** " + "; ".join(
                             f"{row.label} `{row.metric}` {change_text(row)}, "
                             f"{format_ratio(row)}" + (f", under different load "
                                                       f"({row.load_difference})"
                                                       if row.load_difference else "")
                             for _, row in worst[:REGRESSIONS_NAMED])
                         + (f"; and {more} more" if more > 0 else "") + ".")
        else:
            lines.append(f"✅ No regression above +{_percent(comparison.fail_above)}.")
        lines.append("")
    for candidate in comparison.candidates:
        lines += [f"### `{candidate.run.name}`", "",
                  f"{len(candidate.rows)} scenario × metric pairs: "
                  f"{_candidate_counts(candidate, equivalence)}.", ""]
        means = geometric_mean_texts(candidate)
        if means:
            lines += ["Geometric mean of the ratios: " + "; ".join(means) + ".", ""]
        # Regressions first, so the rows a CI gate failed on are always among those shown;
        # then by verdict, and within each the largest change first.
        changed = sorted((row for row in by_effect(candidate.rows) if row.verdict != "same"),
                         key=lambda r: (not r.regression, VERDICTS.index(r.verdict)))
        if changed:
            lines += ["| scenario | metric | baseline | candidate | change | ratio (95% CI) | "
                      "p (BH) | verdict |", "|---|---|---|---|---|---|---|---|"]
            for row in changed[:MARKDOWN_ROWS]:
                cells = [row.label, f"`{row.metric}`",
                         format_value(row.metric, row.baseline_median),
                         format_value(row.metric, row.candidate_median),
                         change_cell(row), format_ratio(row), format_p(row.p_adjusted),
                         ("**regression** " if row.regression else "")
                         + verdict_text(row.verdict, equivalence, row.load_difference)]
                lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
            if len(changed) > MARKDOWN_ROWS:
                lines.append(f"\n… and {len(changed) - MARKDOWN_ROWS} more (every row is in the "
                             "HTML page that `alloclab compare --out DIR` writes).")
        else:
            lines.append(f"Every pair is the same within ±{_percent(equivalence)}.")
        for title, labels in (("Only in the baseline", candidate.only_in_baseline),
                              ("Only in this run", candidate.only_in_candidate)):
            if labels:
                lines += ["", f"{title}: " + ", ".join(labels) + "."]
        lines.append("")
    return "\n".join(lines)
