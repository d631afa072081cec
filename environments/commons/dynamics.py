"""The commons' arithmetic: regrowth, the sustainable catch, the share shown and the
split of an over-demanded stock (GovSim's rules where it has them)."""

from __future__ import annotations

import numpy as np

from environments.commons.config import CommonsConfig


def regrow(stock: float, cfg: CommonsConfig) -> float:
    if cfg.regrowth == "doubling":
        grown = min(cfg.capacity, 2.0 * stock)
    else:
        grown = min(cfg.capacity, stock + cfg.growth_rate * stock * (1.0 - stock / cfg.capacity))
    return float(np.floor(grown + 1e-9)) if cfg.whole_tons else grown


def sustainable_catch(stock: float, cfg: CommonsConfig) -> float:
    """GovSim's f(t) = max{x : g(R - x) >= R}: the largest total catch after which
    regrowth restores the current stock."""
    if stock <= 0:
        return 0.0
    if cfg.regrowth == "doubling":
        return stock / 2.0 if stock <= cfg.capacity else stock - cfg.capacity / 2.0
    lo, hi = 0.0, stock  # g(R - x) - R decreases in x on [0, R] for r <= 1 and R <= K
    for _ in range(60):
        mid = (lo + hi) / 2
        if regrow(stock - mid, cfg) >= stock - 1e-12:
            lo = mid
        else:
            hi = mid
    return lo


def fair_share(stock: float, n: int, cfg: CommonsConfig) -> float:
    """The per-fisher sustainable share shown to fishers and judged against: f(t)/n, or
    GovSim's whole-ton int((R // 2) // n) (floor(floor(f(t)) / n) for any regrowth)."""
    f = sustainable_catch(stock, cfg)
    if cfg.threshold == "govsim":
        return float(np.floor(np.floor(f + 1e-9) / max(1, n)))
    return f / max(1, n)


def allocate(
    demands: np.ndarray, stock: float, method: str, rng: np.random.Generator, whole: bool = False
) -> np.ndarray:
    """Catches for the given demands: all of them when the stock suffices, otherwise the
    whole stock split by ``method`` (see CommonsConfig.allocation). ``whole``: in tons."""
    total = float(demands.sum())
    if total <= stock:
        return demands.copy()
    if method == "proportional":
        share = demands * (stock / total)
        if not whole:
            return share
        # GovSim's proportional split: floor(R d_i / D), then each leftover ton to a
        # distinct rounded-down fisher drawn at random.
        catches = np.floor(share + 1e-9)
        left = int(round(stock - catches.sum()))
        short = [i for i in range(len(demands)) if catches[i] < share[i] - 1e-9]
        for i in rng.permutation(short)[:left]:
            catches[i] += 1
        return catches
    if method == "stochastic":
        # GovSim's default: one ton at a time to a uniformly random fisher still wanting fish.
        catches = np.zeros_like(demands)
        left = int(round(stock))
        while left > 0:
            wanting = np.flatnonzero(demands - catches > 1e-9)
            if wanting.size == 0:
                break
            catches[wanting[int(rng.integers(wanting.size))]] += 1
            left -= 1
        return catches
    catches = np.zeros_like(demands)
    left = stock
    for i in rng.permutation(len(demands)):
        catches[i] = min(demands[i], left)
        left -= catches[i]
    return catches
