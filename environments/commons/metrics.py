"""The commons' metrics, GovSim's definitions where they exist (Piatti et al. 2024,
after Perolat et al. 2017).

* ``survival_time``: rounds played until the stock fell below C after a harvest
  (the collapse round counts), or all T rounds; ``survived``: no collapse in T.
* ``total_gain``: each agent's summed catch, and their sum.
* ``efficiency``: 1 - max(0, T f(0) - sum of catches) / (T f(0)).
* ``equality``: 1 - Gini of the agents' total gains.
* ``over_usage``: catches above the fair share f(t)/n divided by catches above zero
  (GovSim's o = sum_i sum_t 1[r_i(t) > f(t)/|I|] / #{(i, t): r_i(t) > 0}); catches
  0, 0, 10, 10, 30 with fair share 10 give 1/3. Undefined (null) when no catch was
  above zero: GovSim's ratio is then 0/0, and 0 would claim restraint nobody showed
  by fishing.
* ``over_usage_all_decisions``: catches above the fair share f(t)/n divided by all
  harvest decisions, zero catches included (1/5 for the catches above); normsim's
  over-usage before it followed GovSim's denominator.
* ``norm_violation_rate``: share of catches above the norm in force (G(t) once voted,
  else the fair share).
* ``punishment_rate``: punishments per harvest decision (agent-round).
* ``punishment_precision``: share of punishments that hit a violator.
* ``norm_convergence``: 1 / (1 + coefficient of variation) of the individual norms at
  the end; 1 when every agent holds the same norm.
* ``collapsed``: the stock fell below the collapse threshold C after a harvest.
* ``final_stock``: the stock (tons) after the last round's regrowth.
* ``final_group_norm``: the catch limit G(t) in force at the end (n/a when no vote or
  meeting set one).
* ``mean_wealth_gini``: the Gini of the agents' wealth, averaged over the rounds.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from sim.core.metrics import common_metrics, share
from sim.core.stats import gini


def over_usage(catches: pd.Series, fair: pd.Series) -> float | None:
    """GovSim's over-usage: catches above the fair share over catches above zero.

    None when no catch is above zero (no harvest, or everyone caught nothing): the
    ratio is 0/0 there, and reporting 0 would count abstention as restraint.
    """
    fished = catches > 1e-9
    if not fished.any():
        return None
    return float((catches[fished] > fair[fished] + 1e-9).sum() / fished.sum())


def compute(events: pd.DataFrame, steps: pd.DataFrame, scenario: Any) -> dict[str, Any]:
    T = scenario.run.steps
    harvest = events[events["phase"] == "harvest"] if len(events) else events
    punish = events[events["phase"] == "punish"] if len(events) else events
    played = int(len(steps))
    collapsed = bool(steps["collapsed"].any()) if played else False
    gains = harvest.groupby("agent_id")["value"].sum() if len(harvest) else pd.Series(dtype=float)
    total_catch = float(gains.sum())
    f0 = float(steps["sustainable_catch"].iloc[0]) if played else 0.0
    efficiency = 1.0 - max(0.0, T * f0 - total_catch) / (T * f0) if f0 > 0 else None
    fair = harvest["info"].map(lambda s: json.loads(s)["fair_share"]) if len(harvest) else pd.Series(dtype=float)
    punished = punish[punish["choice"] == 1] if len(punish) else punish
    norms = steps[["norm_mean", "norm_dispersion"]].dropna() if played else pd.DataFrame()
    convergence = None
    if len(norms):
        mean, std = norms.iloc[-1]
        convergence = float(1.0 / (1.0 + std / mean)) if mean > 0 else None
    return {
        "survival_time": played,
        "survived": bool(played == T and not collapsed),
        "collapsed": collapsed,
        "total_gain": {"per_agent": {str(int(k)): float(v) for k, v in gains.items()}, "sum": total_catch},
        "efficiency": efficiency,
        "equality": 1.0 - gini(gains.to_numpy()) if len(gains) else None,
        "over_usage": over_usage(harvest["value"], fair),
        "over_usage_all_decisions": share(harvest["value"] > fair + 1e-9) if len(harvest) else None,
        "norm_violation_rate": share(harvest["violation"]) if len(harvest) else None,
        "punishment_rate": float(len(punished) / len(harvest)) if len(harvest) else None,
        "punishment_precision": share(punished["violation"]) if len(punished) else None,
        "norm_convergence": convergence,
        "final_stock": float(steps["stock"].iloc[-1]) if played else None,
        "final_group_norm": (
            None if not played or pd.isna(steps["group_norm"].iloc[-1]) else float(steps["group_norm"].iloc[-1])
        ),
        "mean_wealth_gini": float(np.nanmean(steps["wealth_gini"])) if played else None,
        **common_metrics(events, "harvest"),
    }
