"""Splitting a batch into forwards that fit the engine's token and logit budgets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def chunks(costs: Sequence[tuple[int, int]], token_budget: int, logit_budget: int) -> list[list[int]]:
    """Split item indices into the fewest balanced consecutive chunks that fit.

    ``costs[i]`` = (context tokens, option-stage logits) of item i; a chunk keeps
    rows x longest context within ``token_budget`` and rows x the widest item's
    logits within ``logit_budget`` (float32 values), which bounds memory. A single
    item always makes a chunk of its own, whatever it costs.
    """
    n = len(costs)
    if n == 0:
        return []
    # No chunk can hold more rows than the cheapest item allows: start there.
    most_rows = min(
        token_budget // max(1, min(c for c, _ in costs)),
        logit_budget // max(1, min(lg for _, lg in costs)),
    )
    for k in range(max(1, -(-n // max(1, most_rows))), n + 1):
        parts = [list(p) for p in np.array_split(np.arange(n), k)]
        if all(_fits([costs[i] for i in part], token_budget, logit_budget) for part in parts):
            return parts
    return [[i] for i in range(n)]


def _fits(costs: Sequence[tuple[int, int]], token_budget: int, logit_budget: int) -> bool:
    rows = len(costs)
    if rows <= 1:
        return True
    return rows * max(c for c, _ in costs) <= token_budget and rows * max(lg for _, lg in costs) <= logit_budget
