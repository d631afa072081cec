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

**Batching.** One call runs: what the contexts share, once (the common prefix, cached
across calls, and the branches of the batch's prefix tree, :mod:`agents.llm.prefix_tree`),
one padded forward for all items' own context tokens and, after each item's context in
the same row, its options as a token tree (a token several options start with runs
once; an option's last token is read, never run). Items that also ask for a reply continue from
the same prefilled contexts (:func:`agents.llm.generation.decode`): no second prefill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from agents.llm import prefix_tree
from agents.llm.engine import Engine, common_prefix
from agents.llm.generation import decode
from agents.llm.types import GenerateItem, Prefilled, ScoreItem, ScoreResult


@dataclass(frozen=True)
class Prepared:
    context: list[int]  # token ids the options are scored after
    tails: list[list[int]]  # each option's token ids (may start with context characters)
    rest: list[int]  # the prompt's tokens after ``context`` (a reply continues after them)


def prepare(engine: Engine, items: Sequence[ScoreItem]) -> list[Prepared]:
    """Tokenise every item's context and context+option strings in one tokenizer call."""
    texts: list[str] = []
    for item in items:
        if any(not o for o in item.options):
            raise ValueError("options must be non-empty strings")
        if not item.options and item.reply is None:
            raise ValueError("an item needs options to score or a reply to sample")
        ctx = engine.render(item.system, item.user, item.answer_prefix)
        texts.append(ctx)
        texts.extend(ctx + o for o in item.options)
    encoded = engine.encode(texts)
    out, at = [], 0
    for item in items:
        ctx, fulls = encoded[at], encoded[at + 1 : at + 1 + len(item.options)]
        at += 1 + len(item.options)
        boundary = min((common_prefix(ctx, full) for full in fulls), default=len(ctx))
        if boundary == 0:
            raise ValueError("the prompt renders to no tokens of its own; cannot score options after it")
        out.append(Prepared(context=ctx[:boundary], tails=[full[boundary:] for full in fulls], rest=ctx[boundary:]))
    return out


def score_items(engine: Engine, items: Sequence[ScoreItem], *, share_prefix: bool = True) -> list[ScoreResult]:
    """Log-probabilities of every option of every item (see the module docstring), and
    the reply of every item that asks for one, sampled from the same prefilled prompt;
    ``share_prefix`` off: every row runs its whole context (steering all prompt tokens)."""
    if not items:
        return []
    prepared = prepare(engine, items)
    shared = engine.share([p.context for p in prepared], share=share_prefix)
    trees = [_option_tree(p.tails) for p in prepared]
    layers = sorted({layer for item in items for layer in item.capture})
    results: list[ScoreResult | None] = [None] * len(items)
    for chunk in chunk_items(engine, items, prepared, shared.tree, [len(cols) for cols, _ in trees]):
        state = engine.prefill(
            [prepared[i].context for i in chunk],
            chunk,
            shared,
            capture=layers,
            continuations=[trees[i][0] for i in chunk],
            keep_cache=any(items[i].reply is not None for i in chunk),
        )
        logprobs = _option_logprobs(state, [prepared[i].tails for i in chunk], [trees[i][1] for i in chunk])
        texts = _replies(engine, state, [items[i] for i in chunk], [prepared[i] for i in chunk], chunk)
        for r, i in enumerate(chunk):
            acts = {layer: state.activations[layer][r].numpy() for layer in items[i].capture}
            lengths = tuple(len(t) for t in prepared[i].tails)
            results[i] = ScoreResult(logprobs=logprobs[r], n_tokens=lengths, activations=acts, text=texts.get(r))
        del state  # before the next chunk's forward: its logits are a chunk's largest tensor
    return results  # type: ignore[return-value]


def chunk_items(
    engine: Engine,
    items: Sequence[ScoreItem],
    prepared: Sequence[Prepared],
    tree: prefix_tree.Tree,
    columns: Sequence[int],
) -> list[list[int]]:
    """Item indices per prefill forward: the rows of one tree branch together, split where
    it costs least within the engine's budgets (:meth:`Engine.chunks`). An item's options
    run after its context as a token tree of ``columns[i]`` columns, each with a row of
    logits (one per distinct proper prefix of the options, not one per option token: a
    forum act request has 19 for 68 option tokens), besides its last context token's."""
    order = tree.order([len(p.context) for p in prepared])
    vocab = int(engine.model.config.get_text_config().vocab_size)
    costs = [
        (
            len(prepared[i].context) - tree.own_start[i] + columns[i],
            (1 + columns[i]) * vocab,
            items[i].reply.max_new_tokens if items[i].reply is not None else 0,
        )
        for i in order
    ]
    return [[order[k] for k in part] for part in engine.chunks(costs)]


def _replies(
    engine: Engine, state: Prefilled, items: Sequence[ScoreItem], prepared: Sequence[Prepared], rows: Sequence[int]
) -> dict[int, str]:
    """Chunk row -> reply, for the rows whose item asks for one, continuing from the
    prefilled contexts."""
    want = [r for r, item in enumerate(items) if item.reply is not None]
    if not want:
        return {}
    if len(want) < len(items):
        state = state.select(torch.tensor(want), engine.device)
    state = engine.extend(state, [prepared[r].rest for r in want], [rows[r] for r in want])
    replies = decode(engine, state, [items[r].reply for r in want], [rows[r] for r in want])  # type: ignore[misc]
    return dict(zip(want, replies, strict=True))


def _option_tree(tails: Sequence[list[int]]) -> tuple[list[tuple[int, ...]], list[tuple[int, int, int]]]:
    """The options of one item as a token tree: the distinct proper prefixes of their
    token runs (each a column whose logits score the next token; an option's last token
    is only read, never run), parents before children; and (column, token, option) for
    every option token after the first."""
    columns: dict[tuple[int, ...], int] = {}
    targets: list[tuple[int, int, int]] = []
    for k, tail in enumerate(tails):
        for j in range(1, len(tail)):
            key = tuple(tail[:j])
            if key not in columns:
                columns[key] = len(columns)
            targets.append((columns[key], tail[j], k))
    return list(columns), targets


def _option_logprobs(
    state: Prefilled, tails: Sequence[Sequence[list[int]]], targets: Sequence[list[tuple[int, int, int]]]
) -> list[np.ndarray]:
    """Sum of token log-probs of each option: its first token's from the context's last
    logits, every later token's from its token-tree column, run with the contexts (so a
    token shared by several options' starts, "upvote #1", "upvote #2", runs once)."""
    first = torch.log_softmax(state.last_logits, dim=-1).cpu()
    scores = [np.array([float(first[r, t[0]]) for t in row_tails]) for r, row_tails in enumerate(tails)]
    flat = [(r, c, tok, k) for r, row in enumerate(targets) for c, tok, k in row]
    if not flat:
        return scores
    logits = state.continuation_logits
    assert logits is not None
    logits = logits.float()
    r_idx, c_idx, tok_idx = (torch.tensor([t[j] for t in flat], device=logits.device) for j in range(3))
    with torch.inference_mode():  # logits is an inference tensor; in-place updates need the mode
        picked = logits[r_idx, c_idx, tok_idx]  # read before the in-place logsumexp overwrites logits
        picked -= _logsumexp_(logits)[r_idx, c_idx]
    for (r, _, _, k), value in zip(flat, picked.double().cpu().numpy(), strict=True):
        scores[r][k] += value
    return scores


def _logsumexp_(logits: torch.Tensor) -> torch.Tensor:
    """logsumexp over the last dimension, overwriting ``logits``: the options'
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


def generate_items(engine: Engine, items: Sequence[GenerateItem], *, share_prefix: bool = True) -> list[str]:
    """One reply per item (special tokens stripped; the prompt not included): the same
    path as a scored item's reply, with no options to score."""
    asked = [ScoreItem(i.system, i.user, i.answer_prefix, (), steer=i.steer, reply=i.reply) for i in items]
    return [r.text or "" for r in score_items(engine, asked, share_prefix=share_prefix)]
