"""Build the policy objects a scenario's population needs.

Scripted groups of an environment share one :class:`ScriptedPolicy`. LLM groups get
a policy from :mod:`agents.llm`, which keeps one model copy per process however many
groups and agents use it.
"""

from __future__ import annotations

from typing import Any

from agents.interfaces import Policy
from agents.scripted import ScriptedPolicy


def build_policies(scenario: Any) -> dict[str, Policy]:
    """Group name -> policy, for every group of the scenario."""
    policies: dict[str, Policy] = {}
    scripted = None
    for group in scenario.population:
        cfg = group.policy
        if cfg.type == "scripted":
            scripted = scripted or ScriptedPolicy(scenario.environment.type)
            policies[group.name] = scripted
        elif cfg.type == "llm":
            from agents.llm import policy_for  # torch loads only when an LLM is used

            policies[group.name] = policy_for(cfg)
        else:  # pragma: no cover - the config union rejects other types first
            raise ValueError(f"unknown policy type '{cfg.type}'")
    return policies
