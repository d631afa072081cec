"""The hardware limit: measured matmul throughput, and the FLOPs a decision needs.

The decision path's FLOPs are counted as 2 x parameters x tokens it needs: each distinct
token of the batch's contexts and option token trees once (whatever the prefix cache and
prefix tree share is counted once; padding and recomputation are not counted), and made
exact in two ways that only lower the count (so the fraction of peak is never
flattered): the embedding lookup is no matmul, so the input embedding's parameters are
left out; the output head runs only at the positions whose logits are kept (each row's
last context token and the positions predicting an option's later tokens), so its
parameters count there alone. Attention's score and
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
    """Tokens the batched, prefix-reusing scorer needs for these ScoreItems.

    ``needed``: each distinct token once, over every item's context and its options' token
    tree (the context's tokens, then one per distinct proper prefix of its options: an
    option's last token is read, never run), so prefix-tree sharing is never counted as
    work; ``options``: the token-tree columns among them; ``logits``: positions whose
    logits are kept (each item's last context token and its columns); ``padded``: tokens
    of the engine's chunks with their padding (an estimate, for the matmul shape);
    ``attention_kv``: sum over needed tokens of the keys each attends to.
    """
    from agents.llm.scoring import _option_tree, chunk_items, prepare
    from sim.bench.envs import trie_keys, trie_nodes

    engine = getattr(backend, "engine", backend)
    prepared = prepare(engine, items)
    contexts = [p.context for p in prepared]
    columns = [_option_tree(p.tails)[0] for p in prepared]
    tree = engine.plan(contexts)
    prefix = tree.root
    sequences = contexts + [p.context + list(key) for p, cols in zip(prepared, columns, strict=True) for key in cols]
    needed, options = trie_nodes(sequences), sum(len(cols) for cols in columns)
    own = [len(c) - start + len(cols) for c, start, cols in zip(contexts, tree.own_start, columns, strict=True)]
    chunks = chunk_items(engine, items, prepared, tree, [len(cols) for cols in columns])
    padded = prefix + sum(len(n.tokens) for n in tree.nodes) + sum(len(c) * max(own[i] for i in c) for c in chunks)
    return {
        "prefix": prefix,
        "context": needed - prefix - options,
        "options": options,
        "needed": needed,
        "logits": len(prepared) + options,
        "padded": padded,
        "attention_kv": trie_keys(sequences),
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
    from sim.bench.live import check_requests
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
        check_requests(requests, f"hardware, {n} agents")
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
