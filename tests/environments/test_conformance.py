"""Every registered environment passes the conformance suite (sim.testing)."""

from __future__ import annotations

import pytest

import environments
from sim.testing import check_environment


@pytest.mark.parametrize("name", environments.names())
def test_environment_conforms(name, tmp_path):
    check_environment(name, tmp_path)
