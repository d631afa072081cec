"""What a steering intervention does to one activation.

Every operator maps the selected activations ``h`` (n, H) to new ones, given for each
of them the bank's direction ``v`` (n, H), the plane axis ``b`` (n, H; rotation only)
and the row's coefficient ``c`` (n, 1). They run in float32 on the few selected
positions only; positions that are not steered are never touched (see
:mod:`steering.hooks`), which is what makes unsteered rows bit-identical.

* ``add``: h + c v (activation addition, EAST, CAA).
* ``add_norm``: h + c v rescaled to the norm of h.
* ``rotate``: Selective Steering's norm-preserving rotation by c degrees in the plane
  of the unit axes (b, u), u = v / |v|:
  h' = h - P h + (cos t P + sin t (u b^T - b u^T)) h, P = b b^T + u u^T;
  positive angles turn the in-plane part of h from b toward u.
* ``ablate``: h - c (h . u) u; c = 1 removes the direction entirely.

``add`` and ``add_norm`` take an optional cosine gate tau (Amortized Latent Steering):
only activations with cos(h, v) < tau are steered.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Operator = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

_EPS = 1e-12


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def add(h: torch.Tensor, v: torch.Tensor, c: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    return h + c * v


def add_norm(h: torch.Tensor, v: torch.Tensor, c: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    out = h + c * v
    return out * (h.norm(dim=-1, keepdim=True) / out.norm(dim=-1, keepdim=True).clamp_min(_EPS))


def rotate(h: torch.Tensor, v: torch.Tensor, c: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    if b is None:
        raise ValueError("the rotate operator needs a plane axis")
    u = _unit(v)
    t = c * (math.pi / 180.0)
    x1 = (h * b).sum(-1, keepdim=True)  # coordinate on the plane axis
    x2 = (h * u).sum(-1, keepdim=True)  # coordinate on the steering direction
    cos, sin = torch.cos(t), torch.sin(t)
    return h + b * (x1 * cos - x2 * sin - x1) + u * (x1 * sin + x2 * cos - x2)


def ablate(h: torch.Tensor, v: torch.Tensor, c: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    u = _unit(v)
    return h - c * (h * u).sum(-1, keepdim=True) * u


OPERATORS: dict[str, Operator] = {"add": add, "add_norm": add_norm, "rotate": rotate, "ablate": ablate}
GATEABLE = frozenset({"add", "add_norm"})


def cosine_gate(h: torch.Tensor, v: torch.Tensor, tau: float) -> torch.Tensor:
    """(n, 1) bool: where cos(h, v) < tau, i.e. where a gated operator acts."""
    cos = (h * v).sum(-1, keepdim=True) / (h.norm(dim=-1, keepdim=True) * v.norm(dim=-1, keepdim=True)).clamp_min(_EPS)
    return cos < tau


def plane_axis(direction: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """A unit axis orthogonal to ``direction``, from ``candidate`` (Gram-Schmidt)."""
    u = _unit(direction.to(torch.float32))
    w = candidate.to(torch.float32) - (candidate.to(torch.float32) @ u) * u
    if w.norm() < 1e-6 * max(1.0, float(candidate.norm())):
        raise ValueError("plane axis candidate is parallel to the steering direction")
    return _unit(w)
