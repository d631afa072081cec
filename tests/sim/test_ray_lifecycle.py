"""A sweep's private Ray cluster: quiet start, and no process left after the driver is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.reaper import session_processes

REPO = Path(__file__).resolve().parents[2]

DRIVER = """
import sys, time
from agents.config import BackendConfig
from sim.sweep_exec import connect_ray
import ray
connect_ray(BackendConfig(kind="ray", workers=1))
ray.get(ray.remote(lambda: 1).options(num_cpus=0).remote())
print(ray._private.worker._global_node.get_session_dir_path(), flush=True)
time.sleep(600)
"""


def test_a_killed_sweep_driver_leaves_no_ray_process_and_starts_quietly():
    pytest.importorskip("ray")
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"} | {"PYTHONPATH": str(REPO)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        session = driver.stdout.readline().strip()
        assert session, driver.stderr.read()
        assert session_processes(session), "the cluster's processes hold files in its session folder"
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        stderr = driver.communicate(timeout=30)[1]
    assert "Token authentication" not in stderr
    deadline = time.monotonic() + 40
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(1)
    left = session_processes(session)
    for pid in left:  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"Ray processes outlived the driver: {left}"
