"""Intervals over runs (sim.core.stats): Wilson for rates, seeded bootstrap for the rest,
never outside a metric's range; paired contrasts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.core.stats import (
    bootstrap_interval,
    contrast,
    describe,
    format_counts,
    is_binary,
    metric_range,
    wilson_interval,
)

Z = 1.959963984540054  # the normal 0.975 quantile


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table II, Wilson score
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_matches_the_textbook(k, n, low, high):
    assert wilson_interval(k, n) == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(
    "values",
    [[0] * 5, [1] * 5, [True], [False], [0, 1], [True, False, False, False, False], [1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1]],
)
def test_rates_get_wilson_intervals_inside_0_1(values):
    d = describe(values)
    k, n = sum(values), len(values)
    assert d.method == "wilson" and d.n == n and d.mean == pytest.approx(k / n)
    assert 0.0 <= d.ci_low <= d.mean <= d.ci_high <= 1.0
    # closed form of the score interval
    p, z2 = k / n, Z * Z
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    assert (d.ci_low, d.ci_high) == pytest.approx((max(0.0, centre - half), min(1.0, centre + half)), abs=1e-9)


def test_all_zero_rate_still_has_an_upper_end():
    d = describe([0, 0, 0, 0, 0])
    assert d.ci_low == 0.0 and d.ci_high == pytest.approx(Z * Z / (5 + Z * Z))  # 0.434, not [0, 0]


@pytest.mark.parametrize(
    ("values", "bounds"),
    [
        ([3, 4, 20, 4, 20, 2, 20], (0, 20)),  # bimodal survival months
        ([2.0, 20.0], (0, 20)),
        ([20, 20, 20], (0, 20)),
        (list(np.linspace(0.9, 1.0, 12)), (0, 1)),
        ([0.0, 0.0, 0.0, 0.98, 1.0, 1.0, 0.99, 0.0, 0.01, 1.0, 1.0, 0.0], (0, 1)),
    ],
)
def test_bootstrap_intervals_stay_inside_the_range(values, bounds):
    d = describe(values, bounds=bounds)
    assert d.method.startswith("bootstrap")
    assert bounds[0] <= d.ci_low <= d.ci_high <= bounds[1]
    assert min(values) <= d.ci_low <= d.mean <= d.ci_high <= max(values)


def test_the_summary_shows_the_shape_not_only_the_mean():
    d = describe([3, 4, 20, 4, 20, 2, 20], bounds=(0, 20))
    assert (d.median, d.q1, d.q3, d.min, d.max) == (4.0, 3.5, 20.0, 2.0, 20.0)
    assert d.counts == {2.0: 1, 3.0: 1, 4.0: 2, 20.0: 3}
    assert format_counts(d.counts) == "2:1 3:1 4:2 20:3"
    assert describe(np.arange(13.0)).counts == {}  # many distinct values: no counts


def test_one_run_of_a_continuous_metric_has_no_interval():
    d = describe([5.0])
    assert d.method == "none" and math.isnan(d.ci_low) and math.isnan(d.ci_high) and math.isnan(d.std)
    assert describe([]).n == 0


def test_bootstrap_is_seeded_and_uses_bca_from_ten_values():
    rng = np.random.default_rng(3)
    small, large = rng.exponential(size=6), rng.exponential(size=40)
    assert bootstrap_interval([large], np.mean) == bootstrap_interval([large], np.mean)
    assert bootstrap_interval([small], np.mean)[2] == "bootstrap-percentile"
    assert bootstrap_interval([large], np.mean)[2] == "bootstrap-bca"


def test_metric_ranges_from_declaration_name_and_values():
    assert metric_range("survived", [0, 1, 1]) == (0.0, 1.0)
    assert metric_range("survived", [0, 0], binary=True) == (0.0, 1.0)
    assert metric_range("parse_failures", [0, 0]) == (0.0, 0.0)  # all zero: a count, not a rate
    assert metric_range("norm_violation_rate", [0.1, 0.3]) == (0.0, 1.0)
    assert metric_range("survival_time", [3, 20], steps=20) == (0.0, 20.0)
    assert metric_range("survival_time", [3, 12]) == (3.0, 12.0)  # run length unknown: observed
    assert metric_range("over_usage", [0.1, 0.3], declared={"over_usage": (0, 1)}) == (0.0, 1.0)
    assert metric_range("total_gain.sum", [5, 9], declared={"total_gain": (0, math.inf)}) == (0.0, math.inf)
    assert metric_range("final_stock", [1.5, 50]) == (1.5, 50.0)
    # a name that says "rate" but values that do not fit [0, 1] is not a share
    assert metric_range("arrival_rate", [2, 7]) == (2.0, 7.0)
    # a declaration the data contradict is widened, never drawn over the data
    assert metric_range("x", [-1, 0.5], declared={"x": (0, 1)}) == (-1.0, 1.0)
    assert is_binary([True, False]) and not is_binary([0, 0.5]) and not is_binary([])


def test_paired_contrast_matches_a_hand_computation():
    on = {0: 20, 1: 3, 2: 20, 3: 2, 4: 20}
    off = {0: 2, 1: 2, 2: 3, 3: 2, 4: 2}
    c = contrast(on, off, bounds=(0, 20))
    assert c.paired and c.n == 5 and c.diff == pytest.approx(10.8)  # (18 + 1 + 17 + 0 + 18) / 5
    assert (c.on_mean, c.off_mean) == (13.0, 2.2)
    assert 0 <= c.ci_low < 10.8 < c.ci_high <= 18  # inside the per-seed differences
    # two pairs with differences 0 and 2: resampled means are 0, 1, 2 with chances 1/4, 1/2, 1/4,
    # so the 2.5 % and 97.5 % percentiles are 0 and 2
    two = contrast({7: 5.0, 8: 9.0}, {7: 5.0, 8: 7.0})
    assert (two.n, two.diff, two.ci_low, two.ci_high) == (2, 1.0, 0.0, 2.0)


def test_pairing_by_seed_removes_the_seed_effect():
    seeds = np.random.default_rng(0).normal(10, 5, size=8)
    on = {s: float(v + 1) for s, v in enumerate(seeds)}
    off = {s: float(v) for s, v in enumerate(seeds)}
    paired = contrast(on, off)
    assert paired.paired and (paired.ci_low, paired.ci_high) == pytest.approx((1.0, 1.0))
    unpaired = contrast(on, {s + 100: v for s, v in off.items()})  # no seed in common
    assert not unpaired.paired and unpaired.diff == pytest.approx(1.0)
    assert unpaired.ci_low < 0 < 2 < unpaired.ci_high  # the seed spread swamps it


def test_contrast_of_a_rate_stays_within_minus_one_and_one():
    c = contrast({0: 1, 1: 1, 2: 1}, {0: 0, 1: 0, 2: 0}, bounds=(0, 1))
    assert (c.diff, c.ci_low, c.ci_high) == (1.0, 1.0, 1.0)
    c = contrast({0: 1, 1: 0, 2: 1, 3: 1}, {0: 0, 1: 1, 2: 0, 3: 0}, bounds=(0, 1))
    assert -1.0 <= c.ci_low <= c.diff <= c.ci_high <= 1.0
    assert math.isnan(contrast({0: 1.0}, {0: 0.0}).ci_low)  # one pair: no interval
