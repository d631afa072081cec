"""Build the policy object for a ``policy:`` block.

Scripted groups of an environment share one :class:`ScriptedPolicy` over the
environment's rules. LLM groups get an :class:`~agents.llm.policy.LLMPolicy` front from
:func:`llm_policy`, the one builder for both places the built-in engine can run: in this
process (:func:`agents.llm.get_backend`, one model copy however many groups use it) or
on a Ray model host (:func:`agents.host.remote_backend`), so every check applies to
both. Groups on another engine (vLLM, an OpenAI-compatible server) get their policy
from :mod:`agents.remote`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from agents.interfaces import Policy
from agents.scripted import Rule, ScriptedPolicy
from sim.core.schema import ConfigError

# Fits an inline ``fit:`` steering spec with a backend (steering.fit.fit_spec); handed in
# by the runner, which may read run directories.
Fitter = Callable[[Any, Any], Any]


def build_policy(
    cfg: Any, rules: Mapping[str, Rule], backend: Any = None, steering: Any = None, fit: Fitter | None = None
) -> Policy:
    """One policy from a ``policy:`` config block (scripted or llm); ``rules`` are the
    environment's scripted rules; ``backend`` the scenario's backend block (``kind: ray``
    serves LLMs from model-host actors); ``steering`` the group's steering block."""
    if cfg.type == "scripted":
        return ScriptedPolicy(rules)
    if cfg.type == "llm":
        if cfg.engine != "hf":  # served by vLLM or an OpenAI-compatible server
            from agents.remote import policy_for as remote_policy  # the HTTP client loads only here

            return remote_policy(cfg)
        return llm_policy(cfg, backend, steering, fit)
    raise ValueError(f"unknown policy type '{cfg.type}'")  # the config union rejects it first


def llm_policy(cfg: Any, backend_cfg: Any = None, steering: Any = None, fit: Fitter | None = None) -> Policy:
    """The front of an LLM group's ``policy: {type: llm, ...}`` block, its model local or on
    a host; groups naming the same model share its backend. ``steering``: the group's
    ``steering:`` block, resolved (and an inline fit fitted, with ``fit``) here, where the
    simulation runs."""
    # torch (and Ray, for hosts) load only when an LLM is used: scripted runs never import them
    from agents.host import RemoteBackend, remote_backend
    from agents.llm import get_backend
    from agents.llm.loading import cache_root
    from agents.llm.policy import LLMPolicy
    from steering.resolve import resolve

    if backend_cfg is not None and backend_cfg.kind == "ray":
        backend: Any = remote_backend(cfg, backend_cfg)
    else:
        backend = get_backend(cfg.model, dtype=cfg.dtype, device=cfg.device, trust_remote_code=cfg.trust_remote_code)
    info = backend.info()
    bad = [layer for layer in cfg.capture_layers if not 0 <= layer < info.num_layers]
    if bad:
        raise ConfigError(f"capture_layers {bad}: model '{cfg.model}' has decoder layers 0..{info.num_layers - 1}")
    steer = None
    if steering is not None:
        fit_here = None if fit is None else (lambda spec: fit(spec, backend))
        steer = resolve(steering, info, cache_dir=cache_root() / "steering", fit=fit_here)
        if isinstance(backend, RemoteBackend):
            backend.register_vector(steer.vector)  # now: a vector the host rejects fails before the run starts
    return LLMPolicy.from_config(backend, cfg, steer)
