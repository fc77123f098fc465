"""Reports: byte-identical re-renders, a golden page, and nothing hidden."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from runner.report import permalinks, render_cache, site
from runner.report.site import check_reports, render_reports, render_site
from runner.store import folders
from tests.synthetic import COMPARE_SPEC, write_synthetic_run

TEMPLATES = Path(__file__).parents[2] / "templates"
GOLDEN = Path(__file__).parents[1] / "golden"


def _without_svg(html: str) -> str:
    """Charts are checked in test_charts; the golden file pins everything around them.

    Data checksums cover the manifest, which names the temporary spec path: they are pinned by
    test_the_report_embeds_checksum_version_and_command, not here.
    """
    html = re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", html)
    return re.sub(r"<svg.*?</svg>", "<svg/>", html, flags=re.DOTALL)


@pytest.fixture
def reports(tmp_path: Path, small_spec: Path) -> Path:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, crash=("mmap-anon 1MiB", 2))
    out = tmp_path / "reports"
    render_reports(results, out, TEMPLATES)
    return out


def test_rendering_twice_gives_identical_bytes(reports: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    render_reports(tmp_path / "results", again, TEMPLATES)
    written = sorted(p.relative_to(reports) for p in reports.rglob("*") if p.is_file())
    assert Path("data/small/test-machine.csv") in written
    for name in written:
        assert (reports / name).read_bytes() == (again / name).read_bytes(), name


def test_pages_match_golden(reports: Path, request: pytest.FixtureRequest) -> None:
    for name in ("index.html", "small.html", "verdicts.json"):
        actual = _without_svg((reports / name).read_text())
        golden = GOLDEN / name
        if request.config.getoption("--update-golden"):
            golden.write_text(actual)
        assert actual == golden.read_text(), f"{name} differs; review, then --update-golden"


def test_experiment_page_shows_question_charts_crashes_and_machine(reports: Path) -> None:
    html = (reports / "small.html").read_text()
    assert "How do two backings compare at three sizes?" in html
    assert html.count("<svg") == 1
    assert "crashed" in html and "SIGSEGV" in html
    assert "2/3" in html  # processes ok for the crashed scenario
    assert "Test CPU" in html and "6.0.0-test" in html
    assert "http://" not in _without_svg(html) and "https://" not in _without_svg(html)


def test_the_report_embeds_checksum_version_and_command(reports: Path, tmp_path: Path) -> None:
    [run_dir] = (tmp_path / "results").glob("*/*/*")
    data = (run_dir / "manifest.json").read_bytes() + (run_dir / "samples.jsonl").read_bytes()
    html = (reports / "small.html").read_text()
    assert hashlib.sha256(data).hexdigest() in html  # `cat manifest.json samples.jsonl | sha256sum`
    assert "alloclab 0.1.0" in html and "made by <code>alloclab run</code>" in html
    assert "frequency scaling: not readable" in html


def test_noise_warnings_show_in_the_report(tmp_path: Path, small_spec: Path) -> None:
    write_synthetic_run(tmp_path / "results", small_spec, noise=0.4, seed=5)
    render_reports(tmp_path / "results", tmp_path / "reports", TEMPLATES)
    html = (tmp_path / "reports" / "small.html").read_text()
    assert "Noise warnings" in html and "varies by more than 10% (robust CV)" in html


def test_verdicts_json_holds_every_check_with_its_pairs(reports: Path) -> None:
    data = json.loads((reports / "verdicts.json").read_text())
    assert data["format"] == 2
    timing, faults = data["verdicts"]
    assert (timing["experiment"], timing["machine"], timing["run_id"]) == (
        "small", "test-machine", "20260101T000000Z")
    assert timing["status"] == "inconclusive" and timing["method"] == "statistical"
    assert timing["counts"] == {"holds": 0, "contradicts": 0, "undecided": 3}
    assert all(pair["interval"] is None for pair in timing["pairs"])  # 3 processes: none
    assert [(p["candidate_n"], p["reference_n"]) for p in timing["pairs"]] == [
        (3, 3), (3, 3), (2, 3)]
    assert faults["status"] == "holds" and faults["method"] == "exact"
    assert faults["where"] == "size from 64KiB"
    assert [p["where"] for p in faults["pairs"]] == ["size=64KiB", "size=1MiB"]
    assert faults["pairs"][0] | {"candidate": "", "reference": ""} == {
        "where": "size=64KiB", "candidate": "", "reference": "", "outcome": "holds",
        "measure": "ratio", "estimate": 1.0, "interval": [1.0, 1.0], "coverage": None,
        "candidate_median": 1.0, "reference_median": 1.0, "candidate_minimum": 1.0,
        "reference_minimum": 1.0, "candidate_n": 3, "reference_n": 0, "design": "exact",
        "rounds": 6, "look": 0, "looks": 0, "confidence": None,
        "stop": {"reason": "exact", "text": "exact: 6 samples"}}
    # Three paired rounds give no interval at any look; the run measured no more.
    assert [(p["design"], p["rounds"], p["stop"]["reason"]) for p in timing["pairs"]] == [
        ("paired", 3, "measured"), ("paired", 3, "measured"), ("paired", 2, "measured")]


def test_index_summarises_verdicts_with_a_noise_floor_on_the_page(
        tmp_path: Path, small_spec: Path) -> None:
    # eight rounds: the fewest that give an interval at the first of four looks (98.75%)
    small_spec.write_text(small_spec.read_text().replace("processes: 3", "processes: 8"))
    write_synthetic_run(tmp_path / "results", small_spec)
    render_reports(tmp_path / "results", tmp_path / "reports", TEMPLATES)
    index = (tmp_path / "reports" / "index.html").read_text()
    assert '<span class="verdict holds">2 holds</span>' in index
    assert re.search(r'<a class="verdict holds" href="small\.html#v-test-machine--the-first-'
                     r'touch-of-a-page-costs-the-same-[0-9a-f]{6}" title="test-machine: holds '
                     r'\(3 of 3\)">holds</a>', index)
    page = (tmp_path / "reports" / "small.html").read_text()
    assert re.search(r"differences below ±\d+% cannot be told apart here", page)
    assert "min 245 ns vs 245 ns, n 8/8; decided at look 1 of 4, 8 paired rounds" in page


def test_a_reworded_claim_keeps_its_earlier_links(tmp_path: Path, small_spec: Path) -> None:
    """`formerly` keeps the ids of a claim's earlier words as anchors in its row: a link made
    before the rewording still leads to it. Words another claim has now are that claim's."""
    old = "A page first touched costs the same from mmap as from malloc"
    taken = "From 64 KiB up, the first touch of an mmap page faults exactly once"
    small_spec.write_text(small_spec.read_text().replace(
        "    reference: {backing: malloc}\n",
        f"    reference: {{backing: malloc}}\n    formerly: [{old}, {taken}]\n", 1))
    write_synthetic_run(tmp_path / "results", small_spec)
    render_reports(tmp_path / "results", tmp_path / "reports", TEMPLATES)
    page = (tmp_path / "reports" / "small.html").read_text()
    (row,) = re.findall(r'<tr id="v-test-machine--the-first-touch-of-a-page-costs-the-same-'
                        r'[0-9a-f]{6}">.*?</tr>', page, flags=re.DOTALL)
    former = f"v-test-machine--{permalinks.claim_key('small', old)}"
    assert f'<span id="{former}"></span>' in row
    assert page.count(f'id="v-test-machine--{permalinks.claim_key("small", taken)}"') == 1


def _two_experiments(tmp_path: Path, small_spec: Path) -> Path:
    """results/ with the small experiment and a second one (`cmp`), for the render cache."""
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec)
    compare_spec = tmp_path / "cmp.yaml"
    compare_spec.write_text(COMPARE_SPEC)
    write_synthetic_run(results, compare_spec)
    return results


def test_a_second_render_keeps_every_page_and_a_new_run_re_renders_its_page_and_the_index(
        tmp_path: Path, small_spec: Path) -> None:
    results = _two_experiments(tmp_path, small_spec)
    out = tmp_path / "reports"
    first = render_site(results, out, TEMPLATES)
    assert [p.name for p in first.rendered] == ["cmp.html", "small.html"]
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in first.pages}
    assert "data/cmp/test-machine.csv" in before
    assert render_site(results, out, TEMPLATES).rendered == []
    assert {p.relative_to(out).as_posix(): p.read_bytes() for p in first.pages} == before
    # A newer run of one experiment (as `alloclab run small.yaml` stores): its page only.
    write_synthetic_run(results, small_spec, run_id="20260102T000000Z", scale=2.0)
    again = render_site(results, out, TEMPLATES)
    assert [p.name for p in again.rendered] == ["small.html"]
    assert (out / "cmp.html").read_bytes() == before["cmp.html"]
    assert (out / "small.html").read_bytes() != before["small.html"]
    assert "20260102T000000Z" in (out / "index.html").read_text()
    # What was kept and what was rendered anew is exactly what a full render gives.
    fresh = tmp_path / "fresh"
    render_reports(results, fresh, TEMPLATES)
    for page in again.pages:
        name = page.relative_to(out)
        assert page.read_bytes() == (fresh / name).read_bytes(), name
    assert check_reports(results, out, TEMPLATES) == []


def test_a_page_changed_by_hand_or_new_templates_are_rendered_again(
        tmp_path: Path, small_spec: Path) -> None:
    results = _two_experiments(tmp_path, small_spec)
    out = tmp_path / "reports"
    render_site(results, out, TEMPLATES)
    (out / "cmp.html").write_text("edited")
    assert [p.name for p in render_site(results, out, TEMPLATES).rendered] == ["cmp.html"]
    (out / "data" / "small" / "test-machine.csv").unlink()  # a page's data file is the page's
    assert [p.name for p in render_site(results, out, TEMPLATES).rendered] == ["small.html"]
    assert (out / "data" / "small" / "test-machine.csv").is_file()
    templates = tmp_path / "templates"
    shutil.copytree(TEMPLATES, templates)
    with open(templates / "experiment.html", "a") as page:
        page.write("\n")
    assert len(render_site(results, out, templates).rendered) == 2
    (out / render_cache.CACHE_FILE).write_text("not json")
    assert len(render_site(results, out, templates).rendered) == 2


def test_a_page_costs_its_samples_bytes_and_its_charts(tmp_path: Path, small_spec: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "results", small_spec)
    job = site._PageJob("small", (run_dir,), ("x",), TEMPLATES)
    charts_drawn = len(folders.experiment_of(site.load_run(run_dir)).charts)
    assert charts_drawn > 0
    assert site._cost(job) == ((run_dir / "samples.jsonl").stat().st_size
                                 + site.CHART_COST_BYTES * charts_drawn)
    (run_dir / "manifest.json").write_text("{")  # found out, and said, when rendered
    assert site._cost(job) == 0


def test_pages_rendered_in_parallel_are_those_rendered_one_by_one(
        tmp_path: Path, small_spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _two_experiments(tmp_path, small_spec)
    render_reports(results, tmp_path / "parallel", TEMPLATES)
    monkeypatch.setattr(site, "RENDER_PROCESSES", 1)
    render_reports(results, tmp_path / "serial", TEMPLATES)
    serial = tmp_path / "serial"
    for page in sorted(p for p in serial.rglob("*") if p.is_file()):
        name = page.relative_to(serial)
        assert page.read_bytes() == (tmp_path / "parallel" / name).read_bytes(), name


def test_the_check_compares_the_data_files_and_finds_stale_ones(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec)
    out = tmp_path / "reports"
    render_reports(results, out, TEMPLATES)
    assert check_reports(results, out, TEMPLATES) == []
    data = out / "data" / "small" / "test-machine.csv"
    data.write_text(data.read_text().replace("first_touch_ns_per_page", "x", 1))
    (out / "data" / "gone").mkdir()
    (out / "data" / "gone" / "old-machine.csv").write_text("experiment\n")
    assert check_reports(results, out, TEMPLATES) == [
        f"{data}: differs from what the results render",
        f"{out / 'data' / 'gone' / 'old-machine.csv'}: not produced by the results (stale)"]
