"""The commons' GovSim metrics on hand-computed logs (golden values, worked out below)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from environments.commons.metrics import compute
from sim.config import load_scenario
from sim.core.events import EVENT_SCHEMA
from sim.core.stats import gini


def _row(step, phase, agent, value=None, choice=0, violation=None, fair=None, options=("a", "b")):
    row = dict.fromkeys(EVENT_SCHEMA.names)
    probs = [0.5, 0.5]
    row.update(
        step=step,
        phase=phase,
        agent_id=agent,
        value=value,
        choice=choice,
        violation=violation,
        options=list(options),
        probs=probs,
        chosen=options[choice],
        entropy=float(np.log(2)),
        parse_failed=False,
        info=json.dumps({"fair_share": fair}) if fair is not None else None,
    )
    return row


def _scenario(steps):
    return load_scenario(
        {
            "name": "golden",
            "environment": {"type": "commons", "preset": "rich"},
            "population": [{"name": "g", "size": 2, "policy": "sustainable"}],
            "run": {"steps": steps},
        }
    )


# Two fishers, three months, GovSim's lake: f(0) = 50 tons (half of 100), fair share 25 each.
CATCHES = {0: [10, 10, 10], 1: [30, 20, 40]}
VIOLATED = {0: [False, False, False], 1: [True, False, True]}


@pytest.fixture
def log():
    rows = []
    for t in range(3):
        for agent in (0, 1):
            rows.append(_row(t + 1, "harvest", agent, CATCHES[agent][t], violation=VIOLATED[agent][t], fair=25.0))
    # three punish decisions: one fines a violator, one fines a keeper of the norm, one declines
    rows += [
        _row(1, "punish", 0, 4.0, choice=1, violation=True),
        _row(2, "punish", 0, 4.0, choice=1, violation=False),
        _row(3, "punish", 1, 0.0, choice=0, violation=False),
    ]
    events = pd.DataFrame(rows, columns=EVENT_SCHEMA.names)
    steps = pd.DataFrame(
        {
            "step": [1, 2, 3],
            "stock": [80.0, 100.0, 100.0],
            "sustainable_catch": [50.0, 40.0, 50.0],
            "collapsed": [False, False, False],
            "group_norm": [None, None, 12.0],
            "norm_mean": [10.0, 10.0, 10.0],
            "norm_dispersion": [0.0, 1.0, 2.5],
            "wealth_gini": [0.1, 0.2, 0.3],
        }
    )
    return events, steps


def test_govsim_metrics_match_hand_computed_values(log):
    events, steps = log
    m = compute(events, steps, _scenario(3))
    assert m["survival_time"] == 3 and m["survived"] is True
    assert m["total_gain"] == {"per_agent": {"0": 30.0, "1": 90.0}, "sum": 120.0}
    # efficiency = 1 - max(0, T f(0) - sum of catches) / (T f(0)) = 1 - (150 - 120) / 150
    assert m["efficiency"] == pytest.approx(0.8)
    # equality = 1 - Gini of the gains (30, 90): sum |x_i - x_j| = 120, / (2 * 2 * 120) = 0.25
    assert m["equality"] == pytest.approx(0.75)
    # over-usage: catches above the fair share f(t)/n = 25: fisher 1's 30 and 40; all six catches are
    # above zero, so GovSim's denominator and the all-decisions one agree: 2 of 6
    assert m["over_usage"] == pytest.approx(2 / 6) and m["over_usage_all_decisions"] == pytest.approx(2 / 6)
    assert m["norm_violation_rate"] == pytest.approx(2 / 6)
    # two fines over six harvest decisions; one of the two hit a violator
    assert m["punishment_rate"] == pytest.approx(2 / 6)
    assert m["punishment_precision"] == pytest.approx(0.5)
    # norm convergence: 1 / (1 + sd / mean) of the final individual norms = 1 / (1 + 2.5 / 10)
    assert m["norm_convergence"] == pytest.approx(0.8)
    assert m["final_group_norm"] == 12.0 and m["mean_wealth_gini"] == pytest.approx(0.2)


def test_a_collapse_ends_survival_and_efficiency_counts_the_whole_horizon(log):
    events, steps = log
    steps = steps.iloc[:2].assign(collapsed=[False, True])
    events = events[events["step"] <= 2]
    m = compute(events, steps, _scenario(12))
    assert m["survival_time"] == 2 and m["survived"] is False and m["collapsed"] is True
    # T = 12 months of f(0) = 50 were possible; 70 tons were caught
    assert m["efficiency"] == pytest.approx(1 - (600 - 70) / 600)


def _harvests(catches, fair):
    rows = [_row(1, "harvest", agent, c, violation=c > fair, fair=fair) for agent, c in enumerate(catches)]
    events = pd.DataFrame(rows, columns=EVENT_SCHEMA.names)
    steps = pd.DataFrame(
        {
            "step": [1],
            "stock": [50.0],
            "sustainable_catch": [50.0],
            "collapsed": [False],
            "group_norm": [None],
            "norm_mean": [np.nan],
            "norm_dispersion": [np.nan],
            "wealth_gini": [0.0],
        }
    )
    return compute(events, steps, _scenario(1))


@pytest.mark.parametrize(
    ("catches", "fair", "govsim", "all_decisions"),
    [
        # the case: 30 is the one catch above 10 t; three catches above zero, five decisions
        ([0, 0, 10, 10, 30], 10.0, 1 / 3, 1 / 5),
        # a catch equal to the fair share is not above it; zeros only enlarge the old denominator
        ([0, 10, 11, 0], 10.0, 1 / 2, 1 / 4),
        ([0, 0, 0, 25], 10.0, 1.0, 1 / 4),
        ([5, 5, 5], 10.0, 0.0, 0.0),  # everyone fished, nobody above: 0 is meant
        # a fair share of 0 t (a spent lake): any catch above zero is above it
        ([0, 2, 0], 0.0, 1.0, 1 / 3),
    ],
)
def test_over_usage_divides_by_catches_above_zero(catches, fair, govsim, all_decisions):
    m = _harvests(catches, fair)
    assert m["over_usage"] == pytest.approx(govsim)
    assert m["over_usage_all_decisions"] == pytest.approx(all_decisions)


def test_over_usage_is_undefined_when_nobody_fished():
    # 0 of 0 catches above zero: GovSim's ratio has no value, and 0 would read as restraint
    m = _harvests([0, 0, 0], 10.0)
    assert m["over_usage"] is None and m["over_usage_all_decisions"] == 0.0
    m = _harvests([], 10.0)  # no harvest decision at all
    assert m["over_usage"] is None and m["over_usage_all_decisions"] is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 1, 1, 1], 0.0), ([0, 0, 0, 10], 0.75), ([1, 2, 3, 4], 0.25), ([5], 0.0), ([], 0.0), ([-2, 0, 2], 4 / 9)],
)
def test_gini_matches_the_pairwise_definition(values, expected):
    assert gini(values) == pytest.approx(expected)
    x = np.asarray(values, dtype=float)
    if x.size and x.sum() - x.size * min(0.0, x.min()) > 0:
        x = x - min(0.0, x.min())
        assert gini(values) == pytest.approx(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size * x.sum()))
