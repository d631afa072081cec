"""Attention for the engine: per-layer masks, grouped-query heads and a shared prompt prefix.

:func:`install` routes a model's attention layers here. Each call finds the
:class:`~agents.llm.types.ForwardContext` of the running forward among its keyword
arguments (the engine passes it to the model call; transformers hands its keyword
arguments down to every attention layer) and builds its mask from it, for the layer's
own kind: full attention, or a sliding window over positions (Mistral, Gemma 2/3,
gpt-oss, Cohere2, OLMo3, ...). The mask the model itself passes is ignored then.

* **GQA.** SDPA runs with ``enable_gqa=True`` instead of expanding the KV heads to the
  query heads (``repeat_kv``); on CPU its flash kernel handles grouped heads natively.
* **Shared prefix.** A prefix computed once for all rows (batch 1) stays a single copy
  (:class:`PrefixedCache` holds only each row's own tokens) and each layer runs
  *cascade attention*: the rows attend to the prefix (expanded with stride 0; masked
  only where a sliding window leaves part of it out) and, separately, to their own keys;
  the two partial softmaxes are merged exactly through their log-sum-exps.

On other devices than the CPU the prefix is materialised for each call (SDPA over
[prefix; own tokens]). Anything SDPA does not compute (dropout, soft-capping,
attention sinks, returned weights) goes to the model's own eager attention function,
with the prefix materialised and the same per-layer mask: the same result, slower.
A forward without a context (a plain ``model(...)`` call) runs the model's original
attention implementation with the mask transformers built.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from agents.llm.types import CONTEXT_KWARG, ForwardContext, SharedPrefix

# Not containing "sdpa", "flash" or "flex": transformers checks those names against model support.
NAME = "normsim_cascade"
_UNHANDLED = ("softcap", "s_aux", "sinks", "position_bias")  # keyword arguments that change the scores
# id(config) -> (config, the implementation it had): configs are not hashable; the config is
# kept so its id is never reused by another.
_ORIGINAL: dict[int, tuple[Any, str]] = {}


class PrefixedCache(DynamicCache):
    """A cache of the rows' own tokens, carrying the prefix they all share (stored once)."""

    def __init__(self, prefix: SharedPrefix) -> None:
        super().__init__()  # no config: every layer a plain DynamicLayer, windows are applied by masks
        self.prefix = prefix

    def get_seq_length(self, layer_idx: int = 0) -> int:
        # Callers ask for the tokens seen, and the prefix's tokens are seen by every row.
        return super().get_seq_length(layer_idx) + self.prefix.length


def install(model: Any) -> str | None:
    """Route the model's attention through :func:`attention`; None, or why it cannot be.

    The caller still checks that every layer really reads the forward context and that
    the numbers match a plain forward: modules with their own attention code bypass it.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    config = model.config
    current = config._attn_implementation
    if current == NAME:
        return None
    if current not in ("sdpa", "eager"):
        return f"attention implementation '{current}' (only eager and sdpa are replaced)"
    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, eager_mask)  # masks made by transformers: additive, for either original
    try:
        model.set_attn_implementation(NAME)
    except Exception as exc:  # the model class does not take custom attention functions
        return f"{type(model).__name__} takes no custom attention function ({str(exc).splitlines()[0][:80]})"
    for cfg in _configs(model):
        _ORIGINAL[id(cfg)] = (cfg, current)
    return None


def uninstall(model: Any) -> None:
    """Give the model back its original attention implementation."""
    if id(model.config) in _ORIGINAL:
        model.set_attn_implementation(_ORIGINAL[id(model.config)][1])


def original_implementation(model: Any) -> str:
    return _ORIGINAL.get(id(model.config), (None, model.config._attn_implementation))[1]


def _configs(model: Any) -> list[Any]:
    out = [model.config]
    text = model.config.get_text_config()
    if text is not model.config:
        out.append(text)
    return out


def attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    """transformers' attention signature: query (N, H, q, d), key/value (N, G, S, d) of
    the rows' own tokens; returns (N, q, H, d)."""
    ctx: ForwardContext | None = kwargs.pop(CONTEXT_KWARG, None)
    if ctx is None:
        fn = _original_function(module)
        return fn(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    layer = int(module.layer_idx)
    ctx.layers_seen.add(layer)
    window = ctx.window_of(layer)
    mask = ctx.mask(window)
    prefix = ctx.prefix.layers[layer] if ctx.prefix is not None else None
    prefix_mask = ctx.prefix_mask(window) if prefix is not None else None
    n, heads, q, dim = query.shape
    groups = key.shape[1]
    plain = (  # softmax attention as SDPA computes it: nothing that changes the scores or returns weights
        dropout == 0.0
        and heads % groups == 0
        and key.shape[-1] == value.shape[-1] == dim
        and not any(kwargs.get(name) is not None for name in _UNHANDLED)
        and not kwargs.get("output_attentions", False)
    )
    if prefix is not None and not (plain and query.device.type == "cpu"):  # the cascade kernel is the CPU one
        length = prefix[0].shape[-2]
        key = torch.cat([prefix[0].expand(n, -1, -1, -1), key], dim=-2)
        value = torch.cat([prefix[1].expand(n, -1, -1, -1), value], dim=-2)
        shared = prefix_mask if prefix_mask is not None else mask.new_zeros((n, 1, q, length))
        mask, prefix = torch.cat([shared, mask], dim=-1), None
    if not plain:
        fn = _eager_function(module)
        return fn(module, query, key, value, mask, dropout=dropout, scaling=scaling, **kwargs)
    if prefix is None:
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, scale=scaling, enable_gqa=heads != groups
        )
        return out.transpose(1, 2).contiguous(), None
    # CPU flash attention takes the KV heads as they are (GQA) and a stride-0 batch, so
    # the one prefix copy serves every row without being repeated or concatenated.
    own, own_lse = _attend(query, key, value, mask, scaling)
    pk, pv = prefix[0].expand(n, -1, -1, -1), prefix[1].expand(n, -1, -1, -1)
    shared, shared_lse = _attend(query, pk, pv, prefix_mask, scaling)
    # softmax over [prefix; own] = the two partial results weighted by their share of the
    # mass (a query whose window leaves out the whole prefix gets weight 0 there).
    weight = torch.sigmoid(shared_lse - own_lse).unsqueeze(-1)
    out = torch.lerp(own.float(), shared.float(), weight).to(query.dtype)
    # The kernel's outputs are laid out (N, q, H, d), so this transpose copies nothing.
    return out.transpose(1, 2).contiguous(), None


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention (N, H, q, d) and the log-sum-exp of each query's scores (N, H, q)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=mask, scale=scale)


def _eager_function(module: torch.nn.Module) -> Callable[..., Any]:
    """The model's own eager attention (soft-capping, sinks and all), else transformers' SDPA."""
    fn = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if fn is not None:
        return fn
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    return sdpa_attention_forward


def _original_function(module: torch.nn.Module) -> Callable[..., Any]:
    config = getattr(module, "config", None)
    original = _ORIGINAL.get(id(config), (None, "eager"))[1]
    if original == "eager":
        return _eager_function(module)
    from transformers import AttentionInterface

    return AttentionInterface._global_mapping[original]
