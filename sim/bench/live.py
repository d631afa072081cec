"""Checks that keep the engine sections honest: they must measure live decisions.

A scripted commons played a few steps at 16 agents is fished out by its third step;
every harvest option then reads "0 tons", every engine returns exactly 1/7 for each,
and timings and agreement checks on those requests prove nothing (identical strings,
identical uniform distributions). So:

* :func:`check_requests` refuses requests whose options do not all read differently
  (one line naming where, how many, and an example);
* :func:`check_distributions` refuses decisions whose distributions are (near) uniform:
  the median decision's max − min probability must reach :data:`MIN_GAP`;
* :func:`distribution_stats` gives those figures (and the KL divergence from uniform)
  as min / median / max spreads, for the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# The median decision's max − min option probability must reach this. SmolLM2 on live
# commons requests gives 0.35-0.54 (16 agents, step 2), the tests' tiny model 0.43-0.83;
# identical options give exactly 0.
MIN_GAP = 0.05


class DegenerateRequests(ValueError):
    """Requests (or their decisions) that cannot tell engines apart."""


def same_options(request: Any) -> bool:
    """Whether a request's options fail to all read differently (or there are fewer than two)."""
    options = list(request.options)
    return len(options) < 2 or len(set(options)) < len(options)


def check_requests(requests: Sequence[Any], where: str) -> None:
    """Raise :class:`DegenerateRequests` unless every request has at least two options that all read differently."""
    if not requests:
        raise DegenerateRequests(f"{where}: no requests to measure")
    bad = [i for i, r in enumerate(requests) if same_options(r)]
    if bad:
        example = requests[bad[0]].options
        raise DegenerateRequests(
            f"{where}: {len(bad)} of {len(requests)} requests have options that do not all read differently "
            f"(request {bad[0]}: {list(example)}); every engine gives them the same distribution, so timings and "
            "agreement on them prove nothing: take the requests of a live step"
        )


def distribution_stats(probs: Sequence[Any]) -> dict[str, Any]:
    """Per-decision max − min probability and KL divergence from uniform (nats), as min / median / max."""
    from sim.bench.envs import spread

    gaps, kls = [], []
    for p in probs:
        p = np.asarray(p, dtype=np.float64)
        gaps.append(float(p.max() - p.min()))
        nz = p[p > 0]
        kls.append(float(np.log(len(p)) + np.sum(nz * np.log(nz))))  # KL(p || uniform) = log K − H(p)
    return {"decisions": len(gaps), "max_minus_min": spread(gaps, 4), "kl_from_uniform": spread(kls, 4)}


def check_distributions(probs: Sequence[Any], where: str, min_gap: float = MIN_GAP) -> dict[str, Any]:
    """The decisions' :func:`distribution_stats`; raise :class:`DegenerateRequests` if they are near uniform."""
    if not probs:
        raise DegenerateRequests(f"{where}: no decisions to check")
    stats = distribution_stats(probs)
    median = stats["max_minus_min"]["median"]
    if median < min_gap:
        raise DegenerateRequests(
            f"{where}: the decisions' distributions are near uniform (median max − min probability {median:.2g} "
            f"< {min_gap}); timings and agreement on them prove nothing: take the requests of a live step"
        )
    return stats


def diff_spread(a: Sequence[Any], b: Sequence[Any]) -> dict[str, float]:
    """Per-decision largest |Δp| between two lists of distributions, as min / median / max (unrounded)."""
    diffs = [float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b, strict=True)]
    return {"min": min(diffs), "median": float(np.median(diffs)), "max": max(diffs)}
