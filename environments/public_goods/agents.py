"""The public-goods game's agent: a group member with this round's contribution and payoff parts."""

from __future__ import annotations

from typing import Any

from agents.agent import SocietyAgent


class Member(SocietyAgent):
    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.group_index = 0  # this round's group
        self.contribution = 0  # this round's tokens into the project
        self.first_stage = 0.0  # endowment - c_i + mpcr * group total
        self.points_received = 0  # punishment points received this round
        self.points_given = 0  # punishment points assigned this round
        self.deduction = 0.0  # tokens punishment took this round (after the floor)
        self.cost = 0.0  # tokens this member paid for its points this round
        # last round, as the member saw it (None before round 1)
        self.last_others_mean: float | None = None
        self.last_contribution: int | None = None
        self.last_points_received = 0
