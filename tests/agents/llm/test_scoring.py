"""Batched, prefix-reusing option scoring equals the naive per-(item, option) computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.interfaces import softmax
from agents.llm.scoring import prepare, score_items, score_reference
from agents.llm.testing import tiny_backend
from agents.llm.types import ScoreItem

SYSTEM = "You are one of 5 fishers sharing a lake that holds at most 100 tons of fish. Answer with one option."
HARVEST = ("0% of the stock (0.0 tons)", "10% of the stock (10.0 tons)", "20%", "40% of the stock")
SIMILAR = ("10% of the stock", "20% of the stock", "40% of the stock", "0% of the stock")


def _items() -> list[ScoreItem]:
    # Different user lengths, options of 1 to 13 tokens, and options whose first token
    # swallows the answer prefix's trailing space.
    users = [
        "You care about the community. Month 2: you caught 9.5 tons. How much do you catch this month?",
        "You care about maximising your own income. How much do you catch?",
        "Month 1: you caught 3.0 tons; others caught 1: 10.0, 2: 20.0; 80 tons were left. " * 2 + "Catch?",
    ]
    items = [ScoreItem(SYSTEM, u, "I catch ", HARVEST if i == 2 else SIMILAR) for i, u in enumerate(users)]
    items.append(ScoreItem(SYSTEM, "Do you fine fisher 3?", "Answer: ", ("yes", "no")))
    items.append(ScoreItem(SYSTEM, "Propose a limit.", "I propose ", ("5 tons", "10 tons", "12 tons", "50 tons", "8")))
    return items


@pytest.fixture(scope="module")
def backend():
    return tiny_backend(seed=1)


def test_boundary_case_is_exercised(backend):
    """The tokenizer merges the space of "I catch " into the option's first token, and
    the scored tails start at the shared boundary, so every option's tokens are the
    ones of the jointly tokenised string."""
    item = _items()[0]
    prep = prepare(backend.engine, [item])[0]
    ctx_alone = backend.encode([backend.render(item.system, item.user, item.answer_prefix)])[0]
    assert len(prep.context) < len(ctx_alone)  # the trailing space token moved into the options
    for option, tail in zip(item.options, prep.tails, strict=True):
        full = backend.encode([backend.render(item.system, item.user, item.answer_prefix) + option])[0]
        assert prep.context + tail == full


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_batched_equals_naive(backend, padding_side, reuse_prefix):
    backend.engine.padding_side, backend.engine.reuse_prefix = padding_side, reuse_prefix
    items = _items()
    batched = score_items(backend.engine, items)
    naive = score_reference(backend.engine, items)
    for got, want in zip(batched, naive, strict=True):
        np.testing.assert_allclose(got.logprobs, want, atol=1e-4, rtol=0)
        np.testing.assert_allclose(softmax(got.logprobs), softmax(want), atol=1e-4, rtol=0)
        np.testing.assert_allclose(softmax(got.logprobs, 2.5), softmax(want, 2.5), atol=1e-4, rtol=0)
    backend.engine.padding_side, backend.engine.reuse_prefix = "right", True


def test_the_check_can_fail(backend):
    """The distributions are far from uniform and differ between prompts, so an error in
    positions or masks would show well above the 1e-4 tolerance."""
    probs = [softmax(r.logprobs) for r in score_items(backend.engine, _items())]
    assert all(p.max() < 0.99 and p.max() - p.min() > 0.05 for p in probs[:2] + probs[3:])
    assert np.abs(probs[0] - probs[1]).max() > 1e-2


def test_prefix_reuse_equals_no_reuse_and_hits_the_cache(backend):
    items = _items()
    backend.engine.reuse_prefix = False
    plain = score_items(backend.engine, items)
    backend.engine.reuse_prefix = True
    backend.engine._prefixes.clear()
    first = score_items(backend.engine, items)
    assert len(backend.engine._prefixes) == 1
    prefix = next(iter(backend.engine._prefixes))
    assert len(prefix) > 20  # the chat header and the whole system text
    again = score_items(backend.engine, items)
    for a, b, c in zip(plain, first, again, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4)
        np.testing.assert_array_equal(b.logprobs, c.logprobs)


def test_chunked_batches_equal_one_batch(backend):
    items = _items()
    whole = score_items(backend.engine, items)
    backend.engine.token_budget = 60  # forces several context chunks
    try:
        assert len(backend.chunks([(50, 0)] * len(items))) > 1
        chunked = score_items(backend.engine, items)
    finally:
        backend.engine.token_budget = 8192
    for a, b in zip(whole, chunked, strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4)


def test_one_item_alone_equals_within_a_batch(backend):
    items = _items()
    together = score_items(backend.engine, items)
    alone = score_items(backend.engine, items[1:2])
    np.testing.assert_allclose(together[1].logprobs, alone[0].logprobs, atol=1e-4)


def test_captured_activation_is_the_last_prompt_token_output(backend):
    items = [ScoreItem(i.system, i.user, i.answer_prefix, i.options, capture=(0, 1)) for i in _items()[:3]]
    results = score_items(backend.engine, items)
    for item, result in zip(items, results, strict=True):
        context = prepare(backend.engine, [item])[0].context
        with torch.inference_mode():
            hidden = backend.model(input_ids=torch.tensor([context]), output_hidden_states=True).hidden_states
        assert set(result.activations) == {0, 1}
        # hidden_states[1] is decoder layer 0's output; the last entry is after the final norm.
        np.testing.assert_allclose(result.activations[0], hidden[1][0, -1].numpy(), atol=1e-4)
        assert result.activations[1].shape == (backend.model.config.hidden_size,)


def test_empty_option_is_rejected(backend):
    with pytest.raises(ValueError, match="non-empty"):
        score_items(backend.engine, [ScoreItem(SYSTEM, "x", "", ("a", ""))])
