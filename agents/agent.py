"""The agent every environment's agents build on."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import mesa


@dataclass
class Strategy:
    """What social learning copies from a more successful peer.

    ``rule`` is the scripted rule an agent follows (None for LLM agents, whose
    behaviour lives in the model); the probabilities drive monitoring and punishment;
    ``norm`` is the agent's own belief about the right ceiling (its individual norm);
    ``note`` is a line an LLM agent reads about the strategy it adopted.
    """

    rule: str | None = None
    monitor_prob: float = 0.5
    punish_prob: float = 0.5
    norm: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SocietyAgent(mesa.Agent):
    """An agent with a group, a persona, bounded memory, a strategy and a wallet.

    Environments subclass it with their own state; the policy that decides for the
    agent is looked up by ``group`` (one policy object per group, shared by its agents).
    """

    def __init__(
        self,
        model: mesa.Model,
        *,
        group: str,
        persona: str,
        strategy: Strategy,
        memory_size: int = 5,
    ) -> None:
        super().__init__(model)
        self.group = group
        self.persona = persona
        self.strategy = strategy
        self.memory: deque[str] = deque(maxlen=memory_size) if memory_size > 0 else deque(maxlen=0)
        self.wealth = 0.0
        self.last_payoff = 0.0
        self.sanctions = 0  # how many times this agent has been sanctioned so far
        self.sanctions_given = 0  # how many sanctions it has imposed on others

    def remember(self, line: str) -> None:
        self.memory.append(line)

    def memory_text(self) -> str:
        return "\n".join(f"- {m}" for m in self.memory) if self.memory else "- (nothing yet)"
