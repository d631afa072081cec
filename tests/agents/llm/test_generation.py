"""Batched generation equals one-at-a-time decoding without a cache."""

from __future__ import annotations

import pytest
import torch

from agents.llm.scoring import generate_items
from agents.llm.testing import tiny_backend
from agents.llm.types import GenerateItem

SYSTEM = "You are one of 5 fishers sharing a lake. Write the catch limit you propose."


def _items(temperature: float) -> list[GenerateItem]:
    users = ["I care about the lake.", "Month 1: you caught 9.5 tons; 80 tons were left. Propose a limit.", "Hi"]
    return [
        GenerateItem(SYSTEM, u, "I propose ", max_new_tokens=n, temperature=temperature, seed=7 + i)
        for i, (u, n) in enumerate(zip(users, (6, 9, 4), strict=True))
    ]


def sample_token(logits, temperature: float, rng) -> int:
    """The reference draw: argmax at temperature 0, else inverse CDF of softmax(logits / T) in numpy."""
    import numpy as np

    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    cdf = np.cumsum(np.exp(z - z.max()))
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(cdf) - 1))


def _naive(backend, item: GenerateItem) -> str:
    """Re-run the whole sequence for every token: no cache, no padding, no batch."""
    import numpy as np

    ids = backend.encode([backend.render(item.system, item.user, item.answer_prefix)])[0]
    rng = np.random.default_rng(item.seed)
    out: list[int] = []
    for _ in range(item.max_new_tokens):
        with torch.inference_mode():
            logits = backend.model(input_ids=torch.tensor([ids + out])).logits[0, -1].float().numpy()
        token = sample_token(logits, item.temperature, rng)
        if token in backend.eos_ids:
            break
        out.append(token)
    return backend.decode(out)


@pytest.fixture(scope="module")
def backend():
    return tiny_backend(seed=2)


@pytest.mark.parametrize("padding_side", ["left", "right"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_batched_generation_equals_naive(backend, padding_side, temperature):
    backend.engine.padding_side = padding_side
    items = _items(temperature)
    try:
        got = generate_items(backend.engine, items)
    finally:
        backend.engine.padding_side = "right"
    want = [_naive(backend, item) for item in items]
    assert got == want
    assert len({len(t) for t in got}) > 1  # rows finish at different lengths and leave the batch


def test_seeded_and_independent_of_the_batch(backend):
    items = _items(1.0)
    assert generate_items(backend.engine, items) == generate_items(backend.engine, items)
    assert generate_items(backend.engine, items[1:2])[0] == generate_items(backend.engine, items)[1]
    reseeded = [
        GenerateItem(i.system, i.user, i.answer_prefix, i.max_new_tokens, i.temperature, i.seed + 100) for i in items
    ]
    assert generate_items(backend.engine, reseeded) != generate_items(backend.engine, items)


def test_length_cap(backend, monkeypatch):
    lengths = []
    decode = backend.engine.decode
    monkeypatch.setattr(backend.engine, "decode", lambda ids: lengths.append(len(ids)) or decode(ids))
    items = [GenerateItem(SYSTEM, u, "", max_new_tokens=3, temperature=1.0, seed=s) for s, u in enumerate("abcd")]
    generate_items(backend.engine, items)
    assert max(lengths) == 3 and min(lengths) >= 1
