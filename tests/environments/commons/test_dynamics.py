"""The commons' arithmetic: regrowth, collapse, allocation, punishment, norms."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from agents.interfaces import Decision, one_hot
from environments.commons.config import CommonsConfig
from environments.commons.model import CommonsModel, allocate, regrow, sustainable_catch
from sim.config import load_scenario
from sim.runner import build_policies

BASE = {
    "name": "t",
    "environment": {"type": "commons", "preset": "rich"},
    "population": [{"name": "a", "size": 4, "policy": "sustainable"}],
    "run": {"steps": 5, "seed": 0},
}


def scenario(**changes):
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        node = data
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return load_scenario(data)


class FixedPolicy:
    """Picks a fixed option index per phase (and records what it was asked)."""

    def __init__(self, **choices: int) -> None:
        self.choices = choices
        self.seen: list = []

    def decide(self, requests, rng):
        self.seen.extend(requests)
        out = []
        for r in requests:
            k = self.choices.get(r.phase, 0)
            out.append(Decision(probs=one_hot(len(r.options), k), choice=k))
        return out


def test_doubling_regrowth_is_capped():
    cfg = CommonsConfig(preset="rich")
    assert regrow(30, cfg) == 60
    assert regrow(70, cfg) == 100
    assert sustainable_catch(100, cfg) == 50
    assert sustainable_catch(40, cfg) == 20


def test_logistic_regrowth_and_threshold():
    cfg = CommonsConfig(regrowth="logistic", growth_rate=0.5, capacity=100)
    assert regrow(50, cfg) == pytest.approx(62.5)
    assert regrow(100, cfg) == pytest.approx(100)
    f = sustainable_catch(50, cfg)
    # after catching f, regrowth restores exactly the current stock
    assert regrow(50 - f, cfg) == pytest.approx(50, abs=1e-6)
    assert regrow(50 - f - 0.5, cfg) < 50


def test_allocation_conserves_stock_under_over_demand():
    demands = np.array([30.0, 50.0, 40.0])
    prop = allocate(demands, 60.0, "proportional", np.random.default_rng(0))
    assert prop.sum() == pytest.approx(60.0)
    assert prop == pytest.approx(demands * 0.5)
    rand = allocate(demands, 60.0, "random", np.random.default_rng(0))
    assert rand.sum() == pytest.approx(60.0)
    assert np.all(rand <= demands) and np.all(rand >= 0)
    again = allocate(demands, 60.0, "random", np.random.default_rng(0))
    assert np.array_equal(rand, again)  # seeded
    orders = {tuple(allocate(demands, 60.0, "random", np.random.default_rng(s))) for s in range(20)}
    assert len(orders) > 1  # the order really is random
    assert np.array_equal(allocate(demands, 500.0, "random", np.random.default_rng(0)), demands)


def test_collapse_ends_the_run():
    # Everyone takes the largest option (4x the fair share each): 4 agents x 50 % > stock.
    s = scenario(run={"steps": 10, "seed": 0})
    model = CommonsModel(s, {"a": FixedPolicy(harvest=6)})
    model.step()
    assert model.collapsed and not model.running
    assert model.stock < s.environment.collapse_threshold


def test_sustainable_fishers_keep_the_stock():
    model = CommonsModel(scenario(), {"a": FixedPolicy(harvest=2)})  # option 2 = the fair share
    for _ in range(5):
        model.step()
    assert model.running
    assert model.stock == pytest.approx(100.0)
    # each took f/n = 50/4 every round
    assert all(a.total_catch == pytest.approx(5 * 12.5) for a in model.agents)


def test_consumption_and_insolvency():
    s = scenario(environment={"type": "commons", "preset": "rich", "consumption": 20, "insolvency": "remove"})
    model = CommonsModel(s, {"a": FixedPolicy(harvest=1)})  # half the fair share: 6.25 < 20
    model.step()
    assert len(model.agents) == 0 and not model.running
    s = scenario(environment={"type": "commons", "preset": "rich", "consumption": 20, "insolvency": "debt"})
    model = CommonsModel(s, {"a": FixedPolicy(harvest=1)})
    model.step()
    assert [a.wealth for a in model.society] == pytest.approx([6.25 - 20] * 4)


def test_punishment_accounting_adds_up():
    s = scenario(
        population=[
            {"name": "p", "size": 6, "policy": "punisher"},
            {"name": "g", "size": 1, "policy": "greedy"},
        ],
        mechanics={
            "punishment": {
                "enabled": True,
                "monitor_prob": 1.0,
                "cost": 1.5,
                "fine": 4,
                "graduated": True,
                "fine_step": 3,
                "max_fine": 8,
            }
        },
        run={"steps": 6, "seed": 3},
    )

    model = CommonsModel(s, build_policies(s))
    events = []
    for _ in range(6):
        if not model.running:
            break
        model.step()
        events.extend(model.take_step_events())
    punish = [e for e in events if e["phase"] == "punish" and e["choice"] == 1]
    assert punish, "somebody must have been fined"
    fines = sum(a.fines_paid for a in model.agents)
    costs = sum(a.punish_costs for a in model.agents)
    assert fines == pytest.approx(sum(e["value"] for e in punish))
    assert costs == pytest.approx(1.5 * len(punish))
    assert sum(a.sanctions for a in model.agents) == len(punish)
    # punishers punish only violators; graduated fines never exceed the cap and grow per offender
    assert all(e["violation"] for e in punish)
    assert max(e["value"] for e in punish) <= 8
    by_target: dict[int, list[float]] = {}
    for e in punish:
        by_target.setdefault(e["target"], []).append(e["value"])
    for values in by_target.values():
        assert values == sorted(values) and values[0] == 4
    # wealth identity: catches - consumption - fines - costs
    for a in model.agents:
        expected = a.total_catch - s.environment.consumption * model.steps - a.fines_paid - a.punish_costs
        assert a.wealth == pytest.approx(expected)


def test_norm_vote_median_and_majority():
    for rule, expected in (("median", 7.5), ("majority", 2.5)):
        s = scenario(
            population=[
                {"name": "low", "size": 2, "policy": "sustainable"},
                {"name": "mid", "size": 1, "policy": "sustainable"},
                {"name": "high", "size": 2, "policy": "sustainable"},
            ],
            mechanics={"group_norm": {"enabled": True, "every": 2, "rule": rule}},
            environment={"type": "commons", "preset": "rich", "norm_options": [2.5, 7.5, 20.0]},
        )
        policies = {"low": FixedPolicy(vote=0), "mid": FixedPolicy(vote=1), "high": FixedPolicy(vote=2)}
        model = CommonsModel(s, policies)
        model.step()
        assert model.group_norm is None  # no vote in round 1
        model.step()
        assert model.group_norm == expected
        assert sorted(a.strategy.norm for a in model.agents) == [2.5, 2.5, 7.5, 20.0, 20.0]


def test_option_labels_share_one_format_and_values_stay_exact():
    from agents.menus import amount_labels

    # 6 fishers at 100 tons: the fair share is 8.33 t; labels say whole tons, values stay exact
    s = scenario(population=[{"name": "a", "size": 6, "policy": "sustainable"}])
    policy = FixedPolicy(harvest=2)
    model = CommonsModel(s, {"a": policy})
    amounts, values = model.harvest_options()
    assert amounts.labels() == ("0 tons", "4 tons", "8 tons", "13 tons", "17 tons", "25 tons", "33 tons")
    model.step()
    assert [a.catch for a in model.society] == pytest.approx([8.33] * 6)  # the effort (0.0833 x 100 t), not 8 t
    # one format per menu: as many decimals as keep the labels apart, for every label
    assert amount_labels([0, 0.5, 1, 1.5, 2, 3, 4], "ton") == (
        "0.0 tons",
        "0.5 tons",
        "1.0 tons",
        "1.5 tons",
        "2.0 tons",
        "3.0 tons",
        "4.0 tons",
    )
    assert amount_labels([0, 1, 2], "ton") == ("0 tons", "1 ton", "2 tons")
    assert amount_labels([0, 0.01, 0.02], "ton") == ("0.00 tons", "0.01 tons", "0.02 tons")
    assert amount_labels([0, 0.6, 1.2], "ton", decimals=0) == ("0 tons", "1 ton", "1 ton")  # asked for: may merge
    assert amount_labels([-0.001, 2], "ton", decimals=1) == ("0.0 tons", "2.0 tons")  # never "-0.0"
    assert len(set(amount_labels(np.linspace(0, 1, 50), "ton"))) == 50
