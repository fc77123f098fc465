"""A stored run judged with a spec edited after it: only checks, charts and words may change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.core.errors import StoreError
from runner.core.model import ExperimentSpec
from runner.spec import load
from runner.store import folders, judged_with
from runner.store.judged_with import JUDGED_WITH
from tests.synthetic import SMALL_SPEC, write_synthetic_run

NEW_CLAIM = "mmap's first touch costs twice malloc's"
EDITED_CHECKS = SMALL_SPEC.replace(
    "The first touch of a page costs the same from mmap as from malloc", NEW_CLAIM)
MORE_SIZES = SMALL_SPEC.replace("size: [4KiB, 64KiB, 1MiB]", "size: [4KiB, 64KiB, 1MiB, 16MiB]")


@pytest.fixture
def run(tmp_path: Path) -> folders.StoredRun:
    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    run_dir = write_synthetic_run(tmp_path / "results", spec_path)
    return folders.StoredRun(run_dir, folders.read_manifest(run_dir), ())


def _spec(tmp_path: Path, text: str) -> tuple[ExperimentSpec, str]:
    path = tmp_path / "edited" / "small.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return load.load_spec(path), text


def _judge(run: folders.StoredRun, spec: ExperimentSpec, text: str
           ) -> judged_with.Judging:
    return judged_with.judge_with(run.path, folders.spec_as_run(run), spec, text,
                                  "2026-12-07T12:00:00Z")


def test_an_edited_check_is_stored_and_judges_the_run(run: folders.StoredRun,
                                                      tmp_path: Path) -> None:
    spec, text = _spec(tmp_path, EDITED_CHECKS)
    assert _judge(run, spec, text) == judged_with.Judging("judged again", ("checks",))
    record = json.loads((run.path / JUDGED_WITH).read_text())
    assert record == {"spec_text": text, "spec_source": spec.source,
                      "recorded_utc": "2026-12-07T12:00:00Z"}
    assert folders.experiment_of(run).checks[0].claim == NEW_CLAIM
    assert folders.spec_as_run(run).checks[0].claim != NEW_CLAIM  # the manifest is untouched
    # The same edit again stores nothing new; the spec as run again removes the record.
    assert _judge(run, spec, text).outcome == "unchanged"
    as_run, original = _spec(tmp_path, SMALL_SPEC)
    assert _judge(run, as_run, original) == judged_with.Judging("judged again", ("checks",))
    assert not (run.path / JUDGED_WITH).exists()
    assert _judge(run, as_run, original).outcome == "as run"


def test_a_spec_that_measures_more_is_not_stored(run: folders.StoredRun, tmp_path: Path) -> None:
    spec, text = _spec(tmp_path, MORE_SIZES)
    assert _judge(run, spec, text) == judged_with.Judging("measures more", ("matrix",))
    assert not (run.path / JUDGED_WITH).exists()
    assert folders.experiment_of(run).hash == folders.spec_as_run(run).hash


def test_a_stored_record_that_changes_what_was_measured_is_refused(
        run: folders.StoredRun) -> None:
    (run.path / JUDGED_WITH).write_text(json.dumps(
        {"spec_text": MORE_SIZES, "spec_source": "x.yaml", "recorded_utc": "now"}))
    with pytest.raises(StoreError, match=r"changes what the run measured \(matrix\)"):
        folders.experiment_of(run)


@pytest.mark.parametrize("content, error", [
    ("{not json", "not JSON"),
    (json.dumps({"spec_text": 3, "spec_source": "x", "recorded_utc": "y"}), "expected an object"),
    (json.dumps({"spec_text": "name: [", "spec_source": "x", "recorded_utc": "y"}),
     "judged-with spec invalid"),
])
def test_a_damaged_record_is_a_store_error(run: folders.StoredRun, content: str,
                                           error: str) -> None:
    (run.path / JUDGED_WITH).write_text(content)
    with pytest.raises(StoreError, match=error):
        folders.experiment_of(run)


def test_the_render_inputs_change_with_the_record(run: folders.StoredRun, tmp_path: Path) -> None:
    data = folders.data_checksum(run.path)
    assert judged_with.inputs_checksum(run.path, data) == data
    spec, text = _spec(tmp_path, EDITED_CHECKS)
    _judge(run, spec, text)
    assert judged_with.inputs_checksum(run.path, data) != data
    assert folders.data_checksum(run.path) == data  # the data's own checksum stays
