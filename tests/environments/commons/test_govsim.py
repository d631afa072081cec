"""The `govsim` preset against GovSim's own rules.

The expected numbers come from `govsim_reference` below: a plain re-statement of
GovSim's fishing scenario (whole tons, doubling capped at 100, collapse when fewer
than 5 tons are left after the harvest, threshold shown int((R // 2) // n)) and of its
metrics (Piatti et al. 2024, after Perolat et al. 2017), written independently of
environments.commons.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.interfaces import Decision, one_hot
from agents.llm.policy import LLMPolicy
from agents.llm.testing import tiny_backend
from environments.commons.config import CommonsConfig
from environments.commons.model import CommonsModel, allocate
from sim.config import load_scenario
from sim.runner import build_policies, run


def govsim_reference(wants, months: int = 12, n: int = 5):
    """GovSim's fishery for demands that never exceed the stock: wants(threshold) -> tons
    per fisher. Returns survival months, per-fisher gains, efficiency, equality."""
    stock, gains, played = 100, [0] * n, 0
    for _ in range(months):
        threshold = int((stock // 2) // n)
        demand = wants(threshold)
        assert sum(demand) <= stock, "the reference covers no over-demand"
        gains = [g + d for g, d in zip(gains, demand, strict=True)]
        stock -= sum(demand)
        played += 1
        if stock < 5:
            break
        stock = min(100, stock * 2)
    total = sum(gains)
    efficiency = 1 - max(0, months * 50 - total) / (months * 50)  # f(0) = 50 at 100 tons
    pairs = sum(abs(a - b) for a in gains for b in gains)
    equality = 1 - pairs / (2 * n * total)
    return played, gains, efficiency, equality


def govsim_run(tmp_path, groups, steps: int = 12, seed: int = 0):
    data = {
        "name": "gs",
        "environment": {"type": "commons", "preset": "govsim"},
        "population": groups,
        "run": {"steps": steps, "seed": seed},
        "output": {"report": False},
    }
    return run(data, out=tmp_path)


def check_against_reference(result, expected) -> None:
    played, gains, efficiency, equality = expected
    m = result.metrics
    assert m["survival_time"] == played
    assert m["survived"] == (played == 12)
    assert m["total_gain"]["sum"] == sum(gains)
    assert sorted(m["total_gain"]["per_agent"].values()) == sorted(float(g) for g in gains)
    assert m["efficiency"] == pytest.approx(efficiency, abs=1e-12)
    assert m["equality"] == pytest.approx(equality, abs=1e-12)


def test_four_at_the_threshold_and_one_at_twice_it(tmp_path):
    groups = [
        {"name": "fair", "size": 4, "policy": "share", "strategy": {"factor": 1}},
        {"name": "greedy", "size": 1, "policy": "share", "strategy": {"factor": 2}},
    ]
    expected = govsim_reference(lambda t: [t, t, t, t, 2 * t])
    # By hand: thresholds 10, 8, 6, 5, 5, 4, 4, 3, 2, 3, 2, 3 (sum 55), six shares a month.
    assert expected[0] == 12 and sum(expected[1]) == 6 * 55
    check_against_reference(govsim_run(tmp_path, groups), expected)


def test_everyone_at_the_threshold(tmp_path):
    expected = govsim_reference(lambda t: [t] * 5)
    assert expected[2] == 1.0 and expected[3] == 1.0
    check_against_reference(govsim_run(tmp_path, [{"name": "all", "size": 5, "policy": "sustainable"}]), expected)


@pytest.mark.parametrize("amounts", [[8, 8, 8, 12, 14], [2, 6, 10, 14, 18], [20, 20, 20, 20, 16]])
def test_fixed_amounts(tmp_path, amounts):
    groups = [{"name": f"g{i}", "size": 1, "policy": "fixed", "strategy": {"amount": a}} for i, a in enumerate(amounts)]
    expected = govsim_reference(lambda t: list(amounts))
    check_against_reference(govsim_run(tmp_path, groups), expected)


def test_over_demand_collapses_with_the_whole_stock_caught(tmp_path):
    # 5 x 12 = 60 a month: 100 -> 40 -> 80 -> 20 -> 40, then 60 > 40: the last 40 tons
    # are handed out ton by ton and the lake is empty in month 3.
    groups = [{"name": "g", "size": 5, "policy": "fixed", "strategy": {"amount": 12}}]
    m = govsim_run(tmp_path, groups).metrics
    assert m["survival_time"] == 3 and not m["survived"]
    assert m["total_gain"]["sum"] == 160
    assert m["efficiency"] == pytest.approx(1 - (600 - 160) / 600)
    assert all(v == int(v) and 24 <= v <= 36 for v in m["total_gain"]["per_agent"].values())


def test_stochastic_split_hands_out_whole_tons_to_fishers_who_want_them():
    demands = np.array([30.0, 5.0, 0.0, 40.0])
    seen = set()
    for seed in range(20):
        catches = allocate(demands, 33.0, "stochastic", np.random.default_rng(seed), whole=True)
        assert catches.sum() == 33 and np.all(catches <= demands) and np.all(catches == np.floor(catches))
        assert catches[2] == 0
        seen.add(tuple(catches))
    assert len(seen) > 5  # random, not a fixed order
    a = allocate(demands, 33.0, "stochastic", np.random.default_rng(7), whole=True)
    b = allocate(demands, 33.0, "stochastic", np.random.default_rng(7), whole=True)
    assert np.array_equal(a, b)  # seeded


def test_whole_ton_proportional_split_is_govsims():
    # floor(10 * d / 15) = 2, 4, 2 (8 tons); the 2 leftover tons go to two of the
    # three rounded-down fishers, never twice to one.
    demands = np.array([4.0, 7.0, 4.0])
    for seed in range(10):
        catches = allocate(demands, 10.0, "proportional", np.random.default_rng(seed), whole=True)
        assert catches.sum() == 10
        assert sorted(catches - np.array([2, 4, 2])) == [0, 1, 1]


def test_config_rejects_fractional_free_numbers():
    with pytest.raises(ValueError, match="whole_tons"):
        CommonsConfig(harvest="amount")
    with pytest.raises(ValueError, match="whole_tons"):
        CommonsConfig(allocation="stochastic")


def test_fixed_rule_needs_its_amount(tmp_path):
    with pytest.raises(Exception, match=r"population\.0\.strategy\.amount"):
        load_scenario(
            {
                "name": "x",
                "environment": {"type": "commons", "preset": "govsim"},
                "population": [{"name": "g", "size": 5, "policy": "fixed"}],
            }
        )


class PickTons:
    def __init__(self, tons: int) -> None:
        self.tons = tons
        self.seen = []

    def decide(self, requests, rng):
        self.seen.extend(requests)
        return [Decision(probs=one_hot(len(r.options), self.tons), choice=self.tons) for r in requests]


def test_free_number_options_cover_zero_to_the_stock_and_show_govsims_threshold():
    sc = load_scenario(
        {
            "name": "x",
            "environment": {"type": "commons", "preset": "govsim", "initial_stock": 37},
            "population": [{"name": "g", "size": 5, "policy": "sustainable"}],
        }
    )
    policy = PickTons(3)
    model = CommonsModel(sc, {"g": policy})
    model.step()
    req = policy.seen[0]
    assert req.options[0] == "0 tons" and req.options[1] == "1 ton" and req.options[-1] == "37 tons"
    assert req.values == tuple(float(k) for k in range(38))
    # no label is a prefix of another: scored continuations are disjoint
    assert not any(a != b and b.startswith(a) for a in req.options for b in req.options)
    assert req.observation["sustainable_share"] == (37 // 2) // 5 == 3
    assert "more than 3 tons" in req.prompt.user
    assert model.stock == min(100, 2 * (37 - 15))


def test_llm_fisher_gets_an_exact_distribution_over_every_number():
    sc = load_scenario(
        {
            "name": "x",
            "environment": {"type": "commons", "preset": "govsim", "initial_stock": 20},
            "population": [{"name": "g", "size": 3, "policy": {"type": "llm", "model": "tiny"}}],
            "run": {"steps": 1},
        }
    )
    model = CommonsModel(sc, {"g": LLMPolicy(tiny_backend(seed=3))})
    model.step()
    rows = [r for r in model.take_step_events() if r["phase"] == "harvest"]
    assert len(rows) == 3
    for row in rows:
        probs = np.asarray(row["probs"])
        assert len(probs) == 21 and probs.sum() == pytest.approx(1.0) and np.all(probs > 0)
        assert row["value"] <= 20


def test_no_persona_number_reaches_the_prompt_unless_set():
    base = {
        "name": "x",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [
            {"name": "a", "size": 1, "persona": "altruistic", "policy": "sustainable"},
            {"name": "s", "size": 1, "persona": "selfish", "policy": "sustainable"},
        ],
    }
    policy = PickTons(0)
    model = CommonsModel(load_scenario(base), {"a": policy, "s": policy})
    model.step()
    prompts = [r.prompt.user for r in policy.seen if r.phase == "harvest"]
    assert all("fair catch" not in p for p in prompts)
    base["population"][1]["strategy"] = {"norm": 7.5}
    policy = PickTons(0)
    model = CommonsModel(load_scenario(base), {"a": policy, "s": policy})
    model.step()
    prompts = [r.prompt.user for r in policy.seen if r.phase == "harvest"]
    assert "fair catch" not in prompts[0] and "about 7.5 tons" in prompts[1]


def test_build_policies_accepts_the_new_rules():
    sc = load_scenario(
        {
            "name": "x",
            "environment": {"type": "commons", "preset": "govsim"},
            "population": [
                {"name": "f", "size": 2, "policy": "fixed", "strategy": {"amount": 3}},
                {"name": "s", "size": 3, "policy": "share", "strategy": {"factor": 0.5}},
            ],
        }
    )
    assert set(build_policies(sc)) == {"f", "s"}


def test_rich_and_scarce_differ_in_one_parameter():
    rich, scarce = CommonsConfig(preset="rich"), CommonsConfig(preset="scarce")
    differ = {k for k in CommonsConfig.model_fields if k != "preset" and getattr(rich, k) != getattr(scarce, k)}
    assert differ == {"initial_stock"}
