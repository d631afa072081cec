"""Batched, seeded free-text generation, continuing from prefilled prompts.

:func:`decode` samples replies one token per step for the whole batch, from a
:class:`~agents.llm.types.Prefilled` state (the prompts' shared prefix, tree branches and
own tokens already in the cache, usually from the scoring pass of the same call). Each
reply samples with its own temperature from its own ``numpy`` generator seeded with its
``seed``, so a reply depends only on the prompt, the seed and the model, never on which
other items share the batch (up to float rounding of padded batches). Rows that hit an
end-of-sequence token, their ``max_new_tokens`` or one of their stop strings leave the
batch. The logits stay on the model's device: a step moves each row's uniform draw there
and its chosen token back, not the vocabulary's logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from agents.interfaces import stop_at
from agents.llm.engine import Engine
from agents.llm.types import Prefilled, Reply


def sample_tokens(logits: torch.Tensor, temperatures: Sequence[float], draws: Sequence[float]) -> list[int]:
    """One token per row: argmax at temperature 0, else the inverse-CDF pick of the row's
    uniform draw from softmax(logits / T), in float64 on the logits' device."""
    temps = torch.tensor([t if t > 0 else 1.0 for t in temperatures], dtype=torch.float64, device=logits.device)
    z = logits.double() / temps[:, None]
    cdf = torch.exp(z - z.amax(dim=-1, keepdim=True)).cumsum_(dim=-1)
    u = torch.tensor(draws, dtype=torch.float64, device=logits.device) * cdf[:, -1]
    picked = torch.searchsorted(cdf, u[:, None], right=True).squeeze(1).clamp_(max=logits.shape[-1] - 1)
    greedy = torch.tensor([t <= 0 for t in temperatures], device=logits.device)
    return torch.where(greedy, logits.argmax(dim=-1), picked).tolist()


def decode(engine: Engine, state: Prefilled, replies: Sequence[Reply], rows: Sequence[int]) -> list[str]:
    """The reply text of every row of ``state`` (special tokens stripped, cut before a stop string)."""
    if any(r.max_new_tokens < 1 for r in replies):
        raise ValueError("max_new_tokens must be at least 1")
    rngs = [np.random.default_rng(r.seed) for r in replies]
    out: list[list[int]] = [[] for _ in replies]
    texts = [""] * len(replies)
    finished: set[int] = set()  # rows whose text a stop string already cut
    active = list(range(len(replies)))  # positions of the rows still generating
    cache, valid, positions, pos = state.cache, state.valid, state.positions, state.next_pos
    branches = state.branches
    logits = state.last_logits
    while True:
        temps = [replies[i].temperature for i in active]
        draws = [rngs[i].random() if replies[i].temperature > 0 else 0.0 for i in active]
        tokens = sample_tokens(logits, temps, draws)
        chosen, keep = [], []
        for a, (i, token) in enumerate(zip(active, tokens, strict=True)):
            if token in engine.eos_ids:
                continue
            out[i].append(token)
            # Decoded as it grows only where a stop string can end it; else once, at the end.
            end = stop_at(engine.decode(out[i]), replies[i].stop) if replies[i].stop else None
            if end is not None:
                texts[i] = engine.decode(out[i])[:end]
                finished.add(i)
            elif len(out[i]) < replies[i].max_new_tokens:
                keep.append(a)
                chosen.append(token)
        if not keep:
            return [texts[i] if i in finished else engine.decode(ids) for i, ids in enumerate(out)]
        if len(keep) < len(active):  # finished rows leave the batch (and the KV cache)
            index = torch.tensor(keep)
            cache.batch_select_indices(index.to(engine.device))
            valid, positions, pos = valid[index], positions[index], pos[index]
            branches = branches.select(index) if branches is not None else None
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
            branches=branches,
            gen_index=done,
        )
        logits = engine.forward(step, ids, cache)[:, -1]
        valid = torch.cat([valid, step_valid], dim=1)
        positions = torch.cat([positions, pos[:, None]], dim=1)
        pos = pos + 1
