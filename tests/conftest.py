"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the whole test session.

    Starting Ray takes seconds, so tests share this one; none may shut it down. Workers
    get the repository on their path so test helper modules (``tests.…``) import there
    as they do in the driver.
    """
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
        )
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="module", autouse=True)
def _hosts_do_not_outlive_their_module():
    """Model hosts a module started (a policy built under a Ray backend starts one) hold
    cluster CPUs; a later module's host that claims the whole cluster would wait forever."""
    yield
    import sys

    if "ray" in sys.modules and sys.modules["ray"].is_initialized() and "agents.host" in sys.modules:
        sys.modules["agents.host"].stop_all_hosts()
