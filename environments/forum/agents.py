"""The forum's agent: a member with karma, a stance, a sanction record and maybe a ban."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from agents.agent import SocietyAgent

PERMANENT = math.inf


class Member(SocietyAgent):
    """``wealth`` is the member's karma (net votes on its content, less sanction costs);
    ``sanctions`` (from the base class) is its position on the sanction ladder; stance and
    style live in ``strategy.extra`` so social learning copies them."""

    def __init__(self, model: Any, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.banned_until: float | None = None  # last banned step; PERMANENT for a permanent ban
        self.voted: set[int] = set()
        self.reported: set[int] = set()

    @property
    def stance(self) -> float:
        return float(self.strategy.extra.get("stance", 0.0))

    @property
    def style(self) -> str:
        """A scripted member's style is its rule's; an LLM member's is the one it adopted."""
        if self.strategy.rule is not None:
            return "provocative" if self.strategy.rule == "troll" else "civil"
        return str(self.strategy.extra.get("style", "civil"))

    def banned(self, step: int) -> bool:
        return self.banned_until is not None and step <= self.banned_until


@dataclass
class Official:
    """A forum office that decides through a policy but is not a member (the guardian,
    the moderator). It carries just what ``SocietyModel.decide`` logs for an agent."""

    unique_id: int
    group: str
    persona: str = "neutral"
