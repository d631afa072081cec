"""The engine on a CUDA device: the cascade (memory-efficient kernel with log-sum-exp),
the prefix tree and on-device sampling against the plain reference. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.llm.backend import Backend
from agents.llm.scoring import score_items, score_reference
from agents.llm.testing import tiny_llama, tiny_model, tiny_tokenizer
from tests.agents.llm.test_prefix_tree import _items

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-3), (torch.bfloat16, 0.25)])
@pytest.mark.parametrize("window", [None, 12])
def test_cascade_on_cuda_equals_the_reference(dtype, tol, window):
    model = tiny_llama(1) if window is None else tiny_model("mistral", seed=1, sliding_window=window)
    backend = Backend(model.to("cuda", dtype), tiny_tokenizer(), name=f"tiny-cuda-{window}", tree_min_tokens=8)
    assert backend.engine.share_prefix_kv, backend.engine.fallback_reason
    for got, want in zip(score_items(backend.engine, _items()), score_reference(backend.engine, _items()), strict=True):
        np.testing.assert_allclose(got.logprobs, want, atol=tol, rtol=0)
