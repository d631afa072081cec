"""What every environment's model gets from the shared base (environments.base)."""

from __future__ import annotations

import gc

import pytest

import environments
from sim.bench.scale import build


@pytest.mark.parametrize("enabled", [True, False])
def test_a_step_runs_with_the_cyclic_collector_paused_and_restores_it(monkeypatch, enabled):
    """The step's containers are freed by reference counting; the collector, paused
    inside the step, is as it was afterwards (left off if the caller had turned it off)."""
    cls = environments.get("bandit").model
    seen: list[bool] = []
    inner = cls.step
    monkeypatch.setattr(cls, "step", lambda self: seen.append(gc.isenabled()) or inner(self))
    model = build("bandit", 8)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        model.step()
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert seen == [False]
    assert after is enabled
    assert int(model.steps) == 1


def test_every_environment_steps_through_the_shared_wrapper():
    from environments.base import SocietyModel

    for name in environments.names():
        assert environments.get(name).model._wrapped_step is SocietyModel._wrapped_step
