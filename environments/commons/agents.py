"""The commons' agent: a fisher with a wallet, a catch record and a norm belief."""

from __future__ import annotations

from typing import Any

from agents.agent import SocietyAgent


class Fisher(SocietyAgent):
    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.catch = 0.0  # this round's catch
        self.total_catch = 0.0
        self.fines_paid = 0.0
        self.punish_costs = 0.0
        self.effort = 0.0
