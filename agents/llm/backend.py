"""The backend: one model copy and the batch work done with it.

A :class:`Backend` holds a Hugging Face causal LM and its tokenizer and answers pure,
serialisable batch requests (so a Ray actor can host it in another process):

* :meth:`Backend.score`: exact log-probabilities of every option of every item
  (:mod:`agents.llm.scoring`);
* :meth:`Backend.generate`: seeded free text for every item (:mod:`agents.llm.generation`).

Both start with :meth:`Backend.prefill`: the longest token prefix that all items share
(the chat header and the environment's system text) is computed once and kept in a small
LRU cache across calls; then every item's own context runs in one padded forward pass.
Where the model supports it (:mod:`agents.llm.attention`), the prefix's keys and values
stay a single copy that every row attends to (the rows' cache holds only their own
tokens); otherwise they are broadcast into each row's cache.

Every forward pass goes through :meth:`Backend._forward`. While it runs,
``backend.active`` says which stage runs and which item each batch row belongs to
(``rows``; None for the shared prefix), so activation hooks registered on
``backend.layers`` (steering, capture) can act per row. Attention masks are explicit 4D
masks in which every query sees at least itself, so padding never produces a fully
masked row.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

PaddingSide = Literal["left", "right"]


# ------------------------------------------------------------------ batch requests
@dataclass(frozen=True)
class ScoreItem:
    """Score each option as the continuation of the chat-templated prompt + answer_prefix."""

    system: str
    user: str
    answer_prefix: str
    options: tuple[str, ...]
    capture: tuple[int, ...] = ()  # decoder layers whose output at the last prompt token to return
    steer: Any = None  # a steering.config.SteerSpec: this item's activation steering (None: unsteered)


@dataclass(frozen=True)
class GenerateItem:
    """Sample up to max_new_tokens after the prompt; temperature 0 is greedy decoding."""

    system: str
    user: str
    answer_prefix: str
    max_new_tokens: int = 32
    temperature: float = 1.0
    seed: int = 0
    steer: Any = None  # a steering.config.SteerSpec, as in ScoreItem


@dataclass
class ScoreResult:
    logprobs: np.ndarray  # (n_options,) float64: log P(option | prompt), whole sequence, not normalised
    n_tokens: tuple[int, ...] = ()  # tokens scored per option
    activations: dict[int, np.ndarray] = field(default_factory=dict)  # layer -> (hidden,) float32


@dataclass(frozen=True)
class ActiveForward:
    """What the running forward pass holds, for per-row activation hooks.

    ``stage``: "prefix" (the shared prefix, batch 1, rows None), "context" (each item's
    own prompt tokens; ``last`` = column of each row's last prompt token), "options"
    (scored option tokens) or "decode" (one generated token per row). ``valid`` (N, q)
    marks real tokens (False: padding). ``gen_index`` (N, q), for options and decode:
    each token's index counted from the start of its continuation.
    """

    stage: str
    rows: tuple[int, ...] | None  # item index (within the current call) of each batch row
    valid: torch.Tensor | None = None
    last: torch.Tensor | None = None
    gen_index: torch.Tensor | None = None


@dataclass
class Prefilled:
    """Contexts run through the model: what scoring and generation continue from."""

    cache: Any  # transformers DynamicCache (an attention.PrefixedCache when the prefix is shared), batch = len(rows)
    valid: torch.Tensor  # (N, T) bool: which (per-row) cache columns hold real tokens of that row
    next_pos: torch.Tensor  # (N,) long: position id of each row's next token
    last_logits: torch.Tensor  # (N, V) float32: logits at each row's last context token
    activations: dict[int, torch.Tensor]  # layer -> (N, hidden) output at the last context token


class Backend:
    """One model copy and its tokenizer; all batch work of every policy using it."""

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
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.key = (name, str(self.dtype).removeprefix("torch."), str(self.device))
        self.reuse_prefix = reuse_prefix
        self.padding_side: PaddingSide = padding_side
        self.token_budget = token_budget  # max tokens (rows x length) per context forward
        self.logit_budget = logit_budget  # max logits (rows x positions x vocab) per forward
        self.pad_id = _pad_id(tokenizer)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.active: ActiveForward | None = None
        self._prefixes: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self._prefix_cache_size = prefix_cache_size
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._steering: Any = None  # steering.engine.BackendSteering, made on the first steered call
        self._own_prefix = False  # the current call steers all prompt tokens of some item: share no prefix
        # Rows attend to one copy of the shared prefix (no per-row copies) where the model
        # verifiably runs through agents.llm.attention; otherwise the prefix is broadcast.
        self.share_prefix_kv = self._install_shared_attention()

    # ------------------------------------------------------------------ public API
    def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        from agents.llm.scoring import score_items

        with self.steering([item.steer for item in items]):
            return score_items(self, items)

    def generate(self, items: Sequence[GenerateItem]) -> list[str]:
        from agents.llm.generation import generate_items

        with self.steering([item.steer for item in items]):
            return generate_items(self, items)

    @contextmanager
    def steering(self, specs: Sequence[Any]) -> Iterator[None]:
        """Per-item activation steering for one call (see :mod:`steering.engine`)."""
        if all(spec is None for spec in specs):
            yield
            return
        from steering.engine import BackendSteering

        if self._steering is None:
            self._steering = BackendSteering(self)
        self._own_prefix = self._steering.needs_own_prefix(specs)
        try:
            with self._steering.applied(specs):
                yield
        finally:
            self._own_prefix = False

    @property
    def layers(self) -> Sequence[torch.nn.Module]:
        """The decoder blocks; layer index L in capture/steering means ``layers[L]``'s output."""
        return decoder_layers(self.model)

    # ------------------------------------------------------------------- prompts
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

    # ------------------------------------------------------------------- prefill
    def shared_prefix_length(self, contexts: Sequence[Sequence[int]]) -> int:
        """Tokens all contexts share, leaving each at least one token of its own (whose
        logits predict what follows the context)."""
        if not self.reuse_prefix or self._own_prefix or not contexts:
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
        cache, columns = self._prefix_cache(tuple(contexts[0][:prefix_len]), n)
        past_valid = torch.ones((n, columns), dtype=torch.bool)
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
        mask = self.attention_mask(past_valid, valid, torch.zeros_like(ids))
        with self.capturing(capture, last) as captured:
            active = ActiveForward("context", tuple(rows), valid=valid, last=last)
            logits = self._forward(active, ids, mask, pos, cache, keep=last[:, None])
        return Prefilled(
            cache=cache,
            valid=torch.cat([past_valid, valid], dim=1),
            next_pos=torch.tensor([len(c) for c in contexts], dtype=torch.long),
            last_logits=logits[:, -1].float(),
            activations=captured,
        )

    def _prefix_cache(self, prefix: tuple[int, ...], n: int) -> tuple[Any, int]:
        """A cache for n rows continuing after ``prefix``, and how many columns each row holds."""
        from transformers import DynamicCache

        from agents.llm.attention import PrefixedCache, SharedPrefix

        if not prefix:
            return DynamicCache(config=self.model.config), 0
        kv = self._prefix_kv(prefix)
        if self.share_prefix_kv:  # one copy for all rows; their cache starts empty
            return PrefixedCache(self.model.config, SharedPrefix(kv)), 0
        # expand() is free; the cache's first update concatenates, which copies once per row.
        data = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in kv]
        return DynamicCache(ddp_cache_data=data, config=self.model.config), len(prefix)

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (keys, values) of the prefix (batch 1), from the LRU cache or computed."""
        from transformers import DynamicCache

        kv = self._prefixes.get(prefix)
        if kv is None:
            cache = DynamicCache(config=self.model.config)
            ids = torch.tensor([prefix], dtype=torch.long)
            valid = torch.ones((1, len(prefix)), dtype=torch.bool)
            mask = self.attention_mask(valid[:, :0], valid, torch.zeros_like(ids))
            pos = torch.arange(len(prefix))[None]
            active = ActiveForward("prefix", None, valid=valid)
            self._forward(active, ids, mask, pos, cache, keep=torch.zeros((1, 1), dtype=torch.long))
            kv = [(layer.keys, layer.values) for layer in cache.layers]
            self._prefixes[prefix] = kv
            while len(self._prefixes) > self._prefix_cache_size:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(prefix)
        return kv

    def _install_shared_attention(self) -> bool:
        """Route attention through agents.llm.attention and check on a few tokens that
        rows attending to a shared prefix get what a plain forward of the whole
        sequence gives (models with their own attention code would skip the prefix)."""
        from agents.llm.attention import install

        if not install(self.model):
            return False
        self.share_prefix_kv = True
        vocab = int(self.model.config.get_text_config().vocab_size)
        seqs = [[(7 * i + 3) % vocab for i in range(n)] for n in (9, 7)]  # rows of different lengths
        try:
            state = self.prefill(seqs, [0, 1], prefix_len=5)
            with torch.inference_mode():
                want = [self.model(input_ids=torch.tensor([s], device=self.device)).logits[0, -1].float() for s in seqs]
        except Exception:
            return False
        finally:
            self._prefixes.clear()
        got, want = state.last_logits, torch.stack(want)
        return bool((got - want).abs().max() <= 1e-2 * (1 + want.abs().max()))

    # -------------------------------------------------------------------- forward
    def attention_mask(self, past_valid: torch.Tensor, valid: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """Additive 4D mask (N, 1, q, T + q) for q new tokens after T cached columns.

        A new token sees every valid cached column, plus the earlier valid new tokens of
        its own segment (segments let all options of an item share one row without seeing
        each other), plus itself (so a padding query is never fully masked).
        """
        n, q = valid.shape
        causal = torch.tril(torch.ones((q, q), dtype=torch.bool))
        new = causal & (segments[:, :, None] == segments[:, None, :]) & valid[:, None, :]
        new |= torch.eye(q, dtype=torch.bool)
        allowed = torch.cat([past_valid[:, None, :].expand(n, q, -1), new], dim=2)
        mask = torch.zeros(allowed.shape, dtype=self.dtype)
        mask.masked_fill_(~allowed, torch.finfo(self.dtype).min)
        return mask[:, None].to(self.device)

    def _forward(
        self,
        active: ActiveForward,
        ids: torch.Tensor,
        mask: torch.Tensor,
        pos: torch.Tensor,
        cache: Any,
        keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The one place the model runs. ``keep`` (N, k): the columns whose logits are needed."""
        kwargs: dict[str, Any] = {}
        if keep is not None and self._keeps_logits:
            kwargs["logits_to_keep"] = keep.to(self.device)
        from agents.llm.attention import sharing

        self.active = active
        try:
            with torch.inference_mode(), sharing(getattr(cache, "prefix", None)):
                out = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask,
                    position_ids=pos.to(self.device),
                    past_key_values=cache,
                    use_cache=True,
                    **kwargs,
                )
        finally:
            self.active = None
        logits = out.logits
        if keep is not None and not self._keeps_logits:
            logits = logits.gather(1, keep.to(self.device)[:, :, None].expand(-1, -1, logits.shape[-1]))
        return logits

    @contextmanager
    def capturing(self, layers: Sequence[int], last: torch.Tensor) -> Iterator[dict[int, torch.Tensor]]:
        """Record each row's output of the given decoder layers at column ``last[row]``."""
        captured: dict[int, torch.Tensor] = {}
        handles = []
        blocks = self.layers
        for layer in sorted(set(layers)):

            def hook(_module: Any, _inputs: Any, output: Any, layer: int = layer) -> None:
                hidden = output[0] if isinstance(output, tuple) else output
                rows = torch.arange(hidden.shape[0], device=hidden.device)
                captured[layer] = hidden[rows, last.to(hidden.device)].float().cpu()

            handles.append(blocks[layer].register_forward_hook(hook))
        try:
            yield captured
        finally:
            for handle in handles:
                handle.remove()

    # ------------------------------------------------------------------- batching
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


def decoder_layers(model: Any) -> Sequence[torch.nn.Module]:
    """The list of decoder blocks of a causal LM, across the usual layouts."""
    for path in (
        "model.layers",
        "model.decoder.layers",
        "transformer.h",
        "gpt_neox.layers",
        "model.language_model.layers",
    ):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, torch.nn.ModuleList):
            return obj
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__}")


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
