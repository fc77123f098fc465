"""The probe tests' fixtures, found by name in every module of this folder (running.py holds
them, so tests elsewhere can import them too)."""

from tests.probe.running import disk_dir, hierarchy, mlock_allowed, no_thp_always, probe

__all__ = ["disk_dir", "hierarchy", "mlock_allowed", "no_thp_always", "probe"]
