"""The web shop's agent: a shopper serving one task at a time, with a public rating."""

from __future__ import annotations

from typing import Any

from agents.agent import SocietyAgent
from environments.webshop.shop import Session


class Shopper(SocietyAgent):
    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.slot = 0  # position in the population: fixes the shopper's task sequence
        self.session: Session | None = None
        self.episodes = 0  # tasks finished
        self.suspended = 0  # steps left without tasks (down-ranked)
        self.reviews: list[float] = []  # customers' ratings: +1 satisfied, 0 neutral, -1 offended
        self.fines_paid = 0.0
        self.payoffs: list[float] = []  # per finished task: reward + rating - fine

    @property
    def rating(self) -> float | None:
        """The public rating: mean of the customers' reviews."""
        return sum(self.reviews) / len(self.reviews) if self.reviews else None

    @property
    def handling(self) -> str:
        """The handling strategy: the scripted rule, or what an LLM shopper adopted (else 'llm')."""
        return self.strategy.rule or self.strategy.extra.get("handling", "llm")
