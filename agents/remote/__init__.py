"""Engines beside the built-in one: models served by vLLM or any OpenAI-compatible server.

* ``engine: openai``: :class:`~agents.remote.client.OpenAIServer` talks HTTP to a server
  (vLLM, SGLang, llama.cpp, Ollama, hosted APIs);
* ``engine: vllm``: :class:`~agents.remote.vllm_engine.VLLMServer` drives vLLM's own
  engine in a Ray actor.

Both answer through the same front, :class:`~agents.remote.policy.RemotePolicy`, so
environments do not change. Neither can steer or capture activations (the config
rejects that); docs/models.md says which engine suits what.

One server object per (engine, server, model) and process, shared by every group and
simulation of the process, as the built-in engine shares one model copy.
"""

from __future__ import annotations

from typing import Any

from agents.remote.policy import RemotePolicy

_SERVERS: dict[tuple[Any, ...], Any] = {}


def server_for(cfg: Any) -> Any:
    """The process-wide server object for a policy config (engine openai or vllm)."""
    if cfg.engine == "openai":
        from agents.remote.client import OpenAIServer

        key: tuple[Any, ...] = (
            "openai",
            cfg.base_url,
            cfg.model,
            cfg.api_key_env,
            cfg.cache,
            cfg.concurrency,
            cfg.timeout,
            cfg.max_retries,
        )
        if key not in _SERVERS:
            _SERVERS[key] = OpenAIServer(cfg)
        return _SERVERS[key]
    if cfg.engine == "vllm":
        from agents.remote.vllm_engine import VLLMServer

        key = ("vllm", cfg.model, cfg.dtype, cfg.tensor_parallel_size, cfg.trust_remote_code)
        if key not in _SERVERS:
            _SERVERS[key] = VLLMServer(cfg)
        return _SERVERS[key]
    raise ValueError(f"engine '{cfg.engine}' is not a remote engine")


def policy_for(cfg: Any) -> RemotePolicy:
    """The front of one group's ``policy: {type: llm, engine: openai | vllm, ...}`` block."""
    prices = (getattr(cfg, "usd_per_mtok_prompt", 0.0), getattr(cfg, "usd_per_mtok_completion", 0.0))
    return RemotePolicy(server_for(cfg), cfg, usd_per_mtok=prices)


__all__ = ["RemotePolicy", "policy_for", "server_for"]
