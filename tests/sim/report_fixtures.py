"""The tiny run the report tests share (imported as ``tests.sim.report_fixtures``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import sim
from agents.interfaces import Decision, sample_choice
from sim.runner import build_policies

# A commons that lasts: three cooperators and one "LLM-like" group answered by a custom
# (non-scripted) policy, so its prompts are logged; punishment and a vote every 2 steps.
SCENARIO = {
    "name": "tiny",
    "description": "a tiny commons for report tests",
    "environment": {"type": "commons", "preset": "rich"},
    "population": [
        {"name": "cooperators", "size": 3, "persona": "altruistic", "policy": "sustainable"},
        {"name": "readers", "size": 2, "persona": "selfish", "policy": "sustainable"},
    ],
    "mechanics": {
        "punishment": {"enabled": True, "monitor_prob": 1.0, "punish_prob": 1.0},
        "group_norm": {"enabled": True, "every": 2},
    },
    "run": {"steps": 6, "seed": 1},
}
COMMONS_PLOTS = {
    *("stock", "catch_per_agent", "over_usage", "punishments", "wealth_gini", "entropy", "step_trends"),
    "metric_total_gain_per_agent",  # metrics.json's per-agent totals, charted
}


class Cautious:
    """A prompt-reading stand-in for an LLM: mostly the two smallest options."""

    def decide(self, requests, rng):
        out = []
        for req in requests:
            w = np.array([4.0, 2.0] + [0.2] * (len(req.options) - 2))[: len(req.options)]
            p = w / w.sum()
            out.append(Decision(probs=p, choice=sample_choice(p, rng), text=f"I pick {req.options[0]}"))
        return out


def tiny_run(out: Path, **kwargs) -> sim.RunResult:
    scenario = sim.load_scenario(SCENARIO)
    policies = build_policies(scenario) | {"readers": Cautious()}
    return sim.run(scenario, out=out, policies=policies, **kwargs)
