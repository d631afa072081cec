from __future__ import annotations

import json

import numpy as np
import pytest

from sim.config import load_scenario
from sim.core.schema import ConfigError
from sim.runner import run

SCENARIO = "scenarios/bandit_scripted.yaml"


def test_scripted_bandit_runs_and_is_reproducible(tmp_path):
    a = run(SCENARIO, out=tmp_path / "a", report=False)
    b = run(SCENARIO, out=tmp_path / "b", report=False)
    assert a.metrics["steps_completed"] == 20
    ev = a.events
    assert len(ev) == 8 * 20 and set(ev["phase"]) == {"pull"}
    cols = ["agent_id", "step", "choice", "value", "entropy"]
    assert ev[cols].equals(b.events[cols])
    m = a.metrics
    assert len(m["entropy_by_step"]) == 20 and m["final_entropy"] == m["entropy_by_step"][-1]
    assert 0 <= m["best_arm_rate"] <= 1 and m["regret"] >= 0
    # greedy players stop exploring; UCB keeps switching more
    sw = (
        ev.sort_values(["agent_id", "step"])
        .groupby(["group", "agent_id"])["choice"]
        .apply(lambda c: float((c.diff().fillna(0) != 0).mean()))
    )
    assert sw["ucb"].mean() > sw["greedy"].mean()


def test_rewards_follow_each_players_arm_means(tmp_path):
    res = run(
        SCENARIO,
        out=tmp_path,
        overrides={"environment.means": [2.0, 7.0], "environment.noise": 0.0, "run.steps": 6},
        report=False,
    )
    ev = res.events
    expected = np.where(ev["choice"] == 0, 2.0, 7.0)
    assert np.allclose(ev["value"], expected)
    info = ev["info"].map(json.loads)
    assert all(d["best_mean"] == 7.0 for d in info)
    greedy = ev[(ev["group"] == "greedy") & (ev["step"] > 2)]
    assert (greedy["choice"] == 1).all()  # both arms tried in the first two rounds, then the better one


def test_prompt_shows_history_as_text(tmp_path):
    from environments.bandit.prompts import pull_prompt, system_text

    system = system_text(["blue", "red"], 5)
    p = pull_prompt(system, arms=["blue", "red"], pulls=[(0, 3.14), (1, -1.0)], round_no=3, rounds=5, history=1)
    assert "Round 2: you pressed red and won -1.0 points." in p.user and "Round 1" not in p.user
    assert "round 3 of 5" in p.user and p.answer_prefix == "I press "
    # the totals cover every round, also those the history window hides
    assert "Totals: blue pressed 1 time, average 3.1 points; red pressed 1 time, average -1.0 points." in p.user
    first = pull_prompt(system, arms=["blue", "red"], pulls=[(1, 2.0), (1, 5.0)], round_no=3, rounds=5, history=None)
    assert "Totals: blue never pressed; red pressed 2 times, average 3.5 points." in first.user
    assert "blue and red" in system and "5 rounds" in system


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="means has 3 values for 2 arms"):
        load_scenario(SCENARIO, {"environment.means": [1, 2, 3]})
    # rejected when the scenario is loaded (normsim validate), before any run directory exists
    with pytest.raises(ConfigError, match="mechanics: 'punishment' is not supported by the bandit environment"):
        load_scenario(SCENARIO, {"mechanics.punishment.enabled": True})
