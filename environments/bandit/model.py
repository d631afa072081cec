"""The bandit: every player presses one of its own buttons per round.

Each player has hidden arm means (the scenario's ``means`` or drawn per player from
``mean_range``) and sees, as text, every earlier round's button and reward. One round
is one Mesa step: all players decide in one batched policy call, then each reward is
drawn from N(mean of the pressed arm, noise). Social learning, when enabled, copies
scripted rules between players (payoff: this round's reward); punishment and group
norms do not exist here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from mesa import DataCollector

from agents.interfaces import DecisionRequest, Policy, entropy
from environments.bandit import prompts
from environments.bandit.agents import Player
from environments.bandit.config import BanditConfig
from environments.base import SocietyModel


class BanditModel(SocietyModel):
    def __init__(self, scenario: Any, policies: Mapping[str, Policy], *, run_id: str = "run") -> None:
        super().__init__(scenario, policies, run_id=run_id)
        self.cfg: BanditConfig = scenario.environment
        self.rounds = scenario.run.steps
        self.make_agents(Player)
        lo, hi = self.cfg.mean_range
        for agent in self.society:
            means = self.cfg.means if self.cfg.means is not None else self.rng.uniform(lo, hi, len(self.cfg.arms))
            agent.means = np.asarray(means, dtype=np.float64)
        self.system = prompts.system_text(self.cfg.arms, self.rounds)
        self.round_rewards: list[float] = []
        self.round_entropies: list[float] = []
        self.round_best: list[bool] = []
        self.datacollector = DataCollector(
            model_reporters={
                "mean_reward": lambda mdl: float(np.mean(mdl.round_rewards)) if mdl.round_rewards else 0.0,
                "mean_entropy": lambda mdl: float(np.mean(mdl.round_entropies)) if mdl.round_entropies else 0.0,
                "best_arm_share": lambda mdl: float(np.mean(mdl.round_best)) if mdl.round_best else 0.0,
                "n_agents": lambda mdl: len(mdl.agents),
            }
        )

    def _observation(self, agent: Player) -> dict[str, Any]:
        counts, means = agent.stats(len(self.cfg.arms))
        rewards = [r for _, r in agent.pulls]
        return {
            "rule": agent.strategy.rule,
            "counts": counts,
            "means": means,
            "round": int(self.steps),
            "rounds": self.rounds,
            "reward_std": float(np.std(rewards)) if len(rewards) > 1 else 1.0,
        }

    def step(self) -> None:
        players, arms = self.society, self.cfg.arms
        requests = [
            DecisionRequest(
                agent_id=p.unique_id,
                phase="pull",
                options=tuple(arms),
                values=tuple(float(i) for i in range(len(arms))),
                observation=self._observation(p),
                prompt=prompts.pull_prompt(
                    self.system,
                    arms=arms,
                    pulls=p.pulls,
                    round_no=int(self.steps),
                    rounds=self.rounds,
                    history=self.cfg.history,
                )
                if self.reads_text(p)
                else self.no_prompt,
            )
            for p in players
        ]
        decisions = self.decide(players, requests)
        self.round_rewards, self.round_entropies, self.round_best = [], [], []
        for p, dec in zip(players, decisions, strict=True):
            arm = dec.choice
            reward = float(self.rng.normal(p.means[arm], self.cfg.noise))
            p.pulls.append((arm, reward))
            p.wealth += reward
            p.last_payoff = reward
            best = float(p.means.max())
            self.round_rewards.append(reward)
            self.round_entropies.append(entropy(dec.probs))
            self.round_best.append(bool(np.isclose(p.means[arm], best)))
            self.annotate(dec, value=reward, info={"arm_mean": float(p.means[arm]), "best_mean": best})
        self.social_learning_phase(players)
        self.datacollector.collect(self)
