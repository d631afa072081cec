"""The facade policies use: one model's :class:`Backend`, batch requests in, results out.

A :class:`Backend` wraps the :class:`~agents.llm.engine.Engine` (model, prompts,
forward passes) and answers pure, serialisable batch requests, so a Ray actor can host
it in another process:

* :meth:`Backend.score`: exact log-probabilities of every option of every item
  (:mod:`agents.llm.scoring`);
* :meth:`Backend.generate`: seeded free text for every item (:mod:`agents.llm.generation`).

Items may carry a steering spec; the backend sets the call's per-item steering up
(:mod:`steering.engine`) and the engine describes each forward pass to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from agents.llm.engine import Engine
from agents.llm.scoring import generate_items, score_items
from agents.llm.types import GenerateItem, ScoreItem, ScoreResult
from steering.engine import BackendSteering, needs_own_prefix
from steering.resolve import ModelInfo

__all__ = ["Backend", "GenerateItem", "ScoreItem", "ScoreResult"]


class Backend:
    """One model copy and its tokenizer; all batch work of every policy using it."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str, **settings: Any) -> None:
        # ``settings``: the engine's (reuse_prefix, padding_side, token_budget, ...), documented there.
        self.engine = Engine(model, tokenizer, name=name, **settings)
        self.name = name
        self.key = (name, str(self.engine.dtype).removeprefix("torch."), str(self.engine.device))
        self._steering: BackendSteering | None = None  # made on the first steered call

    def __getattr__(self, name: str) -> Any:
        # The engine's attributes (model, tokenizer, device, dtype, render, encode, ...) read
        # through the facade; settings are changed on ``backend.engine``.
        if name == "engine":  # not set yet: __init__ failed
            raise AttributeError(name)
        return getattr(self.engine, name)

    @property
    def layers(self) -> Sequence[torch.nn.Module]:
        """The decoder blocks; layer index L in capture/steering means ``layers[L]``'s output."""
        return self.engine.layers

    def info(self) -> ModelInfo:
        """The model facts steering vectors are checked against."""
        return ModelInfo(self.name, int(self.model.config.get_text_config().hidden_size), len(self.layers))

    def describe(self) -> dict[str, Any]:
        """Which attention path runs and why (see :meth:`Engine.describe`), for the run's records."""
        return self.engine.describe()

    # ------------------------------------------------------------------ public API
    def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        specs = [item.steer for item in items]
        with self.steering(specs):
            return score_items(self.engine, items, share_prefix=not needs_own_prefix(specs))

    def generate(self, items: Sequence[GenerateItem]) -> list[str]:
        specs = [item.steer for item in items]
        with self.steering(specs):
            return generate_items(self.engine, items, share_prefix=not needs_own_prefix(specs))

    @contextmanager
    def steering(self, specs: Sequence[Any]) -> Iterator[None]:
        """Per-item activation steering for one call (see :mod:`steering.engine`)."""
        if all(spec is None for spec in specs):
            yield
            return
        if self._steering is None:
            self._steering = BackendSteering(self.engine.model, self.name, self.engine.layers)
        self.engine.steering = self._steering
        try:
            with self._steering.applied(specs):
                yield
        finally:
            self.engine.steering = None
