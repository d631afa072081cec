"""Hooks the engine holds on a model for the length of a block, removed on exit.

* :func:`kept_logits`: the output head sees only the columns whose logits are read,
  chosen per row. transformers' ``logits_to_keep`` cannot say that in every release
  (before 5.18 a 2-D tensor indexes every row with every row's columns, giving a
  (N, N, k) result), and some families do not take it at all; the head is where every
  family turns hidden states into logits, and what follows it (soft-capping, scaling)
  is element-wise, so narrowing its input gives each family's own logits, for k columns
  per row instead of all of them.
* :func:`captured_outputs`: each row's output of chosen decoder layers at one column.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch


@contextmanager
def kept_logits(model: Any, keep: torch.Tensor) -> Iterator[bool]:
    """Inside the block the model's output head projects only columns ``keep`` (N, k) of
    each row. Yields False (and does nothing) for a model without an output head module."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Module):
        yield False
        return

    def narrow(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        hidden = args[0] if args else kwargs.pop("input")
        if hidden.dim() != 3 or hidden.shape[0] != keep.shape[0]:
            raise RuntimeError(f"the output head got hidden states of shape {tuple(hidden.shape)}")
        index = keep.to(hidden.device)[:, :, None].expand(-1, -1, hidden.shape[-1])
        return (hidden.gather(1, index), *args[1:]), kwargs

    handle = head.register_forward_pre_hook(narrow, with_kwargs=True)
    try:
        yield True
    finally:
        handle.remove()


@contextmanager
def captured_outputs(
    layers: Sequence[torch.nn.Module], chosen: Sequence[int], last: torch.Tensor
) -> Iterator[dict[int, torch.Tensor]]:
    """Record each row's output of decoder layers ``chosen`` at column ``last[row]``."""
    captured: dict[int, torch.Tensor] = {}
    handles = []
    for layer in sorted(set(chosen)):

        def hook(_module: Any, _inputs: Any, output: Any, layer: int = layer) -> None:
            hidden = output[0] if isinstance(output, tuple) else output
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            captured[layer] = hidden[rows, last.to(hidden.device)].float().cpu()

        handles.append(layers[layer].register_forward_hook(hook))
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
