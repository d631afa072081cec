"""The second embedded model, Gemma 3 270M (base): what it reads, and that the engine's
option probabilities on a commons decision are those of a plain eager forward.

The first use converts the model once into the normsim cache (~60-150 s); every later
session loads the cached checkpoint (a few seconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from agents.llm import get_backend
from agents.llm.scoring import prepare
from agents.llm.types import ScoreItem
from agents.menus import amount_labels
from environments.commons.prompts import harvest_prompt, system_text

pytestmark = pytest.mark.integration

OPTIONS = amount_labels([0, 5, 10, 15, 20, 30, 40], "ton")


@pytest.fixture(scope="module")
def backend():
    return get_backend("gemma3-270m", dtype="float32", device="cpu")


def commons_items() -> list[ScoreItem]:
    """Month 1 of scenarios/commons_llm.yaml's harvest for an altruistic and a selfish fisher."""
    system = system_text(
        n_agents=5, capacity=100, regrowth="doubling", collapse=5, consumption=0, punishment=True, group_norm=True
    )
    items = []
    for fisher, persona in ((1, "altruistic"), (5, "selfish")):
        prompt = harvest_prompt(
            system,
            record="- (nothing yet)",
            fisher=fisher,
            persona=persona,
            memory="- (nothing yet)",
            stock=100,
            norm=None,
            own_norm=None,
            note="",
        )
        items.append(ScoreItem(prompt.system, prompt.user, prompt.answer_prefix, OPTIONS))
    return items


@contextmanager
def eager(model) -> Iterator[None]:
    current = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(current)


def test_gemma_reads_its_own_turn_markers(backend):
    engine = backend.engine
    assert engine.describe()["turn_format"] == "gemma_turns"
    [item] = commons_items()[:1]
    text = engine.render(item.system, item.user, item.answer_prefix)
    assert (
        text == f"<bos><start_of_turn>user\n{item.system}\n\n{item.user}<end_of_turn>\n<start_of_turn>model\nI catch "
    )
    ids = engine.encode([text])[0]
    tok = engine.tokenizer
    assert ids[:2] == [tok.bos_token_id, tok.convert_tokens_to_ids("<start_of_turn>")]
    assert ids.count(tok.convert_tokens_to_ids("<end_of_turn>")) == 1


def test_a_commons_decision_equals_a_plain_eager_forward(backend):
    engine = backend.engine
    assert engine.share_prefix_kv and engine.describe()["layers"] == "15 sliding(512) + 3 full"
    items = commons_items()
    got = [r.logprobs for r in backend.score(items)]
    want = []
    with eager(backend.model), torch.inference_mode():
        for prep in prepare(engine, items):
            # context + option for every option, one row each, right-padded: under the
            # causal mask a row's own positions never see the padding after them.
            rows = [prep.context + tail for tail in prep.tails]
            width = max(map(len, rows))
            ids = torch.tensor([r + [engine.pad_id] * (width - len(r)) for r in rows])
            start = len(prep.context)
            # Logits from the position before the options only: the 262k-word head over
            # every prompt position would cost as much as the rest of the forward.
            logits = backend.model(input_ids=ids, use_cache=False, logits_to_keep=width - start + 1).logits
            scores = []
            for row, tail in enumerate(prep.tails):
                logp = torch.log_softmax(logits[row, : len(tail)].float(), -1)
                scores.append(sum(float(logp[j, t]) for j, t in enumerate(tail)))
            want.append(np.array(scores))
    for g, w in zip(got, want, strict=True):
        probs_got, probs_want = np.exp(g - g.max()), np.exp(w - w.max())
        np.testing.assert_allclose(probs_got / probs_got.sum(), probs_want / probs_want.sum(), atol=1e-4, rtol=0)
    # The model reads its prompt: the personas' distributions differ.
    assert np.abs(got[0] - got[1]).max() > 1e-3
