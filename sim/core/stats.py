"""Shared statistics: inequality and intervals that never leave a metric's range."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

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
# survival time in [0, T]) and bimodal (a commons lasts 3 months or all 20), so a mean
# +- t interval can leave the possible range and hides the shape. Here: Wilson intervals
# for rates of 0/1 outcomes, bootstrap intervals (resampling seeds) for the rest, both
# clipped to the metric's range, and the median, quartiles and counts per value beside.

LEVEL = 0.95
RESAMPLES = 4999  # fixed: the same data give the same interval
SEED = 0
BCA_MIN_N = 10  # BCa's acceleration is a jackknife estimate: below this, the percentile method
FEW_VALUES = 12  # up to this many distinct values, a summary lists counts per value

# Leaf-name words that make a metric a share in [0, 1] (when its values agree).
UNIT_WORDS = frozenset(
    {"rate", "share", "shares", "efficiency", "equality", "precision", "coverage", "gini", "convergence"}
)
# Metrics counted in steps, in [0, run.steps].
STEP_METRICS = frozenset({"survival_time", "steps_completed"})

Range = tuple[float, float]


@dataclass(frozen=True)
class Summary:
    """What a cell's runs say about one metric.

    ``ci_low``/``ci_high``: the 95 % interval of the mean (for a 0/1 metric: of the
    rate), never outside the metric's range; NaN when there is no interval (no runs,
    or one run of a non-binary metric). ``method``: ``wilson``, ``bootstrap-bca``,
    ``bootstrap-percentile`` or ``none``. ``counts``: runs per value when there are at
    most :data:`FEW_VALUES` distinct values, else empty.
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
    """Mean of ``on`` minus mean of ``off``, with the 95 % bootstrap interval.

    ``paired``: the difference is the mean of per-seed differences over the ``n`` seeds
    both sides share; otherwise the two sides are resampled independently and ``n`` is
    the smaller side's size.
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
    the observed [min, max]. The observed values always lie inside: a declaration the
    data contradict is widened rather than drawn over the data.
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
        return lo, hi
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


def bootstrap_interval(
    samples: Sequence[np.ndarray],
    statistic: Callable[..., np.ndarray],
    *,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    paired: bool = True,
) -> tuple[float, float, str]:
    """(low, high, method) of a bootstrap interval of ``statistic(*samples, axis=-1)``.

    Seeded and with a fixed number of resamples, so the same data give the same
    interval. BCa from :data:`BCA_MIN_N` values per sample on, the percentile method
    below that or where BCa is undefined. Samples that cannot vary (every value equal)
    give the statistic itself as both ends; fewer than 2 values: NaN, ``none``.
    """
    samples = [_floats(s) for s in samples]
    if min(s.size for s in samples) < 2:
        return math.nan, math.nan, "none"
    if all(np.ptp(s) == 0 for s in samples):
        value = float(statistic(*samples, axis=-1))
        return value, value, "bootstrap-percentile"
    from scipy import stats as scipy_stats  # see wilson_interval

    methods = ["BCa", "percentile"] if min(s.size for s in samples) >= BCA_MIN_N else ["percentile"]
    for method in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa on degenerate jackknives warns, then returns NaN
            res = scipy_stats.bootstrap(
                tuple(samples),
                statistic,
                n_resamples=resamples,
                confidence_level=level,
                method=method,
                paired=paired,
                vectorized=True,
                rng=np.random.default_rng(seed),
            )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return low, high, f"bootstrap-{method.lower()}"
    return math.nan, math.nan, "none"


def describe(
    values: Iterable[float] | np.ndarray,
    *,
    bounds: Range | None = None,
    binary: bool | None = None,
    level: float = LEVEL,
) -> Summary:
    """n, mean, std, median, quartiles, extremes, the interval of the mean and counts per value.

    ``binary`` (default: every value 0 or 1) picks the Wilson interval of the rate;
    otherwise the bootstrap interval of the mean. ``bounds`` (default: [0, 1] for a
    rate, the observed range otherwise) clips the interval.
    """
    x = _floats(values)
    n = int(x.size)
    if n == 0:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan, nan, nan, nan, "none")
    binary = is_binary(x) if binary is None else binary
    if binary:
        low, high = wilson_interval(int(x.sum()), n, level)
        method = "wilson"
    else:
        low, high, method = bootstrap_interval([x], _mean, level=level)
    if bounds is None:  # a rate can be anything in [0, 1]; a mean lies within the values
        bounds = (0.0, 1.0) if binary else (float(x.min()), float(x.max()))
    lo, hi = bounds
    low, high = _clip(low, lo, hi), _clip(high, lo, hi)
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
    """``on`` minus ``off`` (values keyed by seed): paired by seed where at least two seeds
    are shared (the difference of means over the shared seeds), else the difference of
    the two means with each side resampled on its own. ``bounds`` (the metric's range)
    clips the interval to [low - high, high - low]."""
    shared = [k for k in on if k in off]
    if len(shared) >= 2:
        a = _floats([on[k] for k in shared])
        b = _floats([off[k] for k in shared])
        low, high, method = bootstrap_interval([a - b], _mean, level=level)
        n, paired = len(shared), True
    else:
        a, b = _floats(list(on.values())), _floats(list(off.values()))
        low, high, method = bootstrap_interval([a, b], _mean_diff, level=level, paired=False)
        n, paired = min(a.size, b.size), False
    on_mean = float(a.mean()) if a.size else math.nan
    off_mean = float(b.mean()) if b.size else math.nan
    if bounds is not None:
        width = bounds[1] - bounds[0]
        low, high = _clip(low, -width, width), _clip(high, -width, width)
    return Contrast(n, paired, on_mean, off_mean, on_mean - off_mean, low, high, method)


def format_counts(counts: Mapping[float, int]) -> str:
    """``{2.0: 1, 20.0: 3}`` -> ``'2:1 20:3'`` (value:runs, ascending)."""
    return " ".join(f"{_num(v)}:{c}" for v, c in sorted(counts.items()))


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _clip(value: float, lo: float, hi: float) -> float:
    if math.isnan(value):
        return value
    return float(min(max(value, lo), hi))


def _floats(values: Iterable[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).ravel()
    return x[~np.isnan(x)]
