"""The bandit's agent: a player with its own hidden arm means and its pull history."""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.agent import SocietyAgent


class Player(SocietyAgent):
    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.means = np.zeros(0)  # this agent's arm means, set by the model
        self.pulls: list[tuple[int, float]] = []  # (arm, reward) per round

    def stats(self, n_arms: int) -> tuple[list[int], list[float | None]]:
        """Pulls and sample mean reward per arm (None for an arm never pulled)."""
        counts, sums = [0] * n_arms, [0.0] * n_arms
        for arm, reward in self.pulls:
            counts[arm] += 1
            sums[arm] += reward
        return counts, [s / c if c else None for s, c in zip(sums, counts, strict=True)]
