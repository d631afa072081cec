"""Steering overhead: per-agent steered vs unsteered batched forward, at 1 and 4 layers.

Measured by :func:`steering.bench.overhead` on the bench's model: one batched forward of
random tokens, rows alternating between two steering vectors and none (so the per-row
bank path is what is timed), configurations interleaved repeat by repeat, medians. The whole measurement is repeated
``plan.steer_rounds`` times and the worst position's overhead is given as min / median /
max over the rounds.
"""

from __future__ import annotations

from typing import Any

from sim.bench.envs import spread


def section(bench: Any) -> dict[str, Any]:
    from steering.bench import overhead

    plan = bench.plan
    rounds = []
    for r in range(max(1, plan.steer_rounds)):
        rows = overhead(
            bench.backend.model,
            batch=plan.steer_batch,
            prompt_len=plan.steer_prompt_len,
            layer_counts=(1, 4),
            repeats=plan.steer_repeats,
            warmup=1 if r == 0 else 0,
        )
        rounds.append(rows)
    worst = [{k: max(x["overhead_pct"] for x in rows if x["layers"] == k) for k in (1, 4)} for rows in rounds]
    return {
        "batch": plan.steer_batch,
        "prompt_len": plan.steer_prompt_len,
        "repeats": plan.steer_repeats,
        "rounds": len(rounds),
        "rows": rounds[-1],
        # The median round's worst position, and the spread of the worst over the rounds.
        "worst_overhead_pct": {str(k): spread([w[k] for w in worst], 2)["median"] for k in (1, 4)},  # type: ignore[index]
        "worst_overhead_pct_spread": {str(k): spread([w[k] for w in worst], 2) for k in (1, 4)},
    }
