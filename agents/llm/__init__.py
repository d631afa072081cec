"""LLM agents: exact option distributions from one batched pass per phase.

* :func:`policy_for` builds a population group's :class:`~agents.llm.policy.LLMPolicy`
  (the front) from its ``policy: {type: llm, ...}`` block;
* :func:`get_backend` returns the process-wide :class:`~agents.llm.backend.Backend` for a
  (model, dtype, device): one model copy however many groups and agents use it.

Importing this package is cheap (torch and transformers load on first use), so the
runner can import :mod:`agents.llm.capture` for scripted runs too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.llm.backend import Backend
    from agents.llm.policy import LLMPolicy

_BACKENDS: dict[tuple[str, str, str, bool], Backend] = {}


def get_backend(
    model: str = "smollm2-135m", *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False
) -> Backend:
    """The shared backend for this model, dtype and device, loading the model once."""
    from agents.llm import loading
    from agents.llm.backend import Backend

    dev = loading.resolve_device(device)
    key = (model, str(loading.resolve_dtype(dtype, dev)), str(dev), trust_remote_code)
    if key not in _BACKENDS:
        loaded = loading.load(model, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        _BACKENDS[key] = Backend(loaded.model, loaded.tokenizer, name=model)
    return _BACKENDS[key]


def policy_for(cfg: Any, steering: Any = None) -> LLMPolicy:
    """The front for one group's ``LLMPolicyConfig``; groups naming the same model share its backend.
    ``steering``: the group's ``steering:`` block (fitted or loaded and checked here)."""
    from agents.llm.policy import LLMPolicy

    backend = get_backend(cfg.model, dtype=cfg.dtype, device=cfg.device, trust_remote_code=cfg.trust_remote_code)
    n_layers = len(backend.layers)
    bad = [layer for layer in cfg.capture_layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"capture_layers {bad}: model '{cfg.model}' has decoder layers 0..{n_layers - 1}")
    steer = None
    if steering is not None:
        from steering.fit import resolve

        steer = resolve(steering, backend)
    return LLMPolicy.from_config(backend, cfg, steer)


__all__ = ["get_backend", "policy_for"]
