"""The engine's option probabilities against an eager reference, per dtype and attention path.

The reference is a twin of the measured model that shares its weight tensors (no copy)
but runs transformers' own *eager* attention and cache, one decision at a time: its
context in one forward, then each option's tokens after a copy of that cache; no
padding, no batching, nothing of the engine's code on its path but the tokenisation. The engine is measured on both of its attention paths: the shared-prefix
path (the cascade: the prefix's keys and values once, merged through log-sum-exps; on
CUDA the memory-efficient SDPA kernel) and the path without prefix reuse (each row its
whole prompt). Used by :mod:`sim.bench.gpucheck`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

# Largest |Δ log P(option)| allowed against the eager reference of the same dtype (the
# CUDA tests' tolerances: float32 sums in another order, bfloat16 rounds every product).
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.25}


def eager_twin(model: Any) -> Any:
    """The same architecture with eager attention, sharing ``model``'s parameters and buffers."""
    config = copy.deepcopy(model.config)
    config._attn_implementation = "eager"
    with torch.device("meta"):
        twin = type(model)(config)
    twin.load_state_dict(model.state_dict(), assign=True, strict=False)
    twin.tie_weights()
    for name, buf in model.named_buffers():  # rotary frequencies etc. are not in the state dict
        owner, _, leaf = name.rpartition(".")
        twin.get_submodule(owner).register_buffer(leaf, buf, persistent=False)
    return twin.eval()


def reference(engine: Any, twin: Any, items: Sequence[Any]) -> list[np.ndarray]:
    """log P(option | context) per item and option: the context through the eager twin
    once (transformers' own cache), then each option's tokens on a copy of that cache."""
    import inspect

    from agents.llm.scoring import prepare

    # transformers 5 renamed the cache argument (past_key_values warns until 5.40).
    arg = "cache" if "cache" in inspect.signature(twin.forward).parameters else "past_key_values"
    out = []
    for prep in prepare(engine, items):
        with torch.inference_mode():
            ctx = twin(input_ids=torch.tensor([prep.context], device=engine.device), use_cache=True)
            kept = getattr(ctx, "cache", None) or ctx.past_key_values
            first = torch.log_softmax(ctx.logits[0, -1].float(), dim=-1)
            scores = []
            for tail in prep.tails:
                score = float(first[tail[0]])
                if len(tail) > 1:
                    ids = torch.tensor([tail[:-1]], device=engine.device)
                    cache = {arg: copy.deepcopy(kept)}
                    logp = torch.log_softmax(twin(input_ids=ids, **cache).logits[0].float(), dim=-1)
                    score += sum(float(logp[j, tok]) for j, tok in enumerate(tail[1:]))
                scores.append(score)
        out.append(np.array(scores))
    return out


def _probs(logprobs: np.ndarray) -> np.ndarray:
    p = np.exp(logprobs - logprobs.max())
    return p / p.sum()


def compare(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> dict[str, Any]:
    """Largest |Δ log P| and |Δp| (option distributions renormalised), each decision's worst as min / median / max."""
    dlog = [float(np.max(np.abs(g - w))) for g, w in zip(got, want, strict=True)]
    dp = [float(np.max(np.abs(_probs(g) - _probs(w)))) for g, w in zip(got, want, strict=True)]

    def sp(v: list[float]) -> dict[str, float]:
        return {"min": min(v), "median": float(np.median(v)), "max": max(v)}

    return {"max_abs_logprob_diff": sp(dlog), "max_abs_prob_diff": sp(dp)}


def measure(model: Any, tokenizer: Any, name: str, requests: Sequence[Any]) -> dict[str, Any]:
    """Both engine paths against the eager twin, in the model's own dtype."""
    from agents.llm.architecture import UnsupportedModel
    from agents.llm.backend import Backend, ScoreItem

    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    items = [ScoreItem(r.prompt.system, r.prompt.user, r.prompt.answer_prefix, tuple(r.options)) for r in requests]
    try:
        shared = Backend(model, tokenizer, name=f"{name}-{dtype}", reuse_prefix=True)
        plain = Backend(model, tokenizer, name=f"{name}-{dtype}-plain", reuse_prefix=False)
    except UnsupportedModel as exc:  # the engine's load-time probe refused this model in this dtype
        return {"model": name, "dtype": dtype, "refused": str(exc), "ok": False}
    want = reference(shared.engine, eager_twin(model), items)
    paths = {
        "shared_prefix": [r.logprobs for r in shared.score(items)],
        "no_prefix_reuse": [r.logprobs for r in plain.score(items)],
    }
    tol = TOLERANCE.get(dtype, TOLERANCE["bfloat16"])
    out: dict[str, Any] = {
        "model": name,
        "dtype": dtype,
        "device": str(shared.engine.device),
        "decisions": len(items),
        "attention_path": shared.describe()["attention_path"],
        "fallback_reason": shared.describe()["fallback_reason"],
        "tolerance_logprob": tol,
        "paths": {},
    }
    for path, got in paths.items():
        row = compare(got, want)
        row["ok"] = row["max_abs_logprob_diff"]["max"] <= tol
        out["paths"][path] = row
    between = compare(paths["shared_prefix"], paths["no_prefix_reuse"])
    out["paths_agree"] = between
    out["reference_probs"] = [_probs(w) for w in want]
    out["ok"] = all(row["ok"] for row in out["paths"].values())
    return out


def drift(low: dict[str, Any], high: dict[str, Any]) -> dict[str, float] | None:
    """How far a lower precision's reference moves the option probabilities from float32's."""
    if "reference_probs" not in low or "reference_probs" not in high:
        return None
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(low["reference_probs"], high["reference_probs"], strict=True)]
    return {"min": min(diffs), "median": float(np.median(diffs)), "max": max(diffs)}
