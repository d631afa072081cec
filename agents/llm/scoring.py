"""Exact option log-probabilities for a batch of prompts, with shared-prefix reuse.

For each item the score of option o is the whole-sequence log-probability
log P(o | prompt) under the model (no length normalisation), where the prompt is the
chat-templated system + user turns followed by the answer prefix.

**Token boundary.** The context and the option are tokenised *jointly*
(``prompt + option``), as the model would read them; where a tokenizer merges the
context's last characters into the option's first token (byte-level BPE turns
``"I catch " + "10"`` into ``... "catch", " 10"``), the scored tail starts at the last
token that context and every option's joint tokenisation share. All options of an
item are therefore scored after the same context tokens, and each option's tokens are
exactly the ones the model would see.

**Batching.** One call runs: the shared prefix (once, cached across calls), one
padded forward for all items' contexts, and one forward for all options of all items,
packed into the item's own row with a mask that keeps options from seeing each other
(a one-level token tree). Single-token options need no second forward at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agents.llm.engine import Engine, common_prefix
from agents.llm.types import Prefilled, ScoreItem, ScoreResult


@dataclass(frozen=True)
class Prepared:
    context: list[int]  # token ids the options are scored after
    tails: list[list[int]]  # each option's token ids (may start with context characters)


def prepare(engine: Engine, items: Sequence[ScoreItem]) -> list[Prepared]:
    """Tokenise every item's context and context+option strings in one tokenizer call."""
    texts: list[str] = []
    for item in items:
        if any(not o for o in item.options):
            raise ValueError("options must be non-empty strings")
        ctx = engine.render(item.system, item.user, item.answer_prefix)
        texts.append(ctx)
        texts.extend(ctx + o for o in item.options)
    encoded = engine.encode(texts)
    out, at = [], 0
    for item in items:
        ctx, fulls = encoded[at], encoded[at + 1 : at + 1 + len(item.options)]
        at += 1 + len(item.options)
        boundary = min(common_prefix(ctx, full) for full in fulls)
        if boundary == 0:
            raise ValueError("the prompt renders to no tokens of its own; cannot score options after it")
        out.append(Prepared(context=ctx[:boundary], tails=[full[boundary:] for full in fulls]))
    return out


def score_items(engine: Engine, items: Sequence[ScoreItem], *, share_prefix: bool = True) -> list[ScoreResult]:
    """Log-probabilities of every option of every item (see the module docstring);
    ``share_prefix`` off: every row runs its whole context (steering all prompt tokens)."""
    if not items:
        return []
    prepared = prepare(engine, items)
    prefix_len = engine.shared_prefix_length([p.context for p in prepared], share=share_prefix)
    vocab = int(engine.model.config.get_text_config().vocab_size)
    costs = [(len(p.context) - prefix_len, sum(len(t) for t in p.tails) * vocab) for p in prepared]
    layers = sorted({layer for item in items for layer in item.capture})
    results: list[ScoreResult | None] = [None] * len(items)
    for chunk in engine.chunks(costs):
        state = engine.prefill([prepared[i].context for i in chunk], chunk, prefix_len, capture=layers)
        logprobs = _score_options(engine, state, [prepared[i].tails for i in chunk], chunk)
        for r, i in enumerate(chunk):
            acts = {layer: state.activations[layer][r].numpy() for layer in items[i].capture}
            lengths = tuple(len(t) for t in prepared[i].tails)
            results[i] = ScoreResult(logprobs=logprobs[r], n_tokens=lengths, activations=acts)
    return results  # type: ignore[return-value]


def _score_options(
    engine: Engine, state: Prefilled, tails: Sequence[Sequence[list[int]]], rows: Sequence[int]
) -> list[np.ndarray]:
    """Sum of token log-probs of each option, continuing from the prefilled contexts."""
    first = torch.log_softmax(state.last_logits, dim=-1)
    scores = [np.array([float(first[r, t[0]]) for t in row_tails]) for r, row_tails in enumerate(tails)]
    if all(len(t) == 1 for row_tails in tails for t in row_tails):
        return scores
    n = len(tails)
    width = max(sum(len(t) for t in row_tails) for row_tails in tails)
    ids = torch.full((n, width), engine.pad_id, dtype=torch.long)
    valid = torch.zeros((n, width), dtype=torch.bool)
    # Padding columns get segments of their own, so they see only the context and themselves.
    segments = -1 - torch.arange(width).repeat(n, 1)
    pos = torch.zeros((n, width), dtype=torch.long)
    gen_index = torch.zeros((n, width), dtype=torch.long)
    # (row, column that predicts the token, token, option) for every non-first option token
    targets: list[tuple[int, int, int, int]] = []
    for r, row_tails in enumerate(tails):
        col = 0
        for k, tail in enumerate(row_tails):
            span = slice(col, col + len(tail))
            ids[r, span] = torch.tensor(tail)
            valid[r, span] = True
            segments[r, span] = k
            pos[r, span] = state.next_pos[r] + torch.arange(len(tail))
            gen_index[r, span] = torch.arange(len(tail))
            targets.extend((r, col + j - 1, tail[j], k) for j in range(1, len(tail)))
            col += len(tail)
    needed = sorted({(r, c) for r, c, _, _ in targets})
    per_row: list[list[int]] = [[] for _ in range(n)]
    for r, c in needed:
        per_row[r].append(c)
    k_max = max(len(cols) for cols in per_row)
    keep = torch.zeros((n, k_max), dtype=torch.long)
    slot: dict[tuple[int, int], int] = {}
    for r, cols in enumerate(per_row):
        for s, c in enumerate(cols):
            keep[r, s] = c
            slot[(r, c)] = s
    ctx = engine.context(
        "options",
        tuple(rows),
        valid,
        pos,
        segments=segments,
        past_valid=state.valid,
        past_positions=state.positions,
        prefix=state.prefix,
        gen_index=gen_index,
    )
    logits = engine.forward(ctx, ids, state.cache, keep=keep).float()
    r_idx = torch.tensor([t[0] for t in targets])
    s_idx = torch.tensor([slot[(t[0], t[1])] for t in targets])
    tok_idx = torch.tensor([t[2] for t in targets])
    with torch.inference_mode():  # logits is an inference tensor; in-place updates need the mode
        picked = logits[r_idx, s_idx, tok_idx]  # read before the in-place logsumexp overwrites logits
        picked -= _logsumexp_(logits)[r_idx, s_idx]
    for (r, _, _, k), value in zip(targets, picked.double().cpu().numpy(), strict=True):
        scores[r][k] += value
    return scores


def _logsumexp_(logits: torch.Tensor) -> torch.Tensor:
    """logsumexp over the last dimension, overwriting ``logits``: the option stage's
    logits (rows x positions x vocabulary) are the largest tensor of a call, and
    torch.logsumexp would allocate a temporary of the same size."""
    top = logits.amax(dim=-1, keepdim=True)
    return logits.sub_(top).exp_().sum(dim=-1).log_() + top.squeeze(-1)


def score_reference(engine: Engine, items: Sequence[ScoreItem]) -> list[np.ndarray]:
    """The naive oracle: one plain forward per (item, option), no cache, no padding.

    Deliberately independent of the batched path (it calls the model directly with
    its default causal mask and its original attention code, which builds each layer's
    mask, sliding windows included); tests hold :func:`score_items` to it.
    """
    out = []
    for prep in prepare(engine, items):
        scores = []
        for tail in prep.tails:
            ids = torch.tensor([prep.context + tail], device=engine.device)
            with torch.inference_mode():
                logp = torch.log_softmax(engine.model(input_ids=ids, use_cache=False).logits[0].float(), dim=-1)
            start = len(prep.context)
            scores.append(sum(float(logp[start + j - 1, tok]) for j, tok in enumerate(tail)))
        out.append(np.array(scores))
    return out
