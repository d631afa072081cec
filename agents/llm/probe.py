"""Which attention path an engine runs, chosen at load by checking each against a plain forward.

The shared-prefix path (one copy of the prefix's keys and values, read by every row
through :mod:`agents.llm.attention`) runs where every decoder layer goes through
transformers' attention interface and a probe of a few tokens, with a prefix-tree
branch, gives a plain forward's logits. Otherwise rows get per-row copies of the
prefix, probed the same way; models mixing full and sliding-window layers cannot run
that way and are refused with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from agents.llm import attention
from agents.llm.architecture import UnsupportedModel

if TYPE_CHECKING:
    from agents.llm.engine import Engine


def choose_path(engine: Engine) -> tuple[bool, str | None]:
    """(shared prefix?, why not), with ``engine.share_prefix_kv`` set to the choice."""
    model = engine.model
    reason = None if engine.takes_context else f"{type(model).__name__}.forward takes no extra keyword arguments"
    if reason is None:
        reason = attention.install(model)
    if reason is None:
        engine.share_prefix_kv = True
        reason = probe(engine)
        if reason is not None:
            attention.uninstall(model)
    if reason is None:
        return True, None
    family = getattr(model.config, "model_type", type(model).__name__)
    if len(set(engine.windows)) > 1:
        raise UnsupportedModel(
            f"model '{engine.name}': {family} models mix full and sliding-window layers, and the engine cannot "
            f"give each layer its own mask because {reason}"
        )
    engine.share_prefix_kv = False
    problem = probe(engine)
    if problem is not None:
        raise UnsupportedModel(
            f"model '{engine.name}': {family} models ({type(model).__name__}) give other probabilities in "
            f"normsim's batched engine than in a plain forward ({problem})"
        )
    return False, reason


def probe(engine: Engine) -> str | None:
    """None if rows after a cached prefix, one of them in a prefix-tree branch, get the
    last-token logits of a plain forward; else what went wrong."""
    model = engine.model
    vocab = int(model.config.get_text_config().vocab_size)
    windows = [w for w in engine.windows if w is not None]
    n = max(9, min(min(windows, default=0) + 4, 64))  # long enough to slide a small window
    # Three rows: all share 5 tokens, two of them a further branch of the prefix tree.
    base = [(7 * i + 3) % vocab for i in range(5 + engine.tree_min_tokens + n)]
    seqs = [
        base,
        base[: 5 + engine.tree_min_tokens] + [(11 * i + 5) % vocab for i in range(n - 2)],
        base[:5] + [(13 * i + 1) % vocab for i in range(n)],
    ]
    seen: list = []
    try:
        with engine.recording(seen):
            shared = engine.share(seqs)
            order = shared.tree.order()  # rows of one branch consecutive, as prefill wants
            seqs = [seqs[i] for i in order]
            state = engine.prefill(seqs, order, shared, keep_cache=False)
        with torch.inference_mode():
            want = torch.stack(
                [model(input_ids=torch.tensor([s], device=engine.device)).logits[0, -1].float() for s in seqs]
            )
    except Exception as exc:
        return f"its forward failed on the engine's inputs ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    finally:
        engine.clear_prefix_cache()
    if engine.share_prefix_kv and any(ctx.layers_seen != set(range(len(engine.layers))) for ctx in seen):
        return f"{type(model).__name__}'s attention layers do not all go through transformers' attention interface"
    diff = float((state.last_logits - want).abs().max())
    if not diff <= 1e-2 * (1 + float(want.abs().max())):
        return f"the probe's logits differ by {diff:.3g}"
    return None
