"""A tiny random Llama, built in code (nothing is downloaded)."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from steering.vectors import SteeringVector


def tiny_llama(seed: int = 0, layers: int = 4, hidden: int = 32) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(cfg).eval()
    # Random init gives near-uniform logits; larger weights make steering visible.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(8.0)
    return model


@pytest.fixture(scope="session")
def model() -> LlamaForCausalLM:
    return tiny_llama()


def random_vector(model: LlamaForCausalLM, layers: list[int], seed: int = 1, scale: float = 1.0) -> SteeringVector:
    gen = torch.Generator().manual_seed(seed)
    h = model.config.hidden_size
    dirs = {layer: torch.randn(h, generator=gen) * scale for layer in layers}
    planes = {layer: torch.randn(h, generator=gen) for layer in layers}
    from steering.operators import plane_axis

    planes = {layer: plane_axis(dirs[layer], planes[layer]) for layer in layers}
    return SteeringVector(
        directions=dirs,
        planes=planes,
        model_id="tiny",
        hidden_size=h,
        num_layers=model.config.num_hidden_layers,
        method="random",
    )


@pytest.fixture(scope="session")
def make_vector():
    return random_vector
