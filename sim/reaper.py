"""Stop a private Ray cluster's processes when the sweep driver that started it dies.

Ray ties most of a local cluster to its driver, but its dashboard and runtime-env
agents outlive a driver killed with SIGKILL (measured with Ray 2.60). The sweep driver
therefore starts this watchdog as a separate process (``python sim/reaper.py PID
SESSION_DIR``): once the driver is gone it kills every process of the user's that holds
a file open under the cluster's session folder (``/tmp/ray/session_<time>_<pid>``: every
Ray process logs there), i.e. exactly that cluster's processes. (Their environment is no
marker: Ray's process titles overwrite it.)
It exits by itself once the cluster is shut down normally. Standard library only, so
the watchdog starts fast and stays small.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 1.0
CHECK_CLUSTER_EVERY = 10  # polls between looks for the cluster's processes


def session_processes(session_dir: str) -> list[int]:
    """PIDs (of this user, not this process) with a file open under ``session_dir``."""
    prefix = session_dir.rstrip("/") + "/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            targets = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone, or another user's
            continue
        if any(t.startswith(prefix) for t in targets):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(driver: int, session_dir: str) -> None:
    polls = 0
    while _alive(driver):
        time.sleep(POLL_SECONDS)
        polls += 1
        if polls % CHECK_CLUSTER_EVERY == 0 and not session_processes(session_dir):
            return  # the driver shut its cluster down: nothing left to guard
    for pid in session_processes(session_dir):
        with contextlib.suppress(OSError):  # already gone
            os.kill(pid, signal.SIGKILL)  # SIGTERM does not stop Ray's agents


def start(session_dir: str) -> subprocess.Popen:
    """Start the watchdog for this process and the Ray cluster (its session folder) it started."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(os.getpid()), session_dir],
        start_new_session=True,  # Ctrl-C in the driver's terminal must not stop the watchdog first
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
