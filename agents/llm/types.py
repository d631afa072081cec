"""The engine's plain data: batch requests and results, and the one per-forward context.

Requests (:class:`ScoreItem`, :class:`GenerateItem`) and results (:class:`ScoreResult`)
are pure and serialisable, so a Ray actor can serve them in another process.

:class:`ForwardContext` describes one forward pass of the engine: which stage runs,
which item each batch row belongs to, which tokens are real, where every query and
every cached key sits in its sequence, and the shared prompt prefix (if any). The
engine builds it before the forward and hands the same object to the attention
function (as a keyword argument of the model call, which transformers passes down to
every attention layer) and to the steering hooks; masks are derived from it per layer
kind (full or sliding window) on first use and kept for the other layers of the pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from agents.llm import masks

PaddingSide = Literal["left", "right"]
Stage = Literal["prefix", "context", "decode"]
CONTEXT_KWARG = "normsim_forward"  # the model-call keyword that carries the ForwardContext


# ------------------------------------------------------------------ batch requests
@dataclass(frozen=True)
class Reply:
    """Free text to sample after a prompt: at most ``max_new_tokens`` tokens at
    ``temperature`` (0: greedy) from a generator seeded with ``seed``. The reply ends
    early once it holds one of ``stop`` after its first non-blank character, and is cut
    before that string (as vLLM and OpenAI servers cut at their stop strings)."""

    max_new_tokens: int = 32
    temperature: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreItem:
    """Score each option as the continuation of the chat-templated prompt + answer_prefix,
    and, when ``reply`` is set, sample a reply continuing from the same prefilled prompt
    (no second prefill). ``options`` may be empty for a reply alone."""

    system: str
    user: str
    answer_prefix: str
    options: tuple[str, ...]
    capture: tuple[int, ...] = ()  # decoder layers whose output at the last prompt token to return
    steer: Any = None  # a steering.config.SteerSpec: this item's activation steering (None: unsteered)
    reply: Reply | None = None


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
    stop: tuple[str, ...] = ()  # as in Reply

    @property
    def reply(self) -> Reply:
        return Reply(self.max_new_tokens, self.temperature, self.seed, self.stop)


@dataclass
class ScoreResult:
    logprobs: np.ndarray  # (n_options,) float64: log P(option | prompt), whole sequence, not normalised
    n_tokens: tuple[int, ...] = ()  # tokens scored per option
    activations: dict[int, np.ndarray] = field(default_factory=dict)  # layer -> (hidden,) float32
    text: str | None = None  # the sampled reply, for an item with ``reply`` set


# ------------------------------------------------------------------- engine state
@dataclass(frozen=True)
class SharedPrefix:
    """Per-layer (keys, values) of a prefix, batch 1: (1, kv_heads, length, head_dim)."""

    layers: Sequence[tuple[torch.Tensor, torch.Tensor]]

    @property
    def length(self) -> int:
        return int(self.layers[0][0].shape[-2])


@dataclass(frozen=True)
class Branches:
    """The second level of a batch's prefix tree: token runs that several rows (but not
    all) share after the common prefix, each computed once and stored once.

    ``paths[b]``: per-layer (keys, values), batch 1, of branch b's tokens from the end
    of the common prefix (position ``start``) to the end of the branch (a path of the
    tree, all its levels). ``of_row`` (N,): the branch each row continues (-1: none);
    rows of one branch are consecutive, so each branch serves one slice of the batch."""

    paths: Sequence[Sequence[tuple[torch.Tensor, torch.Tensor]]]
    of_row: torch.Tensor
    start: int

    def length(self, branch: int) -> int:
        return int(self.paths[branch][0][0].shape[-2])

    def runs(self) -> list[tuple[int, int, int]]:
        """(branch, first row, end row) of every run of rows continuing one branch."""
        out, of_row = [], self.of_row.tolist()
        a = 0
        while a < len(of_row):
            b = a
            while b < len(of_row) and of_row[b] == of_row[a]:
                b += 1
            if of_row[a] >= 0:
                out.append((of_row[a], a, b))
            a = b
        return out

    def select(self, index: torch.Tensor) -> Branches:
        return Branches(self.paths, self.of_row[index], self.start)


@dataclass(frozen=True)
class Shared:
    """What a batch's contexts share (see :meth:`Engine.share <agents.llm.engine.Engine.share>`):
    the prefix tree, the common prefix's ids and its keys and values (None on the
    per-row path, where each row's cache holds a copy), and the tree's branches."""

    tree: Any  # agents.llm.prefix_tree.Tree
    prefix_ids: tuple[int, ...]
    prefix: SharedPrefix | None
    branches: Branches | None


@dataclass
class Prefilled:
    """Contexts run through the model: what scoring and generation continue from."""

    cache: Any  # transformers DynamicCache (an attention.PrefixedCache when the prefix is shared), batch = len(rows); None: not kept
    valid: torch.Tensor  # (N, T) bool: which (per-row) cache columns hold real tokens of that row
    positions: torch.Tensor  # (N, T) long: position of the token in each cache column
    next_pos: torch.Tensor  # (N,) long: position id of each row's next token
    last_logits: torch.Tensor  # (N, V) float32: logits at each row's last context token
    activations: dict[int, torch.Tensor]  # layer -> (N, hidden) output at the last context token
    prefix: SharedPrefix | None = None  # the prefix every row attends to before its own columns
    branches: Branches | None = None  # the prefix tree's branches rows attend to after the prefix
    # (N, C, V): logits at each continuation-tree column run with the contexts (see Engine.prefill)
    continuation_logits: torch.Tensor | None = None

    def select(self, index: torch.Tensor, device: torch.device) -> Prefilled:
        """The rows ``index`` (kept in order) of this state; the cache is narrowed in place."""
        self.cache.batch_select_indices(index.to(device))
        return Prefilled(
            cache=self.cache,
            valid=self.valid[index],
            positions=self.positions[index],
            next_pos=self.next_pos[index],
            last_logits=self.last_logits[index.to(self.last_logits.device)],
            activations={k: v[index] for k, v in self.activations.items()},
            prefix=self.prefix,
            branches=None if self.branches is None else self.branches.select(index),
        )


@dataclass
class ForwardContext:
    """Everything one forward pass needs beyond its token ids (see the module docstring).

    ``stage``: "prefix" (a shared prefix: the batch's common one, batch 1, ``rows``
    None, or the nodes of its prefix tree), "context" (each item's own prompt tokens;
    ``last`` = column of each row's last prompt token; after them, where
    ``continuation`` (N, q) marks them, the item's scored option tokens) or "decode"
    (generated tokens). ``valid``/``positions`` (N, q) describe the new tokens; a new
    token sees the earlier valid new tokens of its row and itself, or, where
    ``visible`` (N, q, q) is given, the ones it marks (an item's options form a token
    tree after its context, each token seeing the context and its ancestors).
    ``past_valid``/``past_positions`` (N, T) describe the rows' cached columns, all of
    which come before the new tokens. ``gen_index`` (N, q), for continuation and decode
    tokens: each one's index counted from the start of its continuation. ``windows``:
    each decoder layer's sliding window (None: full attention).
    """

    stage: Stage
    rows: tuple[int, ...] | None
    valid: torch.Tensor
    positions: torch.Tensor
    visible: torch.Tensor | None
    past_valid: torch.Tensor
    past_positions: torch.Tensor
    windows: tuple[int | None, ...]
    dtype: torch.dtype
    device: torch.device
    prefix: SharedPrefix | None = None
    branches: Branches | None = None
    last: torch.Tensor | None = None
    gen_index: torch.Tensor | None = None
    continuation: torch.Tensor | None = None
    layers_seen: set[int] = field(default_factory=set)  # attention layers that read this context
    _masks: dict[Any, torch.Tensor | None] = field(default_factory=dict, repr=False)

    def mask(self, window: int | None = None) -> torch.Tensor:
        """Additive (N, 1, q, T + q) mask over the rows' own columns for a layer with this window."""
        key = ("own", window)
        if key not in self._masks:
            allowed = masks.allowed(
                self.past_valid, self.past_positions, self.valid, self.positions, self.visible, window
            )
            self._masks[key] = masks.additive(allowed, self.dtype, self.device)
        return self._masks[key]  # type: ignore[return-value]

    def prefix_mask(self, window: int | None) -> torch.Tensor | None:
        """Additive (N, 1, q, P) mask over the shared prefix; None where every query sees all of it."""
        if self.prefix is None or window is None:
            return None
        key = ("prefix", window)
        if key not in self._masks:
            allowed = masks.prefix_allowed(self.prefix.length, self.positions, window)
            self._masks[key] = None if bool(allowed.all()) else masks.additive(allowed, self.dtype, self.device)
        return self._masks[key]

    def branch_mask(self, branch: int, a: int, b: int, window: int | None) -> torch.Tensor | None:
        """Additive (b - a, 1, q, L) mask of rows a..b over their branch's path; None where
        every query sees all of it."""
        if self.branches is None or window is None:
            return None
        key = ("branch", branch, a, b, window)
        if key not in self._masks:
            start, length = self.branches.start, self.branches.length(branch)
            allowed = masks.prefix_allowed(length, self.positions[a:b] - start, window)
            self._masks[key] = None if bool(allowed.all()) else masks.additive(allowed, self.dtype, self.device)
        return self._masks[key]

    def window_of(self, layer: int) -> int | None:
        return self.windows[layer] if 0 <= layer < len(self.windows) else None
