"""The public-goods game's metrics, from the event log (phases ``contribute`` and ``punish``).

* ``mean_contribution_by_round`` (tokens) and ``contribution_share_by_round`` (of the
  endowment); ``mean_contribution``, ``contribution_share``, ``first_round_share``,
  ``last_round_share``; ``expected_share_by_round`` and ``expected_contribution_share``: the
  same from each decision's whole distribution (mean of Σ_k p_k k / endowment), which for
  an LLM is exact and free of the sampling noise of a few members' draws.
* ``efficiency``: the members' summed earnings (after punishment) over what full
  cooperation pays (mpcr × group_size × endowment per member and round); nobody
  contributing gives endowment / (mpcr × group_size × endowment) = 0.625 at the defaults.
* ``punishment_points_per_member``: points assigned per member and round;
  ``punishment_rate``: share of (giver, target) pairs with at least one point;
  ``punishment_on_below``: share of all points that hit a member below the others' mean.
* ``punishment_received_by_gap`` / ``punishment_given_by_gap``: mean points a member
  received (summed over givers) / gave (summed over targets) in a round, binned by its
  contribution's deviation from the other members' mean (Fehr & Gächter's bins, scaled to
  the endowment: [-20,-14) [-14,-8) [-8,-2) [-2,2] (2,8] (8,14] (14,20] at 20).
* ``human_reference``, ``human_gap``, ``human_gap_first``, ``human_trend_match``: the
  human pattern for this condition (see ``HUMAN``) and the distance of the last and the
  first round's share from its band (0 inside the band, negative below, positive above).
* ``mean_payoff``: a member's mean earnings per round (tokens, after punishment);
  ``free_riding_rate``: share of contribute decisions that gave nothing;
  ``below_others_rate``: share of contributions below the other members' mean.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from sim.core.metrics import common_metrics

# Shares of the endowment, first and last round (of 10), Fehr & Gächter 2000 (AER) and 2002
# (Nature) as summarised in /work/shared/reference.md. Bands, not point values: the papers
# report curves, and sessions differ.
HUMAN: dict[str, dict[str, Any]] = {
    "no_punishment": {
        "first_round": (0.4, 0.6),
        "last_round": (0.1, 0.2),
        "trend": "decline",
        "source": "Fehr & Gächter 2000, 2002: contributions start near 40-60 % and decay to 10-20 % by round 10",
    },
    "punishment": {
        "first_round": (0.4, 0.6),
        "last_round": (0.8, 0.9),
        "trend": "rise",
        "source": "Fehr & Gächter 2000 (partner matching): with punishment contributions rise to 80-90 %",
    },
}
GAP_EDGES = (-20.0, -14.0, -8.0, -2.0, 2.0, 8.0, 14.0, 20.0)  # at an endowment of 20


def human_condition(scenario: Any) -> str | None:
    """The key of HUMAN this scenario compares with; None where the table has no band
    (punishment with stranger matching: the partner band does not transfer)."""
    if not scenario.mechanics.punishment.enabled:
        return "no_punishment"
    return "punishment" if scenario.environment.matching == "partner" else None


def band_distance(value: float, band: tuple[float, float]) -> float:
    """0 inside [lo, hi]; value - lo below it (negative); value - hi above it."""
    lo, hi = band
    return value - lo if value < lo else (value - hi if value > hi else 0.0)


def gap_bins(endowment: float) -> list[tuple[str, float, float]]:
    """(label, low, high) of the gap bins: below the middle bin [low, high), the middle bin
    closed, above it (low, high]; edges scale with the endowment."""
    edges = [e * endowment / 20.0 for e in GAP_EDGES]
    middle = len(edges) // 2 - 1  # the bin around 0
    out = []
    for k in range(len(edges) - 1):
        left, right = ("[", ")") if k < middle else (("[", "]") if k == middle else ("(", "]"))
        out.append((f"{left}{edges[k]:g},{edges[k + 1]:g}{right}", edges[k], edges[k + 1]))
    return out


def bin_of(gap: float, bins: list[tuple[str, float, float]]) -> str:
    """The bin a gap falls in; gaps beyond the outer edges go to the outer bins."""
    middle = len(bins) // 2
    label, lo, hi = bins[middle]
    if lo <= gap <= hi:
        return label
    if gap < lo:
        return next((lb for lb, a, b in bins[:middle] if a <= gap < b), bins[0][0])
    return next((lb for lb, a, b in bins[middle + 1 :] if a < gap <= b), bins[-1][0])


def by_gap(gaps: pd.Series, points: pd.Series, endowment: float) -> dict[str, dict[str, float]]:
    """Mean points per bin of gap (bins with no member-round are left out)."""
    bins = gap_bins(endowment)
    labels = gaps.map(lambda g: bin_of(float(g), bins))
    out = {}
    for label, _, _ in bins:
        mask = labels == label
        if mask.any():
            out[label] = {"mean_points": float(points[mask].mean()), "n": int(mask.sum())}
    return out


def compute(events: pd.DataFrame, steps: pd.DataFrame, scenario: Any) -> dict[str, Any]:
    env = scenario.environment
    contrib = events[events["phase"] == "contribute"] if len(events) else events
    if not len(contrib):
        return {"decisions": 0, **common_metrics(events, "contribute")}
    info = pd.DataFrame(list(contrib["info"].map(json.loads)), index=contrib.index)
    by_round = contrib.groupby("step")["value"].mean()
    shares = by_round / env.endowment
    full = env.mpcr * env.group_size * env.endowment
    expected = contrib["probs"].map(lambda p: float(np.dot(p, np.arange(len(p))))) / env.endowment
    expected_by_round = expected.groupby(contrib["step"]).mean()
    metrics: dict[str, Any] = {
        "mean_contribution_by_round": [float(v) for v in by_round.to_numpy()],
        "contribution_share_by_round": [float(v) for v in shares.to_numpy()],
        "mean_contribution": float(contrib["value"].mean()),
        "contribution_share": float(contrib["value"].mean() / env.endowment),
        "expected_share_by_round": [float(v) for v in expected_by_round.to_numpy()],
        "expected_contribution_share": float(expected.mean()),
        "first_round_share": float(shares.iloc[0]),
        "last_round_share": float(shares.iloc[-1]),
        "mean_payoff": float(info["payoff"].mean()),
        "efficiency": float(info["payoff"].mean() / full),
        "free_riding_rate": float((contrib["value"] == 0).mean()),
        "below_others_rate": float(contrib["violation"].astype(bool).mean()),
    }
    punish = events[events["phase"] == "punish"]
    if len(punish):
        points = punish["value"].astype(float)
        target_gap = punish["info"].map(lambda s: json.loads(s)["target_gap"])
        metrics.update(
            punishment_points_per_member=float(info["points_given"].sum() / len(contrib)),
            punishment_rate=float((points > 0).mean()),
            punishment_on_below=float(points[target_gap < 0].sum() / points.sum()) if points.sum() > 0 else None,
            punishment_received_by_gap=by_gap(info["gap"], info["points_received"].astype(float), env.endowment),
            punishment_given_by_gap=by_gap(info["gap"], info["points_given"].astype(float), env.endowment),
        )
    else:
        metrics.update(
            punishment_points_per_member=None,
            punishment_rate=None,
            punishment_on_below=None,
            punishment_received_by_gap=None,
            punishment_given_by_gap=None,
        )
    condition = human_condition(scenario)
    if condition is None:
        metrics.update(human_reference=None, human_gap=None, human_gap_first=None, human_trend_match=None)
    else:
        ref = HUMAN[condition]
        rising = shares.iloc[-1] > shares.iloc[0]
        metrics.update(
            human_reference={"condition": condition, **{k: v for k, v in ref.items()}},
            human_gap=band_distance(float(shares.iloc[-1]), ref["last_round"]),
            human_gap_first=band_distance(float(shares.iloc[0]), ref["first_round"]),
            human_trend_match=(bool(rising) == (ref["trend"] == "rise")) if len(shares) > 1 else None,
        )
    return {**metrics, **common_metrics(events, "contribute")}
