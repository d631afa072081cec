"""The bandit's metrics, from the event log (phase ``pull``; value = reward; info holds
the chosen arm's true mean and the best arm's):

* ``mean_reward``: mean reward per pull; ``total_reward``: their sum.
* ``regret``: mean over agents of sum_t (best mean - chosen arm's mean).
* ``best_arm_rate``: share of pulls of the agent's best arm.
* ``switch_rate``: share of an agent's consecutive pulls that change arm (exploration).
* ``explored_all``: share of agents that tried every arm.
* ``entropy_by_step``: mean action entropy per round (EAST's collapse curve);
  ``final_entropy``: its last value.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from sim.core.metrics import common_metrics


def compute(events: pd.DataFrame, steps: pd.DataFrame, scenario: Any) -> dict[str, Any]:
    pulls = events[events["phase"] == "pull"] if len(events) else events
    if not len(pulls):
        return {"decisions": 0}
    info = pulls["info"].map(json.loads)
    arm_mean = info.map(lambda d: d["arm_mean"])
    best_mean = info.map(lambda d: d["best_mean"])
    regret = (best_mean - arm_mean).groupby(pulls["agent_id"]).sum()
    ordered = pulls.sort_values(["agent_id", "step"])
    same_agent = ordered["agent_id"].eq(ordered["agent_id"].shift())
    switched = ordered["choice"].ne(ordered["choice"].shift()) & same_agent
    n_arms = len(scenario.environment.arms)
    by_step = pulls.groupby("step")["entropy"].mean()
    return {
        "mean_reward": float(pulls["value"].mean()),
        "total_reward": float(pulls["value"].sum()),
        "regret": float(regret.mean()),
        "best_arm_rate": float(np.isclose(arm_mean, best_mean).mean()),
        "switch_rate": float(switched.sum() / same_agent.sum()) if same_agent.any() else None,
        "explored_all": float((pulls.groupby("agent_id")["choice"].nunique() == n_arms).mean()),
        "entropy_by_step": [float(v) for v in by_step.to_numpy()],
        "final_entropy": float(by_step.iloc[-1]),
        **common_metrics(events, "pull"),
    }
