"""Which concurrent decision batches a model host merges into one forward pass.

Merging saves a forward call, but the backend reuses one shared prompt prefix per call:
every row pays for the tokens after the prefix that *all* rows share. Two simulations'
commons batches share only the system text (each opens with its own public record), so
merged, every row pays for its whole record: two simulations' harvest batches (10
fishers each, SmolLM2-135M, 1 thread) cost 13.2-13.8 CPU-s merged vs 9.2-9.3 CPU-s as two
calls. So batches merge only when they have the same shape (system text, answer
prefix, option count) and merging keeps most of the prefix each one shares on its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

KEEP = 0.9  # merge only if the merged prefix keeps this much of each batch's own shared prefix


def shared_text(items: Sequence[Any]) -> str:
    """The user text all items of one batch share (a single item: its whole text)."""
    return os.path.commonprefix([str(getattr(item, "user", "")) for item in items])


def shape(items: Sequence[Any]) -> tuple[Any, ...]:
    first = items[0] if items else None
    return (getattr(first, "system", None), getattr(first, "answer_prefix", None), len(getattr(first, "options", ())))


def plan_merges(batches: Sequence[Sequence[Any]], keep: float = KEEP) -> list[list[int]]:
    """Indices of the batches to serve together, in arrival order within each part."""
    parts: list[tuple[tuple[Any, ...], str, list[int]]] = []
    for index, items in enumerate(batches):
        key, own = shape(items), shared_text(items)
        for n, (part_key, prefix, members) in enumerate(parts):
            common = os.path.commonprefix([prefix, own])
            if part_key == key and len(common) >= keep * min(len(prefix), len(own)):
                parts[n] = (part_key, common, [*members, index])
                break
        else:
            parts.append((key, own, [index]))
    return [members for _, _, members in parts]
