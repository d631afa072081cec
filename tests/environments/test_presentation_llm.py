"""Every environment's printed menus go through the presentation layer: under
``order: balanced`` the order an environment prints a menu in changes nothing, under
``fixed`` it moves SmolLM2's answers (real model, real requests of each environment)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents import presentation
from agents.interfaces import Decision, DecisionRequest, one_hot, text_decision
from agents.llm import get_backend
from agents.llm.policy import LLMPolicy
from agents.menus import PresentationConfig
from sim.config import load_scenario
from sim.runner import build_policies

pytestmark = pytest.mark.integration

SCENARIOS = {
    "commons": ("scenarios/commons_llm.yaml", {"mechanics": {"group_norm": {"proposal": "choice", "every": 1}}}),
    "forum": ("scenarios/forum_llm.yaml", {}),
    "webshop": ("scenarios/webshop_llm.yaml", {}),
    "bandit": ("scenarios/bandit_llm.yaml", {}),
}


EXPECTED_PHASES = {"commons": {"punish", "vote"}, "forum": {"act"}, "webshop": {"shop"}, "bandit": {"pull"}}


class Recorder:
    """A text-reading policy that keeps every request it is asked and answers blindly."""

    def __init__(self) -> None:
        self.requests: list[DecisionRequest] = []

    def decide(self, requests, rng) -> list[Decision]:
        self.requests.extend(requests)
        return [
            text_decision(r, "", None) if r.kind == "text" else Decision(probs=one_hot(len(r.options), 0), choice=0)
            for r in requests
        ]


def printed_menus(env: str, steps: int = 3, per_phase: int = 1) -> list[DecisionRequest]:
    path, patch = SCENARIOS[env]
    scenario = load_scenario(path)
    data = scenario.model_dump(mode="json")
    for key, value in patch.items():
        for sub, block in value.items():
            data[key][sub].update(block)
    data["run"]["steps"] = steps
    scenario = type(scenario).model_validate(data)
    recorder = Recorder()
    names = [g.name for g in scenario.population if g.policy.type == "llm"]
    names += list(scenario.spec.extra_policies(scenario.environment))
    model = scenario.spec.model(scenario, build_policies(scenario, {n: recorder for n in names}))
    for _ in range(steps):
        if model.running:
            model.step()
    found: dict[str, list[DecisionRequest]] = {}
    for r in recorder.requests:
        menu = r.prompt.menu
        if menu is not None and len(menu.entries) >= 2 and r.needs_scoring:
            found.setdefault(r.phase, []).append(replace(r, presentation=None))
    # the shortest menus of each phase: every variant of a balanced menu is scored
    return [r for rs in found.values() for r in sorted(rs, key=lambda r: len(r.options))[:per_phase]]


def as_printed(req: DecisionRequest, order: tuple[int, ...]) -> DecisionRequest:
    """The request as if the environment had printed its menu in ``order``."""
    menu = replace(req.prompt.menu, printed=order)
    prompt = replace(req.prompt.arranged(order), menu=menu)
    return replace(req, prompt=prompt, options=menu.answers(req.options, tuple(range(len(menu.entries)))))


def distributions(requests: list[DecisionRequest], order: str) -> list[np.ndarray]:
    policy = LLMPolicy(get_backend("smollm2-135m"), temperature=1.0)
    # Balanced for every menu here (by default menus of more than 6 options are shuffled).
    cfg = PresentationConfig(order=order, sensitivity=0, balanced_max_options=26)
    planned = [presentation.plan(r, cfg, np.random.default_rng(0), probe=False) for r in requests]
    return [d.probs for d in policy.decide(planned, np.random.default_rng(0))]


@pytest.mark.parametrize("env", sorted(SCENARIOS))
def test_balanced_menus_do_not_depend_on_the_printed_order_and_fixed_ones_do(env):
    requests = printed_menus(env)
    assert requests, f"{env}: no printed menu found"
    assert {r.phase for r in requests} >= EXPECTED_PHASES[env]
    rng = np.random.default_rng(1)
    orders = []
    for r in requests:
        n = len(r.prompt.menu.entries)
        shuffled = tuple(int(i) for i in rng.permutation(n))
        orders.append((tuple(range(n)), tuple(reversed(range(n))), shuffled))
    variants = [[as_printed(r, o[k]) for r, o in zip(requests, orders, strict=True)] for k in range(3)]
    balanced = [distributions(v, "balanced") for v in variants]
    fixed = [distributions(v, "fixed") for v in variants]
    worst_balanced = max(np.abs(a - b).max() for k in (1, 2) for a, b in zip(balanced[0], balanced[k], strict=True))
    worst_fixed = max(np.abs(a - b).max() for k in (1, 2) for a, b in zip(fixed[0], fixed[k], strict=True))
    assert worst_balanced < 1e-6, f"{env}: balanced distributions moved by {worst_balanced:.2e} with the printed order"
    assert worst_fixed > 0.01, f"{env}: fixed-order distributions moved only {worst_fixed:.2e}"
