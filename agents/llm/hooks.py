"""Hooks the engine holds on a model for the length of a block, removed on exit.

* :func:`kept_logits`: the output head sees only the columns whose logits are read,
  chosen per row. transformers' ``logits_to_keep`` cannot say that in every release
  (5.17 indexes every row with every row's columns, a (N, N, k) result, where 5.25 takes
  each row's own), and some families do not take it at all; the head is where every
  family turns hidden states into logits, and what follows it (soft-capping, scaling)
  is element-wise, so narrowing its input gives each family's own logits, for k columns
  per row instead of all of them.
* :func:`captured_outputs`: each row's output of chosen decoder layers at one column.
* :func:`few_row_products`: linear layers of a forward of a few tokens (a decode step)
  computed as weight @ input.T. MKL's float32 GEMM is slow for a product of a few rows
  by a large transposed weight: SmolLM2-135M's output head (49152 x 576) takes 43 ms for
  3 rows as ``F.linear`` and 9 ms as ``weight @ x.T``; the 30 decoder layers' linears,
  out of cache, 61 ms and 37 ms (one thread). Same products, other rounding (a few ulps);
  the result does not depend on the thread count. At 8 rows and more ``F.linear`` wins.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import MethodType
from typing import Any

import torch

FEW_ROWS = 4  # tokens per forward up to which few_row_products pays (measured at 1-8 rows)


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


def _few_rows_linear(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    rows = x.numel() // x.shape[-1]
    # contiguous(): with the transposed result viewed as (batch, tokens, features) as it is,
    # replies differed from run to run on this project's CPU build; contiguous, they do not.
    y = (self.weight @ x.reshape(rows, -1).t()).t().contiguous().reshape(*x.shape[:-1], self.weight.shape[0])
    return y if self.bias is None else y + self.bias


@contextmanager
def few_row_products(linears: Sequence[torch.nn.Linear]) -> Iterator[None]:
    """Inside the block the given linear layers compute ``weight @ x.T`` (see the module
    docstring); a forward with at most :data:`FEW_ROWS` tokens uses it."""
    for module in linears:
        module.forward = MethodType(_few_rows_linear, module)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for module in linears:
            module.__dict__.pop("forward", None)
