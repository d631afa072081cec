"""Batched, seeded free-text generation with shared-prefix reuse.

All items' prompts are prefilled together (the shared prefix once, see
:meth:`Engine.prefill <agents.llm.engine.Engine.prefill>`), then decoded one token per step for the whole batch. Each
item samples with its own temperature from its own ``numpy`` generator seeded with
``item.seed``, so a reply depends only on the prompt, the seed and the model, never on
which other items share the batch (up to float rounding of padded batches). Rows that
hit an end-of-sequence token or their ``max_new_tokens`` leave the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agents.llm.engine import Engine
from agents.llm.types import GenerateItem, Prefilled


def generate_items(engine: Engine, items: Sequence[GenerateItem], *, share_prefix: bool = True) -> list[str]:
    """One reply per item (special tokens stripped; the prompt not included)."""
    if not items:
        return []
    if any(item.max_new_tokens < 1 for item in items):
        raise ValueError("max_new_tokens must be at least 1")
    contexts = engine.encode([engine.render(i.system, i.user, i.answer_prefix) for i in items])
    prefix_len = engine.shared_prefix_length(contexts, share=share_prefix)
    replies: list[str] = [""] * len(items)
    costs = [(len(c) - prefix_len, 0) for c in contexts]
    for chunk in engine.chunks(costs):
        state = engine.prefill([contexts[i] for i in chunk], chunk, prefix_len)
        tokens = _decode(engine, state, [items[i] for i in chunk], chunk)
        for i, ids in zip(chunk, tokens, strict=True):
            replies[i] = engine.decode(ids)
    return replies


def sample_token(logits: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Argmax at temperature 0, else one inverse-CDF draw from softmax(logits / T)."""
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


def _decode(engine: Engine, state: Prefilled, items: Sequence[GenerateItem], rows: Sequence[int]) -> list[list[int]]:
    rngs = [np.random.default_rng(item.seed) for item in items]
    out: list[list[int]] = [[] for _ in items]
    active = list(range(len(items)))  # chunk positions of the rows still generating
    cache, valid, positions, pos = state.cache, state.valid, state.positions, state.next_pos
    logits = state.last_logits.cpu().numpy()
    while True:
        chosen, keep = [], []
        for a, i in enumerate(active):
            token = sample_token(logits[a], items[i].temperature, rngs[i])
            if token in engine.eos_ids:
                continue
            out[i].append(token)
            if len(out[i]) < items[i].max_new_tokens:
                keep.append(a)
                chosen.append(token)
        if not keep:
            return out
        if len(keep) < len(active):  # finished rows leave the batch (and the KV cache)
            index = torch.tensor(keep)
            cache.batch_select_indices(index.to(engine.device))
            valid, positions, pos = valid[index], positions[index], pos[index]
            active = [active[a] for a in keep]
        ids = torch.tensor(chosen)[:, None]
        step_valid = torch.ones((len(active), 1), dtype=torch.bool)
        done = torch.tensor([[len(out[i]) - 1] for i in active])
        step = engine.context(
            "decode",
            tuple(rows[i] for i in active),
            step_valid,
            pos[:, None],
            past_valid=valid,
            past_positions=positions,
            prefix=state.prefix,
            gen_index=done,
        )
        logits = engine.forward(step, ids, cache)[:, -1].float().cpu().numpy()
        valid = torch.cat([valid, step_valid], dim=1)
        positions = torch.cat([positions, pos[:, None]], dim=1)
        pos = pos + 1
