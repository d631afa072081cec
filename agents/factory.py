"""Build the policy objects a scenario's population needs.

Scripted groups of an environment share one :class:`ScriptedPolicy`. LLM groups get
a policy from :mod:`agents.llm`, which keeps one model copy per process however many
groups and agents use it. Environments that need a policy of their own (a forum's
guardian, a moderator) build it with :func:`build_policy` from the same configs.
"""

from __future__ import annotations

from typing import Any

from agents.interfaces import Policy
from agents.scripted import ScriptedPolicy


def build_policy(cfg: Any, env_type: str, backend: Any = None, steering: Any = None) -> Policy:
    """One policy from a ``policy:`` config block (scripted or llm); ``backend`` is the
    scenario's backend block (``kind: ray`` serves LLMs from model-host actors);
    ``steering`` the group's steering block (LLM groups only)."""
    if cfg.type == "scripted":
        return ScriptedPolicy(env_type)
    if cfg.type == "llm":
        if cfg.engine != "hf":  # served by vLLM or an OpenAI-compatible server (agents.remote)
            from agents.remote import policy_for as remote_policy

            return remote_policy(cfg)
        if backend is not None and backend.kind == "ray":
            from agents.host import remote_policy_for

            return remote_policy_for(cfg, backend, steering)
        from agents.llm import policy_for  # torch loads only when an LLM is used

        return policy_for(cfg, steering)
    raise ValueError(f"unknown policy type '{cfg.type}'")  # the config union rejects it first


def build_policies(scenario: Any) -> dict[str, Policy]:
    """Group name -> policy, for every group of the scenario (scripted ones shared)."""
    policies: dict[str, Policy] = {}
    scripted: Policy | None = None
    for group in scenario.population:
        if group.policy.type == "scripted":
            scripted = scripted or build_policy(group.policy, scenario.environment.type)
            policies[group.name] = scripted
        else:
            policies[group.name] = build_policy(
                group.policy, scenario.environment.type, scenario.backend, group.steering
            )
    return policies
