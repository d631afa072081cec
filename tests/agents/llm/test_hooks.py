"""The engine's per-forward hooks: narrowed output heads and captured layer outputs."""

from __future__ import annotations

import pytest
import torch

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
