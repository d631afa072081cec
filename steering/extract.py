"""Fitting steering directions from activations (batched tensor maths only).

Where the activations come from (logged runs, prompt sets) is :mod:`steering.sources`;
this module turns them into directions, one layer at a time:

* :func:`east`: Entropic Activation Steering (Rahn et al. 2024): the entropy-weighted
  mean of per-episode-centred last-prompt-token activations,
  u = sum_k sum_t h_t^k (z_t^k - mean_t' z_t'^k) / sum_k sum_t h_t^k.
  An episode is one agent's sequence of decisions in one run. Optionally centred per
  step instead (or both), which removes the context's drift within episodes;
  :func:`drift_direction` gives that drift to check a vector against.
* :func:`mean_difference`: contrastive activation addition, mean(pos) - mean(neg).
* :func:`pca_direction`: first principal direction of the paired differences pos_i - neg_i.
* :func:`success_failure`: E[z | high payoff] - E[z | low payoff], unit norm (Amortized
  Latent Steering; apply it with a cosine gate).
* :func:`complement_axis`: the second axis of a rotation plane.
* :func:`opposite_sign_layers`: Selective Steering's layer criterion.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steering.operators import plane_axis


def _f32(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float32)


CENTRES = ("episode", "step", "episode+step")


def east(
    acts: torch.Tensor,
    entropies: Sequence[float] | torch.Tensor,
    episodes: Sequence[Hashable],
    *,
    steps: Sequence[Hashable] | None = None,
    center: str = "episode",
) -> torch.Tensor:
    """EAST's vector from activations (N, H), each decision's action entropy and the
    episode each decision belongs to. No normalisation follows.

    ``center`` chooses what is subtracted before the entropy-weighted average:

    * ``episode`` (EAST): each episode's mean, which removes what an episode's context
      contributes regardless of uncertainty. It keeps everything that changes *within*
      an episode, so when entropy drifts with time (it collapses in the bandit, moves
      with the stock in the commons) the vector picks up the context's drift
      (round number, history length) rather than uncertainty;
    * ``step``: the mean of the decisions taken at the same step (``steps`` labels,
      e.g. (run, step, phase)), i.e. across agents who read the same round: the drift
      is removed exactly and the vector follows entropy differences between agents at
      one step;
    * ``episode+step``: both (two-way centring, by alternating projections, exact on
      balanced data): removes each episode's offset and each step's drift.
    """
    z = _f32(acts)
    w = _values(entropies)
    if len(w) != len(z) or len(episodes) != len(z):
        raise ValueError(f"east: {len(z)} activations, {len(w)} entropies, {len(episodes)} episode labels")
    if center not in CENTRES:
        raise ValueError(f"east: center '{center}'; allowed: {', '.join(CENTRES)}")
    if center != "episode" and (steps is None or len(steps) != len(z)):
        raise ValueError(f"east: center '{center}' needs one step label per activation")
    if float(w.sum()) <= 0:
        raise ValueError("east: every decision has zero entropy; the vector is undefined")
    groupings = {"episode": [episodes], "step": [steps], "episode+step": [episodes, steps]}[center]
    centred = centre(z, groupings)  # type: ignore[arg-type]
    return (w[:, None] * centred).sum(0) / w.sum()


def centre(z: torch.Tensor, groupings: Sequence[Sequence[Hashable]], *, iters: int = 50) -> torch.Tensor:
    """``z`` minus its group means, for one grouping or several (alternating
    projections onto the complement of every grouping's means; one sweep suffices for
    a single grouping or a balanced crossed design)."""
    codes = [torch.as_tensor(_codes(g)) for g in groupings]
    out = _f32(z).clone()
    for _ in range(iters if len(codes) > 1 else 1):
        for c in codes:
            n = int(c.max()) + 1
            sums = torch.zeros(n, out.shape[1]).index_add_(0, c, out)
            out = out - (sums / torch.bincount(c, minlength=n).to(torch.float32)[:, None])[c]
        if len(codes) > 1 and all(_group_means_small(out, c) for c in codes):
            break
    return out


def _group_means_small(z: torch.Tensor, codes: torch.Tensor) -> bool:
    n = int(codes.max()) + 1
    sums = torch.zeros(n, z.shape[1]).index_add_(0, codes, z)
    means = sums / torch.bincount(codes, minlength=n).to(torch.float32)[:, None]
    return float(means.abs().max()) <= 1e-5 * max(float(z.abs().max()), 1.0)


def drift_direction(acts: torch.Tensor, steps: Sequence[float]) -> torch.Tensor:
    """Mean activation at the last step minus mean at the first: how the context moves
    within an episode, to compare a fitted direction against."""
    z = _f32(acts)
    t = np.asarray(steps)
    first, last = t == t.min(), t == t.max()
    if first.all():
        raise ValueError("drift: every decision is at the same step")
    return z[torch.as_tensor(last)].mean(0) - z[torch.as_tensor(first)].mean(0)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(_f32(a), _f32(b), dim=0))


def mean_difference(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    return _f32(pos).mean(0) - _f32(neg).mean(0)


def pca_direction(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """First right-singular vector of the paired differences (uncentred, so the shared
    shift dominates), oriented and scaled like the mean difference's projection on it."""
    pos, neg = _f32(pos), _f32(neg)
    if pos.shape != neg.shape:
        raise ValueError(f"pca needs paired examples: {tuple(pos.shape)} positive vs {tuple(neg.shape)} negative")
    diffs = pos - neg
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    axis = vh[0]
    scale = float((diffs @ axis).mean())
    return axis * scale  # the sign of scale orients the axis toward the positives


def success_failure(
    acts: torch.Tensor, payoffs: Sequence[float] | torch.Tensor, *, quantile: float = 0.5
) -> torch.Tensor:
    """Unit vector from low-payoff to high-payoff decisions (split at the payoff
    quantile; ties at the split go to neither side)."""
    z = _f32(acts)
    p = _values(payoffs)
    cut = float(torch.quantile(p, quantile))
    hi, lo = p > cut, p < cut
    if not bool(hi.any()) or not bool(lo.any()):
        raise ValueError(f"success/failure needs payoffs on both sides of {cut:g}")
    v = z[hi].mean(0) - z[lo].mean(0)
    return v / v.norm().clamp_min(1e-12)


def complement_axis(acts: torch.Tensor, direction: torch.Tensor) -> torch.Tensor:
    """The rotation plane's second axis: the top principal component of the centred
    activations with the steering direction projected out (falls back to the mean
    activation's orthogonal part when the data has a single sample)."""
    z = _f32(acts)
    u = _f32(direction) / _f32(direction).norm().clamp_min(1e-12)
    rest = z - (z @ u)[:, None] * u[None, :]
    centred = rest - rest.mean(0)
    if len(z) > 1 and float(centred.norm()) > 1e-6:
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        return plane_axis(u, vh[0])
    return plane_axis(u, rest.mean(0))


@dataclass(frozen=True)
class LayerScore:
    layer: int
    pos_projection: float  # mean positive activation . unit(mean difference)
    neg_projection: float
    opposite: bool  # the two class means lie on opposite sides of the origin along it

    @property
    def separation(self) -> float:
        return self.pos_projection - self.neg_projection


def opposite_sign_layers(pos: dict[int, torch.Tensor], neg: dict[int, torch.Tensor]) -> list[LayerScore]:
    """Selective Steering's criterion, per layer: project both class means on the unit
    mean difference; a layer qualifies when the projections have opposite signs.
    Returned best first: qualifying layers, then by separation."""
    scores = []
    for layer in sorted(pos):
        mp, mn = _f32(pos[layer]).mean(0), _f32(neg[layer]).mean(0)
        d = mp - mn
        d = d / d.norm().clamp_min(1e-12)
        a, b = float(mp @ d), float(mn @ d)
        scores.append(LayerScore(layer, a, b, a > 0 > b))
    return sorted(scores, key=lambda s: (not s.opposite, -s.separation))


def _values(x: Sequence[float] | torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32).reshape(-1)
    return torch.tensor(np.asarray(x, dtype=np.float32)).reshape(-1)  # a copy: pandas arrays may be read-only


def _codes(labels: Sequence[Hashable]) -> list[int]:
    index: dict[Hashable, int] = {}
    return [index.setdefault(label, len(index)) for label in labels]
