"""Scripted (rule-based) policies.

A scripted rule is a plain function ``rule(request) -> probabilities`` over the
request's options. It reads the request's structured ``observation`` (never its text),
so it is exact and instant. Rules are registered per environment with
:func:`rule`; an agent's current rule name travels in
``request.observation["rule"]``, which is why social learning can switch an agent to a
peer's rule simply by copying its strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from agents.interfaces import Decision, DecisionRequest, normalise, sample_choice

Rule = Callable[[DecisionRequest], Sequence[float]]

# environment type -> rule name -> rule
RULES: dict[str, dict[str, Rule]] = {}


def rule(env: str, name: str) -> Callable[[Rule], Rule]:
    """Register a scripted rule for an environment."""

    def register(fn: Rule) -> Rule:
        RULES.setdefault(env, {})[name] = fn
        return fn

    return register


class ScriptedPolicy:
    """Answers each request with its agent's current rule; one seeded draw per request."""

    def __init__(self, env: str) -> None:
        if env not in RULES:
            raise ValueError(f"no scripted rules registered for environment '{env}'")
        self.env = env

    def decide(self, requests: Sequence[DecisionRequest], rng: np.random.Generator) -> list[Decision]:
        decisions = []
        table = RULES[self.env]
        for req in requests:
            name = req.observation["rule"]
            probs = normalise(table[name](req))
            if req.kind == "text":
                # Scripted agents "write" the option itself, so text requests never fail to parse.
                choice = sample_choice(probs, rng)
                decisions.append(Decision(probs=probs, choice=choice, text=req.options[choice]))
            else:
                decisions.append(Decision(probs=probs, choice=sample_choice(probs, rng)))
        return decisions
