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

* **Prefix tree.** Rows may also continue a *branch* (:class:`~agents.llm.types.Branches`):
  tokens several rows but not all share after the prefix (a forum feed, a moderated
  item), also stored once; each run of rows on one branch attends to it in one call,
  and the three partial results (prefix, branch, own) are merged the same way.

The cascade runs on CPU (the flash kernel) and CUDA (the memory-efficient kernel);
both return the log-sum-exp. Elsewhere the prefix and branches are materialised for
each call (SDPA over [prefix; branch; own tokens]). Anything SDPA does not compute (dropout, soft-capping,
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
    """A cache of the rows' own tokens, carrying the prefix they all share (stored once).

    ``keep=False``: a forward's keys and values are used by that forward and not stored,
    for a forward nothing continues from (options scored, no reply): at a 1,024-token
    batch they would be 47 MB of SmolLM2's float32 keys and values held to the end of it.
    """

    def __init__(self, prefix: SharedPrefix | None, *, keep: bool = True) -> None:
        super().__init__()  # no config: every layer a plain DynamicLayer, windows are applied by masks
        self.prefix = prefix
        self.keep = keep

    def get_seq_length(self, layer_idx: int = 0) -> int:
        # Callers ask for the tokens seen, and the prefix's tokens are seen by every row.
        return super().get_seq_length(layer_idx) + (self.prefix.length if self.prefix is not None else 0)

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keep:
            return super().update(key_states, value_states, layer_idx, *args, **kwargs)
        return key_states, value_states


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
    n, heads, q, dim = query.shape
    groups = key.shape[1]
    plain = (  # softmax attention as SDPA computes it: nothing that changes the scores or returns weights
        dropout == 0.0
        and heads % groups == 0
        and key.shape[-1] == value.shape[-1] == dim
        and not any(kwargs.get(name) is not None for name in _UNHANDLED)
        and not kwargs.get("output_attentions", False)
    )
    shared = ctx.prefix is not None or ctx.branches is not None
    if shared and not (plain and query.device.type in _CASCADE_DEVICES):
        key, value, mask = _materialise(ctx, layer, window, key, value, mask)
        shared = False
    if not plain:
        fn = _eager_function(module)
        return fn(module, query, key, value, mask, dropout=dropout, scaling=scaling, **kwargs)
    if not shared:
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, scale=scaling, enable_gqa=heads != groups
        )
        return out.transpose(1, 2).contiguous(), None
    # Cascade: the rows' own keys, the shared prefix (one copy, stride-0 over the rows) and
    # each branch of the prefix tree (one copy, stride-0 over its rows), attended
    # separately; the partial softmaxes are merged exactly through their log-sum-exps.
    parts = [_attend(query, key, value, mask, scaling)]
    if ctx.prefix is not None:
        pk, pv = ctx.prefix.layers[layer]
        parts.append(
            _attend(query, pk.expand(n, -1, -1, -1), pv.expand(n, -1, -1, -1), ctx.prefix_mask(window), scaling)
        )
    if ctx.branches is not None:
        out = torch.zeros_like(parts[0][0])
        lse = torch.full_like(parts[0][1], float("-inf"))
        for branch, a, b in ctx.branches.runs():
            bk, bv = ctx.branches.paths[branch][layer]
            rows = b - a
            o, s = _attend(
                query[a:b], bk.expand(rows, -1, -1, -1), bv.expand(rows, -1, -1, -1),
                ctx.branch_mask(branch, a, b, window), scaling,
            )  # fmt: skip
            out[a:b], lse[a:b] = o, s
        parts.append((out, lse))
    total = torch.logsumexp(torch.stack([s.float() for _, s in parts]), dim=0)
    merged = sum(o.float() * torch.exp(s.float() - total).unsqueeze(-1) for o, s in parts)
    # (N, H, q, d) -> (N, q, H, d), the layout transformers expects back.
    return merged.to(query.dtype).transpose(1, 2).contiguous(), None


_CASCADE_DEVICES = ("cpu", "cuda")  # where _attend has a kernel that returns the log-sum-exp


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention (N, H, q, d) and the log-sum-exp of each query's scores (N, H, q).

    Keys and values may have fewer heads than the query (grouped-query attention) and a
    stride-0 batch (one copy of a shared prefix serving every row)."""
    if q.device.type == "cpu":  # the CPU flash kernel takes grouped heads and stride-0 batches as they are
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=mask, scale=scale
        )[:2]
    # CUDA: the memory-efficient kernel, which returns the log-sum-exp and takes an additive
    # bias; it wants as many key heads as query heads (repeated here: for a stride-0
    # prefix the repeat copies one row) and a bias whose rows are 16-element aligned.
    n, heads, length, _ = q.shape
    if k.shape[1] != heads:
        k, v = _repeat_heads(k, heads), _repeat_heads(v, heads)
    if mask is not None:
        width = mask.shape[-1]
        pad = (-width) % 16
        if pad:
            mask = F.pad(mask, (0, pad))[..., :width]
        mask = mask.expand(n, heads, length, width)
    out, lse = torch.ops.aten._scaled_dot_product_efficient_attention(q, k, v, mask, True, scale=scale)[:2]
    return out, lse[..., :length]


def _repeat_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    n, groups, length, dim = x.shape
    if x.stride(0) == 0:  # a shared copy: repeat its one row, keep the batch stride-0
        one = x[:1].unsqueeze(2).expand(1, groups, heads // groups, length, dim).reshape(1, heads, length, dim)
        return one.expand(n, -1, -1, -1)
    return x.unsqueeze(2).expand(n, groups, heads // groups, length, dim).reshape(n, heads, length, dim)


def _materialise(
    ctx: ForwardContext, layer: int, window: int | None, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keys, values and mask over [shared prefix; branch path; own] copied into every row:
    the slow path, for attention the cascade does not compute."""
    n, q = mask.shape[0], mask.shape[2]
    keys, values, masks = [], [], []
    if ctx.prefix is not None:
        pk, pv = ctx.prefix.layers[layer]
        keys.append(pk.expand(n, -1, -1, -1))
        values.append(pv.expand(n, -1, -1, -1))
        pm = ctx.prefix_mask(window)
        masks.append(pm if pm is not None else mask.new_zeros((n, 1, q, pk.shape[-2])))
    if ctx.branches is not None:
        runs = ctx.branches.runs()
        width = max((ctx.branches.length(b) for b, _, _ in runs), default=0)
        bk = key.new_zeros((n, key.shape[1], width, key.shape[-1]))
        bv = value.new_zeros((n, value.shape[1], width, value.shape[-1]))
        bm = mask.new_full((n, 1, q, width), torch.finfo(mask.dtype).min)
        for branch, a, b in runs:
            pk, pv = ctx.branches.paths[branch][layer]
            length = pk.shape[-2]
            bk[a:b, :, :length], bv[a:b, :, :length] = pk, pv
            m = ctx.branch_mask(branch, a, b, window)
            bm[a:b, :, :, :length] = 0.0 if m is None else m
        keys.append(bk)
        values.append(bv)
        masks.append(bm)
    return (
        torch.cat([*keys, key], dim=-2),
        torch.cat([*values, value], dim=-2),
        torch.cat([*masks, mask], dim=-1),
    )


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
