"""LLM agents: exact option distributions from one batched pass per phase.

* :func:`get_backend` returns the process-wide :class:`~agents.llm.backend.Backend` for a
  (model, dtype, device): one model copy however many groups and agents use it;
* a group's front (:class:`~agents.llm.policy.LLMPolicy`) is built by
  :func:`agents.factory.llm_policy`, locally or with the model on a Ray host.

The parts: :mod:`agents.llm.types` (requests, results, the per-forward context),
:mod:`agents.llm.engine` (prefill, forward passes, prefix cache, chunking) with
:mod:`agents.llm.masks`, :mod:`agents.llm.attention` and :mod:`agents.llm.architecture`,
the algorithms :mod:`agents.llm.scoring` and :mod:`agents.llm.generation`, and the
facade :mod:`agents.llm.backend`.

Importing this package is cheap (torch and transformers load on first use), so the
runner can import :mod:`agents.llm.capture` for scripted runs too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agents.llm.backend import Backend

_BACKENDS: dict[tuple[str, str, str, bool], Backend] = {}


def get_backend(
    model: str = "smollm2-135m", *, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False
) -> Backend:
    """The shared backend for this model, dtype and device, loading the model once."""
    from agents.llm import loading
    from agents.llm.backend import Backend  # torch loads here, on first use

    dev = loading.resolve_device(device)
    key = (model, str(loading.resolve_dtype(dtype, dev)), str(dev), trust_remote_code)
    if key not in _BACKENDS:
        loaded = loading.load(model, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
        _BACKENDS[key] = Backend(loaded.model, loaded.tokenizer, name=model)
    return _BACKENDS[key]


__all__ = ["get_backend"]
