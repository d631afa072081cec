"""Cascade attention over one shared prefix copy equals attention over per-row copies."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from agents.llm.attention import PrefixedCache, attention
from agents.llm.backend import Backend
from agents.llm.scoring import generate_items, prepare, score_items, score_reference
from agents.llm.testing import tiny_backend, tiny_llama, tiny_tokenizer
from agents.llm.types import CONTEXT_KWARG, ForwardContext, GenerateItem, SharedPrefix
from tests.agents.llm.test_scoring import _items


def _attention_inputs(heads: int, groups: int, window: int | None, seed: int = 0):
    """Random query/keys for 3 rows of 4 new tokens after 6 own cached columns and a
    5-token shared prefix, with some cached columns padding, and the context describing them."""
    gen = torch.Generator().manual_seed(seed)
    n, q, own, prefix, dim = 3, 4, 6, 5, 8
    query = torch.randn(n, q, heads, dim, generator=gen).transpose(1, 2)  # the layout models produce
    keys = [
        torch.randn(b, groups, t, dim, generator=gen) for b, t in ((1, prefix), (n, own + q), (1, prefix), (n, own + q))
    ]
    past_valid = torch.rand(n, own, generator=gen) > 0.3
    past_pos = prefix + torch.arange(own).repeat(n, 1)
    ctx = ForwardContext(
        stage="context",
        rows=(0, 1, 2),
        valid=torch.ones(n, q, dtype=torch.bool),
        positions=prefix + own + torch.arange(q).repeat(n, 1),
        # a token tree: tokens 0 -> 1 and 0 -> 2 -> 3 (each sees its ancestors)
        visible=torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 1, 1]], dtype=torch.bool).expand(
            n, 4, 4
        ),
        past_valid=past_valid,
        past_positions=past_pos,
        windows=(window,),
        dtype=torch.float32,
        device=torch.device("cpu"),
        prefix=SharedPrefix([(keys[0], keys[2])]),
    )
    return query, keys, ctx


@pytest.mark.parametrize("window", [None, 3, 8, 40])
@pytest.mark.parametrize("heads,groups", [(4, 2), (6, 6), (6, 1)])
def test_cascade_equals_attention_over_copied_prefix(heads, groups, window):
    """Against transformers' SDPA over [prefix; own] with a mask made independently here."""
    query, (pk, k, pv, v), ctx = _attention_inputs(heads, groups, window)
    module = types.SimpleNamespace(layer_idx=0, num_key_value_groups=heads // groups, is_causal=True, training=False)
    n, length = k.shape[0], pk.shape[2]
    full_k = torch.cat([pk.expand(n, -1, -1, -1), k], dim=2)
    full_v = torch.cat([pv.expand(n, -1, -1, -1), v], dim=2)
    key_pos = torch.cat([torch.arange(length).repeat(n, 1), ctx.past_positions, ctx.positions], dim=1)
    key_ok = torch.cat([torch.ones(n, length, dtype=torch.bool), ctx.past_valid, torch.ones(n, 4, dtype=torch.bool)], 1)
    q_pos = ctx.positions
    allowed = key_ok[:, None, :] & (key_pos[:, None, :] <= q_pos[:, :, None])
    own_cols = torch.arange(length + 6, length + 10)
    allowed[:, :, own_cols] &= ctx.visible
    if window is not None:
        allowed &= q_pos[:, :, None] - key_pos[:, None, :] < window
    mask = torch.zeros(allowed.shape).masked_fill_(~allowed, torch.finfo(torch.float32).min)[:, None]
    want, _ = sdpa_attention_forward(module, query, full_k, full_v, mask, scaling=0.3)
    got, _ = attention(module, query, k, v, None, scaling=0.3, **{CONTEXT_KWARG: ctx})
    # Returning attention weights is not handled by the fast path: the fallback materialises the prefix.
    fallback, _ = attention(module, query, k, v, None, scaling=0.3, output_attentions=True, **{CONTEXT_KWARG: ctx})
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fallback, want, atol=1e-5, rtol=1e-5)
    assert got.shape == (n, query.shape[2], heads, query.shape[3]) and got.is_contiguous()
    assert ctx.layers_seen == {0}


def test_rows_hold_only_their_own_tokens():
    backend = tiny_backend(seed=1)
    assert backend.engine.share_prefix_kv
    contexts = [p.context for p in prepare(backend.engine, _items())]
    backend.engine.tree_depth = 0  # only the common prefix: every row's own tokens follow it
    shared = backend.engine.share(contexts)
    prefix_len = shared.tree.root
    state = backend.engine.prefill(contexts, list(range(len(contexts))), shared)
    assert isinstance(state.cache, PrefixedCache) and state.cache.prefix.length == prefix_len > 20
    width = max(len(c) for c in contexts) - prefix_len
    assert state.cache.layers[0].keys.shape[2] == width == state.valid.shape[1]
    assert state.cache.prefix.layers[0][0].shape[0] == 1  # one copy for all rows
    assert state.cache.get_seq_length() == prefix_len + width


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_shared_prefix_equals_per_row_copies(padding_side):
    """The new path against the old one (prefix broadcast into every row, transformers' SDPA)."""
    backend = tiny_backend(seed=1, padding_side=padding_side)
    items = _items()
    fast = score_items(backend.engine, items)
    backend.engine.share_prefix_kv = False
    backend.model.set_attn_implementation("sdpa")
    backend.engine._prefixes.clear()
    old = score_items(backend.engine, items)
    for a, b in zip(fast, old, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5, rtol=0)


def test_model_without_gqa_equals_naive():
    model = tiny_llama(3)
    model.config.num_key_value_heads = model.config.num_attention_heads
    model = type(model)(model.config)  # rebuilt: 4 KV heads for 4 query heads
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.15)
    backend = Backend(model.eval(), tiny_tokenizer(), name="tiny-mha")
    assert backend.engine.share_prefix_kv
    for got, want in zip(score_items(backend.engine, _items()), score_reference(backend.engine, _items()), strict=True):
        np.testing.assert_allclose(got.logprobs, want, atol=1e-4, rtol=0)


def test_generation_after_the_shared_prefix_equals_no_reuse():
    """Decode steps run after the suffix, with rows leaving the batch (and the cache)."""
    backend = tiny_backend(seed=2)
    system = "You are one of 5 fishers sharing a lake. Write the catch limit you propose."
    items = [
        GenerateItem(system, u, "I propose ", max_new_tokens=m, temperature=0.0, seed=i)
        for i, (u, m) in enumerate([("Hi", 3), ("Month 1: you caught 9.5 tons.", 8), ("Propose", 5)])
    ]
    shared = generate_items(backend.engine, items)
    backend.engine.reuse_prefix = False
    assert generate_items(backend.engine, items) == shared


def test_a_model_bypassing_the_attention_interface_falls_back(monkeypatch):
    """Attention code that ignores the registered function would skip the prefix: the
    backend's numerical check notices and keeps the prefix in every row instead."""
    import transformers.models.llama.modeling_llama as llama

    class Bypass:
        def get_interface(self, _name, _default):
            return sdpa_attention_forward

    monkeypatch.setattr(llama, "ALL_ATTENTION_FUNCTIONS", Bypass())
    backend = tiny_backend(seed=1)
    assert not backend.engine.share_prefix_kv
    for got, want in zip(score_items(backend.engine, _items()), score_reference(backend.engine, _items()), strict=True):
        np.testing.assert_allclose(got.logprobs, want, atol=1e-4, rtol=0)
