"""Whether a process lives: the test of every sweep of what a killed run left behind (memory
cgroups, shared memory names), which removes only what a process that is gone made."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while a process with this pid exists, another user's included (signal 0 is not
    allowed to it, but it is there); a pid reused since is taken as alive, so kept."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
