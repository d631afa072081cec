"""Splitting a batch into forwards that fit the engine's budgets at the least cost."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def chunks(
    costs: Sequence[tuple[int, ...]], token_budget: int, logit_budget: int, *, forward_cost: int
) -> list[list[int]]:
    """Split item indices, in their order, into the consecutive chunks that cost least.

    ``costs[i]`` = (context tokens, logits[, reply tokens]) of item i. A chunk runs as one
    padded forward, rows x its longest context tokens, and then one decode forward per
    token of its longest reply; each forward also costs ``forward_cost`` (its fixed cost,
    in tokens). That total is what is minimised. A
    chunk keeps rows x longest context within ``token_budget`` and rows x the widest
    item's logits within ``logit_budget`` (float32 values), which bounds memory. A
    single item always makes a chunk of its own, whatever it costs. Callers order items
    so that similar lengths are neighbours (:meth:`agents.llm.prefix_tree.Tree.order`).
    """
    n = len(costs)
    if n == 0:
        return []
    tokens = np.array([c[0] for c in costs], dtype=np.int64)
    logits = np.array([c[1] for c in costs], dtype=np.int64)
    replies = np.array([c[2] if len(c) > 2 else 0 for c in costs], dtype=np.int64)
    # No chunk can hold more rows than the cheapest item allows.
    most = max(1, min(token_budget // max(1, int(tokens.min())), logit_budget // max(1, int(logits.min()))))
    best = np.zeros(n + 1)  # best[j]: least cost of the first j items
    start = np.zeros(n + 1, dtype=np.int64)  # where the last chunk of that split begins
    for j in range(1, n + 1):
        lo = max(0, j - most)
        # Chunks [i, j) for i = j-1, j-2, ..., lo: their rows and longest costs.
        rows = np.arange(1, j - lo + 1)
        width = np.maximum.accumulate(tokens[lo:j][::-1])
        wide = np.maximum.accumulate(logits[lo:j][::-1])
        steps = np.maximum.accumulate(replies[lo:j][::-1])
        fits = (rows == 1) | ((rows * width <= token_budget) & (rows * wide <= logit_budget))
        total = np.where(fits, best[j - rows] + forward_cost * (1 + steps) + rows * width, np.inf)
        k = int(np.argmin(total))  # the first minimum: the fewest rows among equal costs
        best[j], start[j] = total[k], j - rows[k]
    parts, j = [], n
    while j > 0:
        parts.append(list(range(int(start[j]), j)))
        j = int(start[j])
    return parts[::-1]
