"""Which token positions a steered row acts on.

Every forward is described by a token-kind map (B, S): padding or shared prefix (never
steered), prompt token, last prompt token, generated token. Rows combine position
modes (bit flags); a kind is steered for a row when ``kind & row_bits != 0``, so the
last prompt token counts for both ``last_prompt`` and ``all_prompt``. Generated tokens
carry their index counted from the start of generation, never an absolute position,
which is what keeps KV-cache decoding and full re-forwarding in agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Position modes a row can combine (bit flags).
POSITIONS = {"last_prompt": 1, "all_prompt": 2, "generated": 4}
# Token kinds of one forward; a kind is steered for a row when kind & row_bits != 0.
PAD, PROMPT, LAST, GENERATED = 0, 2, 3, 4


def parse_positions(spec: str | Sequence[str]) -> int:
    """'last_prompt', 'last_prompt+generated' or ['all_prompt', 'generated'] -> bit flags."""
    names = spec.split("+") if isinstance(spec, str) else list(spec)
    bits = 0
    for name in names:
        if name not in POSITIONS:
            raise ValueError(f"unknown steering position '{name}'; allowed: {', '.join(POSITIONS)}")
        bits |= POSITIONS[name]
    return bits


def prompt_kinds(valid: torch.Tensor, *, last: bool = True) -> torch.Tensor:
    """Token kinds of a padded prompt chunk (any padding side): PROMPT where ``valid``,
    LAST at each row's final real token when the chunk ends the prompt."""
    valid = torch.as_tensor(valid, dtype=torch.bool).cpu()
    kinds = torch.where(valid, PROMPT, PAD)
    if last:
        width = valid.shape[1]
        last_col = width - 1 - torch.flip(valid, dims=[1]).to(torch.long).argmax(1)
        has = valid.any(1)
        kinds[torch.nonzero(has).flatten(), last_col[has]] = LAST
    return kinds


def generated_kinds(
    gen_index: int | torch.Tensor, valid: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token kinds and generation indices of a chunk of generated tokens."""
    gi = torch.tensor([[gen_index]]) if isinstance(gen_index, int) else torch.as_tensor(gen_index).cpu()
    kinds = torch.full(gi.shape, GENERATED, dtype=torch.long)
    if valid is not None:
        kinds[~torch.as_tensor(valid, dtype=torch.bool).cpu()] = PAD
    return kinds, gi
