"""Metrics every environment reports, computed from the event log.

Environment-specific metrics live in each environment's ``metrics.py`` and build on
these helpers.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from agents.interfaces import entropy

# Rows logged by mechanics' rules (copying a peer) rather than by an agent's policy.
RULE_PHASES = frozenset({"learn"})


def policy_events(events: pd.DataFrame) -> pd.DataFrame:
    if events.empty:
        return events
    return events[~events["phase"].isin(RULE_PHASES)]


def mean_action_entropy(events: pd.DataFrame, phase: str | None = None) -> float | None:
    """Mean entropy (nats) of the policies' decision distributions."""
    ev = policy_events(events)
    if phase is not None and not ev.empty:
        ev = ev[ev["phase"] == phase]
    return float(ev["entropy"].mean()) if len(ev) else None


def empirical_action_entropy(events: pd.DataFrame, phase: str) -> float | None:
    """Entropy of each agent's histogram of chosen options in a phase, averaged over agents."""
    ev = policy_events(events)
    if ev.empty:
        return None
    ev = ev[ev["phase"] == phase]
    if ev.empty:
        return None
    values = []
    for _, choices in ev.groupby("agent_id")["chosen"]:
        counts = choices.value_counts().to_numpy(dtype=np.float64)
        values.append(entropy(counts / counts.sum()))
    return float(np.mean(values))


def share(mask: pd.Series) -> float | None:
    """Share of True in a boolean series; None when it is empty."""
    mask = mask.dropna()
    return float(mask.astype(bool).mean()) if len(mask) else None


def common_metrics(events: pd.DataFrame, primary_phase: str) -> dict[str, Any]:
    ev = policy_events(events)
    return {
        "mean_action_entropy": mean_action_entropy(events),
        "mean_action_entropy_by_phase": (
            {str(k): float(v) for k, v in ev.groupby("phase")["entropy"].mean().items()} if len(ev) else {}
        ),
        "empirical_action_entropy": empirical_action_entropy(events, primary_phase),
        "decisions": int(len(ev)),
        "parse_failures": int(ev["parse_failed"].sum()) if len(ev) else 0,
    }


def presentation_metrics(events: pd.DataFrame) -> dict[str, Any]:
    """How much the presentation moved the run's LLM decisions (agents.presentation).

    ``expected_value_by_phase``: per phase, the mean of each decision's measure (an
    expected amount, or P(option) for a yes/no decision) under its shipped presentation.
    ``presentation_spread``: per phase, over the decisions re-scored under other
    presentations, the mean measure under each presentation and the spread (largest
    minus smallest of those means); where options have no values the measure is the
    total-variation distance from the shipped distribution. ``order_range_by_phase``: for
    balanced decisions, the mean range of the measure over the printed orders averaged (how
    far one fixed order would have moved it). Empty for runs without LLMs.
    """
    ev = policy_events(events)
    if ev.empty or "info" not in ev:
        return {}
    values: dict[str, list[float]] = {}
    ranges: dict[str, list[float]] = {}
    probes: dict[str, dict[str, list[float]]] = {}
    measures: dict[str, str] = {}
    for phase, info in zip(ev["phase"], ev["info"], strict=True):
        if not isinstance(info, str) or '"presentation"' not in info:  # None or NaN: nothing presented
            continue
        shown = json.loads(info).get("presentation", {})
        if "value" in shown:
            values.setdefault(phase, []).append(float(shown["value"]))
        if "order_range" in shown:
            ranges.setdefault(phase, []).append(float(shown["order_range"]))
        if "probes" in shown:
            measures[phase] = shown.get("measure", "")
            for name, v in shown["probes"].items():
                probes.setdefault(phase, {}).setdefault(name, []).append(float(v))
    out: dict[str, Any] = {}
    if values:
        out["expected_value_by_phase"] = {k: float(np.mean(v)) for k, v in sorted(values.items())}
    if ranges:  # balanced decisions: the mean range of the measure over the orders averaged
        out["order_range_by_phase"] = {k: float(np.mean(v)) for k, v in sorted(ranges.items())}
    if probes:
        spread = {}
        for phase, by_name in sorted(probes.items()):
            means = {name: float(np.mean(v)) for name, v in by_name.items()}
            spread[phase] = {
                "measure": measures[phase],
                "n": max(len(v) for v in by_name.values()),
                "by_presentation": means,
                "spread": float(max(means.values()) - min(means.values())),
            }
        out["presentation_spread"] = spread
    return out
