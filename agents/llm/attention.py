"""Attention without per-row copies: grouped-query heads and a shared prompt prefix.

transformers' SDPA path copies keys and values twice per layer on our batches:

* **GQA.** With an explicit mask (we always pass one), it expands the KV heads to the
  query heads (``repeat_kv``) before calling SDPA; here SDPA runs with
  ``enable_gqa=True`` instead (on CPU its flash kernel handles grouped heads natively).
* **Shared prefix.** A prefix computed once for all rows (batch 1) has to be broadcast
  into every row's cache, and each cache update concatenates it again. Here the cache
  (:class:`PrefixedCache`) keeps only each row's own tokens; the prefix's keys and
  values stay batch 1 and each layer runs *cascade attention*: the rows attend to the
  prefix (expanded with stride 0, no mask: every token sees the whole prefix) and,
  separately, to their own keys with the usual mask; the two partial softmaxes are
  merged exactly through their log-sum-exps. A row's cache then grows by its own tokens
  only, so memory no longer scales with rows x prefix.

:func:`install` routes a model's attention here; the shared prefix of the running
forward comes from :func:`sharing` (a context variable, so no model code has to pass
it along). Anything this module does not handle (dropout, soft-capping, attention
sinks, position biases, per-head masks) goes to transformers' own SDPA function, with
the prefix materialised for that call, so the result is the same, only slower.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

NAME = "normsim_sdpa"
_UNHANDLED = ("softcap", "s_aux", "sinks", "position_bias")  # keyword arguments that change the scores


@dataclass(frozen=True)
class SharedPrefix:
    """Per-layer (keys, values) of a prefix, batch 1: (1, kv_heads, length, head_dim)."""

    layers: Sequence[tuple[torch.Tensor, torch.Tensor]]

    @property
    def length(self) -> int:
        return int(self.layers[0][0].shape[-2])


class PrefixedCache(DynamicCache):
    """A cache of the rows' own tokens, carrying the prefix they all share (stored once)."""

    def __init__(self, config: Any, prefix: SharedPrefix) -> None:
        super().__init__(config=config)
        self.prefix = prefix

    def get_seq_length(self, layer_idx: int = 0) -> int:
        # Callers ask for the tokens seen, and the prefix's tokens are seen by every row.
        return super().get_seq_length(layer_idx) + self.prefix.length


_PREFIX: ContextVar[SharedPrefix | None] = ContextVar("normsim_shared_prefix", default=None)


@contextmanager
def sharing(prefix: SharedPrefix | None) -> Iterator[None]:
    """The forward run inside attends to ``prefix`` before each row's own cached tokens."""
    token = _PREFIX.set(prefix)
    try:
        yield
    finally:
        _PREFIX.reset(token)


def install(model: Any) -> bool:
    """Route the model's attention through :func:`attention`; False where it cannot be.

    Covered: models whose attention modules call transformers' attention interface with
    a plain (non-sliding) dynamic cache and were set to "sdpa" or "eager" (Llama, Mistral
    without sliding windows, Qwen2/3, Phi-3, Gemma, GPT-NeoX, OLMo, ...). The caller
    still checks numerically that the model really goes through it (see
    ``Backend._check_shared_attention``): modules with their own attention code bypass it.
    """
    from transformers import AttentionInterface
    from transformers.cache_utils import DynamicLayer
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    config = model.config
    if config._attn_implementation not in ("sdpa", "eager", NAME):
        return False
    try:
        layers = DynamicCache(config=config).layers
    except Exception:
        return False
    if not layers or any(type(layer) is not DynamicLayer for layer in layers):
        return False  # sliding-window or hybrid caches: the prefix would need windowing
    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # masks made by transformers: as for sdpa
    try:
        model.set_attn_implementation(NAME)
    except Exception:
        return False
    return True


def attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention signature: query (N, H, q, d), key/value (N, G, S, d) of
    the rows' own tokens; returns (N, q, H, d)."""
    shared = _PREFIX.get()
    prefix = shared.layers[module.layer_idx] if shared is not None else None
    n, heads, q, dim = query.shape
    groups = key.shape[1]
    handled = (
        dropout == 0.0
        and query.device.type == "cpu"  # the log-sum-exp kernel below is the CPU one
        and attention_mask is not None
        and attention_mask.dim() == 4
        and attention_mask.shape[1] == 1
        and attention_mask.dtype != torch.bool
        and heads % groups == 0
        and key.shape[-1] == value.shape[-1] == dim
        and not any(kwargs.get(name) is not None for name in _UNHANDLED)
        and not kwargs.get("output_attentions", False)
    )
    if not handled:
        return _fallback(module, query, key, value, attention_mask, prefix, dropout=dropout, scaling=scaling, **kwargs)
    if prefix is None:
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=attention_mask, scale=scaling, enable_gqa=heads != groups
        )
        return out.transpose(1, 2).contiguous(), None
    # CPU flash attention takes the KV heads as they are (GQA) and a stride-0 batch, so
    # the one prefix copy serves every row without being repeated or concatenated.
    own, own_lse = _attend(query, key, value, attention_mask, scaling)
    shared, shared_lse = _attend(query, prefix[0].expand(n, -1, -1, -1), prefix[1].expand(n, -1, -1, -1), None, scaling)
    # softmax over [prefix; own] = the two partial results weighted by their share of the mass.
    weight = torch.sigmoid(shared_lse - own_lse).unsqueeze(-1)
    out = torch.lerp(own.float(), shared.float(), weight).to(query.dtype)
    # The kernel's outputs are laid out (N, q, H, d), so this transpose copies nothing.
    return out.transpose(1, 2).contiguous(), None


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention (N, H, q, d) and the log-sum-exp of each query's scores (N, H, q)."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False, attn_mask=mask, scale=scale)


def _fallback(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor | None,
    prefix: tuple[torch.Tensor, torch.Tensor] | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, Any]:
    """transformers' SDPA function, with the shared prefix materialised for this call."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if prefix is not None:
        if mask is None:  # SDPA's implicit causal mask would not know about the prefix
            raise ValueError("attention after a shared prefix needs an explicit mask")
        n, length = key.shape[0], prefix[0].shape[-2]
        key = torch.cat([prefix[0].expand(n, -1, -1, -1), key], dim=-2)
        value = torch.cat([prefix[1].expand(n, -1, -1, -1), value], dim=-2)
        if mask is not None:  # every token sees the whole prefix
            mask = F.pad(mask, (length, 0), value=True if mask.dtype == torch.bool else 0.0)
    return sdpa_attention_forward(module, query, key, value, mask, **kwargs)
