"""The batch's prefix tree, replies continuing from the scoring pass, stop strings and
option token trees: each equal to the plain reference, and each doing less work."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.interfaces import stop_at
from agents.llm import prefix_tree
from agents.llm.scoring import _option_tree, generate_items, score_items, score_reference
from agents.llm.testing import tiny_backend, tiny_model, tiny_tokenizer
from agents.llm.types import GenerateItem, Reply, ScoreItem

SYSTEM = "You are a member of a forum. Rules: be civil; no spam."
FEED_A = "Your feed:\n#1 @3: the council should fund the park.\n#2 @5: buy cheap pills now!\n"
FEED_B = "Your feed:\n#1 @4: tax cuts would help small shops.\n"
OPTIONS = ("do nothing", "upvote #1", "upvote #2", "downvote #1", "report #2")


def _items() -> list[ScoreItem]:
    """Two feeds, each seen by two members (their own parts after it), and a fifth member
    alone: a tree of two branches below the common system text."""
    users = [
        FEED_A + "You lean in favour of change. What do you do?",
        FEED_B + "You lean against change. What do you do?",
        FEED_A + "You are new here. What do you do?",
        "Nothing in your feed. What do you do?",
        FEED_B + "You like lively debate. What do you do?",
    ]
    return [ScoreItem(SYSTEM, u, "I choose to ", OPTIONS) for u in users]


@pytest.fixture(scope="module")
def backend():
    return tiny_backend(seed=4)


def test_plan_finds_each_shared_run_once():
    ctx = [[1, 2, 3, 4, 5, 6, 9], [1, 2, 3, 4, 5, 6, 8], [1, 2, 7, 7, 7, 7, 7, 1], [1, 2, 7, 7, 7, 7, 7, 2], [1, 2, 0]]
    tree = prefix_tree.plan(ctx, 2, min_tokens=3)
    assert [(n.start, n.end, n.parent) for n in tree.nodes] == [(2, 6, -1), (2, 7, -1)]
    assert tree.node_of == [0, 0, 1, 1, -1] and tree.own_start == [6, 6, 7, 7, 2]
    assert prefix_tree.plan(ctx, 2, min_tokens=5).node_of == [-1, -1, 0, 0, -1]  # a 4-token run is too short
    assert prefix_tree.plan(ctx, 2, max_depth=0).nodes == []
    # Nested runs: a second level below the first, each prompt keeping its last token.
    nested = [[0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 6], [0, 1, 2, 9, 9]]
    deep = prefix_tree.plan(nested, 1, min_tokens=2)
    assert [(n.start, n.end, n.parent) for n in deep.nodes] == [(1, 3, -1), (3, 5, 0)]
    assert deep.node_of == [1, 1, 0] and deep.own_start == [5, 5, 3]
    assert deep.order() == [2, 0, 1]


def test_a_short_shared_run_does_not_hide_longer_runs_below_it():
    # Four prompts share one token (5) after the root, then part into two pairs that each
    # share a long run: the pairs' runs become nodes that begin with the short run.
    long_a, long_b = [10, 11, 12, 13], [20, 21, 22, 23]
    ctx = [[0, 5, *long_a, 1, 1], [0, 5, *long_a, 2, 2], [0, 5, *long_b, 3, 3], [0, 5, *long_b, 4, 4]]
    tree = prefix_tree.plan(ctx, 1, min_tokens=3)
    assert [(n.start, n.end, n.tokens) for n in tree.nodes] == [(1, 6, (5, *long_a)), (1, 6, (5, *long_b))]
    assert tree.node_of == [0, 0, 1, 1] and tree.own_start == [6, 6, 6, 6]
    # Depth still bounds the tree: the deeper runs count as the first level.
    assert len(prefix_tree.plan(ctx, 1, min_tokens=3, max_depth=1).nodes) == 2


@pytest.mark.parametrize("depth", [0, 1, 3, 8])
def test_tree_scores_equal_the_reference(backend, depth):
    backend.engine.tree_depth, backend.engine.tree_min_tokens = depth, 8
    try:
        shared = backend.engine.share([backend.encode([backend.render(SYSTEM, i.user, "")])[0] for i in _items()])
        got = score_items(backend.engine, _items())
    finally:
        backend.engine.tree_depth, backend.engine.tree_min_tokens = 8, 16
    # "Your feed:\n" (four members), then each feed (two members each) below it
    assert len(shared.tree.nodes) == {0: 0, 1: 1, 3: 3, 8: 3}[depth]  # two levels are all there is
    for g, want in zip(got, score_reference(backend.engine, _items()), strict=True):
        np.testing.assert_allclose(g.logprobs, want, atol=1e-4, rtol=0)


def test_tree_on_a_sliding_window_model_equals_the_reference():
    model = tiny_model("mistral", seed=3, sliding_window=12)
    from agents.llm.backend import Backend

    b = Backend(model, tiny_tokenizer(), name="tiny-mistral-w12", tree_min_tokens=8)
    assert b.engine.share_prefix_kv
    for g, want in zip(score_items(b.engine, _items()), score_reference(b.engine, _items()), strict=True):
        np.testing.assert_allclose(g.logprobs, want, atol=1e-4, rtol=0)


def test_the_tree_computes_each_shared_token_once(backend):
    computed: list[int] = []
    levels: list[int] = []  # forwards of the tree's nodes (the common prefix runs without a token tree)
    inner = backend.engine.forward

    def counting(ctx, ids, *args, **kwargs):
        computed.append(int(ctx.valid.sum()))
        if ctx.stage == "prefix" and ctx.visible is not None:
            levels.append(int(ctx.valid.sum()))
        return inner(ctx, ids, *args, **kwargs)

    backend.engine.forward = counting
    try:
        backend.engine._prefixes.clear()
        backend.engine.tree_min_tokens = 8
        score_items(backend.engine, _items())
        with_tree = sum(computed)
        assert len(levels) == 1  # both levels of the tree (the feed's start, then each feed) in one forward
        computed.clear()
        backend.engine._prefixes.clear()
        backend.engine.tree_depth = 0
        score_items(backend.engine, _items())
        without = sum(computed)
    finally:
        del backend.engine.forward
        backend.engine.tree_depth, backend.engine.tree_min_tokens = 8, 16
    feed_tokens = len(backend.encode([FEED_A])[0]) + len(backend.encode([FEED_B])[0])
    assert without - with_tree >= feed_tokens - 4  # each feed ran once, not twice


def test_option_tree_runs_shared_option_tokens_once():
    columns, targets = _option_tree([[5, 6, 7], [5, 6, 8], [5, 9], [4]])
    assert columns == [(5,), (5, 6)]  # last tokens are read, never run
    assert targets == [(0, 6, 0), (1, 7, 0), (0, 6, 1), (1, 8, 1), (0, 9, 2)]


def test_replies_continue_from_the_scoring_pass(backend):
    """A scored item's reply equals the same reply generated alone, with one prefill fewer."""
    replies = [Reply(max_new_tokens=6, temperature=t, seed=s) for s, t in enumerate((1.0, 0.0, 1.0, 1.0, 0.7))]
    scored = [
        ScoreItem(i.system, i.user, i.answer_prefix, i.options, reply=r) for i, r in zip(_items(), replies, strict=True)
    ]
    alone = [
        GenerateItem(i.system, i.user, i.answer_prefix, r.max_new_tokens, r.temperature, r.seed)
        for i, r in zip(_items(), replies, strict=True)
    ]
    stages: list[str] = []
    inner = backend.engine.forward
    backend.engine.forward = lambda ctx, *a, **k: stages.append(ctx.stage) or inner(ctx, *a, **k)
    try:
        results = score_items(backend.engine, scored)
    finally:
        del backend.engine.forward
    assert stages.count("context") <= 2  # the contexts, and the prompts' last characters the options had merged
    assert [r.text for r in results] == generate_items(backend.engine, alone)
    plain = score_items(backend.engine, _items())
    for a, b in zip(results, plain, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5, rtol=0)


def test_a_forward_nothing_continues_from_stores_no_keys(backend):
    """Scoring without replies keeps no keys or values of its contexts (the largest
    tensors of a batch after the logits); with replies it keeps them for decoding."""
    stored: list[int] = []
    inner = backend.engine.forward

    def forward(ctx, ids, cache, keep=None):
        out = inner(ctx, ids, cache, keep)
        if ctx.stage == "context":
            stored.append(sum(layer.keys.numel() for layer in cache.layers if getattr(layer, "keys", None) is not None))
        return out

    backend.engine.forward = forward
    try:
        plain = score_items(backend.engine, _items())
        kept_none = list(stored)
        stored.clear()
        replied = [
            ScoreItem(i.system, i.user, i.answer_prefix, i.options, reply=Reply(max_new_tokens=2)) for i in _items()
        ]
        score_items(backend.engine, replied)
    finally:
        del backend.engine.forward
    assert kept_none and all(n == 0 for n in kept_none)
    assert stored and stored[0] > 0
    for got, want in zip(plain, score_reference(backend.engine, _items()), strict=True):
        np.testing.assert_allclose(got.logprobs, want, atol=1e-4, rtol=0)


def test_stop_strings_end_a_reply_and_are_cut():
    assert stop_at("\n\nHello there.\nMore", ("\n",)) == len("\n\nHello there.")
    assert stop_at("roses] and more", ("]", "\n")) == len("roses")
    assert stop_at("no stop here", ("]",)) is None and stop_at("x", ()) is None


def test_generation_stops_at_the_stop_string(backend):
    item = GenerateItem(SYSTEM, "Say something.", "", max_new_tokens=20, temperature=1.0, seed=3)
    full = generate_items(backend.engine, [item])[0]
    visible = full.lstrip()
    cut = next((c for c in visible[1:] if c.strip()), None)  # a character the reply has after its start
    assert cut is not None
    stopped = GenerateItem(item.system, item.user, "", 20, 1.0, 3, stop=(cut,))
    got = generate_items(backend.engine, [stopped])[0]
    assert got == full[: full.index(cut, len(full) - len(visible))] and len(got) < len(full)


def test_device_sampling_matches_numpy_inverse_cdf():
    from agents.llm.generation import sample_tokens

    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 300, generator=gen) * 3
    rng = np.random.default_rng(1)
    draws = rng.random(64).tolist()
    got = sample_tokens(logits, [0.7] * 63 + [0.0], draws)
    for r in range(63):
        z = logits[r].double().numpy() / 0.7
        cdf = np.cumsum(np.exp(z - z.max()))
        assert got[r] == min(int(np.searchsorted(cdf, draws[r] * cdf[-1], side="right")), 299)
    assert got[63] == int(logits[63].argmax())


def test_a_batch_is_split_by_the_logits_its_option_trees_compute(backend):
    """An item's options cost one row of logits per token-tree column (and one for its
    last context token), not one per option token: a logit budget that holds exactly
    that runs the batch in one forward, options and all."""
    from agents.llm.scoring import prepare

    engine = backend.engine
    items = _items()[:4]
    columns = [len(_option_tree(p.tails)[0]) for p in prepare(engine, items)]
    tokens = [sum(len(t) for t in p.tails) for p in prepare(engine, items)]
    assert sum(tokens) > sum(columns) > 0  # options share their first tokens
    vocab = int(engine.model.config.vocab_size)
    stages: list[str] = []
    inner = engine.forward
    engine.forward = lambda ctx, *a, **k: stages.append(ctx.stage) or inner(ctx, *a, **k)
    budget, cost = engine.logit_budget, engine.forward_cost
    try:  # forwards made dear: only a budget splits the batch
        engine.logit_budget, engine.forward_cost = (1 + max(columns)) * len(items) * vocab, 10**6
        got = score_items(engine, items)
    finally:
        del engine.forward
        engine.logit_budget, engine.forward_cost = budget, cost
    assert stages.count("context") == 1
    for g, want in zip(got, score_reference(engine, items), strict=True):
        np.testing.assert_allclose(g.logprobs, want, atol=1e-4, rtol=0)
