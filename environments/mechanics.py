"""Mechanics every environment shares: payoff-biased social learning, graduated
sanctions and collective norm choice (Ostrom's monitoring, graduated sanctions and
collective-choice arrangements)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from agents.agent import SocietyAgent, Strategy
from sim.core.schema import StrictModel


class SocialLearningConfig(StrictModel):
    """Payoff-biased copying of a random peer's strategy (every environment that has peers)."""

    enabled: bool = False
    every: int = Field(1, ge=1, description="rounds between learning phases")
    probability: float = Field(1.0, ge=0.0, le=1.0, description="chance an agent compares itself this round")
    selection_strength: float = Field(
        1.0, gt=0.0, description="Fermi temperature K: p = 1/(1+exp(-(pi_peer-pi_self)/K))"
    )
    copy_beliefs: bool = Field(True, description="copy the peer's norm belief along with its strategy")
    payoff: Literal["round", "wealth"] = "round"


class DiscussionConfig(StrictModel):
    """Talk: after the round's outcomes are public, every agent speaks in turn for
    ``rounds`` speaking rounds (all agents of a round speak at once, one batched
    generation, hearing everything said in earlier rounds); a limit the group agreed on,
    if any, is extracted from the utterances (environments.discussion.agreed_limit)."""

    enabled: bool = False
    rounds: int = Field(2, ge=1, le=10, description="speaking rounds per meeting")
    max_new_tokens: int = Field(40, ge=4, le=256, description="longest utterance of an LLM agent, in tokens")
    agreement: Literal["majority", "unanimous"] = Field(
        "majority",
        description="a limit is agreed when more than half (majority) or all (unanimous) speakers last proposed it",
    )
    sets_norm: bool = Field(
        True, description="an agreed limit becomes the norm in force (the latest collective choice)"
    )
    every: int = Field(1, ge=1, description="rounds between meetings")


def fermi(payoff_self: float, payoff_peer: float, selection_strength: float) -> float:
    """Probability of copying a peer: 1 / (1 + exp(-(pi_peer - pi_self) / K))."""
    z = (payoff_peer - payoff_self) / selection_strength
    if z < -700:  # exp overflow guard; the probability is 0 to double precision
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


def copy_strategy(learner: SocietyAgent, teacher: SocietyAgent, *, copy_beliefs: bool) -> None:
    """Adopt the teacher's strategy (and, optionally, its norm belief).

    A scripted rule is copied only between scripted agents: an LLM agent has no rule
    to hand over, and an LLM agent's behaviour cannot be replaced by a rule.
    """
    src, dst = teacher.strategy, learner.strategy
    new = Strategy(
        rule=src.rule if (src.rule is not None and dst.rule is not None) else dst.rule,
        monitor_prob=src.monitor_prob,
        punish_prob=src.punish_prob,
        norm=src.norm if copy_beliefs else dst.norm,
        note=src.note,
        extra=dict(src.extra),
    )
    learner.strategy = new


def graduated_fine(base: float, step: float, cap: float, earlier_sanctions: int, graduated: bool) -> float:
    if not graduated:
        return base
    return min(cap, base + step * earlier_sanctions)


def aggregate_norm(proposals: Sequence[float], rule: str) -> float:
    """The collective norm from individual proposals: their median, or the most
    proposed value (ties go to the smaller, more cautious ceiling)."""
    if not proposals:
        raise ValueError("no proposals to aggregate")
    if rule == "median":
        return float(np.median(np.asarray(proposals, dtype=np.float64)))
    if rule == "majority":
        counts = Counter(float(p) for p in proposals)
        top = max(counts.values())
        return min(v for v, c in counts.items() if c == top)
    raise ValueError(f"unknown aggregation rule '{rule}'; allowed: median, majority")


def pick_peer(
    agent: SocietyAgent, peers: Sequence[SocietyAgent], rng: np.random.Generator, *, position: int | None = None
) -> SocietyAgent | None:
    """A uniformly random peer other than the agent itself.

    ``position``: the agent's index in ``peers`` when the caller knows it; the same draw
    then picks the same peer without building the list of others (O(1), not O(n))."""
    if position is not None and 0 <= position < len(peers) and peers[position] is agent:
        if len(peers) < 2:
            return None
        k = int(rng.integers(len(peers) - 1))
        return peers[k + 1] if k >= position else peers[k]
    others = [p for p in peers if p is not agent]
    if not others:
        return None
    return others[int(rng.integers(len(others)))]


PayoffFn = Callable[[SocietyAgent], float]
