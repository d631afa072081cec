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
decided at load (:mod:`agents.llm.probe`) by running both on a few tokens against a
plain forward, logged once, and reported by :meth:`Engine.describe`.
"""

from __future__ import annotations

import inspect
import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from transformers import DynamicCache

from agents.llm import attention, batching, hooks, prefix_tree, probe, turns
from agents.llm.architecture import (
    UnsupportedModel,
    describe_windows,
    layer_windows,
    position_scheme_problem,
)
from agents.llm.types import (
    CONTEXT_KWARG,
    Branches,
    ForwardContext,
    PaddingSide,
    Prefilled,
    Shared,
    SharedPrefix,
    Stage,
)
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
        token_budget: int | None = None,
        forward_cost: int | None = None,
        logit_budget: int = 1 << 24,
        prefix_cache_size: int = 8,
        tree_depth: int = 8,
        tree_min_tokens: int = 16,
    ) -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        problem = position_scheme_problem(model)
        if problem is not None:
            raise UnsupportedModel(f"model '{name}': {problem}")
        self.layers = find_decoder_layers(model)
        # Plain float32 linears on a CPU: a forward of a few tokens (a decode step) computes
        # them as weight @ x.T (hooks.few_row_products), which MKL runs faster there.
        few = self.device.type == "cpu" and self.dtype == torch.float32
        self._few_row_linears = [m for m in model.modules() if type(m) is torch.nn.Linear] if few else []
        try:
            self.windows = layer_windows(model, len(self.layers))
        except UnsupportedModel as exc:
            raise UnsupportedModel(f"model '{name}': {exc}") from None
        self.reuse_prefix = reuse_prefix
        self.padding_side: PaddingSide = padding_side
        # max tokens (rows x length) per context forward; default sized to the device
        self.token_budget = token_budget if token_budget is not None else default_token_budget(self.device)
        # a forward's fixed cost in tokens, weighed against padding when a batch is split
        self.forward_cost = (
            forward_cost if forward_cost is not None else default_forward_cost(self.device, self.token_budget)
        )
        # Levels of the batch's prefix tree below the common prefix (0: none), all run in one
        # forward; forum members whose feeds agree share runs several levels deep (feed items,
        # then persona and question): with 8 levels forum steps at 50 members compute 1.04-1.15
        # tokens per distinct token (1.37-1.89 at 3), and no environment computes more.
        self.tree_depth = tree_depth
        self.tree_min_tokens = tree_min_tokens  # shortest run the tree shares
        self.logit_budget = logit_budget  # max logits (rows x positions x vocab) per forward
        self.turns = turns.turn_format(tokenizer)  # what the model reads (describe() names it)
        self.pad_id = _pad_id(tokenizer)
        self.eos_ids = _eos_ids(model, tokenizer)
        self.steering: Any = None  # an object with before_forward(ctx), e.g. steering.engine.BackendSteering
        self._prefixes: OrderedDict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = OrderedDict()
        self._prefix_cache_size = prefix_cache_size
        params = inspect.signature(model.forward).parameters
        # transformers 5 renamed the cache argument (past_key_values warns until 5.40).
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        # The shared-prefix path hands the model a ForwardContext through **kwargs.
        self.takes_context = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        self._seen: list[ForwardContext] | None = None  # contexts recorded while probing
        self.share_prefix_kv, self.fallback_reason = probe.choose_path(self)
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
            "turn_format": self.turns.kind,
        }

    # -------------------------------------------------------------------- prompts
    def render(self, system: str, user: str, answer_prefix: str = "") -> str:
        """The prompt text the model reads, ending with the answer prefix: its chat template,
        or for a base model without one a documented turn format (:mod:`agents.llm.turns`)."""
        return self.turns.render(self.tokenizer, system, user, answer_prefix)

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

    def plan(self, contexts: Sequence[Sequence[int]], *, share: bool = True) -> prefix_tree.Tree:
        """What a batch's contexts share, planned, nothing computed: the common prefix and,
        on the shared-prefix path, the prefix tree below it (:mod:`agents.llm.prefix_tree`)."""
        root = self.shared_prefix_length(contexts, share=share)
        if share and self.reuse_prefix and self.share_prefix_kv and self.tree_depth > 0:
            return prefix_tree.plan(contexts, root, min_tokens=self.tree_min_tokens, max_depth=self.tree_depth)
        return prefix_tree.Tree(root, node_of=[-1] * len(contexts), own_start=[root] * len(contexts))

    def share(self, contexts: Sequence[Sequence[int]], *, share: bool = True) -> Shared:
        """What a batch's contexts share (:meth:`plan`), computed once for all its chunks:
        the common prefix (kept in an LRU cache across calls) and the prefix tree's branches."""
        tree = self.plan(contexts, share=share)
        root, n = tree.root, len(contexts)
        prefix_ids = tuple(contexts[0][:root]) if n else ()
        prefix = SharedPrefix(self._prefix_kv(prefix_ids)) if root and self.share_prefix_kv else None
        return Shared(tree, prefix_ids, prefix, prefix_tree.compute(self, tree, prefix))

    def prefill(
        self,
        contexts: Sequence[Sequence[int]],
        rows: Sequence[int],
        shared: Shared,
        capture: Sequence[int] = (),
        continuations: Sequence[Sequence[tuple[int, ...]]] = (),
        keep_cache: bool = True,
    ) -> Prefilled:
        """Run contexts (the batch's items ``rows``, in an order that keeps the rows of one
        branch consecutive) after what they share, in one padded batch.

        ``continuations[r]``: row r's scored continuations as a token tree (each node the
        tokens from the continuation's start, parents before children; an option's last
        token is only read, so it is not a node). They run in the same forward, after the
        contexts, each token seeing its row's context, its ancestors and itself; their
        logits come back as ``continuation_logits`` and the cache keeps the contexts only.

        ``keep_cache=False`` (nothing continues from the state: no reply, no extension):
        on the shared-prefix path the forward's keys and values are not stored, and the
        state's ``cache`` is None.
        """
        n = len(contexts)
        tree = shared.tree
        starts = [tree.own_start[i] for i in rows]
        if self.share_prefix_kv:
            cache: Any = attention.PrefixedCache(shared.prefix, keep=keep_cache)
            past_valid, past_pos = torch.zeros((n, 0), dtype=torch.bool), torch.zeros((n, 0), dtype=torch.long)
        else:
            cache, past_valid, past_pos = self._row_cache(shared.prefix_ids, n)
        branches = None
        if shared.branches is not None:
            of_row = torch.tensor([tree.node_of[i] for i in rows], dtype=torch.long)
            if bool((of_row >= 0).any()):
                branches = Branches(shared.branches.paths, of_row, shared.branches.start)
        lengths = [len(c) - start for c, start in zip(contexts, starts, strict=True)]
        width = max(lengths)
        nodes = list(continuations) or [()] * n
        extra = max(len(t) for t in nodes)
        ids = torch.full((n, width + extra), self.pad_id, dtype=torch.long)
        valid = torch.zeros((n, width + extra), dtype=torch.bool)
        pos = torch.zeros((n, width + extra), dtype=torch.long)
        for i, (ctx, length, start) in enumerate(zip(contexts, lengths, starts, strict=True)):
            cols = slice(width - length, width) if self.padding_side == "left" else slice(0, length)
            ids[i, cols] = torch.tensor(ctx[start:], dtype=torch.long)
            valid[i, cols] = True
            pos[i, cols] = torch.arange(start, start + length)
        last = torch.tensor([width - 1 if self.padding_side == "left" else length - 1 for length in lengths])
        next_pos = torch.tensor([len(c) for c in contexts], dtype=torch.long)
        visible, gen_index, continuation, keep = None, None, None, last[:, None]
        if extra:
            visible, gen_index = _continuation_tree(nodes, width, ids, valid, pos, next_pos)
            continuation = valid.clone()
            continuation[:, :width] = False
            keep = torch.cat([keep, torch.arange(width, width + extra).repeat(n, 1)], dim=1)
        ctx = self.context(
            "context",
            tuple(rows),
            valid,
            pos,
            visible=visible,
            past_valid=past_valid,
            past_positions=past_pos,
            prefix=shared.prefix,
            branches=branches,
            last=last,
            gen_index=gen_index,
            continuation=continuation,
        )
        with hooks.captured_outputs(self.layers, capture, last) as captured:
            logits = self.forward(ctx, ids, cache, keep=keep)
        if extra and keep_cache:  # later stages continue from the contexts: the continuations leave the cache
            crop(cache, past_valid.shape[1] + width)
        return Prefilled(
            cache=cache if keep_cache else None,
            valid=torch.cat([past_valid, valid[:, :width]], dim=1),
            positions=torch.cat([past_pos, pos[:, :width]], dim=1),
            next_pos=next_pos,
            last_logits=logits[:, 0].float(),
            activations=captured,
            prefix=shared.prefix,
            branches=branches,
            continuation_logits=logits[:, 1:] if extra else None,
        )

    def extend(self, state: Prefilled, tokens: Sequence[Sequence[int]], rows: Sequence[int]) -> Prefilled:
        """Feed more prompt tokens (any number per row, none for some) after a prefilled
        state; rows without tokens keep their logits."""
        n = len(tokens)
        width = max((len(t) for t in tokens), default=0)
        if width == 0:
            return state
        ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        valid = torch.zeros((n, width), dtype=torch.bool)
        pos = state.next_pos[:, None].repeat(1, width)
        for r, toks in enumerate(tokens):
            ids[r, : len(toks)] = torch.tensor(list(toks), dtype=torch.long)
            valid[r, : len(toks)] = True
            pos[r, : len(toks)] = state.next_pos[r] + torch.arange(len(toks))
        last = torch.tensor([max(len(t) - 1, 0) for t in tokens])
        ctx = self.context(
            "context",
            tuple(rows),
            valid,
            pos,
            past_valid=state.valid,
            past_positions=state.positions,
            prefix=state.prefix,
            branches=state.branches,
            last=last,
        )
        logits = self.forward(ctx, ids, state.cache, keep=last[:, None])[:, -1].float()
        fed = torch.tensor([len(t) > 0 for t in tokens])
        return Prefilled(
            cache=state.cache,
            valid=torch.cat([state.valid, valid], dim=1),
            positions=torch.cat([state.positions, pos], dim=1),
            next_pos=state.next_pos + valid.sum(dim=1),
            last_logits=torch.where(fed.to(logits.device)[:, None], logits, state.last_logits),
            activations=state.activations,
            prefix=state.prefix,
            branches=state.branches,
        )

    def _row_cache(self, prefix: tuple[int, ...], n: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """The per-row path's cache for n rows continuing after ``prefix``, each holding a
        copy of it: (cache, validity and positions of the columns each row starts with)."""
        if not prefix:
            return DynamicCache(), torch.zeros((n, 0), dtype=torch.bool), torch.zeros((n, 0), dtype=torch.long)
        # expand() is free; the cache's first update concatenates, which copies once per row.
        data = [(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in self._prefix_kv(prefix)]
        valid = torch.ones((n, len(prefix)), dtype=torch.bool)
        return DynamicCache(ddp_cache_data=data), valid, torch.arange(len(prefix)).expand(n, -1)

    def _prefix_kv(self, prefix: tuple[int, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (keys, values) of the prefix (batch 1), from the LRU cache or computed."""
        kv = self._prefixes.get(prefix)
        if kv is None:
            cache = DynamicCache()  # plain layers: sliding windows are the masks' business, not the cache's
            # One forward, whatever its length. Tried and dropped: token_budget pieces (100
            # commons agents share 2,957 tokens), whose cache concatenations left 30 MB more
            # peak memory than the activations they saved.
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
        visible: torch.Tensor | None = None,
        past_valid: torch.Tensor | None = None,
        past_positions: torch.Tensor | None = None,
        prefix: SharedPrefix | None = None,
        branches: Branches | None = None,
        last: torch.Tensor | None = None,
        gen_index: torch.Tensor | None = None,
        continuation: torch.Tensor | None = None,
    ) -> ForwardContext:
        """The context of a forward of new tokens ``valid``/``positions`` (N, q) after
        cached columns ``past_valid``/``past_positions`` (N, T) (default: none)."""
        n = valid.shape[0]
        return ForwardContext(
            stage=stage,
            rows=rows,
            valid=valid,
            positions=positions,
            visible=visible,
            past_valid=past_valid if past_valid is not None else torch.zeros((n, 0), dtype=torch.bool),
            past_positions=past_positions if past_positions is not None else torch.zeros((n, 0), dtype=torch.long),
            windows=self.windows,
            dtype=self.dtype,
            device=self.device,
            prefix=prefix,
            branches=branches,
            last=last,
            gen_index=gen_index,
            continuation=continuation,
        )

    def forward(
        self, ctx: ForwardContext, ids: torch.Tensor, cache: Any, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The one place the model runs. ``keep`` (N, k): the columns whose logits are needed."""
        kwargs: dict[str, Any] = {self._cache_arg: cache}
        if self.share_prefix_kv:
            kwargs[CONTEXT_KWARG] = ctx
        if self._seen is not None:
            self._seen.append(ctx)
        # Layers that do not read the context (a per-row-prefix model) use this mask: one
        # kind for all of them, which the load-time choice of path guarantees.
        uniform = self.windows[0] if len(set(self.windows)) == 1 else None
        if self.steering is not None:
            self.steering.before_forward(ctx)
        narrowing = hooks.kept_logits(self.model, keep) if keep is not None else nullcontext(False)
        few = ids.numel() <= hooks.FEW_ROWS and self._few_row_linears
        products = hooks.few_row_products(self._few_row_linears) if few else nullcontext()
        with torch.inference_mode(), narrowing as narrowed, products:
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=ctx.mask(uniform),
                position_ids=ctx.positions.to(self.device),
                use_cache=True,
                **kwargs,
            )
        logits = out.logits
        if keep is not None and not narrowed:
            logits = logits.gather(1, keep.to(self.device)[:, :, None].expand(-1, -1, logits.shape[-1]))
        return logits

    @contextmanager
    def recording(self, seen: list[ForwardContext]) -> Iterator[None]:
        """Append the context of every forward run inside the block to ``seen``."""
        self._seen = seen
        try:
            yield
        finally:
            self._seen = None

    def clear_prefix_cache(self) -> None:
        self._prefixes.clear()

    # -------------------------------------------------------------------- batching
    def chunks(self, costs: Sequence[tuple[int, ...]]) -> list[list[int]]:
        """Item indices in the consecutive chunks that cost least within this engine's
        budgets (:func:`agents.llm.batching.chunks`)."""
        return batching.chunks(costs, self.token_budget, self.logit_budget, forward_cost=self.forward_cost)


# ----------------------------------------------------------------------- helpers
def crop(cache: Any, width: int) -> None:
    """Keep each row's first ``width`` cached columns (transformers' own ``crop`` changed
    its meaning between releases)."""
    for layer in cache.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.shape[-2] > width:
            layer.keys, layer.values = layer.keys[..., :width, :], layer.values[..., :width, :]


def _continuation_tree(
    nodes: Sequence[Sequence[tuple[int, ...]]],
    width: int,
    ids: torch.Tensor,
    valid: torch.Tensor,
    pos: torch.Tensor,
    next_pos: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill columns ``width`` on of a prefill batch with each row's continuation tree;
    the forward's visibility (contexts causal, a continuation token seeing its row's
    context, its ancestors and itself) and each token's index in its continuation."""
    n, q = ids.shape
    visible = torch.zeros((n, q, q), dtype=torch.bool)
    visible[:, :width, :width] = torch.tril(torch.ones((width, width), dtype=torch.bool))
    visible[:, width:, :width] = True  # padding among them is masked by ``valid``
    gen_index = torch.zeros((n, q), dtype=torch.long)
    for r, row in enumerate(nodes):
        column = {key: width + c for c, key in enumerate(row)}
        for key, c in column.items():
            ids[r, c] = key[-1]
            valid[r, c] = True
            pos[r, c] = next_pos[r] + len(key) - 1
            gen_index[r, c] = len(key) - 1
            if len(key) > 1:  # parents come first: its parent's row of the mask is complete
                visible[r, c, width:] = visible[r, column[key[:-1]], width:]
            visible[r, c, c] = True
    return visible, gen_index


def default_token_budget(device: torch.device) -> int:
    """Tokens per context forward: on a CPU 1024 (SmolLM2-135M, two threads: 2.1-2.2 ms
    per token from 128 tokens up, so larger forwards gain nothing, while each token held
    costs about 70 KB of keys, values and activations: at 100 commons agents 1024 peaks
    160 MB lower than 2048, at the same decisions/s); on a GPU enough rows to fill it,
    bounded by its memory."""
    if device.type != "cuda":
        return 1024
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(65536, max(4096, free // (1 << 20))))  # about 1 MiB of free memory per token


def default_forward_cost(device: torch.device, token_budget: int) -> int:
    """A forward's fixed cost, in tokens of the same forward. On a CPU about 20 tokens
    (SmolLM2-135M, one thread: 67 ms for a 1-token forward, 3.3 ms per token at 256 and
    more), so 32: splitting off rows whose padding costs more pays. On a GPU every
    layer's kernel launches outweigh all the padding one forward can hold: fewest forwards."""
    return 32 if device.type != "cuda" else token_budget


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
