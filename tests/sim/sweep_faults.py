"""A scripted commons rule that raises, for the sweep tests' failing runs.

The sweep imports it (``imports: [tests.sim.sweep_faults]``) in the driver and in every
Ray worker, as it would a user's own rules module.
"""

from __future__ import annotations

from agents.interfaces import DecisionRequest
from environments.commons.rules import RULES


@RULES.rule("faulty")
def faulty(req: DecisionRequest) -> list[float]:
    raise RuntimeError("faulty rule: deliberate failure")
