"""Steering through the LLM backend's own batched paths (shared prefix, packed options,
KV-cache decoding), held to naive unbatched references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.llm.scoring import prepare
from agents.llm.testing import tiny_backend
from agents.llm.types import GenerateItem, ScoreItem
from steering.config import SteerSpec
from steering.hooks import Steerer, find_decoder_layers
from steering.positions import GENERATED, LAST, PROMPT
from steering.vectors import SteeringVector

SYSTEM = "You are one of 5 fishers sharing a lake that holds at most 100 tons of fish. Answer with one option."
OPTIONS = ("0% of the stock (0.0 tons)", "10% of the stock", "40%", "yes")
USERS = [
    "You care about the community. Month 2: you caught 9.5 tons. How much do you catch this month?",
    "You care about maximising your own income. How much do you catch?",
    "Month 1: you caught 3.0 tons; others caught 1: 10.0, 2: 20.0; 80 tons were left. Catch?",
    "Do you fine fisher 3?",
]


@pytest.fixture(scope="module")
def backend():
    return tiny_backend(seed=2)


@pytest.fixture(scope="module")
def vector_file(backend, tmp_path_factory):
    gen = torch.Generator().manual_seed(0)
    h = backend.model.config.hidden_size
    from steering.operators import plane_axis

    dirs = {layer: torch.randn(h, generator=gen) for layer in (0, 1)}
    planes = {layer: plane_axis(d, torch.randn(h, generator=gen)) for layer, d in dirs.items()}
    vec = SteeringVector(
        directions=dirs,
        planes=planes,
        model_id=backend.name,
        hidden_size=h,
        num_layers=len(backend.layers),
        method="random",
    )
    return str(vec.save(tmp_path_factory.mktemp("vec") / "random"))


def spec(path, coef, positions="last_prompt+generated", operator="add", layers=(0, 1)):
    return SteerSpec(vector=path, layers=layers, coefficient=coef, positions=positions, operator=operator)


def items(steers):
    return [ScoreItem(SYSTEM, u, "I catch ", OPTIONS, steer=s) for u, s in zip(USERS, steers, strict=True)]


def logprobs(backend, steers):
    return [r.logprobs for r in backend.score(items(steers))]


def test_coefficient_zero_and_unsteered_rows_are_bit_identical(backend, vector_file):
    plain = logprobs(backend, [None] * 4)
    zero = logprobs(backend, [spec(vector_file, 0.0)] * 4)
    mixed = logprobs(backend, [spec(vector_file, 3.0), None, spec(vector_file, -2.0, "generated"), None])
    for i in range(4):
        assert np.array_equal(zero[i], plain[i])
    for i in (1, 3):
        assert np.array_equal(mixed[i], plain[i])
    for i in (0, 2):
        assert not np.allclose(mixed[i], plain[i], atol=1e-3)


def test_all_prompt_rows_turn_prefix_sharing_off_for_the_call(backend, vector_file):
    """Steering every prompt token includes the shared system prefix, so such a call
    forwards whole prompts: the other rows then match an unsteered batch to float
    rounding (the batch layout changed), not bit for bit."""
    plain = logprobs(backend, [None] * 4)
    mixed = logprobs(backend, [None, spec(vector_file, 2.0, "all_prompt"), None, None])
    for i in (0, 2, 3):
        np.testing.assert_allclose(mixed[i], plain[i], atol=1e-4, rtol=0)
    assert not np.allclose(mixed[1], plain[1], atol=1e-3)


@torch.no_grad()
def naive_scores(backend, steers, vector_path):
    """One plain forward per (item, option) with explicit positions: context tokens are
    prompt tokens (the last one the last prompt token), option tokens generated tokens."""
    vec = SteeringVector.load(vector_path)
    out = []
    for prep, st in zip(prepare(backend.engine, items(steers)), steers, strict=True):
        scores = []
        for tail in prep.tails:
            ids = torch.tensor([prep.context + tail])
            n = len(prep.context)
            kinds = torch.tensor([[PROMPT] * (n - 1) + [LAST] + [GENERATED] * len(tail)])
            gen = torch.tensor([[0] * n + list(range(len(tail)))])
            with Steerer(backend.model) as s:
                s.set_rows(
                    s.add(vec, operator=st.operator) if st else 0,
                    st.coefficient if st else 0.0,
                    st.positions if st else "last_prompt",
                )
                s.set_tokens(kinds, gen)
                logp = torch.log_softmax(backend.model(input_ids=ids).logits[0].float(), -1)
            scores.append(sum(float(logp[n + j - 1, t]) for j, t in enumerate(tail)))
        out.append(np.array(scores))
    return out


@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_steered_scoring_equals_naive_reference(backend, vector_file, padding_side):
    backend.engine.padding_side = padding_side
    steers = [
        spec(vector_file, 3.0),
        None,
        spec(vector_file, 2.0, "all_prompt+generated"),
        spec(vector_file, 40.0, "generated", operator="rotate"),
    ]
    got = logprobs(backend, steers)
    want = naive_scores(backend, steers, vector_file)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)
    assert sum(len(find_decoder_layers(backend.model)[i]._forward_hooks) for i in range(2)) == 0


@torch.no_grad()
def naive_generate(backend, item, steer, vector_path, steps):
    """Greedy decoding by re-forwarding the whole sequence each step (no KV cache)."""
    ctx = backend.encode([backend.render(item.system, item.user, item.answer_prefix)])[0]
    out: list[int] = []
    vec = SteeringVector.load(vector_path)
    for _ in range(steps):
        ids = torch.tensor([ctx + out])
        n = len(ctx)
        kinds = torch.tensor([[PROMPT] * (n - 1) + [LAST] + [GENERATED] * len(out)])
        gen = torch.tensor([[0] * n + list(range(len(out)))])
        with Steerer(backend.model) as s:
            s.set_rows(s.add(vec), steer.coefficient, steer.positions)
            s.set_tokens(kinds, gen)
            tok = int(backend.model(input_ids=ids).logits[0, -1].argmax())
        if tok in backend.eos_ids:
            break
        out.append(tok)
    return backend.decode(out)


def test_steered_generation_with_kv_cache_equals_reforwarding(backend, vector_file):
    backend.engine.padding_side = "left"
    steers = [spec(vector_file, 4.0), spec(vector_file, 6.0, "generated"), None, spec(vector_file, 3.0, "all_prompt")]
    gen_items = [
        GenerateItem(SYSTEM, u, "I propose ", max_new_tokens=6, temperature=0.0, steer=s)
        for u, s in zip(USERS, steers, strict=True)
    ]
    got = backend.generate(gen_items)
    plain = backend.generate([GenerateItem(SYSTEM, u, "I propose ", max_new_tokens=6, temperature=0.0) for u in USERS])
    assert got[2] == plain[2]
    for i in (0, 1, 3):
        assert got[i] == naive_generate(backend, gen_items[i], steers[i], vector_file, 6)
    assert got != plain
