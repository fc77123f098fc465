"""The index's claims × machines grid: one row per claim, disagreements flagged, quick runs
marked and left out of the counts (runner.report.grid, templates/index.html)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.report.grid import disagrees
from runner.report.site import render_reports
from tests.synthetic import FINGERPRINT, SMALL_SPEC, write_synthetic_run

TEMPLATES = Path(__file__).parents[2] / "templates"
TIMING_CLAIM = "The first touch of a page costs the same from mmap as from malloc"
FAULT_CLAIM = "From 64 KiB up, the first touch of an mmap page faults exactly once"


def _machine(name: str) -> dict[str, object]:
    return {**FINGERPRINT, "cpu_model": f"CPU of {name}"}


@pytest.fixture
def three_machines(tmp_path: Path) -> Path:
    """Three machine labels; on `gamma`, eight processes decide the timing claim ("holds")
    that three leave inconclusive on `alpha` and `beta`; `delta` is a quick run."""
    results = tmp_path / "results"
    (tmp_path / "small.yaml").write_text(SMALL_SPEC)
    (tmp_path / "eight.yaml").write_text(SMALL_SPEC.replace("processes: 3", "processes: 8"))
    for name, spec in (("alpha", "small.yaml"), ("beta", "small.yaml"),
                       ("gamma", "eight.yaml")):
        write_synthetic_run(results, tmp_path / spec, machine=name, fingerprint=_machine(name))
    write_synthetic_run(results, tmp_path / "eight.yaml", machine="delta",
                        fingerprint=_machine("delta"), manifest_extra={"profile": "reduced"})
    render_reports(results, tmp_path / "reports", TEMPLATES)
    return tmp_path / "reports"


def _table(index: str, heading_id: str) -> str:
    start = index.index(f'id="{heading_id}"')
    return index[start:index.index("</table>", start)]


def test_three_machines_give_one_row_per_claim(three_machines: Path) -> None:
    index = (three_machines / "index.html").read_text()
    grid = _table(index, "grid")
    rows = re.findall(r'<tr class="claim[^"]*" id="claim-([^"]+)">', grid)
    assert len(rows) == 2  # two claims, whatever the number of machines
    assert re.findall(r"<th>(\w+)</th>", grid) == ["claim", "alpha", "beta", "delta", "gamma"]
    assert grid.count('class="verdict ') == 8  # 2 claims x 4 machines


def test_the_claim_machines_disagree_on_is_flagged_and_listed_first(three_machines: Path
                                                                     ) -> None:
    index = (three_machines / "index.html").read_text()
    disagreements = _table(index, "disagreements")
    assert disagreements.count('<tr class="claim disagree">') == 1
    assert TIMING_CLAIM in disagreements and FAULT_CLAIM not in disagreements
    assert index.index('id="disagreements"') < index.index('id="grid"')
    row = re.search(r'<tr class="claim disagree" id="claim-[^"]+">.*?</tr>',
                    _table(index, "grid")).group(0)
    assert TIMING_CLAIM in row and "≠" in row
    # each cell links to that machine's verdict row on the experiment page
    links = re.findall(r'<a class="verdict (\S+)" href="small\.html#(v-[^"]+)"', row)
    assert [status for status, _ in links] == ["inconclusive", "inconclusive", "holds",
                                               "holds"]
    page = (three_machines / "small.html").read_text()
    for _, fragment in links:
        assert f'<tr id="{fragment}">' in page


def test_a_quick_run_is_marked_and_left_out_of_the_counts(three_machines: Path) -> None:
    index = (three_machines / "index.html").read_text()
    grid = _table(index, "grid")
    delta_cells = re.findall(r'href="small\.html#v-delta--[^"]+"[^>]*>\w+</a> <abbr class="quick"',
                             grid)
    assert len(delta_cells) == 2
    # full runs only: alpha 1 + beta 1 + gamma 2 hold; delta's 2 are not counted
    assert '<span class="verdict holds">4 holds</span>' in index
    assert '<span class="verdict inconclusive">2 inconclusive</span>' in index
    assert "not counted: 2 verdicts of quick runs" in index


def test_a_quick_run_alone_does_not_make_machines_disagree() -> None:
    full = {"status": "holds", "reduced": False}
    quick = {"status": "inconclusive", "reduced": True}
    no_data = {"status": "no-data", "reduced": False}
    assert not disagrees([full, quick, no_data, None])
    assert disagrees([full, {"status": "does-not-hold", "reduced": False}])


def test_a_configuration_gets_its_own_column_named_as_such(tmp_path: Path) -> None:
    results = tmp_path / "results"
    (tmp_path / "small.yaml").write_text(SMALL_SPEC)
    write_synthetic_run(results, tmp_path / "small.yaml", machine="vm")
    write_synthetic_run(results, tmp_path / "small.yaml", machine="vm-hugetlb", fingerprint={
        **FINGERPRINT, "allocator_env": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}})
    render_reports(results, tmp_path / "reports", TEMPLATES)
    index = (tmp_path / "reports" / "index.html").read_text()
    assert ('<th>vm-hugetlb<br><span class="muted">vm with GLIBC_TUNABLES=glibc.malloc.hugetlb=1'
            '</span></th>') in index
    assert "counted apart: 2 verdicts of vm, configuration GLIBC_TUNABLES" in index


def test_a_configuration_changing_a_verdict_is_told_apart_from_machines_disagreeing(
        tmp_path: Path) -> None:
    results = tmp_path / "results"
    (tmp_path / "small.yaml").write_text(SMALL_SPEC)
    (tmp_path / "eight.yaml").write_text(SMALL_SPEC.replace("processes: 3", "processes: 8"))
    write_synthetic_run(results, tmp_path / "small.yaml", machine="vm")
    write_synthetic_run(results, tmp_path / "eight.yaml", machine="vm-hugetlb", fingerprint={
        **FINGERPRINT, "allocator_env": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}})
    render_reports(results, tmp_path / "reports", TEMPLATES)
    index = (tmp_path / "reports" / "index.html").read_text()
    row = re.search(r'<tr class="claim disagree" id="claim-[^"]+">.*?</tr>', index).group(0)
    assert TIMING_CLAIM in row and "≠ configuration</span>" in row
