"""Steering vectors: per-layer directions plus what they were fitted on.

A :class:`SteeringVector` is saved as two files side by side: ``NAME.safetensors``
holds the tensors (``layer.L`` for the direction at decoder layer L and, when the
vector carries one, ``plane.L`` for the second axis of its rotation plane) and
``NAME.json`` the metadata (model id, hidden size, layer count, method, source runs,
parameters). Layer L always means the output of decoder layer L (0-based), i.e.
``hidden_states[L + 1]`` in Hugging Face's numbering, the point where
:mod:`steering.hooks` both captures and steers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)


class VectorMismatch(ValueError):
    """A steering vector does not fit the model it is applied to."""


@dataclass
class SteeringVector:
    directions: dict[int, torch.Tensor]  # decoder layer -> (hidden_size,) float32
    model_id: str
    hidden_size: int
    num_layers: int
    method: str
    source_runs: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    # decoder layer -> a unit axis orthogonal to the direction: the rotation operator
    # turns activations in the plane (plane axis, direction).
    planes: dict[int, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.directions:
            raise ValueError("a steering vector needs at least one layer")
        self.directions = {int(k): v.detach().to(torch.float32).cpu().reshape(-1) for k, v in self.directions.items()}
        self.planes = {int(k): v.detach().to(torch.float32).cpu().reshape(-1) for k, v in self.planes.items()}
        for layer, t in {**self.directions, **self.planes}.items():
            if t.numel() != self.hidden_size:
                raise ValueError(f"layer {layer}: tensor has {t.numel()} values, hidden_size is {self.hidden_size}")
        extra = set(self.planes) - set(self.directions)
        if extra:
            raise ValueError(f"plane axes for layers without a direction: {sorted(extra)}")

    @property
    def layers(self) -> list[int]:
        return sorted(self.directions)

    def norms(self) -> dict[int, float]:
        return {layer: float(self.directions[layer].norm()) for layer in self.layers}

    # ----------------------------------------------------------------- derived vectors
    def select(self, layers: list[int] | tuple[int, ...]) -> SteeringVector:
        """The same vector restricted to some of its layers."""
        missing = [layer for layer in layers if layer not in self.directions]
        if missing:
            raise VectorMismatch(f"vector has no direction for layer(s) {missing}; it has {self.layers}")
        return self._derive(
            directions={layer: self.directions[layer] for layer in layers},
            planes={layer: self.planes[layer] for layer in layers if layer in self.planes},
        )

    def scaled(self, factor: float) -> SteeringVector:
        return self._derive(directions={k: v * factor for k, v in self.directions.items()})

    def shuffled(self, seed: int = 0) -> SteeringVector:
        """The control vector: each layer's components permuted (same norm, no direction)."""
        gen = torch.Generator().manual_seed(seed)
        dirs = {k: v[torch.randperm(v.numel(), generator=gen)] for k, v in sorted(self.directions.items())}
        planes = {k: v[torch.randperm(v.numel(), generator=gen)] for k, v in sorted(self.planes.items())}
        return self._derive(
            directions=dirs,
            planes=planes,
            method=f"shuffled({self.method})",
            params={**self.params, "shuffle_seed": seed},
        )

    def _derive(self, **changes: Any) -> SteeringVector:
        fields = {
            "directions": self.directions,
            "model_id": self.model_id,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "method": self.method,
            "source_runs": list(self.source_runs),
            "params": dict(self.params),
            "planes": self.planes,
        }
        return SteeringVector(**{**fields, **changes})

    # --------------------------------------------------------------------- checking
    def check(self, hidden_size: int, num_layers: int, model_id: str | None = None) -> None:
        """Raise :class:`VectorMismatch` naming everything that does not fit the model."""
        problems = []
        if self.hidden_size != hidden_size:
            problems.append(f"hidden size {self.hidden_size} != model's {hidden_size}")
        if self.num_layers != num_layers:
            problems.append(f"layer count {self.num_layers} != model's {num_layers}")
        out_of_range = [layer for layer in self.layers if not 0 <= layer < num_layers]
        if out_of_range:
            problems.append(f"layer(s) {out_of_range} outside the model's 0..{num_layers - 1}")
        if problems:
            raise VectorMismatch(
                f"steering vector ({self.method}, fitted on '{self.model_id}') does not fit model "
                f"'{model_id or '?'}': " + "; ".join(problems)
            )
        if model_id is not None and model_id != self.model_id:
            # Same shapes, other weights: it loads, but its meaning is the user's call.
            log.warning("steering vector was fitted on '%s' and is applied to '%s'", self.model_id, model_id)

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "layers": self.layers,
            "method": self.method,
            "source_runs": self.source_runs,
            "params": self.params,
            "norms": {str(k): v for k, v in self.norms().items()},
            "has_planes": sorted(self.planes),
        }

    def save(self, path: str | Path) -> Path:
        """Write ``<stem>.safetensors`` and ``<stem>.json``; returns the safetensors path."""
        st, meta = _paths(path)
        st.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"layer.{k}": v.contiguous() for k, v in self.directions.items()}
        tensors.update({f"plane.{k}": v.contiguous() for k, v in self.planes.items()})
        save_file(tensors, str(st))
        meta.write_text(json.dumps(self.metadata(), indent=2, sort_keys=True, default=str))
        return st

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        st, meta_path = _paths(path)
        for p in (st, meta_path):
            if not p.exists():
                raise FileNotFoundError(f"steering vector file {p} not found (a vector is a .safetensors + .json pair)")
        meta = json.loads(meta_path.read_text())
        tensors = load_file(str(st))
        directions, planes = {}, {}
        for key, tensor in tensors.items():
            kind, _, layer = key.partition(".")
            (directions if kind == "layer" else planes)[int(layer)] = tensor
        if sorted(directions) != sorted(meta["layers"]):
            raise VectorMismatch(f"{st}: tensors cover layers {sorted(directions)}, metadata says {meta['layers']}")
        return cls(
            directions=directions,
            planes=planes,
            model_id=meta["model_id"],
            hidden_size=int(meta["hidden_size"]),
            num_layers=int(meta["num_layers"]),
            method=meta["method"],
            source_runs=list(meta.get("source_runs", [])),
            params=dict(meta.get("params", {})),
        )


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def load_vector(path: str | Path, *, hidden_size: int, num_layers: int, model_id: str | None = None) -> SteeringVector:
    """Load a vector and check it against the model it is about to steer."""
    vector = SteeringVector.load(path)
    vector.check(hidden_size, num_layers, model_id)
    return vector
