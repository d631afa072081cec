"""The cost of per-agent steering: steered vs unsteered batched forwards, side by side.

:func:`overhead` times one batched forward of random tokens without hooks and with a
:class:`~steering.hooks.Steerer` steering every row (rows alternate between two
vectors and no steering, so the per-row bank path is what is measured) at 1 and at 4
layers, for the last prompt token and for every prompt token. Configurations are
interleaved repeat by repeat, so drifting machine load hits all of them alike; the
median is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from steering.hooks import Steerer, find_decoder_layers
from steering.vectors import SteeringVector


def _vector(model: Any, layers: Sequence[int], seed: int) -> SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    hidden = int(model.config.hidden_size)
    n = len(find_decoder_layers(model))
    model_id = str(getattr(model.config, "name_or_path", "") or "bench")  # the model's own id: no mismatch warning
    return SteeringVector(
        directions={layer: torch.randn(hidden, generator=gen) for layer in layers},
        model_id=model_id,
        hidden_size=hidden,
        num_layers=n,
        method="random",
    )


def middle_layers(n_layers: int, k: int) -> list[int]:
    start = max(0, n_layers // 2 - k // 2)
    return list(range(start, min(n_layers, start + k)))


@torch.inference_mode()
def overhead(
    model: Any,
    *,
    batch: int = 16,
    prompt_len: int = 64,
    layer_counts: Sequence[int] = (1, 4),
    positions: Sequence[str] = ("last_prompt", "all_prompt"),
    repeats: int = 10,
    warmup: int = 2,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Median forward time per configuration, and the overhead against no steering.

    Returns rows: {"config", "layers", "positions", "ms", "overhead_pct"}; the
    unsteered row has layers 0.
    """
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    vocab = int(model.config.vocab_size)
    ids = torch.randint(0, vocab, (batch, prompt_len), generator=gen).to(device)
    mask = torch.ones_like(ids)
    valid = torch.ones((batch, prompt_len), dtype=torch.bool)
    n_layers = len(find_decoder_layers(model))
    configs: list[tuple[str, int, str]] = [("unsteered", 0, "-")]
    configs += [(f"{k} layer{'s' * (k > 1)}, {pos}", k, pos) for k in layer_counts for pos in positions]
    steerers = {}
    for _, k, _ in configs[1:]:
        if k not in steerers:
            s = Steerer(model)
            layers = middle_layers(n_layers, k)
            a, b = s.add(_vector(model, layers, 1)), s.add(_vector(model, layers, 2))
            steerers[k] = (s, [(a, b, 0)[i % 3] for i in range(batch)])
    times: dict[str, list[float]] = {name: [] for name, _, _ in configs}

    def sync() -> None:  # a CUDA forward returns before it ran: time it to its end
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # Inference mode, as the decision path runs: with autograd on, the hooks' in-place
    # writes into activations that require grad add copies the real path never pays.
    @torch.inference_mode()
    def once(name: str, k: int, pos: str) -> float:
        if k == 0:
            start = time.perf_counter()
            model(input_ids=ids, attention_mask=mask)
            sync()
            return time.perf_counter() - start
        s, rows = steerers[k]
        with s:
            s.set_rows(rows, [4.0 if r else 0.0 for r in rows], pos)
            start = time.perf_counter()
            s.prompt(valid)  # describing the forward is part of the cost
            model(input_ids=ids, attention_mask=mask)
            sync()
            elapsed = time.perf_counter() - start
        return elapsed

    for r in range(warmup + repeats):
        for name, k, pos in configs:
            t = once(name, k, pos)
            if r >= warmup:
                times[name].append(t)
    base = statistics.median(times["unsteered"])
    out = []
    for name, k, pos in configs:
        ms = statistics.median(times[name]) * 1000
        out.append(
            {
                "config": name,
                "layers": k,
                "positions": pos,
                "ms": round(ms, 3),
                "overhead_pct": round((ms / (base * 1000) - 1) * 100, 2),
            }
        )
    return out


def table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| configuration | forward ms (median) | overhead |", "|---|---:|---:|"]
    lines += [f"| {r['config']} | {r['ms']:.2f} | {r['overhead_pct']:+.1f}% |" for r in rows]
    return "\n".join(lines)
