"""Batched, seeded free-text generation with shared-prefix reuse.

All items' prompts are prefilled together (the shared prefix once, see
:meth:`Backend.prefill`), then decoded one token per step for the whole batch. Each
item samples with its own temperature from its own ``numpy`` generator seeded with
``item.seed``, so a reply depends only on the prompt, the seed and the model, never on
which other items share the batch (up to float rounding of padded batches). Rows that
hit an end-of-sequence token or their ``max_new_tokens`` leave the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agents.llm.backend import ActiveForward, Backend, GenerateItem, Prefilled


def generate_items(backend: Backend, items: Sequence[GenerateItem]) -> list[str]:
    """One reply per item (special tokens stripped; the prompt not included)."""
    if not items:
        return []
    if any(item.max_new_tokens < 1 for item in items):
        raise ValueError("max_new_tokens must be at least 1")
    contexts = backend.encode([backend.render(i.system, i.user, i.answer_prefix) for i in items])
    prefix_len = backend.shared_prefix_length(contexts)
    replies: list[str] = [""] * len(items)
    costs = [(len(c) - prefix_len, 0) for c in contexts]
    for chunk in backend.chunks(costs):
        state = backend.prefill([contexts[i] for i in chunk], chunk, prefix_len)
        tokens = _decode(backend, state, [items[i] for i in chunk], chunk)
        for i, ids in zip(chunk, tokens, strict=True):
            replies[i] = backend.decode(ids)
    return replies


def sample_token(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Argmax at temperature 0, else one inverse-CDF draw from softmax(logits / T)."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


def _decode(backend: Backend, state: Prefilled, items: Sequence[GenerateItem], rows: Sequence[int]) -> list[list[int]]:
    rngs = [np.random.default_rng(item.seed) for item in items]
    out: list[list[int]] = [[] for _ in items]
    active = list(range(len(items)))  # chunk positions of the rows still generating
    cache, valid, pos = state.cache, state.valid, state.next_pos
    logits = state.last_logits.cpu().numpy()
    while True:
        chosen, keep = [], []
        for a, i in enumerate(active):
            token = sample_token(logits[a], items[i].temperature, rngs[i])
            if token in backend.eos_ids:
                continue
            out[i].append(token)
            if len(out[i]) < items[i].max_new_tokens:
                keep.append(a)
                chosen.append(token)
        if not keep:
            return out
        if len(keep) < len(active):  # finished rows leave the batch (and the KV cache)
            index = torch.tensor(keep)
            cache.batch_select_indices(index.to(backend.device))
            valid, pos = valid[index], pos[index]
            active = [active[a] for a in keep]
        ids = torch.tensor(chosen)[:, None]
        step_valid = torch.ones((len(active), 1), dtype=torch.bool)
        mask = backend.attention_mask(valid, step_valid, torch.zeros_like(ids))
        done = torch.tensor([[len(out[i]) - 1] for i in active])
        step = ActiveForward("decode", tuple(rows[i] for i in active), valid=step_valid, gen_index=done)
        logits = backend._forward(step, ids, mask, pos[:, None], cache)[:, -1].float().cpu().numpy()
        valid = torch.cat([valid, step_valid], dim=1)
        pos = pos + 1
