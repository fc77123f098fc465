"""Which stored run a new run may copy from instead of measuring, and what it copies: the newest
finished run of the same experiment on this machine, in this boot, with the same probe,
repetitions and conditions; only the scenarios it measured completely. Results from another
boot are never reused. When that run holds everything of the same spec, there is nothing to
measure, and a run says so before its plan."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from runner.core.choices import FILE_BACKINGS
from runner.core.model import Plan, ProcessRecord, Repetitions
from runner.machine import system
from runner.machine.kernel_files import read_text
from runner.spec import load
from runner.store import folders, select

if TYPE_CHECKING:
    pass


def reusable_records(plan: Plan, source: folders.StoredRun, repetitions: Repetitions
                      ) -> tuple[dict[str, str], list[ProcessRecord]]:
    """Records a new run copies from `source` instead of measuring: {scenario id: origin run
    id} (the run that measured it, not one that copied it), records; those of the scenarios
    `source` measured completely that are still in the plan: a spec change reruns only what
    it changed."""
    complete = select.complete_scenarios(source, [s.id for s in plan.scenarios],
                                         repetitions.processes)
    origins = source.manifest.get("reused_from", {})
    return ({sid: origins.get(sid, source.run_id) for sid in complete},
            [record for records in complete.values() for record in records])


def reuse_source(plan: Plan, results_dir: Path, machine: str, repetitions: Repetitions,
                  fingerprint: dict[str, object], probe_hash: str) -> folders.StoredRun | None:
    """The run a new one may copy from: the newest finished run of the same experiment on
    this machine, in this boot, with the same probe, the same repetitions and no confounding
    fingerprint difference; None when there is none. Results from another boot (another copy
    of the machine, or a fresh one with the same host name) are never reused: there,
    `alloclab run` measures."""
    for earlier in select.finished_runs(results_dir, machine, plan.spec.name):
        manifest = earlier.manifest
        if (manifest.get("fingerprint", {}).get("boot_id") != fingerprint.get("boot_id")
                or fingerprint.get("boot_id") is None
                or manifest.get("probe", {}).get("source_hash") != probe_hash
                or manifest.get("repetitions") != asdict(repetitions)
                or system.confounding_differences(manifest.get("fingerprint", {}),
                                                   fingerprint)):
            continue
        return earlier
    return None


def holds_all_of(source: folders.StoredRun, plan: Plan, repetitions: Repetitions) -> bool:
    """Whether a new run would copy `source` entirely: the same spec text word for word (so
    the same charts and checks) and the same scenarios, each measured completely; then
    nothing is left to measure or to judge anew."""
    if source.manifest.get("spec_text") != load.read_spec_text(Path(plan.spec.source)):
        return False
    ids = [s.id for s in plan.scenarios]
    if [s["id"] for s in source.manifest["scenarios"]] != ids:
        return False
    return len(select.complete_scenarios(source, ids, repetitions.processes)) == len(ids)


def already_measured(plan: Plan, results_dir: Path, machine: str, repetitions: Repetitions,
                     probe_hash: str, *, resume: bool) -> folders.StoredRun | None:
    """The finished run that already holds everything a run of `plan` would measure (as
    runner.measure.pipeline.run_plan decides it: an unfinished run to resume comes first), so
    that a run can say so before its plan; None when there is something to measure."""
    if not _may_hold_all(plan, results_dir, machine, repetitions, probe_hash):
        return None
    if resume and select.find_resumable(results_dir, machine, plan.spec.name,
                                        plan.spec.measurement_hash, probe_hash,
                                        repetitions) is not None:
        return None
    file_dirs = {s.file_dir for s in plan.scenarios if s.backing in FILE_BACKINGS}
    fingerprint = system.read_fingerprint(spec_path=Path(plan.spec.source), file_dirs=file_dirs)
    source = reuse_source(plan, results_dir, machine, repetitions, fingerprint, probe_hash)
    return source if source is not None and holds_all_of(source, plan, repetitions) else None


def _may_hold_all(plan: Plan, results_dir: Path, machine: str, repetitions: Repetitions,
                  probe_hash: str) -> bool:
    """A first look at the manifests alone, before reading any run whole: is there a finished
    run of this boot, with the same probe, repetitions and spec text? (Reading every stored run
    of every experiment took 5 s for the committed suite, to find none.)"""
    boot = read_text(system.BOOT_ID_PATH)
    spec_text = load.read_spec_text(Path(plan.spec.source))
    for manifest_path in (results_dir / machine / plan.spec.name).glob(f"*/{folders.MANIFEST}"):
        manifest = select.peek_manifest(manifest_path.parent) or {}
        fingerprint, probe = manifest.get("fingerprint"), manifest.get("probe")
        if (manifest.get("finished_utc") and boot is not None
                and isinstance(fingerprint, dict) and fingerprint.get("boot_id") == boot
                and isinstance(probe, dict) and probe.get("source_hash") == probe_hash
                and manifest.get("repetitions") == asdict(repetitions)
                and manifest.get("spec_text") == spec_text):
            return True
    return False


def nothing_to_measure(experiment: str, source: folders.StoredRun) -> str:
    """What the console says of an experiment `source` already holds whole."""
    return (f"{experiment}: nothing to measure: run {source.run_id} measured all of this spec "
            "in this boot (same probe, repetitions and conditions); --fresh measures again")
