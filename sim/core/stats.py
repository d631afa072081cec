"""Shared statistics: inequality and intervals that never leave a metric's range."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


# ------------------------------------------------------------------ intervals over runs
# A sweep's per-cell statistics (sim.aggregate) and contrasts between cells (the sweep
# report). Metrics over seeds are often binary (survived), bounded (shares in [0, 1],
# survival time in [0, T]) and skewed, and a sweep has few seeds. Percentile bootstrap
# intervals from 2-10 seeds are far too narrow (their ends are at most the observed
# [min, max]: a "95 %" interval covered a normal mean 48 % of the time at 2 seeds, 75 %
# at 3, 82 % at 5). Here: Wilson intervals for rates of 0/1 outcomes, and for the rest
# the t-interval with Hall's (1992) correction for skewness, intersected with the
# metric's range; the median, quartiles and counts per value beside.

LEVEL = 0.95
MIN_RUNS = 3  # fewer runs: no interval (2 runs give a t-interval of +-12.7 s / sqrt 2, which says little)
ADVISED_RUNS = 5  # from 5 runs the intervals of skewed metrics cover >= 90 % (tests/sim/test_coverage.py)
FEW_VALUES = 12  # up to this many distinct values, a summary lists counts per value

# Leaf-name words that make a metric a share in [0, 1] (when its values agree).
UNIT_WORDS = frozenset(
    {"rate", "share", "shares", "efficiency", "equality", "precision", "coverage", "gini", "convergence"}
)
# Metrics counted in steps, in [0, run.steps].
STEP_METRICS = frozenset({"survival_time", "steps_completed"})
UNBOUNDED = (-math.inf, math.inf)

Range = tuple[float, float]


@dataclass(frozen=True)
class Summary:
    """What a cell's runs say about one metric.

    ``ci_low``/``ci_high``: the 95 % interval of the mean (for a 0/1 metric: of the
    rate), never outside the metric's range; NaN when there is no interval (fewer than
    :data:`MIN_RUNS` runs). ``method``: ``wilson``, ``hall-t`` or ``none``. ``counts``:
    runs per value when there are at most :data:`FEW_VALUES` distinct values, else empty.
    """

    n: int
    mean: float
    std: float
    median: float
    q1: float
    q3: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    method: str
    counts: dict[float, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Contrast:
    """Mean of ``on`` minus mean of ``off``, with its 95 % interval.

    ``paired``: the difference is the mean of per-seed differences over the ``n`` seeds
    both sides share (``hall-t`` interval of those differences); otherwise the difference
    of the two means with Welch's interval (``welch-t``), and ``n`` the smaller side's size.
    """

    n: int
    paired: bool
    on_mean: float
    off_mean: float
    diff: float
    ci_low: float
    ci_high: float
    method: str


def is_binary(values: Iterable[float] | np.ndarray) -> bool:
    """True when every value is 0 or 1 (booleans included) and there is at least one."""
    x = _floats(values)
    return bool(x.size) and bool(np.isin(x, (0.0, 1.0)).all())


def metric_range(
    name: str,
    values: Iterable[float] | np.ndarray,
    *,
    declared: Mapping[str, Range] | None = None,
    steps: float | None = None,
    binary: bool | None = None,
) -> Range:
    """The values a metric can take, from what is declared, its name and its values.

    In order: the environment's declaration (``declared[name]``, or for a flattened
    ``a.b`` the entry for ``a``); a 0/1 outcome (``binary``; default: both 0 and 1 occur
    and nothing else): [0, 1]; a share by name (a word of
    :data:`UNIT_WORDS` in its last part, e.g. ``norm_violation_rate``): [0, 1];
    ``survival_time``/``steps_completed`` with the run length known: [0, steps]; else
    unbounded (-inf, inf): the values seen say nothing about the values possible, and an
    interval clipped to them covers less than it claims. The observed values always lie
    inside: a declaration the data contradict is widened rather than drawn over the data.
    """
    x = _floats(values)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (math.nan, math.nan)
    declared = declared or {}
    leaf = name.rsplit(".", 1)[-1]
    rng: Range | None = declared.get(name) or declared.get(name.split(".", 1)[0])
    if binary is None:
        binary = is_binary(x) and bool((x == 0).any() and (x == 1).any())
    if rng is None:
        if binary or (set(leaf.split("_")) & UNIT_WORDS and (not x.size or (lo >= 0 and hi <= 1))):
            rng = (0.0, 1.0)
        elif leaf in STEP_METRICS and steps is not None and math.isfinite(steps):
            rng = (0.0, float(steps))
    if rng is None:
        return UNBOUNDED
    low, high = float(rng[0]), float(rng[1])
    if x.size:
        low, high = min(low, lo), max(high, hi)
    return low, high


def wilson_interval(successes: int, n: int, level: float = LEVEL) -> Range:
    """Wilson score interval of a proportion (always inside [0, 1]); NaN for n = 0."""
    if n <= 0:
        return math.nan, math.nan
    from scipy import stats as scipy_stats  # a second to import: only sweep statistics need it, never a run

    ci = scipy_stats.binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(max(0.0, ci.low)), float(min(1.0, ci.high))


def mean_interval(samples: np.ndarray, *, bounds: Range | None = None, level: float = LEVEL) -> tuple[Any, Any]:
    """The interval of the mean of each row of ``samples`` (or of one 1-D sample).

    The t-interval with Hall's (1992, JRSS B 54:221) transformation that removes the
    skewness of the studentized mean: with g = m3 / m2^1.5 the sample skewness,
    a = g / (3 sqrt n), b = g / (6 sqrt n) and G(t) = ((1 + a t)^3 - 1) / (3 a) + b,
    the interval is [mean - G^-1(q) s / sqrt n, mean - G^-1(-q) s / sqrt n] with q the
    t quantile on n - 1 degrees of freedom; for symmetric data (g = 0) it is the plain
    t-interval. Right-skewed runs get an interval reaching further up. Then intersected
    with ``bounds`` (the metric's range). Every value equal: the value itself. Fewer than
    :data:`MIN_RUNS` values: NaN. Closed form, so the same data give the same interval.
    """
    from scipy import stats as scipy_stats  # see wilson_interval

    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[-1]
    if n < MIN_RUNS:
        nan = np.full(x.shape[:-1], math.nan)
        return (float(nan), float(nan)) if x.ndim == 1 else (nan, nan)
    mean = x.mean(axis=-1)
    centred = x - mean[..., None]
    m2, m3 = (centred**2).mean(axis=-1), (centred**3).mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # |skewness| <= (n - 2) / sqrt(n - 1), so a and b stay small; no spread: no skew
        skew = np.where(m2 > 0, m3 / m2**1.5, 0.0)
    a, b = skew / (3 * math.sqrt(n)), skew / (6 * math.sqrt(n))
    q = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1))
    se = np.sqrt(m2 * n / (n - 1)) / math.sqrt(n)

    def inverse(u: float) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            curved = (np.cbrt(1 + 3 * a * (u - b)) - 1) / a
        return np.where(np.abs(a) < 1e-12, u - b, curved)

    low, high = mean - inverse(q) * se, mean - inverse(-q) * se
    if bounds is not None:
        low, high = np.clip(low, bounds[0], bounds[1]), np.clip(high, bounds[0], bounds[1])
    return (float(low), float(high)) if x.ndim == 1 else (low, high)


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = LEVEL) -> Range:
    """Welch's t-interval of mean(a) - mean(b); NaN below :data:`MIN_RUNS` values a side."""
    from scipy import stats as scipy_stats  # see wilson_interval

    if min(a.size, b.size) < MIN_RUNS:
        return math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff = float(a.mean() - b.mean())
    if va + vb == 0:
        return diff, diff
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(va + vb)
    return diff - half, diff + half


def describe(
    values: Iterable[float] | np.ndarray,
    *,
    bounds: Range | None = None,
    binary: bool | None = None,
    level: float = LEVEL,
) -> Summary:
    """n, mean, std, median, quartiles, extremes, the interval of the mean and counts per value.

    ``binary`` (default: every value 0 or 1) picks the Wilson interval of the rate;
    otherwise :func:`mean_interval`. ``bounds`` (default: [0, 1] for a rate, else
    unbounded) is the metric's range, which the interval never leaves. Below
    :data:`MIN_RUNS` values there is no interval (NaN ends, method ``none``).
    """
    x = _floats(values)
    n = int(x.size)
    if n == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, "none")
    binary = is_binary(x) if binary is None else binary
    if bounds is None:
        bounds = (0.0, 1.0) if binary else UNBOUNDED
    if n < MIN_RUNS:
        low, high, method = math.nan, math.nan, "none"
    elif binary:
        low, high = wilson_interval(int(x.sum()), n, level)
        low, high, method = _clip(low, *bounds), _clip(high, *bounds), "wilson"
    else:
        low, high = mean_interval(x, bounds=bounds, level=level)
        method = "hall-t"
    q1, median, q3 = (float(q) for q in np.percentile(x, [25, 50, 75]))
    distinct, counts = np.unique(x, return_counts=True)
    return Summary(
        n=n,
        mean=float(x.mean()),
        std=float(x.std(ddof=1)) if n > 1 else math.nan,
        median=median,
        q1=q1,
        q3=q3,
        min=float(x.min()),
        max=float(x.max()),
        ci_low=low,
        ci_high=high,
        method=method,
        counts=(
            {float(v): int(c) for v, c in zip(distinct, counts, strict=True)} if len(distinct) <= FEW_VALUES else {}
        ),
    )


def contrast(
    on: Mapping[Hashable, float], off: Mapping[Hashable, float], *, bounds: Range | None = None, level: float = LEVEL
) -> Contrast:
    """``on`` minus ``off`` (values keyed by seed): paired by seed where at least
    :data:`MIN_RUNS` seeds are shared (the mean of per-seed differences over the shared
    seeds, :func:`mean_interval`), else the difference of the two means with Welch's
    interval. ``bounds`` (the metric's range) clips the interval to [low - high, high - low].
    No interval (NaN, ``none``) below :data:`MIN_RUNS` pairs or values a side."""
    shared = [k for k in on if k in off]
    width = (bounds[1] - bounds[0]) if bounds is not None else math.inf
    if len(shared) >= MIN_RUNS:
        a = _floats([on[k] for k in shared])
        b = _floats([off[k] for k in shared])
        low, high = mean_interval(a - b, bounds=(-width, width), level=level)
        n, paired, method = len(shared), True, "hall-t"
    else:
        a, b = _floats(list(on.values())), _floats(list(off.values()))
        low, high = welch_interval(a, b, level)
        low, high = _clip(low, -width, width), _clip(high, -width, width)
        n, paired, method = min(a.size, b.size), False, "welch-t"
    if math.isnan(low):
        method = "none"
    on_mean = float(a.mean()) if a.size else math.nan
    off_mean = float(b.mean()) if b.size else math.nan
    return Contrast(n, paired, on_mean, off_mean, on_mean - off_mean, low, high, method)


def format_counts(counts: Mapping[float, int]) -> str:
    """``{2.0: 1, 20.0: 3}`` -> ``'2:1 20:3'`` (value:runs, ascending)."""
    return " ".join(f"{_num(v)}:{c}" for v, c in sorted(counts.items()))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _clip(value: float, lo: float, hi: float) -> float:
    if math.isnan(value):
        return value
    return float(min(max(value, lo), hi))


def _floats(values: Iterable[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).ravel()
    return x[~np.isnan(x)]
