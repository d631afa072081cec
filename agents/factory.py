"""Build the policy objects a scenario needs.

Scripted groups of an environment share one :class:`ScriptedPolicy` over the
environment's rules. LLM groups get a policy from :mod:`agents.llm`, which keeps one
model copy per process however many groups and agents use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.interfaces import Policy
from agents.scripted import Rule, ScriptedPolicy


def build_policy(cfg: Any, rules: Mapping[str, Rule], backend: Any = None, steering: Any = None) -> Policy:
    """One policy from a ``policy:`` config block (scripted or llm); ``rules`` are the
    environment's scripted rules; ``backend`` the scenario's backend block (``kind: ray``
    serves LLMs from model-host actors); ``steering`` the group's steering block."""
    if cfg.type == "scripted":
        return ScriptedPolicy(rules)
    if cfg.type == "llm":
        if cfg.engine != "hf":  # served by vLLM or an OpenAI-compatible server (agents.remote)
            from agents.remote import policy_for as remote_policy

            return remote_policy(cfg)
        if backend is not None and backend.kind == "ray":
            from agents.host import remote_policy_for  # Ray loads only for a Ray backend

            return remote_policy_for(cfg, backend, steering)
        from agents.llm import policy_for  # torch loads only when an LLM is used

        return policy_for(cfg, steering)
    raise ValueError(f"unknown policy type '{cfg.type}'")  # the config union rejects it first
