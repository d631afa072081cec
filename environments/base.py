"""The Mesa model every environment derives from.

It owns what all environments share, so none of them special-cases policies or
logging:

* ``decide(agents, requests)``: groups the step's requests by policy object and calls
  each policy once with its whole batch, then records one event row per decision;
* ``social_learning_phase``: the payoff-biased Fermi rule of the shared mechanics;
* ``step_events``: the rows of the current step, which the runner flushes after each
  step; ``datacollector``: Mesa's per-step model series.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import mesa
import numpy as np

from agents import menus, presentation
from agents.agent import SocietyAgent, Strategy
from agents.interfaces import Decision, DecisionRequest, Policy, Prompt, entropy
from agents.scripted import ScriptedPolicy
from environments import mechanics


class SocietyModel(mesa.Model):
    """Base class: a society of :class:`SocietyAgent` deciding through shared policies."""

    def __init__(self, scenario: Any, policies: Mapping[str, Policy], *, run_id: str = "run") -> None:
        super().__init__(seed=scenario.run.seed)
        # One numpy generator for every random draw of the run (policies included), so
        # the seed fixes the whole event log.
        self.rng = np.random.default_rng(scenario.run.seed)
        self.scenario = scenario
        self.mechanics = scenario.mechanics
        self.policies = dict(policies)
        self.policy_names = {g.name: _policy_name(g.policy) for g in scenario.population}
        self.run_id = run_id
        # The norm in force, logged with every decision; environments with a collective
        # norm set it (None: no norm, or none voted yet).
        self.group_norm: float | None = None
        self.step_events: list[dict[str, Any]] = []
        # phase -> the system text text-reading policies saw; shared by all agents, so the
        # runner writes it once (prompts.json) instead of once per event row.
        self.system_prompts: dict[str, str] = {}
        # How menus and numeric labels are shown to each group (agents.presentation), and
        # the generator of its draws (shuffled orders, which decisions are probed): its
        # own stream, so presenting never moves any other draw and scripted runs, which
        # read no text, are unchanged by it.
        base = getattr(scenario, "presentation", None) or menus.PresentationConfig()
        self.presentations = {g.name: menus.merged(base, getattr(g, "presentation", None)) for g in scenario.population}
        self.presentation_rng = np.random.default_rng([scenario.run.seed, 0x9E3779B9])

    def _wrapped_step(self, *args: Any, **kwargs: Any) -> None:
        # Mesa's step wrapper (``model.step`` calls it), run with the cyclic garbage
        # collector paused. A step makes several containers per decision (event rows,
        # requests, decisions) that live until the runner takes the step's rows, and
        # reference counting frees them; the collector would walk them again and again
        # (16 full passes in one step of 100,000 scripted commons agents, a third of its
        # time). Cycles made during a step are collected once it ends.
        with _collector_paused():
            super()._wrapped_step(*args, **kwargs)

    # ------------------------------------------------------------------ population
    def make_agents(self, agent_cls: type[SocietyAgent], **kwargs: Any) -> list[SocietyAgent]:
        """Create the scenario's population, group by group, in file order."""
        agents = []
        for group in self.scenario.population:
            for _ in range(group.size):
                agents.append(
                    agent_cls(
                        self,
                        group=group.name,
                        persona=group.persona,
                        strategy=self.initial_strategy(group),
                        memory_size=group.memory,
                        **kwargs,
                    )
                )
        return agents

    def initial_strategy(self, group: Any) -> Strategy:
        """A new agent's strategy from its group's block; environments add their own fields."""
        return Strategy(rule=group.policy.rule if group.policy.type == "scripted" else None)

    @property
    def society(self) -> list[SocietyAgent]:
        """Agents still in the simulation, in creation order (deterministic).

        Mesa's AgentSet keeps insertion order and unique ids grow with creation, so no
        sort is needed (sorting on every access cost most of a 2,000-agent step).
        """
        return list(self.agents)

    no_prompt = Prompt(system="", user="")  # the prompt of a request whose agent reads no text

    def reads_text(self, agent: SocietyAgent) -> bool:
        """Whether the agent's policy reads prompt text (a scripted one reads only the
        observation), so an environment can skip building text nobody reads."""
        return not isinstance(self.policies.get(agent.group), ScriptedPolicy)

    # -------------------------------------------------------------------- deciding
    def decide(self, agents: Sequence[SocietyAgent], requests: Sequence[DecisionRequest]) -> list[Decision]:
        """Answer every request of a phase: one policy call per distinct policy object.

        Groups that share a policy object (the same LLM, say) are batched together.
        One event row is recorded per decision; callers add outcomes (catch, target,
        violation...) with :meth:`annotate`.
        """
        if len(agents) != len(requests):
            raise ValueError("one request per agent")
        decisions: list[Decision | None] = [None] * len(requests)
        # Policies that share a backend (one LLM serving several groups with different
        # sampling settings) expose the same `batch_key` and a `decide_mixed` method that
        # takes (policy, request) pairs, so one model still sees one batch.
        batches: dict[Any, list[int]] = {}
        for i, agent in enumerate(agents):
            policy = self.policies[agent.group]
            batches.setdefault(getattr(policy, "batch_key", id(policy)), []).append(i)
        requests = [self._present(agent, req) for agent, req in zip(agents, requests, strict=True)]
        for indices in batches.values():
            first = self.policies[agents[indices[0]].group]
            if hasattr(first, "decide_mixed"):
                pairs = [(self.policies[agents[i].group], requests[i]) for i in indices]
                answers = first.decide_mixed(pairs, self.rng)
            else:
                answers = first.decide([requests[i] for i in indices], self.rng)
            for i, answer in zip(indices, answers, strict=True):
                decisions[i] = answer
        for agent, req, dec in zip(agents, requests, decisions, strict=True):
            assert dec is not None
            dec.info["_row"] = self._event(agent, req, dec)
        return decisions  # type: ignore[return-value]

    def _present(self, agent: SocietyAgent, req: DecisionRequest) -> DecisionRequest:
        """The request with its presentation planned, for a policy that reads text."""
        if not req.prompt.user or isinstance(self.policies.get(agent.group), ScriptedPolicy):
            return req
        cfg = self.presentations.get(agent.group) or menus.PresentationConfig()
        probe = cfg.sensitivity > 0 and req.needs_scoring and self.presentation_rng.random() < cfg.sensitivity
        return presentation.plan(req, cfg, self.presentation_rng, probe=probe)

    def amounts(
        self, agent: SocietyAgent | None, amounts: Sequence[float], unit: str, plural: str | None = None
    ) -> menus.Amounts:
        """Numeric options in the label format of ``agent``'s group (None: the scenario's);
        their labels (``.labels()``) are the request's options."""
        cfg = self.presentations.get(agent.group) if agent is not None else None
        decimals = (cfg or getattr(self.scenario, "presentation", None) or menus.PresentationConfig()).decimals
        return menus.Amounts(tuple(float(a) for a in amounts), unit, plural or unit + "s", decimals)

    def labelled(
        self, agents: Sequence[SocietyAgent], amounts: Sequence[float], unit: str, plural: str | None = None
    ) -> dict[str, tuple[menus.Amounts, tuple[str, ...]]]:
        """Per group of ``agents``: the amounts and their labels in the group's format,
        computed once per group (labels are the requests' options)."""
        out: dict[str, tuple[menus.Amounts, tuple[str, ...]]] = {}
        for agent in agents:
            if agent.group not in out:
                a = self.amounts(agent, amounts, unit, plural)
                out[agent.group] = (a, a.labels())
        return out

    def annotate(self, decision: Decision, **fields: Any) -> None:
        """Record an outcome on a decision's event row (value, target, violation, info...)."""
        row = decision.info["_row"]
        for key, value in fields.items():
            if key == "info":
                row["_info"].update(value)
            elif key in row:
                row[key] = value
            else:
                raise KeyError(f"unknown event column '{key}'")

    def _event(self, agent: SocietyAgent, req: DecisionRequest, dec: Decision) -> dict[str, Any]:
        extra = {k: v for k, v in dec.info.items() if not k.startswith("_") and k not in ("steer_vector", "steer_coef")}
        # Scripted policies never read the text, so their rows stay small.
        reads_text = bool(req.prompt.user) and not isinstance(self.policies.get(agent.group), ScriptedPolicy)
        if reads_text:
            self.system_prompts.setdefault(req.phase, req.prompt.system)
        row = {
            "run_id": self.run_id,
            "step": int(self.steps),
            "phase": req.phase,
            "agent_id": int(agent.unique_id),
            "group": agent.group,
            "persona": agent.persona,
            "policy": self.policy_names.get(agent.group, "custom"),
            "rule": self._current_rule(agent),
            "options": list(req.options),
            "probs": [float(p) for p in dec.probs],
            "choice": int(dec.choice),
            "chosen": req.options[dec.choice],
            "entropy": float(entropy(dec.probs)),
            "parse_failed": bool(dec.parse_failed),
            "text": dec.text,
            "group_norm": self.group_norm,
            "value": None,
            "target": None,
            "violation": None,
            "steer_vector": dec.info.get("steer_vector"),
            "steer_coef": dec.info.get("steer_coef"),
            "_info": extra,
            "prompt": req.prompt.user if reads_text else None,
        }
        self.step_events.append(row)
        return row

    def record_rule_decision(
        self,
        agent: SocietyAgent,
        phase: str,
        options: Sequence[str],
        probs: Sequence[float],
        choice: int,
        **fields: Any,
    ) -> None:
        """Log a decision taken by a mechanic's rule rather than a policy (e.g. copying)."""
        p = np.asarray(probs, dtype=np.float64)
        dec = Decision(probs=p, choice=choice)
        req = DecisionRequest(agent_id=agent.unique_id, phase=phase, options=tuple(options), prompt=_NO_PROMPT)
        self._event(agent, req, dec)
        dec.info["_row"] = self.step_events[-1]
        self.annotate(dec, **fields)

    def take_step_events(self) -> list[dict[str, Any]]:
        """The finished step's rows, ready to write (info serialised as JSON)."""
        rows, self.step_events = self.step_events, []
        for row in rows:
            row["info"] = json.dumps(row.pop("_info"), sort_keys=True, default=float) if row.get("_info") else None
        return rows

    # ------------------------------------------------------------- shared mechanics
    def payoff(self, agent: SocietyAgent) -> float:
        cfg = self.mechanics.social_learning
        return agent.wealth if cfg.payoff == "wealth" else agent.last_payoff

    def social_learning_phase(self, agents: Sequence[SocietyAgent] | None = None) -> None:
        """Each agent (with the configured probability) compares itself with one random
        peer and copies the peer's strategy with the Fermi probability of the payoff
        difference. Every comparison is logged as a 'learn' event (keep/copy)."""
        cfg = self.mechanics.social_learning
        if not cfg.enabled or self.steps % cfg.every != 0:
            return
        agents = list(agents if agents is not None else self.society)
        # Payoffs are read before anyone copies, so learning within a round is simultaneous.
        payoffs = {a.unique_id: self.payoff(a) for a in agents}
        snapshot = {a.unique_id: a.strategy for a in agents}
        position = {a.unique_id: i for i, a in enumerate(agents)}
        for agent in agents:
            if self.rng.random() >= cfg.probability:
                continue
            peers = self.learning_peers(agent, agents)
            # Everyone's peers are everyone: the agent's position spares pick_peer a scan (O(n) per agent).
            at = position[agent.unique_id] if peers is agents else None
            peer = mechanics.pick_peer(agent, peers, self.rng, position=at)
            if peer is None:
                continue
            p = mechanics.fermi(payoffs[agent.unique_id], payoffs[peer.unique_id], cfg.selection_strength)
            copied = bool(self.rng.random() < p)
            if copied:
                teacher = _StrategyHolder(snapshot[peer.unique_id])
                mechanics.copy_strategy(agent, teacher, copy_beliefs=cfg.copy_beliefs)  # type: ignore[arg-type]
                agent.remember(f"You adopted the approach of agent {peer.unique_id}, who was doing better.")
            self.record_rule_decision(
                agent,
                "learn",
                ("keep", "copy"),
                (1 - p, p),
                int(copied),
                target=int(peer.unique_id),
                value=payoffs[peer.unique_id] - payoffs[agent.unique_id],
                info=self.learning_info(agent),
            )

    def learning_peers(self, agent: SocietyAgent, agents: Sequence[SocietyAgent]) -> Sequence[SocietyAgent]:
        """Whom an agent may compare itself with: everyone, unless an environment has a
        network (a forum's follow graph restricts it to neighbours)."""
        return agents

    def agent_record(self, agent: SocietyAgent) -> dict[str, Any]:
        """One row of agents.parquet for ``agent`` after the step (the runner adds step, run_id, seed).

        Environments extend it with their own state: ``{**super().agent_record(agent), "catch": ...}``.
        """
        return {
            "agent_id": int(agent.unique_id),
            "group": agent.group,
            "persona": agent.persona,
            "policy": self.policy_names.get(agent.group, "custom"),
            "rule": self._current_rule(agent),
            "wealth": float(agent.wealth),
            "norm_belief": agent.strategy.norm,
            "sanctions_given": int(getattr(agent, "sanctions_given", 0)),
            "sanctions_received": int(agent.sanctions),
        }

    def _current_rule(self, agent: SocietyAgent) -> str:
        # Social learning rewrites a scripted agent's rule; an LLM agent's strategy is its policy.
        # Officials (a forum's guardian) have no strategy.
        strategy = getattr(agent, "strategy", None)
        return getattr(strategy, "rule", None) or self.policy_names.get(agent.group, "custom")

    def learning_info(self, agent: SocietyAgent) -> dict[str, Any]:
        """What a 'learn' event records about the learner's strategy after the phase."""
        return {"rule": agent.strategy.rule}


class _StrategyHolder:
    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy


def _policy_name(policy_cfg: Any) -> str:
    if policy_cfg.type == "scripted":
        return f"scripted:{policy_cfg.rule}"
    return f"{policy_cfg.type}:{getattr(policy_cfg, 'model', '')}"


_NO_PROMPT = Prompt(system="", user="")


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector inside the block, as it was before after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
