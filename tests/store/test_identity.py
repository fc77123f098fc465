"""A machine label cannot silently hold two machines: a defaulted one gets a label of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.cli import commands, main
from runner.measure import pipeline
from runner.store.identity import choose_label, identity_differences, suggest_label
from tests.synthetic import FINGERPRINT, write_synthetic_run

EPYC = {**FINGERPRINT, "cpu_model": "AMD EPYC 7B13 64-Core Processor"}


def test_identity_facts_that_differ_are_named_and_unknown_ones_are_not() -> None:
    assert identity_differences(FINGERPRINT, FINGERPRINT) == []
    assert identity_differences(FINGERPRINT, EPYC) == ["cpu_model"]
    other = {**FINGERPRINT, "kernel": "6.1.0", "thp_enabled": "always", "libc": "glibc 2.41"}
    assert identity_differences(FINGERPRINT, other) == ["kernel", "libc", "thp_enabled"]
    # An older run that did not record a fact: unknown, not different.
    assert identity_differences({"cpu_model": "Test CPU"}, other) == []
    # Neither the allocator environment nor the filesystems: one machine varies them on purpose.
    assert identity_differences(FINGERPRINT, {**FINGERPRINT, "allocator_env": {"X": "1"},
                                              "file_fs": {"/tmp": "tmpfs"}}) == []


def test_memory_size_differs_beyond_what_one_machine_moves_between_boots() -> None:
    memory = FINGERPRINT["memory_bytes"]
    assert identity_differences(FINGERPRINT, {**FINGERPRINT, "memory_bytes": memory - (8 << 20)}
                                ) == []
    assert identity_differences(FINGERPRINT, {**FINGERPRINT, "memory_bytes": memory * 2}
                                ) == ["memory_bytes"]


def test_the_suggested_label_says_what_sets_the_machine_apart_and_is_free() -> None:
    assert suggest_label("vm", ["cpu_model"], EPYC, set()) == "vm-epyc"
    xeon = {"cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz", "kernel": "6.1.0-9-amd64"}
    assert suggest_label("vm", ["cpu_model"], xeon, {"vm"}) == "vm-xeon"
    assert suggest_label("vm", ["kernel"], xeon, set()) == "vm-6.1.0"
    assert suggest_label("vm", ["cpu_model"], EPYC, {"vm-epyc", "vm-epyc-2"}) == "vm-epyc-3"


def test_another_machine_under_a_defaulted_label_gets_a_label_of_its_own(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm")
    label, notice = choose_label(results, "vm", EPYC, explicit=False)
    assert label == "vm-epyc"
    assert notice is not None and "\n" not in notice
    assert "'AMD EPYC 7B13 64-Core Processor' here, 'Test CPU' there" in notice
    assert "small/20260101T000000Z" in notice and "results/vm-epyc" in notice
    # Its second run goes where its first went: vm-epyc holds this machine's runs now.
    write_synthetic_run(results, small_spec, machine="vm-epyc", fingerprint=EPYC)
    assert choose_label(results, "vm", EPYC, explicit=False)[0] == "vm-epyc"
    # A third machine, of yet another kind, is kept apart from both.
    other = {**EPYC, "kernel": "6.1.0-18-amd64"}
    assert choose_label(results, "vm", other, explicit=False)[0] == "vm-epyc-2"


def test_the_same_machine_an_explicit_label_or_an_empty_label_keep_it(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm")
    assert choose_label(results, "vm", FINGERPRINT, explicit=False) == ("vm", None)
    assert choose_label(results, "vm", EPYC, explicit=True) == ("vm", None)
    assert choose_label(results, "other", EPYC, explicit=False) == ("other", None)
    assert choose_label(tmp_path / "no-results-yet", "vm", EPYC, explicit=False) == ("vm", None)


def test_the_newest_run_under_the_label_is_the_machine_it_names(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm", run_id="20260101T000000Z")
    write_synthetic_run(results, small_spec, machine="vm", run_id="20260102T000000Z",
                        fingerprint=EPYC)
    # write_synthetic_run stamps every run with the same start time: the run id breaks the tie.
    assert choose_label(results, "vm", EPYC, explicit=False)[0] == "vm"
    assert choose_label(results, "vm", FINGERPRINT, explicit=False)[0].startswith("vm-")


class _PastTheLabelCheck(Exception):
    pass


@pytest.mark.parametrize("explicit", [None, "--machine", "ALLOCLAB_MACHINE"])
def test_alloclab_run_moves_only_a_defaulted_label(
        tmp_path: Path, small_spec: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], explicit: str | None) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm")
    # run takes its default label in runner.cli.commands, the parser's help in runner.cli.main
    monkeypatch.setattr(commands, "default_machine_label", lambda: "vm")
    monkeypatch.setattr(main, "default_machine_label", lambda: "vm")
    monkeypatch.delenv("ALLOCLAB_MACHINE", raising=False)
    monkeypatch.setattr(pipeline, "read_fingerprint", lambda **_: EPYC)
    labels: list[str] = []

    def stop(_: object, options: pipeline.RunOptions) -> None:  # what follows the label
        labels.append(options.machine)
        raise _PastTheLabelCheck

    monkeypatch.setattr(pipeline, "_check_probe_runs", stop)
    args = ["run", str(small_spec), "--results", str(results), "--no-report"]
    if explicit == "--machine":
        args += ["--machine", "vm"]
    elif explicit == "ALLOCLAB_MACHINE":
        monkeypatch.setenv("ALLOCLAB_MACHINE", "vm")
    with pytest.raises(_PastTheLabelCheck):
        main.main(args)
    assert labels == ["vm" if explicit else "vm-epyc"]
    if explicit is None:
        assert "this machine's runs go under" in capsys.readouterr().err


def test_the_newest_run_is_the_one_started_last_not_the_last_named(tmp_path: Path) -> None:
    from runner.store import folders, identity
    from tests.synthetic import SMALL_SPEC

    spec_path = tmp_path / "small.yaml"
    spec_path.write_text(SMALL_SPEC)
    results = tmp_path / "results"
    # "zz" sorts after the timestamp, but started a day earlier
    for run_id, started in (("zz", "2026-01-01T00:00:00Z"),
                            ("20260102T000000Z", "2026-01-02T00:00:00Z")):
        run_dir = write_synthetic_run(results, spec_path, run_id=run_id)
        folders.write_manifest(run_dir, {**folders.read_manifest(run_dir), "started_utc": started})
    newest = identity._newest_manifest(results, "test-machine")
    assert newest is not None and newest["run_id"] == "20260102T000000Z"
    # an unreadable newest manifest is passed over for the next
    (results / "test-machine" / "small" / "20260102T000000Z" / folders.MANIFEST).write_text(
        '{"started_utc": "2027-01-01T00:00:00Z", "run_id": "20260102T000000Z"}')
    newest = identity._newest_manifest(results, "test-machine")
    assert newest is not None and newest["run_id"] == "zz"
