"""Payoff-biased social learning: copies only from peers, at the Fermi rate."""

from __future__ import annotations

import math

import numpy as np

from environments.commons.model import CommonsModel
from environments.mechanics import fermi
from sim.config import load_scenario
from sim.runner import build_policies


def make_model(seed: int, strength: float = 1.0) -> CommonsModel:
    s = load_scenario(
        {
            "name": "learn",
            "environment": {"type": "commons"},
            "population": [
                {"name": "poor", "size": 100, "policy": "sustainable"},
                {"name": "rich", "size": 100, "policy": "greedy"},
            ],
            "mechanics": {"social_learning": {"enabled": True, "selection_strength": strength}},
            "run": {"steps": 1, "seed": seed},
        }
    )
    return CommonsModel(s, build_policies(s))


def test_fermi_function():
    assert fermi(0, 0, 1) == 0.5
    assert fermi(0, 1, 1) == 1 / (1 + math.exp(-1))
    assert fermi(1, 0, 2) == 1 / (1 + math.exp(0.5))
    assert fermi(0, 1e6, 1) == 1.0 and fermi(1e6, 0, 1) == 0.0


def test_copies_peers_at_the_fermi_rate():
    copies = {("poor", "rich"): [], ("rich", "poor"): [], ("poor", "poor"): [], ("rich", "rich"): []}
    for seed in range(5):
        model = make_model(seed)
        group_of = {a.unique_id: a.group for a in model.agents}
        rule_before = {a.unique_id: a.strategy.rule for a in model.agents}
        for a in model.agents:
            a.last_payoff = 1.0 if a.group == "rich" else 0.0
        model.social_learning_phase()
        events = [e for e in model.take_step_events() if e["phase"] == "learn"]
        assert len(events) == 200  # probability 1: everyone compares once
        for e in events:
            assert e["target"] != e["agent_id"]  # never itself
            key = (group_of[e["agent_id"]], group_of[e["target"]])
            copies[key].append(e["choice"])
            p_logged = e["probs"][1]
            expected = fermi(1.0 if key[0] == "rich" else 0.0, 1.0 if key[1] == "rich" else 0.0, 1.0)
            assert abs(p_logged - expected) < 1e-12
            agent = next(a for a in model.agents if a.unique_id == e["agent_id"])
            # a copier now follows its teacher's rule as it was before anyone copied
            if e["choice"] == 1:
                assert agent.strategy.rule == rule_before[e["target"]]
            else:
                assert agent.strategy.rule == rule_before[e["agent_id"]]
    for (learner, teacher), choices in copies.items():
        p = fermi(1.0 if learner == "rich" else 0.0, 1.0 if teacher == "rich" else 0.0, 1.0)
        n = len(choices)
        assert n > 100
        observed = float(np.mean(choices))
        sigma = math.sqrt(p * (1 - p) / n)
        assert abs(observed - p) < 4 * sigma, (learner, teacher, observed, p)


def test_selection_strength_sharpens_copying():
    weak = make_model(0, strength=100.0)
    strong = make_model(0, strength=0.01)
    rates = []
    for model in (weak, strong):
        for a in model.agents:
            a.last_payoff = 1.0 if a.group == "rich" else 0.0
        model.social_learning_phase()
        ev = [e for e in model.take_step_events() if e["phase"] == "learn"]
        up = [e["choice"] for e in ev if e["probs"][1] > 0.5]
        rates.append(np.mean(up))
    assert rates[1] > 0.99 and 0.4 < rates[0] < 0.65
