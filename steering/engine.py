"""Steering inside the LLM engine (:mod:`agents.llm`).

Requests carry a :class:`~steering.config.SteerSpec` (or None). For one backend call,
:meth:`BackendSteering.applied` registers each new (vector, layers, operator, gate) as
a bank row, sets every item's row, coefficient and positions as data, and attaches the
hooks for the duration of the call. Before each forward pass the engine hands its
forward context to :meth:`BackendSteering.before_forward` (the same object its
attention function reads: stage, the item of each batch row, which columns are real
tokens and, for generated or scored continuation tokens, their index from the start
of generation), which describes that pass to the hooks:

* ``prefix``: the shared prefix, never steered (items steering all prompt tokens make
  the backend skip prefix sharing for that call, see :func:`needs_own_prefix`);
* ``context``: prompt tokens, the last real one being the last prompt token, and after
  them (``continuation``) scored option tokens, which count as generated tokens;
* ``decode``: generated tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import nn

from steering.config import SteerSpec
from steering.hooks import Steerer
from steering.positions import GENERATED, generated_kinds, prompt_kinds
from steering.vectors import SteeringVector


def _live(spec: SteerSpec | None) -> bool:
    return spec is not None and spec.coefficient != 0


def needs_own_prefix(specs: Sequence[SteerSpec | None]) -> bool:
    """Whether some item steers all prompt tokens (then no prefix may be shared)."""
    return any(_live(s) and "all_prompt" in s.positions.split("+") for s in specs)  # type: ignore[union-attr]


class BackendSteering:
    """The steering of one model's engine: its vector bank and hooks, and each pass's description."""

    def __init__(self, model: nn.Module, model_id: str, blocks: Sequence[nn.Module]) -> None:
        self.steerer = Steerer(model, model_id=model_id, blocks=blocks)
        self._rows: dict[tuple[Any, ...], int] = {}

    def row(self, spec: SteerSpec) -> int:
        """The bank row of a spec's vector (loaded and registered on first use)."""
        if spec.bank_key not in self._rows:
            vector = SteeringVector.load(spec.vector).select(list(spec.layers))
            self._rows[spec.bank_key] = self.steerer.add(
                vector, operator=spec.operator, gate=spec.gate, name=spec.label
            )
        return self._rows[spec.bank_key]

    @contextmanager
    def applied(self, specs: Sequence[SteerSpec | None]) -> Iterator[None]:
        """Steer a backend call whose i-th item has ``specs[i]``; hooks are removed after."""
        if not any(_live(s) for s in specs):
            yield
            return
        index = [self.row(s) if _live(s) else 0 for s in specs]  # type: ignore[arg-type]
        self.steerer.set_rows(
            index,
            [s.coefficient if _live(s) else 0.0 for s in specs],  # type: ignore[union-attr]
            [s.positions if _live(s) else "last_prompt" for s in specs],  # type: ignore[union-attr]
            gen_stop=[s.generated_tokens if _live(s) else None for s in specs],  # type: ignore[union-attr]
        )
        try:
            with self.steerer:
                yield
        finally:
            self.steerer.clear_rows()

    def before_forward(self, ctx: Any) -> None:
        """Describe the coming forward pass (an engine's forward context) to the hooks."""
        if not self.steerer.attached:
            return
        if ctx.rows is None or ctx.stage == "prefix":
            self.steerer.skip()
        elif ctx.stage == "context" and ctx.continuation is None:
            self.steerer.set_tokens(prompt_kinds(ctx.valid), rows=ctx.rows)
        elif ctx.stage == "context":  # prompt tokens, then scored option tokens (generated ones)
            kinds = prompt_kinds(ctx.valid & ~ctx.continuation)
            kinds[ctx.continuation.cpu()] = GENERATED
            self.steerer.set_tokens(kinds, ctx.gen_index, rows=ctx.rows)
        else:
            kinds, gen_index = generated_kinds(ctx.gen_index, ctx.valid)
            self.steerer.set_tokens(kinds, gen_index, rows=ctx.rows)
