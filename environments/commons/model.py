"""The commons: a shared fish stock, harvested, punished over, learned from and governed.

Each round (one Mesa step), in order:

1. **harvest**: every fisher picks an effort e (a fraction of the stock) at the same
   time, demand d_i = alpha * e_i * R, or names a whole number of tons
   (``harvest: amount``). If total demand exceeds R the stock is split proportionally,
   by serving fishers in a seeded random order, or one ton at a time (GovSim).
   The run ends when R < C after the harvest (collapse).
2. **consumption**: every fisher pays c; one who cannot goes into debt or leaves.
3. **monitoring and punishment**: a fisher watches one random peer with its monitoring
   probability and may fine it (cost to the punisher, fine to the punished,
   optionally graduated for repeat offenders).
4. **social learning**: payoff-biased copying of a random peer (Fermi rule).
5. **group norm**: every k rounds each fisher proposes a ceiling; the median (or the
   most proposed) becomes G(t).
6. **talk** (``mechanics.discussion``): the fishers meet in speaking rounds; a limit a
   majority proposed is logged and may become G(t) (environments.discussion).
7. **regrowth**: doubling capped at K (GovSim), or logistic (dynamics.py).

Fishers see consequences only: the stock, their own catch and fines, peers' catches
when catches are public. There is no reward function in any prompt.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
from mesa import DataCollector

from agents.agent import SocietyAgent, Strategy
from agents.interfaces import DecisionRequest, Policy, nearest_option
from agents.menus import Amounts
from environments import discussion, mechanics
from environments.base import SocietyModel
from environments.commons import prompts
from environments.commons.agents import Fisher
from environments.commons.config import CommonsConfig
from environments.commons.dynamics import allocate, fair_share, regrow, sustainable_catch
from environments.commons.prompts import shared_text as _shared_text
from sim.core.stats import gini


class CommonsModel(SocietyModel):
    def __init__(self, scenario: Any, policies: Mapping[str, Policy], *, run_id: str = "run") -> None:
        super().__init__(scenario, policies, run_id=run_id)
        self.cfg: CommonsConfig = scenario.environment
        self.group_norm = scenario.mechanics.group_norm.initial
        cfg = self.cfg
        self.stock = cfg.initial_stock if cfg.initial_stock is not None else cfg.capacity
        self.collapsed = False
        self.agreed_limit: float | None = None  # the limit the last meeting agreed on
        self.last_catch_total = 0.0
        self.round_punishments = 0
        self.round_violations = 0
        # What every fisher saw (catches, stock, votes). It opens every prompt, ahead of the
        # agent's own persona and memory, so all prompts of a step share it as a prefix.
        self.public_record: deque[str] = deque(maxlen=cfg.public_record)
        self._catch_sum: tuple[Any, float] | None = None  # (round key, sum of catches): see _peers_mean_catch
        self.f_t = sustainable_catch(self.stock, cfg)
        self.stock_before = self.stock
        n = scenario.n_agents
        # Ceilings agents may propose (votes, meetings): whole tons 1..K/n when counting in
        # whole tons (GovSim's shares are whole numbers), else fractions of the fair share at K.
        self.norm_options = cfg.norm_options or (
            [float(k) for k in range(1, max(2, int(cfg.capacity // n)) + 1)]
            if cfg.whole_tons
            else [round(cfg.capacity / (2 * n) * k, 2) for k in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)]
        )
        # The fair fraction at the starting stock: at capacity, logistic regrowth is zero,
        # so measuring there would make every default option 0 %.
        fair_fraction = sustainable_catch(self.stock, cfg) / (n * self.stock * cfg.alpha)
        self.efforts = cfg.efforts or [round(min(1.0, fair_fraction * k), 4) for k in (0, 0.5, 1, 1.5, 2, 3, 4)]
        # Starting beliefs come only from the groups' `strategy.norm`: a persona is a
        # sentence, never a hidden number in the prompt.
        self.make_agents(Fisher)
        m = scenario.mechanics
        self.system = prompts.system_text(
            n_agents=n,
            capacity=cfg.capacity,
            regrowth=cfg.regrowth,
            collapse=cfg.collapse_threshold,
            consumption=cfg.consumption,
            punishment=m.punishment.enabled,
            group_norm=m.group_norm.enabled,
            discussion=m.discussion.enabled,
            whole_tons=cfg.whole_tons,
        )
        self.datacollector = DataCollector(
            model_reporters={
                "stock": "stock",
                "sustainable_catch": "f_t",
                "total_catch": "last_catch_total",
                "group_norm": "group_norm",
                "n_agents": lambda mdl: len(mdl.agents),
                "punishments": "round_punishments",
                "violations": "round_violations",
                "wealth_gini": lambda mdl: gini([a.wealth for a in mdl.agents]),
                "mean_wealth": lambda mdl: float(np.mean([a.wealth for a in mdl.agents])) if len(mdl.agents) else 0.0,
                "norm_mean": lambda mdl: float(np.mean(mdl.individual_norms())) if mdl.individual_norms() else None,
                "norm_dispersion": lambda mdl: (
                    float(np.std(mdl.individual_norms())) if mdl.individual_norms() else None
                ),
                "collapsed": "collapsed",
                "agreed_limit": "agreed_limit",
            }
        )

    def initial_strategy(self, group: Any) -> Strategy:
        s, punish = group.strategy, self.mechanics.punishment
        return Strategy(
            rule=group.policy.rule if group.policy.type == "scripted" else None,
            monitor_prob=punish.monitor_prob if s.monitor_prob is None else s.monitor_prob,
            punish_prob=punish.punish_prob if s.punish_prob is None else s.punish_prob,
            norm=s.norm,
            extra={k: v for k, v in (("amount", s.amount), ("factor", s.factor)) if v is not None},
        )

    # -------------------------------------------------------------------- helpers
    def agent_record(self, agent: Fisher) -> dict[str, Any]:  # type: ignore[override]
        """agents.parquet: the shared columns plus this round's catch and the fines and costs so far."""
        return {
            **super().agent_record(agent),
            "catch": float(agent.catch),
            "total_catch": float(agent.total_catch),
            "fines_paid": float(agent.fines_paid),
            "punish_costs": float(agent.punish_costs),
        }

    def individual_norms(self) -> list[float]:
        return [float(a.strategy.norm) for a in self.society if a.strategy.norm is not None]

    @property
    def norm_in_force(self) -> float:
        """The ceiling a catch is judged against: G(t) once voted, else the fair share f(t)/n."""
        if self.group_norm is not None:
            return self.group_norm
        return self.share

    @property
    def share(self) -> float:
        """The per-fisher sustainable share at the start of this round (see fair_share)."""
        return fair_share(self.stock_before, len(self.agents), self.cfg)

    def tons(self, x: float) -> str:
        return f"{x:g}" if self.cfg.whole_tons else f"{x:.1f}"

    def _observation(self, agent: Fisher, **extra: Any) -> dict[str, Any]:
        n = max(1, len(self.agents))
        return {
            "rule": agent.strategy.rule,
            "stock": self.stock,
            "capacity": self.cfg.capacity,
            "alpha": self.cfg.alpha,
            "n_agents": n,
            "sustainable_share": self.share,
            "harvest_unit": "tons" if self.cfg.harvest == "amount" else "effort",
            "params": dict(agent.strategy.extra),
            "own_catch": agent.catch,
            "group_norm": self.group_norm,
            "norm_in_force": self.norm_in_force,
            "own_norm": agent.strategy.norm,
            "punish_prob": agent.strategy.punish_prob,
            "peers_mean_catch": self._peers_mean_catch(agent),
            **extra,
        }

    def record_text(self) -> str:
        return "\n".join(f"- {line}" for line in self.public_record) if self.public_record else "- (nothing yet)"

    def _peers_mean_catch(self, agent: Fisher) -> float | None:
        if not self.cfg.public_catches or self.steps <= 1:
            return None
        # Everyone's catch total once per round (a per-agent mean over the others is O(n^2)).
        key = (int(self.steps), len(self.agents))
        if self._catch_sum is None or self._catch_sum[0] != key:
            self._catch_sum = (key, math.fsum(a.catch for a in self.society))
        n = len(self.agents)
        return (self._catch_sum[1] - agent.catch) / (n - 1) if n > 1 else None

    # ------------------------------------------------------------------ the round
    def step(self) -> None:
        self.round_punishments = 0
        self.round_violations = 0
        self.f_t = sustainable_catch(self.stock, self.cfg)
        self.stock_before = self.stock
        self.harvest_phase()
        self.consumption_phase()
        if not self.collapsed:
            self.punishment_phase()
            self.social_learning_phase()
            self.norm_phase()
            self.discussion_phase()
            self.stock = regrow(self.stock, self.cfg)
        self.datacollector.collect(self)
        if self.collapsed or len(self.agents) == 0:
            self.running = False

    def harvest_options(self, agent: SocietyAgent | None = None) -> tuple[Amounts, tuple[float, ...]]:
        """The harvest options as amounts in tons (labelled in ``agent``'s group's format)
        and their values: efforts (fractions of the stock), or with ``harvest: amount``
        every whole number of tons from 0 to the stock."""
        cfg = self.cfg
        if cfg.harvest == "amount":
            # Each label ends in its unit, so no option's text is a prefix of another's
            # ("1" would also be the start of "10"): the scores are of disjoint continuations.
            tons = tuple(float(k) for k in range(int(self.stock) + 1))
            return self.amounts(agent, tons, "ton"), tons
        return self.amounts(agent, [cfg.alpha * e * self.stock for e in self.efforts], "ton"), tuple(self.efforts)

    def harvest_phase(self) -> None:
        cfg, fishers = self.cfg, self.society
        amounts, values = self.harvest_options()
        menus = self.labelled(fishers, amounts.amounts, "ton")  # labels in each group's format
        shown = self.share if cfg.show_threshold else None
        requests = [
            DecisionRequest(
                agent_id=a.unique_id,
                phase="harvest",
                options=menus[a.group][1],
                values=values,
                amounts=menus[a.group][0],
                observation=self._observation(a),
                prompt=prompts.harvest_prompt(
                    self.system,
                    record=self.record_text(),
                    fisher=a.unique_id,
                    persona=a.persona,
                    memory=a.memory_text(),
                    stock=self.stock,
                    norm=self.group_norm,
                    own_norm=a.strategy.norm,
                    note=a.strategy.note,
                    threshold=shown,
                )
                if self.reads_text(a)
                else self.no_prompt,
            )
            for a in fishers
        ]
        decisions = self.decide(fishers, requests)
        chosen = np.array([values[d.choice] for d in decisions])
        if cfg.harvest == "amount":
            demands, efforts = chosen, chosen / max(self.stock, 1e-9)
        else:
            efforts = chosen
            demands = cfg.alpha * efforts * self.stock
            if cfg.whole_tons:
                demands = np.floor(demands + 1e-9)
        catches = allocate(demands, self.stock, cfg.allocation, self.rng, whole=cfg.whole_tons)
        self.stock = max(0.0, self.stock - float(catches.sum()))
        self.last_catch_total = float(catches.sum())
        limit, share = self.norm_in_force, self.share
        for agent, dec, effort, demand, catch in zip(fishers, decisions, efforts, demands, catches, strict=True):
            agent.effort, agent.catch = float(effort), float(catch)
            agent.total_catch += agent.catch
            violation = bool(catch > limit + 1e-9)
            self.round_violations += violation
            self.annotate(
                dec,
                value=float(catch),
                violation=violation,
                info={"requested": float(demand), "fair_share": share},
            )
        self._catch_sum = None  # the catches changed
        self.collapsed = self.stock < cfg.collapse_threshold
        catches_text = ", ".join(f"{b.unique_id}: {self.tons(b.catch)}" for b in fishers)
        seen = f"fishers caught (fisher: tons) {catches_text}; " if cfg.public_catches else ""
        self.public_record.append(f"Month {self.steps}: {seen}{self.stock:.0f} tons were left.")
        for agent in fishers:
            agent.remember(f"Month {self.steps}: you caught {self.tons(agent.catch)} tons.")

    def consumption_phase(self) -> None:
        c = self.cfg.consumption
        for agent in self.society:
            agent.wealth += agent.catch - c
            agent.last_payoff = agent.catch - c
            if agent.wealth < 0 and self.cfg.insolvency == "remove":
                agent.remember("You could not pay your living costs and left the lake.")
                agent.remove()

    def punishment_phase(self) -> None:
        cfg = self.mechanics.punishment
        if not cfg.enabled:
            return
        fishers = self.society
        watchers, peers, requests = [], [], []
        limit = self.norm_in_force
        for i, agent in enumerate(fishers):
            if self.rng.random() >= agent.strategy.monitor_prob:
                continue
            peer = mechanics.pick_peer(agent, fishers, self.rng, position=i)
            if peer is None:
                continue
            fine = mechanics.graduated_fine(cfg.fine, cfg.fine_step, cfg.max_fine, peer.sanctions, cfg.graduated)
            watchers.append(agent)
            peers.append(peer)
            requests.append(
                DecisionRequest(
                    agent_id=agent.unique_id,
                    phase="punish",
                    options=prompts.PUNISH_OPTIONS,
                    values=(0.0, 1.0),
                    wordings=prompts.PUNISH_WORDINGS,
                    observation=self._observation(agent, peer_catch=peer.catch, fine=fine),
                    prompt=prompts.punish_prompt(
                        self.system,
                        record=self.record_text(),
                        fisher=agent.unique_id,
                        persona=agent.persona,
                        memory=agent.memory_text(),
                        peer=peer.unique_id,
                        peer_catch=peer.catch,
                        norm=limit,
                        fine=fine,
                        cost=cfg.cost,
                        stock=self.stock,
                    )
                    if self.reads_text(agent)
                    else self.no_prompt,
                )
            )
        if not requests:
            return
        decisions = self.decide(watchers, requests)
        for agent, peer, dec in zip(watchers, peers, decisions, strict=True):
            violated = bool(peer.catch > limit + 1e-9)
            if dec.choice == 1:
                fine = mechanics.graduated_fine(cfg.fine, cfg.fine_step, cfg.max_fine, peer.sanctions, cfg.graduated)
                agent.wealth -= cfg.cost
                agent.last_payoff -= cfg.cost
                agent.punish_costs += cfg.cost
                peer.wealth -= fine
                peer.last_payoff -= fine
                peer.fines_paid += fine
                peer.sanctions += 1
                agent.sanctions_given += 1
                self.round_punishments += 1
                peer.remember(f"Month {self.steps}: fisher {agent.unique_id} fined you {fine:g} tons.")
                agent.remember(f"Month {self.steps}: you fined fisher {peer.unique_id}, at a cost of {cfg.cost:g}.")
                self.annotate(dec, target=int(peer.unique_id), violation=violated, value=float(fine))
            else:
                self.annotate(dec, target=int(peer.unique_id), violation=violated, value=0.0)

    def norm_phase(self) -> None:
        cfg = self.mechanics.group_norm
        if not cfg.enabled or self.steps % cfg.every != 0:
            return
        fishers = self.society
        free_text = cfg.proposal == "text"
        menus = self.labelled(fishers, self.norm_options, "ton")
        requests = [
            DecisionRequest(
                agent_id=a.unique_id,
                phase="vote",
                options=menus[a.group][1],
                values=tuple(self.norm_options),
                amounts=menus[a.group][0],
                observation=self._observation(a),
                prompt=prompts.vote_prompt(
                    self.system,
                    record=self.record_text(),
                    fisher=a.unique_id,
                    persona=a.persona,
                    memory=a.memory_text(),
                    stock=self.stock,
                    n_agents=len(fishers),
                    options=menus[a.group][1],
                    free_text=free_text,
                )
                if self.reads_text(a)
                else self.no_prompt,
                kind="text" if free_text else "choice",
                parse=self._parse_proposal if free_text else None,
                fallback=nearest_option(
                    self.norm_options, a.strategy.norm if a.strategy.norm is not None else self.share
                ),
            )
            for a in fishers
        ]
        decisions = self.decide(fishers, requests)
        proposals = [self.norm_options[d.choice] for d in decisions]
        for agent, dec, value in zip(fishers, decisions, proposals, strict=True):
            agent.strategy.norm = value  # the individual norm is what the agent stands for
            self.annotate(dec, value=float(value))
        self.group_norm = mechanics.aggregate_norm(proposals, cfg.rule)
        self.public_record.append(
            f"Month {self.steps}: the fishers voted a limit of {self.group_norm:g} tons per fisher."
        )

    def discussion_phase(self) -> None:
        """GovSim's meeting: after the catches are public the fishers talk; an agreed
        limit (environments.discussion) is logged and, with ``sets_norm``, becomes G(t)."""
        cfg = self.mechanics.discussion
        if not cfg.enabled or self.steps % cfg.every != 0:
            return
        fishers = self.society
        talk = discussion.meeting(
            self,
            fishers,
            cfg,
            system=self.system,
            shared=_shared_text(self.record_text(), self.stock),
            own=lambda a: prompts.own_text(a.unique_id, a.persona, a.memory_text()),
            opening=lambda a: f"I caught {self.tons(a.catch)} tons.",
            observation=self._observation,
            proposals=self.norm_options,
            proposal_text=lambda v: f"I propose at most {v:g} tons each.",
            speaker="fisher",
            when=f"Month {self.steps}: ",
        )
        self.agreed_limit = talk.agreed
        if talk.agreed is not None and cfg.sets_norm:
            self.group_norm = talk.agreed
        self.public_record.append(f"Month {self.steps} meeting: {talk.summary()}")

    def _parse_proposal(self, text: str) -> int | None:
        """Free-text proposal -> the nearest allowed ceiling; None if no number is found."""
        match = re.search(r"\d+(?:\.\d+)?", text)
        if match is None:
            return None
        return nearest_option(self.norm_options, float(match.group()))
