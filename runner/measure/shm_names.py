"""POSIX shared memory names a killed probe left in /dev/shm, removed by the next run.

The probe unlinks each name it makes as soon as the object is open on both sides (shm blocks
right after shm_open; workload ipc once its peer has it), so a name outlives its probe only when
the probe is killed in that window. Names say whose they are, alloclab-[ipc-]<probe pid>-<n>:
a name whose probe is gone is removed; one whose pid is alive is left, whoever holds it now.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from runner.machine import processes

SHM_DIR = Path("/dev/shm")
_NAME = re.compile(r"^alloclab-(?:ipc-)?(\d+)-\d+$")


def sweep(folder: Path = SHM_DIR) -> list[str]:
    """Remove the names of probes that are gone; the names removed."""
    removed = []
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            found = _NAME.match(path.name)
            if found and not processes.alive(int(found.group(1))):
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path.name)
    return sorted(removed)
