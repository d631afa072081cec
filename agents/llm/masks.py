"""Attention masks from token positions, for full and sliding-window layers.

A query at position p of a row sees a key at position k of the same row when the key
is a real token that comes before it (every cached column does; a new token when it
is earlier in the row or, for a token tree, when ``visible`` says it is an ancestor) and, in a sliding-window layer of window w, when
``p - k < w``: transformers' own window rule (``kv_idx > q_idx - sliding_window``),
applied to positions rather than cache columns, because padded and packed rows put
tokens at columns that are not their positions. Every query also sees itself, so a
padding query is never fully masked.
"""

from __future__ import annotations

import torch


def allowed(
    past_valid: torch.Tensor,
    past_positions: torch.Tensor,
    valid: torch.Tensor,
    positions: torch.Tensor,
    visible: torch.Tensor | None = None,
    window: int | None = None,
) -> torch.Tensor:
    """(N, q, T + q) bool: which of T cached columns and q new tokens each new token sees.

    ``visible`` (N, q, q): which new tokens each new token may see (its ancestors in a
    token tree); None: every earlier new token of the row (plain causal attention)."""
    n, q = valid.shape
    earlier = torch.tril(torch.ones((q, q), dtype=torch.bool)) if visible is None else visible
    new = earlier & valid[:, None, :]
    past = past_valid[:, None, :].expand(n, q, -1)
    if window is not None:
        past = past & (positions[:, :, None] - past_positions[:, None, :] < window)
        new = new & (positions[:, :, None] - positions[:, None, :] < window)
    new = new | torch.eye(q, dtype=torch.bool)
    return torch.cat([past, new], dim=2)


def prefix_allowed(length: int, positions: torch.Tensor, window: int) -> torch.Tensor:
    """(N, q, P) bool: which tokens of a shared prefix (positions 0..P-1) each new token sees."""
    return positions[:, :, None] - torch.arange(length)[None, None, :] < window


def additive(allowed: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(N, 1, q, K): 0 where allowed, the dtype's most negative finite value elsewhere.

    Finite, not -inf: a query that sees no key of one part of a split attention (the
    shared prefix, outside its window) then gets a finite log-sum-exp and weight 0.
    """
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None].to(device)
