"""Helpers for the forum's tests: small scenarios, fixed policies, hand-built content."""

from __future__ import annotations

import copy
import json
from typing import Any

from agents.interfaces import Decision, one_hot
from environments.forum.model import ForumModel
from sim.config import load_scenario
from sim.runner import build_policies

BASE: dict[str, Any] = {
    "name": "t",
    "environment": {"type": "forum", "graph": {"generator": "watts_strogatz_graph", "params": {"k": 2, "p": 0.0}}},
    "population": [{"name": "a", "size": 4, "policy": "civil"}],
    "run": {"steps": 3, "seed": 0},
}


def make_scenario(overrides: dict[str, Any] | None = None, **top: Any):
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(top))
    return load_scenario(data, overrides)


def make_model(overrides: dict[str, Any] | None = None, policies: dict | None = None, **top: Any) -> ForumModel:
    """A forum model; ``policies`` replace any group's or role's (guardian, moderator) by name."""
    scenario = make_scenario(overrides, **top)
    return ForumModel(scenario, build_policies(scenario, policies))


class Pick:
    """Chooses, per phase, the first option whose label starts with a given prefix (else option 0)."""

    def __init__(self, **prefixes: str) -> None:
        self.prefixes = prefixes
        self.seen: list = []

    def decide(self, requests, rng):
        out = []
        for r in requests:
            self.seen.append(r)
            prefix = self.prefixes.get(r.phase)
            k = next((i for i, o in enumerate(r.options) if prefix is not None and o.startswith(prefix)), 0)
            out.append(Decision(probs=one_hot(len(r.options), k), choice=k, text=r.options[k]))
        return out


def post(
    model: ForumModel,
    author: int | None,
    text: str = "A perfectly civil post about gardening.",
    *,
    step: int = 0,
    violation: str | None = None,
    topic: str = "gardening",
    **fields: Any,
):
    """Add a post by hand (as if written at ``step``)."""
    item = model.forum.add(
        kind="post",
        author=author,
        step=step,
        topic=topic,
        thread=0,
        text=text,
        violation=violation,
        stance=1.0,
        **fields,
    )
    item.thread = item.id
    return item


def info(row: dict[str, Any]) -> dict[str, Any]:
    """An event row's info, before (``_info``) or after (``info``, JSON) the step's rows were taken."""
    return row["_info"] if "_info" in row else json.loads(row["info"] or "{}")
