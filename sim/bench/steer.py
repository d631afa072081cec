"""Steering overhead: per-agent steered vs unsteered batched forward, at 1 and 4 layers.

Measured by :func:`steering.bench.overhead` on the bench's model: one batched forward of
random tokens, rows alternating between two steering vectors and none (so the per-row
bank path is what is timed), configurations interleaved repeat by repeat, medians.
"""

from __future__ import annotations

from typing import Any


def section(bench: Any) -> dict[str, Any]:
    from steering.bench import overhead

    plan = bench.plan
    rows = overhead(
        bench.backend.model,
        batch=plan.steer_batch,
        prompt_len=plan.steer_prompt_len,
        layer_counts=(1, 4),
        repeats=plan.steer_repeats,
        warmup=1,
    )
    worst = {k: max(r["overhead_pct"] for r in rows if r["layers"] == k) for k in (1, 4)}
    return {
        "batch": plan.steer_batch,
        "prompt_len": plan.steer_prompt_len,
        "repeats": plan.steer_repeats,
        "rows": rows,
        "worst_overhead_pct": {str(k): v for k, v in worst.items()},
    }
