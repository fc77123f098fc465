"""A run's folder on a target: made with a lease naming its runner, kept fresh while the run
holds it, removed at the end, and swept by the next run when its runner is gone
(runner.remote.lifetime decides which).
"""

from __future__ import annotations

import contextlib
import subprocess

from runner.remote import lifetime
from runner.remote.ssh import Connection, HostError, Workspace


def open_workspace(connection: Connection) -> Workspace:
    """Make the per-run directory, its lease naming this runner, and learn the cache directory
    and architecture."""
    script = ('uname -m && d="${XDG_CACHE_HOME:-$HOME/.cache}/alloclab" && mkdir -p "$d" && '
              'printf "%s\\n" "$d" && r=$(mktemp -d "$1/alloclab-run.XXXXXXXX") && '
              'printf "%s\\n" "$2" >"$r/lease" && printf "%s\\n" "$r"')
    out = connection.check_output(["sh", "-c", script, "sh", connection.host.work_dir,
                                   lifetime.current_runner()],
                                  "preparing the run directory").splitlines()
    if len(out) != 3:
        raise HostError(f"{connection.host.label}: unexpected answer preparing the run "
                        f"directory: {out!r}")
    return Workspace(run_dir=out[2], cache_dir=out[1], machine=out[0])


def sweep_run_dirs(connection: Connection) -> list[str]:
    """Remove the run folders under the host's work_dir whose runner is gone (lifetime
    .stale_run_dirs: a lease older than LEASE_STALE_S, or a runner of this machine that died);
    the removed folders' paths."""
    minutes = int(lifetime.LEASE_STALE_S // 60)
    script = ('cd "$1" 2>/dev/null || exit 0; for d in alloclab-run.*; do '
              '[ -d "$d" ] || continue; f="$d/lease"; [ -f "$f" ] || f="$d"; '
              's=0; [ -n "$(find "$f" -prune -mmin +"$2" 2>/dev/null)" ] && s=1; '
              'printf "%s %s %s\\n" "$d" "$s" "$(head -n 1 "$d/lease" 2>/dev/null)"; done')
    work_dir = connection.host.work_dir
    listing = connection.check_output(["sh", "-c", script, "sh", work_dir, str(minutes)],
                                      "looking for run folders left by killed runs")
    stale = [f"{work_dir.rstrip('/')}/{name}" for name in lifetime.stale_run_dirs(listing)]
    if stale:
        connection.check_output(["rm", "-rf", "--", *stale], "removing run folders left "
                                "by killed runs")
    return stale


def refresh_lease(connection: Connection, workspace: Workspace) -> None:
    """Tell other runners this run still holds its folder (the lease's time)."""
    connection.run(["touch", "--", f"{workspace.run_dir}/lease"], timeout_s=30)


def remove_workspace(connection: Connection, workspace: Workspace) -> bool:
    """Remove the per-run directory; False when the host could not be reached to do it."""
    with contextlib.suppress(HostError, subprocess.TimeoutExpired, OSError):
        connection.open()
        connection.check_output(["rm", "-rf", "--", workspace.run_dir],
                                "removing the run directory")
        return True
    return False
