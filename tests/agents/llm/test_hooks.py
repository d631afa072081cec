"""The engine's per-forward hooks: narrowed output heads and captured layer outputs."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from agents.llm import hooks
from agents.llm.testing import tiny_model


@pytest.mark.parametrize(
    "family, overrides",
    [
        ("llama", {}),
        ("gemma2", {"final_logit_softcapping": 2.0}),  # applied after the head
        ("cohere", {"logit_scale": 0.5}),
    ],
)
def test_a_narrowed_head_gives_each_row_the_logits_of_its_own_columns(family, overrides):
    model = tiny_model(family, seed=1, **overrides)
    ids = torch.tensor([[5, 9, 11, 40, 7, 3], [8, 2, 6, 14, 21, 30]])
    keep = torch.tensor([[5, 2], [0, 3]])  # other columns per row, in any order
    with torch.inference_mode():
        full = model(input_ids=ids).logits
        with hooks.kept_logits(model, keep) as narrowed:
            kept = model(input_ids=ids).logits
        after = model(input_ids=ids).logits
    assert narrowed
    assert kept.shape == (2, 2, full.shape[-1])
    want = full.gather(1, keep[:, :, None].expand(-1, -1, full.shape[-1]))
    torch.testing.assert_close(kept, want, rtol=1e-5, atol=1e-5)
    assert not torch.equal(kept[0, 0], kept[1, 0])  # the check can fail: rows read other columns
    torch.testing.assert_close(after, full)  # the hook is gone after the block


def test_a_narrowed_head_is_removed_when_the_forward_fails():
    model = tiny_model("llama", seed=1)
    with (
        pytest.raises(RuntimeError, match="output head"),
        hooks.kept_logits(model, torch.zeros((3, 1), dtype=torch.long)),
    ):
        model(input_ids=torch.tensor([[1, 2, 3], [4, 5, 6]]))  # 2 rows, 3 asked for
    assert not model.get_output_embeddings()._forward_pre_hooks


def test_few_row_products_equal_linear_and_are_removed_after_the_block():
    torch.manual_seed(0)
    plain, biased = torch.nn.Linear(64, 300, bias=False), torch.nn.Linear(64, 300)
    x = torch.randn(3, 1, 64)
    with torch.inference_mode():
        want = [plain(x), biased(x)]
        with hooks.few_row_products([plain, biased]):
            got = [plain(x), biased(x)]
        after = plain(x)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.is_contiguous()
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    assert "forward" not in plain.__dict__ and torch.equal(after, want[0])


def test_a_few_token_forward_gives_a_plain_forwards_logits():
    from agents.llm.testing import tiny_backend

    engine = tiny_backend().engine
    assert engine._few_row_linears  # float32 on a CPU: decode steps use them
    ids = torch.tensor([[5, 9, 11, 40, 7, 3, 8, 2]])
    with torch.inference_mode():
        want = engine.model(input_ids=ids).logits[0, -1]
        for rows in (1, 3):  # a decode step of 1 and of 3 rows, after a cached prompt
            cache = DynamicCache()
            engine.model(input_ids=ids[:, :-1].expand(rows, -1), use_cache=True, **{engine._cache_arg: cache})
            ctx = engine.context(
                "decode",
                None,
                torch.ones((rows, 1), dtype=torch.bool),
                torch.full((rows, 1), 7),
                past_valid=torch.ones((rows, 7), dtype=torch.bool),
                past_positions=torch.arange(7).expand(rows, -1),
            )
            got = engine.forward(ctx, ids[:, -1:].expand(rows, -1), cache)[:, -1]
            torch.testing.assert_close(got, want.expand(rows, -1), rtol=1e-4, atol=1e-4)
