"""What the engine must know of a model's architecture before it runs it.

* each decoder layer's attention kind: full, or a sliding window of w positions
  (transformers' own per-layer reading of the config, as its caches use);
* position schemes the engine cannot run exactly, refused at load with one line.

ALiBi (Bloom, MPT, Falcon-RW with ``alibi: true``) adds a bias per key that the model
code derives from the key's *column* in the batch (a cumulative sum of the 2D padding
mask, or a column range); the engine's rows are padded and packed, and its masks are
4D, so columns are not positions there: the model would crash or silently give other
probabilities than an unpadded forward. Those models are refused rather than scored
wrongly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sim.core.schema import ConfigError


class UnsupportedModel(ConfigError):
    """The engine cannot run this model exactly (one line: which family and why), so the
    CLI prints it as ``error: ...`` with exit code 2 instead of scoring it wrongly."""


def position_scheme_problem(model: Any) -> str | None:
    """Why the engine cannot run this model's position scheme exactly; None if it can."""
    config = model.config.get_text_config()
    family = getattr(config, "model_type", type(model).__name__)
    attn_config = getattr(config, "attn_config", None)
    alibi = (
        family == "bloom"
        or bool(getattr(config, "alibi", False))
        or bool(getattr(attn_config, "alibi", False) if not isinstance(attn_config, dict) else attn_config.get("alibi"))
    )
    if alibi:
        return (
            f"{family} models ({type(model).__name__}) use ALiBi position biases, which their code derives from "
            "cache columns, not token positions; normsim's engine pads and packs rows, so the probabilities would "
            "be wrong: use a model with rotary or learned positions"
        )
    return None


def layer_windows(model: Any, n_layers: int) -> tuple[int | None, ...]:
    """Each decoder layer's sliding window (None: full attention)."""
    from transformers.cache_utils import get_layer_types_and_kwargs

    config = model.config.get_text_config(decoder=True)
    family = getattr(config, "model_type", type(model).__name__)
    window = getattr(config, "sliding_window", None)
    try:
        kinds, kwargs = get_layer_types_and_kwargs(config)
    except Exception:
        kinds, kwargs = [], []
    if not kinds:  # configs without per-layer fields: one kind for every layer
        kinds = [("sliding_attention" if window else "full_attention")] * n_layers
    # Releases differ in what they return beside the kinds: one dict for every layer
    # (transformers 5.17), or one per layer (5.25). A sliding layer without a window of its
    # own takes the config's.
    kwargs = [kwargs] * len(kinds) if isinstance(kwargs, Mapping) else list(kwargs)
    kwargs += [{}] * (len(kinds) - len(kwargs))
    windows: list[int | None] = []
    for kind, extra in zip(kinds, kwargs, strict=True):
        if kind == "full_attention":
            windows.append(None)
        elif kind == "sliding_attention" and (extra.get("sliding_window") or window):
            windows.append(int(extra.get("sliding_window") or window))
        else:
            raise UnsupportedModel(
                f"{family} models ({type(model).__name__}) have '{kind}' layers; normsim's engine runs full and "
                "sliding-window attention only"
            )
    if len(windows) != n_layers:
        raise UnsupportedModel(
            f"{family} models ({type(model).__name__}) declare {len(windows)} attention layer kinds for "
            f"{n_layers} decoder layers; normsim's engine needs one per layer"
        )
    return tuple(windows)


def describe_windows(windows: tuple[int | None, ...]) -> str:
    """'2 full' / '2 sliding(32) + 1 full': the layers' attention kinds, for logs."""
    counts: dict[str, int] = {}
    for w in windows:
        name = "full" if w is None else f"sliding({w})"
        counts[name] = counts.get(name, 0) + 1
    return " + ".join(f"{n} {name}" for name, n in counts.items())
