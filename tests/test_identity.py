"""A machine label cannot silently hold two machines: refused unless the label is explicit."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner import cli, pipeline
from runner.errors import UsageError
from runner.identity import check_label, identity_differences, suggest_label
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


def test_a_run_of_another_machine_under_a_defaulted_label_is_refused_in_one_line(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm")
    with pytest.raises(UsageError) as refused:
        check_label(results, "vm", EPYC, explicit=False)
    message = str(refused.value)
    assert "\n" not in message
    assert "--machine vm-epyc" in message
    assert "'AMD EPYC 7B13 64-Core Processor' here, 'Test CPU' there" in message
    assert "small/20260101T000000Z" in message


def test_the_same_machine_an_explicit_label_or_an_empty_label_proceed(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm")
    check_label(results, "vm", FINGERPRINT, explicit=False)
    check_label(results, "vm", EPYC, explicit=True)
    check_label(results, "other", EPYC, explicit=False)
    check_label(tmp_path / "no-results-yet", "vm", EPYC, explicit=False)


def test_the_newest_run_under_the_label_is_the_machine_it_names(
        tmp_path: Path, small_spec: Path) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm", run_id="20260101T000000Z")
    write_synthetic_run(results, small_spec, machine="vm", run_id="20260102T000000Z",
                        fingerprint=EPYC)
    # write_synthetic_run stamps every run with the same start time: the run id breaks the tie.
    check_label(results, "vm", EPYC, explicit=False)
    with pytest.raises(UsageError, match="--machine vm-"):
        check_label(results, "vm", FINGERPRINT, explicit=False)


class _PastTheLabelCheck(Exception):
    pass


@pytest.mark.parametrize("explicit", [None, "--machine", "ALLOCLAB_MACHINE"])
def test_alloclab_run_refuses_only_a_defaulted_label(
        tmp_path: Path, small_spec: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], explicit: str | None) -> None:
    results = tmp_path / "results"
    write_synthetic_run(results, small_spec, machine="vm")
    monkeypatch.setattr(cli, "default_machine_label", lambda: "vm")
    monkeypatch.delenv("ALLOCLAB_MACHINE", raising=False)
    monkeypatch.setattr(pipeline, "read_fingerprint", lambda **_: EPYC)

    def stop(*_: object) -> None:  # what follows the label check: the probe is not run here
        raise _PastTheLabelCheck

    monkeypatch.setattr(pipeline, "_check_probe_runs", stop)
    args = ["run", str(small_spec), "--results", str(results), "--no-report"]
    if explicit == "--machine":
        args += ["--machine", "vm"]
    elif explicit == "ALLOCLAB_MACHINE":
        monkeypatch.setenv("ALLOCLAB_MACHINE", "vm")
    if explicit is None:
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "use --machine vm-epyc for this one" in err[0]
    else:
        with pytest.raises(_PastTheLabelCheck):
            cli.main(args)
