"""The hardware limit: measured matmul throughput, and the FLOPs a decision needs.

The decision path's FLOPs are counted as 2 x parameters x tokens actually computed, with
the shared prefix counted once, and made exact in two ways that only lower the count
(so the fraction of peak is never flattered): the embedding lookup is no matmul, so the
input embedding's parameters are left out; the output head runs only at the positions
whose logits are kept (each row's last context token and the positions predicting an
option's later tokens), so its parameters count there alone. Attention's score and
value products are reported beside the count, not in it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def matmul_peak(dtype: str = "float32", device: str = "cpu", size: int = 2048, seconds: float = 2.0) -> float:
    """FLOP/s of a square matmul of the given size, sustained over ``seconds`` (see :func:`matmul_rate`)."""
    return matmul_rate(size, size, size, dtype=dtype, device=device, seconds=seconds)


def matmul_rate(
    m: int, k: int, n: int, *, dtype: str = "float32", device: str = "cpu", seconds: float = 1.0, best: bool = False
) -> float:
    """FLOP/s of repeated (m x k) @ (k x n) matmuls over ``seconds``: all FLOPs / all time (sustained), or
    the fastest single product with ``best``.

    Sustained is what the decision path is compared with: its own time is a long call's
    whole duration, so on a machine shared with other work both see the same contention.
    """
    dt = DTYPES[dtype]
    a = torch.randn(m, k, device=device).to(dt)
    b = torch.randn(k, n, device=device).to(dt)
    flops = 2.0 * m * k * n
    for _ in range(2):  # warm-up (threads, kernels, caches)
        a @ b
    _sync(device)
    fastest, total, count = 0.0, 0.0, 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or count == 0:
        start = time.perf_counter()
        a @ b
        _sync(device)
        elapsed = time.perf_counter() - start
        fastest, total, count = max(fastest, flops / elapsed), total + elapsed, count + 1
    return fastest if best else flops * count / total


def forward_flops(n_params: int, tokens: int) -> float:
    """The usual estimate for a transformer forward: 2 x parameters x tokens computed
    (attention's quadratic term is small at these context lengths and left out)."""
    return 2.0 * n_params * tokens


def flop_params(model: Any) -> dict[str, int]:
    """Parameters multiplied per token (``body``: all but the input embedding) and per kept logit (``head``)."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    tied = head.data_ptr() == embed.data_ptr()
    body = total - embed.numel() - (0 if tied else head.numel())
    return {"total": int(total), "body": int(body), "head": int(head.numel()), "tied_embeddings": bool(tied)}


def decision_tokens(backend: Any, items: Sequence[Any]) -> dict[str, int]:
    """Tokens the batched, prefix-reusing scorer computes for these ScoreItems.

    ``needed``: the prefix once + every item's own context tokens + its options' tokens
    (when some option is longer than one token; else no option forward runs);
    ``logits``: positions whose logits are kept; ``padded``: tokens run including the
    padding of each chunk's rows; ``attention_kv``: sum over computed tokens of the keys
    each attends to (for the attention FLOPs).
    """
    from agents.llm.scoring import prepare

    prepared = prepare(backend, items)
    prefix = backend.shared_prefix_length([p.context for p in prepared])
    own = [len(p.context) - prefix for p in prepared]
    multi = any(len(t) > 1 for p in prepared for t in p.tails)
    option_tokens = [sum(len(t) for t in p.tails) if multi else 0 for p in prepared]
    vocab = int(backend.model.config.get_text_config().vocab_size)
    chunks = backend.chunks([(o, sum(len(t) for t in p.tails) * vocab) for o, p in zip(own, prepared, strict=True)])
    padded = prefix + sum(len(c) * (max(own[i] for i in c) + max(option_tokens[i] for i in c)) for c in chunks)
    logits = len(prepared) + (sum(len(t) - 1 for p in prepared for t in p.tails) if multi else 0)
    kv = prefix * (prefix + 1) // 2
    for p, o in zip(prepared, own, strict=True):
        kv += sum(prefix + i + 1 for i in range(o))
        if multi:
            kv += sum(len(p.context) + j + 1 for t in p.tails for j in range(len(t)))
    return {
        "prefix": prefix,
        "context": sum(own),
        "options": sum(option_tokens),
        "needed": prefix + sum(own) + sum(option_tokens),
        "logits": logits,
        "padded": padded,
        "attention_kv": kv,
    }


def path_flops(model: Any, tokens: dict[str, int]) -> dict[str, float]:
    """FLOPs of the counted matmuls, and attention's score/value products beside them."""
    params = flop_params(model)
    counted = forward_flops(params["body"], tokens["needed"]) + forward_flops(params["head"], tokens["logits"])
    cfg = model.config.get_text_config()
    width = int(cfg.num_attention_heads) * int(
        getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    )
    attention = 4.0 * int(cfg.num_hidden_layers) * width * tokens["attention_kv"]
    return {"counted": counted, "attention": attention}


def section(bench: Any) -> dict[str, Any]:
    """Fraction of the measured matmul peak that the batched, prefix-reusing path achieves."""
    from agents.llm.backend import ScoreItem
    from sim.bench.throughput import measure_prefix_seconds

    backend, plan = bench.backend, bench.plan
    dtype = str(backend.dtype).removeprefix("torch.")
    device = str(backend.device)
    peak = matmul_peak(dtype, device, size=plan.peak_size, seconds=plan.peak_seconds)
    fastest = matmul_rate(
        plan.peak_size,
        plan.peak_size,
        plan.peak_size,
        dtype=dtype,
        device=device,
        seconds=plan.peak_seconds / 2,
        best=True,
    )
    cfg = backend.model.config.get_text_config()
    out: dict[str, Any] = {"dtype": dtype, "params": flop_params(backend.model), "sizes": {}}
    for n in plan.agents:
        requests = bench.requests(n)
        items = [ScoreItem(r.prompt.system, r.prompt.user, r.prompt.answer_prefix, tuple(r.options)) for r in requests]
        tokens = decision_tokens(backend, items)
        seconds = bench.cache.get(("batched_prefix_seconds", n)) or measure_prefix_seconds(
            backend, requests, plan.repeats
        )
        flops = path_flops(backend.model, tokens)
        # The matmul shape the path runs most: a chunk's tokens through the MLP's up projection.
        rows = min(tokens["padded"], backend.token_budget)
        shape_rate = matmul_rate(
            rows,
            int(cfg.hidden_size),
            int(cfg.intermediate_size),
            dtype=dtype,
            device=device,
            seconds=plan.peak_seconds / 2,
        )
        out["sizes"][str(n)] = {
            "tokens": tokens,
            "seconds": seconds,
            "flops": flops["counted"],
            "attention_flops_extra_pct": round(100 * flops["attention"] / flops["counted"], 1),
            "achieved_flops_per_second": flops["counted"] / seconds,
            "model_shape_matmul_flops_per_second": shape_rate,
        }
    # Peak again after the path: the better of the two readings is the machine's limit.
    peak = max(peak, matmul_peak(dtype, device, size=plan.peak_size, seconds=plan.peak_seconds))
    out["matmul_peak_flops_per_second"] = peak
    out["matmul_fastest_single_flops_per_second"] = fastest
    out["matmul_size"] = plan.peak_size
    for row in out["sizes"].values():
        row["fraction_of_peak"] = round(row["achieved_flops_per_second"] / peak, 4)
        row["model_shape_fraction_of_peak"] = round(row["model_shape_matmul_flops_per_second"] / peak, 4)
    if plan.profile:
        from sim.bench.profile import profile_path

        n = plan.agents[0]
        out["profile"] = {"agents": n} | profile_path(backend, bench.requests(n), out["sizes"][str(n)]["flops"], peak)
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
