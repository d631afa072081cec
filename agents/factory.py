"""Build the policy objects a scenario's population needs.

Scripted groups of an environment share one :class:`ScriptedPolicy`. LLM groups get
an :class:`~agents.llm.policy.LLMPolicy` front from :func:`llm_policy`, the one builder
for both places a model can run: in this process (:func:`agents.llm.get_backend`, one
model copy however many groups use it) or on a Ray model host
(:func:`agents.host.remote_backend`), so every check applies to both. Environments that
need a policy of their own (a forum's guardian, a moderator) build it with
:func:`build_policy` from the same configs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.host import RemoteBackend, remote_backend
from agents.interfaces import Policy
from agents.llm import get_backend
from agents.scripted import ScriptedPolicy
from sim.core.schema import ConfigError

# Fits an inline ``fit:`` steering spec with a backend (steering.fit.fit_spec); handed in
# by the runner, which may read run directories.
Fitter = Callable[[Any, Any], Any]


def build_policy(
    cfg: Any, env_type: str, backend: Any = None, steering: Any = None, fit: Fitter | None = None
) -> Policy:
    """One policy from a ``policy:`` config block (scripted or llm); ``backend`` is the
    scenario's backend block (``kind: ray`` serves LLMs from model-host actors);
    ``steering`` the group's steering block (LLM groups only)."""
    if cfg.type == "scripted":
        return ScriptedPolicy(env_type)
    if cfg.type == "llm":
        return llm_policy(cfg, backend, steering, fit)
    raise ValueError(f"unknown policy type '{cfg.type}'")  # the config union rejects it first


def llm_policy(cfg: Any, backend_cfg: Any = None, steering: Any = None, fit: Fitter | None = None) -> Policy:
    """The front of an LLM group's ``policy: {type: llm, ...}`` block, its model local or on
    a host; groups naming the same model share its backend. ``steering``: the group's
    ``steering:`` block, resolved (and an inline fit fitted, with ``fit``) here, where the
    simulation runs."""
    # torch loads only when an LLM is used (scripted runs never import these)
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


def build_policies(scenario: Any, fit: Fitter | None = None) -> dict[str, Policy]:
    """Group name -> policy, for every group of the scenario (scripted ones shared);
    ``fit`` fits inline steering specs (steering.fit.fit_spec)."""
    policies: dict[str, Policy] = {}
    scripted: Policy | None = None
    for group in scenario.population:
        if group.policy.type == "scripted":
            scripted = scripted or build_policy(group.policy, scenario.environment.type)
            policies[group.name] = scripted
        else:
            policies[group.name] = build_policy(
                group.policy, scenario.environment.type, scenario.backend, group.steering, fit
            )
    return policies
