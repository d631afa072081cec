"""A group's ``steering:`` block -> the :class:`~steering.config.SteerSpec` its requests carry.

Library code: it knows the model only by its :class:`ModelInfo` (name, hidden size,
layer count; a local backend and a model host both answer it). An inline ``fit:``
block is fitted once and saved under the cache directory, keyed by the spec and the
model; the fitting itself (from runs or prompt sets, :mod:`steering.fit`) is handed in
by the caller as ``fit``, since it reads run directories, which is the application's
business, not the library's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from steering.config import FitSpec, SteeringConfig, SteerSpec
from steering.vectors import SteeringVector

Fit = Callable[[FitSpec], SteeringVector]


@dataclass(frozen=True)
class ModelInfo:
    """What a steering vector is checked against."""

    model_id: str
    hidden_size: int
    num_layers: int


def fitted_path(spec: FitSpec, model_id: str, cache_dir: str | Path) -> Path:
    """Where the vector an inline fit spec gives for this model is kept."""
    key = json.dumps({"fit": spec.model_dump(mode="json"), "model": model_id}, sort_keys=True)
    return Path(cache_dir) / f"fit-{spec.method}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"


def resolve(cfg: SteeringConfig, model: ModelInfo, *, cache_dir: str | Path, fit: Fit | None = None) -> SteerSpec:
    """The spec a group's requests carry; the vector is checked against the model here,
    at start-up. ``fit`` fits an inline spec whose vector is not in ``cache_dir`` yet."""
    if cfg.fit is not None:
        path = fitted_path(cfg.fit, model.model_id, cache_dir)
        if not path.exists():
            if fit is None:
                raise ValueError(f"steering.fit: no fitted vector at {path} and no fitting available here")
            fit(cfg.fit).save(path)
    else:
        assert cfg.vector is not None
        path = Path(cfg.vector)
    vector = SteeringVector.load(path)
    vector.check(model.hidden_size, model.num_layers, model.model_id)
    layers = tuple(cfg.layers) if cfg.layers is not None else tuple(vector.layers)
    vector.select(list(layers))  # names missing layers now rather than at the first decision
    return SteerSpec(
        vector=str(path.resolve()),
        layers=layers,
        coefficient=float(cfg.coefficient),
        positions="+".join(cfg.positions),
        operator=cfg.operator,
        gate=cfg.gate,
        generated_tokens=cfg.generated_tokens,
    )
