"""The steering guarantees, on a tiny random Llama."""

from __future__ import annotations

import inspect

import pytest
import torch

from steering.hooks import Steerer, SteeringError, find_decoder_layers
from steering.positions import GENERATED, LAST, PAD, PROMPT

PROMPTS = [[5, 9, 3, 17, 2, 8, 11], [4, 4, 21, 7], [30, 1, 2, 3, 4, 5, 6, 7, 8, 9], [12, 13]]
OPERATORS = [("add", 4.0), ("add_norm", 4.0), ("rotate", 60.0), ("ablate", 1.0)]


def batch(prompts):
    lens = torch.tensor([len(p) for p in prompts])
    width = int(lens.max())
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = torch.tensor(p)
    mask = (torch.arange(width)[None, :] < lens[:, None]).long()
    return ids, mask, lens


def left_padded(prompts):
    ids, mask, lens = batch(prompts)
    for i, n in enumerate(lens.tolist()):
        ids[i] = torch.roll(ids[i], ids.shape[1] - n)
        mask[i] = torch.roll(mask[i], ids.shape[1] - n)
    return ids, mask, lens


@torch.no_grad()
def last_logits(model, steerer=None, prompts=PROMPTS):
    ids, mask, lens = batch(prompts)
    if steerer is not None:
        steerer.prompt(mask)
    out = model(input_ids=ids, attention_mask=mask)
    return out.logits[torch.arange(len(prompts)), lens - 1]


def cache_arg(model) -> str:
    """The cache's argument and output name (past_key_values in transformers 5.17, cache in 5.25)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def generate_cached(model, s, prompts, steps):
    """Greedy decoding with a KV cache: right-padded prompt, then one token per step at
    position len + t (the pads stay masked in the cache)."""
    ids, mask, lens = batch(prompts)
    s.prompt(mask)
    arg = cache_arg(model)
    out = model(input_ids=ids, attention_mask=mask, use_cache=True)
    cache, logits = getattr(out, arg), out.logits[torch.arange(len(prompts)), lens - 1]
    seen, tokens = [logits], []
    for t in range(steps):
        nxt = logits.argmax(-1)
        tokens.append(nxt)
        mask = torch.cat([mask, torch.ones(len(prompts), 1, dtype=torch.long)], 1)
        s.generated(t)
        out = model(
            input_ids=nxt[:, None],
            attention_mask=mask,
            position_ids=(lens + t)[:, None],
            use_cache=True,
            **{arg: cache},
        )
        cache, logits = getattr(out, arg), out.logits[:, -1]
        seen.append(logits)
    return torch.stack(tokens, 1), torch.stack(seen, 1)


@torch.no_grad()
def generate_uncached(model, s, prompts, steps):
    """Greedy decoding re-forwarding the whole sequence each step; generated tokens are
    described by their index from the start of generation."""
    lens = torch.tensor([len(p) for p in prompts])
    gen: list[list[int]] = [[] for _ in prompts]
    seen = []
    for t in range(steps + 1):
        ids, mask, _ = batch([p + g for p, g in zip(prompts, gen, strict=True)])
        width = ids.shape[1]
        ar = torch.arange(width)[None, :]
        kinds = torch.where(ar < lens[:, None], PROMPT, PAD)
        kinds[torch.arange(len(prompts)), lens - 1] = LAST
        kinds[(ar >= lens[:, None]) & (ar < (lens + t)[:, None])] = GENERATED
        s.set_tokens(kinds, ar - lens[:, None])
        logits = model(input_ids=ids, attention_mask=mask).logits[torch.arange(len(prompts)), lens + t - 1]
        seen.append(logits)
        if t < steps:
            for g, tok in zip(gen, logits.argmax(-1).tolist(), strict=True):
                g.append(tok)
    return torch.tensor(gen), torch.stack(seen, 1)


def test_finds_decoder_layers_generically(model):
    from transformers import GPT2Config, GPT2LMHeadModel

    assert find_decoder_layers(model) is model.model.layers
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=3, n_embd=16, n_head=2, vocab_size=50, n_positions=32))
    assert find_decoder_layers(gpt2) is gpt2.transformer.h


@pytest.mark.parametrize("operator,coef", OPERATORS)
def test_coefficient_zero_is_bit_identical(model, make_vector, operator, coef):
    base = last_logits(model)
    with Steerer(model) as s:
        row = s.add(make_vector(model, [1, 2]), operator=operator)
        s.set_rows(row, 0.0, "all_prompt+generated")
        zero = last_logits(model, s)
        s.set_rows(row, coef, "all_prompt")
        steered = last_logits(model, s)
    assert torch.equal(zero, base)
    assert not torch.allclose(steered, base, atol=1e-3)  # the same steerer does act


def test_unsteered_rows_cobatched_with_steered_rows_are_bit_identical(model, make_vector):
    base = last_logits(model)
    with Steerer(model) as s:
        a = s.add(make_vector(model, [1], seed=1), operator="add")
        b = s.add(make_vector(model, [2, 3], seed=2), operator="rotate")
        s.set_rows([0, a, 0, b], [0.0, 6.0, 0.0, 45.0], ["last_prompt", "all_prompt", "generated", "last_prompt"])
        mixed = last_logits(model, s)
    assert torch.equal(mixed[[0, 2]], base[[0, 2]])
    assert not torch.allclose(mixed[1], base[1], atol=1e-3)
    assert not torch.allclose(mixed[3], base[3], atol=1e-3)


def test_rows_are_independent_of_their_neighbours(model, make_vector):
    """A steered row gives the same logits whatever the other rows do."""
    with Steerer(model) as s:
        a = s.add(make_vector(model, [1], seed=1))
        b = s.add(make_vector(model, [2], seed=2), operator="add_norm")
        s.set_rows([a, b, a, 0], [3.0, 5.0, -2.0, 0.0], "all_prompt")
        one = last_logits(model, s)
        s.set_rows([a, 0, 0, b], [3.0, 0.0, 0.0, 1.0], "all_prompt")
        two = last_logits(model, s)
    assert torch.equal(one[0], two[0])


@pytest.mark.parametrize("positions", ["last_prompt+generated", "all_prompt+generated", "generated"])
def test_kv_cache_generation_equals_full_reforward(model, make_vector, positions):
    with Steerer(model) as s:
        a = s.add(make_vector(model, [1, 2], seed=3))
        b = s.add(make_vector(model, [2], seed=4), operator="add_norm")
        s.set_rows([a, 0, b, a], [5.0, 0.0, 8.0, -4.0], positions, gen_start=0, gen_stop=3)
        tok_c, log_c = generate_cached(model, s, PROMPTS, steps=6)
        tok_u, log_u = generate_uncached(model, s, PROMPTS, steps=6)
        s.clear_rows()
        _, log_0 = generate_cached(model, s, PROMPTS, steps=6)
    assert torch.equal(tok_c, tok_u)
    torch.testing.assert_close(log_c, log_u, atol=2e-5, rtol=1e-5)
    assert not torch.allclose(log_c[[0, 2, 3]], log_0[[0, 2, 3]], atol=1e-3)  # steering acted
    assert torch.equal(log_c[1], log_0[1])  # row 1 is unsteered


def test_generation_window_counts_from_start_of_generation(model, make_vector):
    """gen_stop=2 steers generated tokens 0 and 1 only, whatever the prompt lengths."""
    with Steerer(model) as s:
        a = s.add(make_vector(model, [1], seed=5))
        s.set_rows(a, 6.0, "generated", gen_stop=2)
        _, windowed = generate_cached(model, s, PROMPTS, steps=5)
        s.set_rows(a, 6.0, "generated")
        _, always = generate_cached(model, s, PROMPTS, steps=5)
        s.clear_rows()
        _, plain = generate_cached(model, s, PROMPTS, steps=5)
    # the logits of step k are computed at generated token k-1; step 0 at the (unsteered) prompt
    assert torch.equal(windowed[:, 0], plain[:, 0])
    assert not torch.allclose(windowed[:, 1], plain[:, 1], atol=1e-4)
    assert torch.equal(windowed[:, 1:3], always[:, 1:3])
    assert not torch.allclose(windowed[:, 3:], always[:, 3:], atol=1e-4)


def test_shared_prefix_cache_matches_full_prompt(model, make_vector):
    """Prefill the common prefix once unsteered, repeat its cache, forward the suffixes."""
    prefix = [7, 8, 9, 10, 11]
    suffixes = [[5, 9, 3], [4, 4, 21, 7, 6], [30]]
    full = [prefix + s for s in suffixes]
    with Steerer(model) as s, torch.no_grad():
        a = s.add(make_vector(model, [0, 2], seed=6))
        s.set_rows([a, 0, a], [4.0, 0.0, -3.0], "last_prompt")
        want = last_logits(model, s, full)
        s.skip()
        arg = cache_arg(model)
        cache = getattr(model(input_ids=torch.tensor([prefix]), use_cache=True), arg)
        cache.batch_repeat_interleave(len(suffixes))
        ids, mask, lens = batch(suffixes)
        mask = torch.cat([torch.ones(len(suffixes), len(prefix), dtype=torch.long), mask], 1)
        positions = len(prefix) + torch.arange(ids.shape[1])[None, :].expand(len(suffixes), -1)
        s.prompt(mask[:, len(prefix) :], after_shared_prefix=True)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{arg: cache})
        got = out.logits[torch.arange(len(suffixes)), lens - 1]
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
        s.set_rows([a, 0, 0], [4.0, 0.0, 0.0], "all_prompt")
        with pytest.raises(SteeringError, match="shared prefix"):
            s.prompt(mask[:, len(prefix) :], after_shared_prefix=True)
        assert s.needs_own_prefix().tolist() == [True, False, False]


def hooks(model):
    # transformers installs its own hooks for output_hidden_states; count ours by id
    return {id(h) for layer in find_decoder_layers(model) for h in layer._forward_hooks.values()}


def test_hooks_are_removed_on_exit_and_on_exception(model, make_vector):
    before = hooks(model)
    with Steerer(model) as s:
        s.add(make_vector(model, [0, 3]))
        assert len(hooks(model) - before) == 2
    assert hooks(model) == before
    with pytest.raises(RuntimeError, match="boom"), Steerer(model) as s:
        s.add(make_vector(model, [1]))
        assert len(hooks(model) - before) == 1
        raise RuntimeError("boom")
    assert hooks(model) == before and not s.attached


def test_undescribed_forward_is_an_error(model, make_vector):
    ids, mask, lens = batch(PROMPTS)
    with Steerer(model) as s, torch.no_grad():
        s.set_rows(s.add(make_vector(model, [1])), 2.0)
        with pytest.raises(SteeringError, match="not described"):
            model(input_ids=ids, attention_mask=mask)
        s.prompt(mask)
        model(input_ids=ids, attention_mask=mask)
        with pytest.raises(SteeringError, match="not described"):  # a description serves one forward
            model(input_ids=ids, attention_mask=mask)
        s.prompt(mask[:2, :3])
        with pytest.raises(SteeringError, match="shape"):
            model(input_ids=ids, attention_mask=mask)


def test_vector_of_wrong_size_is_rejected_clearly(model, make_vector):
    from transformers import LlamaConfig, LlamaForCausalLM

    other = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    with pytest.raises(ValueError, match=r"hidden size 32 != model's 16.*layer count 4 != model's 2.*layer\(s\) \[3\]"):
        Steerer(other).add(make_vector(model, [1, 3]))


def test_left_padding_and_row_selection(model, make_vector):
    """Left-padded batches, and sub-batches naming their set_rows entries, steer the same."""
    with Steerer(model) as s, torch.no_grad():
        a = s.add(make_vector(model, [1, 2], seed=7))
        s.set_rows([a, 0, a, a], [3.0, 0.0, -2.0, 5.0], ["all_prompt", "all_prompt", "last_prompt", "all_prompt"])
        want = last_logits(model, s)
        ids, mask, lens = left_padded(PROMPTS)
        s.prompt(mask)
        pos = (mask.cumsum(1) - 1).clamp_min(0)
        got = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1]
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
        sub = [PROMPTS[3], PROMPTS[1]]
        ids, mask, lens = batch(sub)
        s.prompt(mask, rows=[3, 1])
        got = model(input_ids=ids, attention_mask=mask).logits[torch.arange(2), lens - 1]
        torch.testing.assert_close(got, want[[3, 1]], atol=2e-5, rtol=1e-5)
