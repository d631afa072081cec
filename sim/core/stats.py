"""Shared statistics: inequality and intervals that never leave a metric's range."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def gini(values: Iterable[float] | np.ndarray) -> float:
    """Gini coefficient, sum_ij |x_i - x_j| / (2 n sum x), in O(n log n).

    Negative values (debts) are shifted up so the smallest is 0; an all-zero or empty
    input has no inequality (0). Uses the sorted form
    G = sum_i (2i - n - 1) x_(i) / (n sum x), which equals the pairwise definition.
    """
    x = np.sort(np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64))
    n = x.size
    if n == 0:
        return 0.0
    x = x - min(0.0, float(x[0]))
    total = float(x.sum())
    if total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))
