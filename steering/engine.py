"""Steering inside an :class:`agents.llm.backend.Backend`.

Requests carry a :class:`~steering.config.SteerSpec` (or None). For one backend call,
:meth:`BackendSteering.applied` registers each new (vector, layers, operator, gate) as
a bank row, sets every item's row, coefficient and positions as data, and attaches the
hooks for the duration of the call. Each forward is described from ``backend.active``
(stage, the item of each batch row, which columns are real tokens and, for generated
or scored continuation tokens, their index from the start of generation):

* ``prefix``: the shared prefix, never steered (items steering all prompt tokens make
  the backend skip prefix sharing for that call, see :meth:`needs_own_prefix`);
* ``context``: prompt tokens, the last real one being the last prompt token;
* ``options``/``decode``: generated tokens.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from steering.config import SteerSpec
from steering.hooks import Steerer
from steering.positions import generated_kinds, prompt_kinds
from steering.vectors import SteeringVector


def _live(spec: SteerSpec | None) -> bool:
    return spec is not None and spec.coefficient != 0


class BackendSteering:
    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.steerer = Steerer(backend.model, model_id=backend.name, blocks=backend.layers)
        self.steerer.source = self._describe
        self._rows: dict[tuple[Any, ...], int] = {}

    def row(self, spec: SteerSpec) -> int:
        """The bank row of a spec's vector (loaded and registered on first use)."""
        if spec.bank_key not in self._rows:
            vector = SteeringVector.load(spec.vector).select(list(spec.layers))
            self._rows[spec.bank_key] = self.steerer.add(
                vector, operator=spec.operator, gate=spec.gate, name=spec.label
            )
        return self._rows[spec.bank_key]

    @staticmethod
    def needs_own_prefix(specs: Sequence[SteerSpec | None]) -> bool:
        """Whether some item steers all prompt tokens (then no prefix may be shared)."""
        return any(_live(s) and "all_prompt" in s.positions.split("+") for s in specs)  # type: ignore[union-attr]

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

    def _describe(self) -> tuple[torch.Tensor, torch.Tensor | None, Sequence[int]] | None:
        active = self.backend.active
        if active is None or active.rows is None or active.stage == "prefix":
            return None
        if active.stage == "context":
            return prompt_kinds(active.valid), None, active.rows
        kinds, gen_index = generated_kinds(active.gen_index, active.valid)
        return kinds, gen_index, active.rows
