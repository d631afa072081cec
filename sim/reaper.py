"""Stop a private Ray cluster's processes when the sweep driver that started it dies.

Ray ties most of a local cluster to its driver, but its dashboard and runtime-env
agents outlive a driver killed with SIGKILL (measured with Ray 2.60). The sweep driver
therefore starts this watchdog as a separate process (``python sim/reaper.py PID
NODE_ID``): once the driver is gone it kills every process of the user's that carries
``RAY_NODE_ID=<node id>`` in its environment, i.e. exactly that cluster's processes.
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


def node_processes(node_id: str) -> list[int]:
    """PIDs (of this user, not this process) whose environment names the Ray node."""
    marker = f"RAY_NODE_ID={node_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        if marker in env.split(b"\0"):
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


def watch(driver: int, node_id: str) -> None:
    polls = 0
    while _alive(driver):
        time.sleep(POLL_SECONDS)
        polls += 1
        if polls % CHECK_CLUSTER_EVERY == 0 and not node_processes(node_id):
            return  # the driver shut its cluster down: nothing left to guard
    for pid in node_processes(node_id):
        with contextlib.suppress(OSError):  # already gone
            os.kill(pid, signal.SIGKILL)  # SIGTERM does not stop Ray's agents


def start(node_id: str) -> subprocess.Popen:
    """Start the watchdog for this process and the Ray node it started."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), str(os.getpid()), node_id],
        start_new_session=True,  # Ctrl-C in the driver's terminal must not stop the watchdog first
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2])
