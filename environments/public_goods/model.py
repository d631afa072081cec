"""The public-goods game (Fehr & Gächter 2000, 2002).

Each round (one Mesa step), in order:

1. **matching**: partner matching splits the population into groups of ``group_size``
   once, at random (seeded); stranger matching draws new groups every round.
2. **contribution**: every member puts c_i ∈ {0..endowment} into its group's project, all
   at the same time (one batched decision over 0..endowment);
   first-stage payoff π¹_i = endowment − c_i + mpcr × Σ_{j in group} c_j.
3. **punishment** (``mechanics.punishment``): with the contributions revealed, each member
   assigns 0..max_points points to each other member of its group (one request per
   pair); a point costs the giver ``cost`` and takes ``impact`` from the receiver. With
   ``floor: round_income`` the deduction is capped at the receiver's π¹_i:
   π_i = π¹_i − min(π¹_i, impact × received_i) − cost × given_i.
4. **social learning** (optional): payoff-biased copying of a random member's rule.

The round's contributions (and points) are then shown to the group. Event rows: phase
``contribute`` (value: c_i; violation: c_i below the others' mean, the floor norm; info:
group, others' mean, gap, and after the round the payoff parts) and phase ``punish``
(value: points; target: the member punished; info: both gaps).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from mesa import DataCollector

from agents.agent import Strategy
from agents.interfaces import Decision, DecisionRequest, Policy
from environments.base import SocietyModel
from environments.public_goods import prompts
from environments.public_goods.agents import Member
from environments.public_goods.config import PublicGoodsConfig


def first_stage(endowment: float, mpcr: float, contributions: np.ndarray) -> np.ndarray:
    """π¹_i = endowment − c_i + mpcr × Σ_j c_j for one group."""
    c = np.asarray(contributions, dtype=np.float64)
    return endowment - c + mpcr * c.sum()


def others_mean(contributions: np.ndarray) -> np.ndarray:
    """For each member, the mean contribution of the other members of its group."""
    c = np.asarray(contributions, dtype=np.float64)
    n = len(c)
    return (c.sum() - c) / (n - 1)


def punish_payoff(
    stage: np.ndarray, received: np.ndarray, given: np.ndarray, *, cost: float, impact: float, floor: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Payoffs after punishment for one group, from the points each member received and gave.

    Returns (payoff, deduction, cost paid): deduction = impact × received, capped at the
    first-stage payoff (never below 0) under ``floor='round_income'``; the giver pays
    cost × given in full either way.
    """
    stage = np.asarray(stage, dtype=np.float64)
    taken = impact * np.asarray(received, dtype=np.float64)
    deduction = np.minimum(taken, np.maximum(stage, 0.0)) if floor == "round_income" else taken
    paid = cost * np.asarray(given, dtype=np.float64)
    return stage - deduction - paid, deduction, paid


def draw_groups(n_agents: int, size: int, rng: np.random.Generator) -> list[list[int]]:
    """A random partition of 0..n_agents-1 into groups of ``size`` (n_agents divisible by size)."""
    order = rng.permutation(n_agents)
    return [sorted(int(i) for i in order[k : k + size]) for k in range(0, n_agents, size)]


class PublicGoodsModel(SocietyModel):
    def __init__(self, scenario: Any, policies: Mapping[str, Policy], *, run_id: str = "run") -> None:
        super().__init__(scenario, policies, run_id=run_id)
        self.cfg: PublicGoodsConfig = scenario.environment
        self.rounds = scenario.run.steps
        self.make_agents(Member)
        members = self.society
        self.groups = draw_groups(len(members), self.cfg.group_size, self.rng)
        self.histories: dict[int, deque[str]] = {a.unique_id: deque(maxlen=self.cfg.history) for a in members}
        p = self.mechanics.punishment
        self.system = prompts.system_text(
            group_size=self.cfg.group_size,
            endowment=self.cfg.endowment,
            mpcr=self.cfg.mpcr,
            rounds=self.rounds,
            matching=self.cfg.matching,
            punishment=p.enabled,
            cost=p.cost,
            impact=p.impact,
            max_points=p.max_points,
        )
        self.round_contributions: list[int] = []
        self.round_payoffs: list[float] = []
        self.round_points = 0
        self.round_punished = 0
        self.round_violations = 0
        self.datacollector = DataCollector(
            model_reporters={
                "mean_contribution": lambda m: float(np.mean(m.round_contributions)) if m.round_contributions else 0.0,
                "contribution_share": lambda m: (
                    float(np.mean(m.round_contributions)) / m.cfg.endowment if m.round_contributions else 0.0
                ),
                "mean_payoff": lambda m: float(np.mean(m.round_payoffs)) if m.round_payoffs else 0.0,
                "efficiency": lambda m: (
                    float(np.mean(m.round_payoffs)) / m.full_cooperation if m.round_payoffs else 0.0
                ),
                "punishment_points": "round_points",
                "punished": "round_punished",
                "violations": "round_violations",
                "n_agents": lambda m: len(m.agents),
            }
        )

    @property
    def full_cooperation(self) -> float:
        """A member's round payoff when everyone contributes everything: mpcr × n × endowment."""
        return self.cfg.mpcr * self.cfg.group_size * self.cfg.endowment

    def initial_strategy(self, group: Any) -> Strategy:
        s = group.strategy
        return Strategy(
            rule=group.policy.rule if group.policy.type == "scripted" else None,
            extra={"start": s.start, "reciprocity": s.reciprocity},
        )

    # ------------------------------------------------------------------ the round
    def step(self) -> None:
        members = self.society
        if self.cfg.matching == "stranger" and self.steps > 1:
            self.groups = draw_groups(len(members), self.cfg.group_size, self.rng)
        self.round_points = self.round_punished = self.round_violations = 0
        decisions = self.contribution_phase(members)
        self.punishment_phase(members)
        self.settle(members, decisions)
        self.social_learning_phase(members)
        self.datacollector.collect(self)

    def _observation(self, agent: Member, **extra: Any) -> dict[str, Any]:
        return {
            "rule": agent.strategy.rule,
            "round": int(self.steps),
            "rounds": self.rounds,
            "endowment": self.cfg.endowment,
            "mpcr": self.cfg.mpcr,
            "group_size": self.cfg.group_size,
            "punishment": self.mechanics.punishment.enabled,
            "last_others_mean": agent.last_others_mean,
            "last_contribution": agent.last_contribution,
            "last_points_received": agent.last_points_received,
            "times_punished": agent.sanctions,
            "start": agent.strategy.extra.get("start", 0.5),
            "reciprocity": agent.strategy.extra.get("reciprocity", 1.0),
            **extra,
        }

    def contribution_phase(self, members: list[Member]) -> list[Decision]:
        values = tuple(float(c) for c in range(self.cfg.endowment + 1))
        menus = self.labelled(members, values, "token")  # labels in each group's format
        for g, group in enumerate(self.groups):
            for i in group:
                members[i].group_index = g
        requests = [
            DecisionRequest(
                agent_id=a.unique_id,
                phase="contribute",
                options=menus[a.group][1],
                values=values,
                amounts=menus[a.group][0],
                observation=self._observation(a),
                prompt=prompts.contribute_prompt(
                    self.system,
                    round_no=int(self.steps),
                    rounds=self.rounds,
                    history="\n".join(f"- {line}" for line in self.histories[a.unique_id]) or "- (none yet)",
                    persona=a.persona,
                    memory=a.memory_text(),
                    endowment=self.cfg.endowment,
                )
                if self.reads_text(a)
                else self.no_prompt,
            )
            for a in members
        ]
        decisions = self.decide(members, requests)
        for a, d in zip(members, decisions, strict=True):
            a.contribution = d.choice
            a.points_received = a.points_given = 0
        for g, group in enumerate(self.groups):
            c = np.array([members[i].contribution for i in group])
            stage, means = first_stage(self.cfg.endowment, self.cfg.mpcr, c), others_mean(c)
            for k, i in enumerate(group):
                a = members[i]
                a.first_stage = float(stage[k])
                violated = bool(c[k] < means[k] - 1e-9)
                self.round_violations += violated
                self.annotate(
                    decisions[i],
                    value=float(c[k]),
                    violation=violated,
                    info={"group": g, "others_mean": float(means[k]), "gap": float(c[k] - means[k])},
                )
        return decisions

    def punishment_phase(self, members: list[Member]) -> None:
        cfg = self.mechanics.punishment
        if not cfg.enabled:
            return
        values = tuple(float(p) for p in range(cfg.max_points + 1))
        menus = self.labelled(members, values, "point")  # labels in each group's format
        givers, pairs, requests = [], [], []
        for group in self.groups:
            c = np.array([members[i].contribution for i in group])
            means = others_mean(c)
            for k, i in enumerate(group):
                for t, j in enumerate(group):
                    if j == i:
                        continue
                    a = members[i]
                    givers.append(a)
                    pairs.append((i, j, float(c[k] - means[k]), float(c[t] - means[t])))
                    requests.append(
                        DecisionRequest(
                            agent_id=a.unique_id,
                            phase="punish",
                            options=menus[a.group][1],
                            values=values,
                            amounts=menus[a.group][0],
                            observation=self._observation(
                                a,
                                target_contribution=int(c[t]),
                                target_others_mean=float(means[t]),
                                own_contribution=int(c[k]),
                                max_points=cfg.max_points,
                            ),
                            prompt=prompts.punish_prompt(
                                self.system,
                                round_no=int(self.steps),
                                rounds=self.rounds,
                                contributions=[int(x) for x in c],
                                me=k,
                                target=t,
                                persona=a.persona,
                                memory=a.memory_text(),
                                max_points=cfg.max_points,
                                cost=cfg.cost,
                                impact=cfg.impact,
                            )
                            if self.reads_text(a)
                            else self.no_prompt,
                        )
                    )
        decisions = self.decide(givers, requests)
        for (i, j, giver_gap, target_gap), d in zip(pairs, decisions, strict=True):
            members[i].points_given += d.choice
            members[j].points_received += d.choice
            self.round_points += d.choice
            self.annotate(
                d,
                value=float(d.choice),
                target=int(members[j].unique_id),
                violation=bool(target_gap < -1e-9),
                info={"target_gap": target_gap, "giver_gap": giver_gap},
            )

    def settle(self, members: list[Member], decisions: list[Decision]) -> None:
        """Payoffs after punishment, wealth, what each member remembers and sees next round."""
        cfg = self.mechanics.punishment
        self.round_contributions = [a.contribution for a in members]
        self.round_payoffs = [0.0] * len(members)
        for group in self.groups:
            stage = np.array([members[i].first_stage for i in group])
            received = [members[i].points_received for i in group]
            given = [members[i].points_given for i in group]
            payoff, deduction, paid = punish_payoff(
                stage, received, given, cost=cfg.cost, impact=cfg.impact, floor=cfg.floor
            )
            c = [members[i].contribution for i in group]
            means = others_mean(np.array(c))
            for k, i in enumerate(group):
                a = members[i]
                a.deduction, a.cost = float(deduction[k]), float(paid[k])
                a.last_payoff = float(payoff[k])
                a.wealth += a.last_payoff
                self.round_payoffs[i] = a.last_payoff
                self.annotate(
                    decisions[i],
                    info={
                        "first_stage": a.first_stage,
                        "points_received": int(a.points_received),
                        "points_given": int(a.points_given),
                        "deduction": a.deduction,
                        "cost": a.cost,
                        "payoff": a.last_payoff,
                    },
                )
                self.round_punished += a.points_received > 0
                if a.points_received > 0:
                    a.sanctions += 1
                a.last_others_mean, a.last_contribution = float(means[k]), a.contribution
                a.last_points_received = a.points_received
                self.histories[a.unique_id].append(prompts.group_line(int(self.steps), c, k, a.last_payoff))
                if cfg.enabled:
                    a.remember(
                        f"Round {int(self.steps)}: you received {prompts.points(a.points_received)} "
                        f"(costing you {a.deduction:g} tokens) and gave {prompts.points(a.points_given)} (costing you {a.cost:g} tokens)."
                    )
