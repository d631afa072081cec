"""The engine: one model copy, its prompts, prefill, forward passes, prefix cache and chunking.

Every forward pass goes through :meth:`Engine.forward` with a
:class:`~agents.llm.types.ForwardContext`: the attention function
(:mod:`agents.llm.attention`) builds each layer's mask from it, for the layer's kind
(full or sliding window), and the steering hooks are told about it before the pass.

:meth:`Engine.prefill` runs a batch of contexts: the longest token prefix they all share
(the chat header and the environment's system text) is computed once and kept in a
small LRU cache across calls; then every row's own tokens run in one padded forward.
Where the model runs through :mod:`agents.llm.attention` the prefix's keys and values
stay a single copy every row attends to ("shared prefix"); otherwise ("per-row prefix")
they are copied into each row's cache and the model applies the context's mask itself,
which is exact only where every layer has the same kind, so models mixing full and
sliding layers that bypass the attention function are refused. Which path runs is
decided at load by running both on a few tokens against a plain forward, logged once,
and reported by :meth:`Engine.describe`.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from agents.llm import attention
from agents.llm.architecture import (
    UnsupportedModel,
    describe_windows,
    layer_windows,
    position_scheme_problem,
)
from agents.llm.types import CONTEXT_KWARG, ForwardContext, PaddingSide, Prefilled, SharedPrefix, Stage
from steering.hooks import find_decoder_layers

log = logging.getLogger("agents.llm")


class Engine:
    """One model copy and its tokenizer; every forward pass of every policy using it."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        reuse_prefix: bool = True,
        padding_side: PaddingSide = "right",
        token_budget: int = 1024,
        logit_budget: int = 1 << 24,
        prefix_cache_size: int = 8,
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        problem = position_scheme_problem(model)
        if problem is not None:
            raise UnsupportedModel(f"model '{name}': {problem}")
        self.layers = find_decoder_layers(model)
        try:
            self.windows = layer_windows(model, len(self.layers))
        except UnsupportedModel as exc:
            raise UnsupportedModel(f"model '{name}': {exc}") from None
        self.reuse_prefix = reuse_prefix
        self.padding_side: PaddingSide = padding_side
        self.token_budget = token_budget  # max tokens (rows x length) per context forward
        self.logit_budget = logit_budget  # max logits (rows x positions x vocab) per forward
        self.pad_id = _pad_id(tokenizer)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.steering: Any = None  # an object with before_forward(ctx), e.g. steering.engine.BackendSteering
        self._prefixes: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self._prefix_cache_size = prefix_cache_size
        params = inspect.signature(model.forward).parameters
        self._keeps_logits = "logits_to_keep" in params
        # transformers 5 renamed the cache argument (past_key_values warns until 5.40).
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._seen: list[ForwardContext] | None = None  # contexts recorded while probing
        self.share_prefix_kv, self.fallback_reason = self._choose_path()
        if self.share_prefix_kv:
            log.info("%s: attention path: shared prefix; layers: %s", name, describe_windows(self.windows))
        else:
            log.warning(
                "%s: attention path: per-row prefix copies (slower), because %s; layers: %s",
                name,
                self.fallback_reason,
                describe_windows(self.windows),
            )

    # ------------------------------------------------------------------- describe
    def describe(self) -> dict[str, Any]:
        """Which attention path runs and why, for the run's records."""
        return {
            "model": self.name,
            "attention_path": "shared_prefix" if self.share_prefix_kv else "per_row_prefix",
            "fallback_reason": self.fallback_reason,
            "layers": describe_windows(self.windows),
            "windows": list(self.windows),
        }

    # -------------------------------------------------------------------- prompts
    def render(self, system: str, user: str, answer_prefix: str = "") -> str:
        """The chat-templated prompt text, ending with the assistant's answer prefix."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": user})
            try:
                text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # templates without a system role (Gemma): fold it into the user turn
                merged = [{"role": "user", "content": f"{system}\n\n{user}" if system else user}]
                text = tok.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)
        else:  # a base model without a template
            text = f"{system}\n\n{user}\n\n" if system else f"{user}\n\n"
        return text + answer_prefix

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids; the template already holds any special tokens the model expects."""
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    # -------------------------------------------------------------------- prefill
    def shared_prefix_length(self, contexts: Sequence[Sequence[int]], *, share: bool = True) -> int:
        """Tokens all contexts share, leaving each at least one token of its own (whose
        logits predict what follows the context); 0 when ``share`` is off."""
        if not self.reuse_prefix or not share or not contexts:
            return 0
        n = min(len(c) for c in contexts) - 1
        first = contexts[0]
        for other in contexts[1:]:
            n = min(n, common_prefix(first, other))
        return max(n, 0)

    def prefill(
        self, contexts: Sequence[Sequence[int]], rows: Sequence[int], prefix_len: int, capture: Sequence[int] = ()
    ) -> Prefilled:
        """Run contexts (sharing their first ``prefix_len`` tokens) in one padded batch."""
        n = len(contexts)
        cache, shared, past_valid, past_pos = self._row_cache(tuple(contexts[0][:prefix_len]), n)
        lengths = [len(c) - prefix_len for c in contexts]
        width = max(lengths)
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        valid = torch.zeros((n, width), dtype=torch.bool)
        pos = torch.zeros((n, width), dtype=torch.long)
        for i, (ctx, length) in enumerate(zip(contexts, lengths, strict=True)):
            cols = slice(width - length, width) if self.padding_side == "left" else slice(0, length)
            ids[i, cols] = torch.tensor(ctx[prefix_len:], dtype=torch.long)
            valid[i, cols] = True
            pos[i, cols] = torch.arange(prefix_len, prefix_len + length)
        last = torch.tensor([width - 1 if self.padding_side == "left" else length - 1 for length in lengths])
        ctx = self.context(
            "context", tuple(rows), valid, pos, past_valid=past_valid, past_positions=past_pos, prefix=shared, last=last
        )
        with self.capturing(capture, last) as captured:
            logits = self.forward(ctx, ids, cache, keep=last[:, None])
        return Prefilled(
            cache=cache,
            valid=torch.cat([past_valid, valid], dim=1),
            positions=torch.cat([past_pos, pos], dim=1),
            next_pos=torch.tensor([len(c) for c in contexts], dtype=torch.long),
            last_logits=logits[:, -1].float(),
            activations=captured,
            prefix=shared,
        )

    def _row_cache(
        self, prefix: tuple[int, ...], n: int
    ) -> tuple[Any, SharedPrefix | None, torch.Tensor, torch.Tensor]:
        """A cache for n rows continuing after ``prefix``: (cache, the shared prefix if kept
        as one copy, validity and positions of the columns each row's cache starts with)."""
        empty = torch.zeros((n, 0), dtype=torch.bool), torch.zeros((n, 0), dtype=torch.long)
        if not prefix:
            return DynamicCache(), None, *empty
        kv = self._prefix_kv(prefix)
        if self.share_prefix_kv:  # one copy for all rows; their cache starts empty
            shared = SharedPrefix(kv)
            return attention.PrefixedCache(shared), shared, *empty
        # expand() is free; the cache's first update concatenates, which copies once per row.
        data = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in kv]
        valid = torch.ones((n, len(prefix)), dtype=torch.bool)
        return DynamicCache(ddp_cache_data=data), None, valid, torch.arange(len(prefix)).expand(n, -1)

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (keys, values) of the prefix (batch 1), from the LRU cache or computed."""
        kv = self._prefixes.get(prefix)
        if kv is None:
            cache = DynamicCache()  # plain layers: sliding windows are the masks' business, not the cache's
            ids = torch.tensor([prefix], dtype=torch.long)
            ctx = self.context("prefix", None, torch.ones(ids.shape, dtype=torch.bool), torch.arange(len(prefix))[None])
            self.forward(ctx, ids, cache, keep=torch.zeros((1, 1), dtype=torch.long))
            kv = [(layer.keys, layer.values) for layer in cache.layers]
            self._prefixes[prefix] = kv
            while len(self._prefixes) > self._prefix_cache_size:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(prefix)
        return kv

    # -------------------------------------------------------------------- forward
    def context(
        self,
        stage: Stage,
        rows: tuple[int, ...] | None,
        valid: torch.Tensor,
        positions: torch.Tensor,
        *,
        segments: torch.Tensor | None = None,
        past_valid: torch.Tensor | None = None,
        past_positions: torch.Tensor | None = None,
        prefix: SharedPrefix | None = None,
        last: torch.Tensor | None = None,
        gen_index: torch.Tensor | None = None,
    ) -> ForwardContext:
        """The context of a forward of new tokens ``valid``/``positions`` (N, q) after
        cached columns ``past_valid``/``past_positions`` (N, T) (default: none)."""
        n = valid.shape[0]
        return ForwardContext(
            stage=stage,
            rows=rows,
            valid=valid,
            positions=positions,
            segments=segments if segments is not None else torch.zeros_like(positions),
            past_valid=past_valid if past_valid is not None else torch.zeros((n, 0), dtype=torch.bool),
            past_positions=past_positions if past_positions is not None else torch.zeros((n, 0), dtype=torch.long),
            windows=self.windows,
            dtype=self.dtype,
            device=self.device,
            prefix=prefix,
            last=last,
            gen_index=gen_index,
        )

    def forward(
        self, ctx: ForwardContext, ids: torch.Tensor, cache: Any, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The one place the model runs. ``keep`` (N, k): the columns whose logits are needed."""
        kwargs: dict[str, Any] = {self._cache_arg: cache}
        if keep is not None and self._keeps_logits:
            kwargs["logits_to_keep"] = keep.to(self.device)
        if self.share_prefix_kv:
            kwargs[CONTEXT_KWARG] = ctx
        if self._seen is not None:
            self._seen.append(ctx)
        # Layers that do not read the context (a per-row-prefix model) use this mask: one
        # kind for all of them, which the load-time choice of path guarantees.
        uniform = self.windows[0] if len(set(self.windows)) == 1 else None
        if self.steering is not None:
            self.steering.before_forward(ctx)
        with torch.inference_mode():
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=ctx.mask(uniform),
                position_ids=ctx.positions.to(self.device),
                use_cache=True,
                **kwargs,
            )
        logits = out.logits
        if keep is not None and not self._keeps_logits:
            logits = logits.gather(1, keep.to(self.device)[:, :, None].expand(-1, -1, logits.shape[-1]))
        return logits

    @contextmanager
    def capturing(self, layers: Sequence[int], last: torch.Tensor) -> Iterator[dict[int, torch.Tensor]]:
        """Record each row's output of the given decoder layers at column ``last[row]``."""
        captured: dict[int, torch.Tensor] = {}
        handles = []
        for layer in sorted(set(layers)):

            def hook(_module: Any, _inputs: Any, output: Any, layer: int = layer) -> None:
                hidden = output[0] if isinstance(output, tuple) else output
                rows = torch.arange(hidden.shape[0], device=hidden.device)
                captured[layer] = hidden[rows, last.to(hidden.device)].float().cpu()

            handles.append(self.layers[layer].register_forward_hook(hook))
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    # ------------------------------------------------------------- path choice
    def _choose_path(self) -> tuple[bool, str | None]:
        """(shared prefix?, why not): the shared path where every layer reads the context
        and a probe matches a plain forward; else per-row copies, probed the same way."""
        reason = None if self._takes_kwargs else f"{type(self.model).__name__}.forward takes no extra keyword arguments"
        if reason is None:
            reason = attention.install(self.model)
        if reason is None:
            self.share_prefix_kv = True
            reason = self._probe()
            if reason is not None:
                attention.uninstall(self.model)
        if reason is None:
            return True, None
        family = getattr(self.model.config, "model_type", type(self.model).__name__)
        if len(set(self.windows)) > 1:
            raise UnsupportedModel(
                f"model '{self.name}': {family} models mix full and sliding-window layers, and the engine cannot "
                f"give each layer its own mask because {reason}"
            )
        self.share_prefix_kv = False
        problem = self._probe()
        if problem is not None:
            raise UnsupportedModel(
                f"model '{self.name}': {family} models ({type(self.model).__name__}) give other probabilities in "
                f"normsim's batched engine than in a plain forward ({problem})"
            )
        return False, reason

    def _probe(self) -> str | None:
        """None if rows after a cached prefix get the last-token logits of a plain forward."""
        vocab = int(self.model.config.get_text_config().vocab_size)
        windows = [w for w in self.windows if w is not None]
        n = max(9, min(min(windows, default=0) + 4, 64))  # long enough to slide a small window
        seqs = [[(7 * i + 3) % vocab for i in range(length)] for length in (n, n - 2)]
        self._seen = []
        try:
            state = self.prefill(seqs, [0, 1], prefix_len=5)
            with torch.inference_mode():
                want = torch.stack(
                    [self.model(input_ids=torch.tensor([s], device=self.device)).logits[0, -1].float() for s in seqs]
                )
        except Exception as exc:
            return f"its forward failed on the engine's inputs ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
        finally:
            seen, self._seen = self._seen, None
            self._prefixes.clear()
        if self.share_prefix_kv and any(ctx.layers_seen != set(range(len(self.layers))) for ctx in seen):
            return f"{type(self.model).__name__}'s attention layers do not all go through transformers' attention interface"
        diff = float((state.last_logits - want).abs().max())
        if not diff <= 1e-2 * (1 + float(want.abs().max())):
            return f"the probe's logits differ by {diff:.3g}"
        return None

    # -------------------------------------------------------------------- batching
    def chunks(self, costs: Sequence[tuple[int, int]]) -> list[list[int]]:
        """Split item indices into balanced consecutive chunks.

        ``costs[i]`` = (context tokens, option-stage logits) of item i; a chunk keeps
        rows x longest context within ``token_budget`` and rows x the widest item's
        logits within ``logit_budget`` (float32 values), which bounds memory.
        """
        n = len(costs)
        if n == 0:
            return []
        # No chunk can hold more rows than the cheapest item allows: start there.
        most_rows = min(
            self.token_budget // max(1, min(c for c, _ in costs)),
            self.logit_budget // max(1, min(lg for _, lg in costs)),
        )
        for k in range(max(1, -(-n // max(1, most_rows))), n + 1):
            parts = [list(p) for p in np.array_split(np.arange(n), k)]
            if all(self._fits([costs[i] for i in part]) for part in parts):
                return parts
        return [[i] for i in range(n)]

    def _fits(self, costs: Sequence[tuple[int, int]]) -> bool:
        if len(costs) <= 1:
            return True
        rows = len(costs)
        return (
            rows * max(c for c, _ in costs) <= self.token_budget
            and rows * max(lg for _, lg in costs) <= self.logit_budget
        )


# ----------------------------------------------------------------------- helpers
def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def _pad_id(tokenizer: Any) -> int:
    for attr in ("pad_token_id", "eos_token_id", "unk_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    return 0  # any id works: padded columns are masked


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    ids: set[int] = set()
    gen = getattr(model, "generation_config", None)
    for value in (getattr(gen, "eos_token_id", None), getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return frozenset(ids)
