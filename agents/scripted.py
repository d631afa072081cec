"""Scripted (rule-based) policies.

A scripted rule is a plain function ``rule(request) -> probabilities`` over the
request's options. It reads the request's structured ``observation`` (never its text),
so it is exact and instant. Each environment keeps its rules in a :class:`RuleBook`
(its ``rules.py``) and names it in its spec; an agent's current rule name travels in
``request.observation["rule"]``, which is why social learning can switch an agent to a
peer's rule simply by copying its strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from agents.interfaces import Decision, DecisionRequest, normalise, sample_choice

Rule = Callable[[DecisionRequest], Sequence[float]]


class RuleBook(Mapping[str, Rule]):
    """An environment's scripted rules by name; ``@book.rule("greedy")`` adds one."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def rule(self, name: str) -> Callable[[Rule], Rule]:
        def register(fn: Rule) -> Rule:
            if name in self._rules:
                raise ValueError(f"scripted rule '{name}' is defined twice")
            self._rules[name] = fn
            return fn

        return register

    def __getitem__(self, name: str) -> Rule:
        return self._rules[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)


class ScriptedPolicy:
    """Answers each request with its agent's current rule; one seeded draw per request."""

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        if not rules:
            raise ValueError("a scripted policy needs at least one rule")
        self.rules = rules

    def decide(self, requests: Sequence[DecisionRequest], rng: np.random.Generator) -> list[Decision]:
        decisions = []
        for req in requests:
            probs = normalise(self.rules[req.observation["rule"]](req))
            if req.kind == "text":
                # Scripted agents "write" the option itself, so text requests never fail to parse.
                choice = sample_choice(probs, rng)
                decisions.append(Decision(probs=probs, choice=choice, text=req.options[choice]))
            else:
                decisions.append(Decision(probs=probs, choice=sample_choice(probs, rng)))
        return decisions
