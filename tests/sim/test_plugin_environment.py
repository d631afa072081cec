"""A throwaway environment, defined here (outside environments/), plugs in through its spec.

It must: load and validate, reject mechanics it does not support at validate time, get
its headline printed by `normsim run`, and pass the conformance suite. A second, broken
variant shows the suite fails where it should.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Literal

import numpy as np
import pytest
import yaml
from mesa import DataCollector
from pydantic import Field

import environments
from agents.agent import SocietyAgent
from agents.interfaces import Decision, DecisionRequest, Prompt
from agents.scripted import RuleBook
from environments.base import SocietyModel
from environments.mechanics import SocialLearningConfig
from environments.spec import EnvironmentSpec, MechanicsBlock
from sim.cli import main
from sim.config import load_scenario
from sim.core.metrics import common_metrics
from sim.core.schema import ConfigError, StrictModel
from sim.testing import check_environment

RULES = RuleBook()


@RULES.rule("heads")
def heads(req: DecisionRequest) -> list[float]:
    return [0.8, 0.2]


class CoinConfig(StrictModel):
    type: Literal["coin"] = "coin"
    bonus: float = Field(1.0, ge=0, le=100)


class CoinMechanics(MechanicsBlock):
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)


class CoinModel(SocietyModel):
    """Each step every agent calls heads or tails; a match with the coin pays ``bonus``."""

    def __init__(self, scenario: Any, policies: Any, *, run_id: str = "run") -> None:
        super().__init__(scenario, policies, run_id=run_id)
        self.make_agents(SocietyAgent)
        self.matches = 0
        self.datacollector = DataCollector(model_reporters={"matches": "matches"})

    def step(self) -> None:
        agents = self.society
        requests = [
            DecisionRequest(
                agent_id=a.unique_id,
                phase="call",
                options=("heads", "tails"),
                prompt=Prompt(system="A coin is tossed.", user="Call it."),
                observation={"rule": a.strategy.rule},
            )
            for a in agents
        ]
        coin = int(self.rng.integers(2))
        self.matches = 0
        for agent, dec in zip(agents, self.decide(agents, requests), strict=True):
            won = dec.choice == coin
            self.matches += won
            agent.last_payoff = self.scenario.environment.bonus * won
            agent.wealth += agent.last_payoff
            self.annotate(dec, value=agent.last_payoff)
        self.social_learning_phase()
        self.datacollector.collect(self)


def coin_metrics(events: Any, steps: Any, scenario: Any) -> dict[str, Any]:
    calls = events[events["phase"] == "call"] if len(events) else events
    return {"match_rate": float(calls["value"].gt(0).mean()) if len(calls) else None, **common_metrics(events, "call")}


def make_spec(name: str = "coin", model: type = CoinModel) -> EnvironmentSpec:
    config = CoinConfig if name == "coin" else _renamed_config(name)
    mechanics = type(f"{name.title()}Mechanics", (CoinMechanics,), {})
    return EnvironmentSpec(
        name=name,
        summary="a coin-calling toy",
        config=config,
        mechanics=mechanics,
        model=model,
        rules=RULES,
        metrics=coin_metrics,
        headline=("match_rate", "mean_action_entropy"),
        example="",
        progress=("matches",),
    )


def _renamed_config(name: str) -> type[StrictModel]:
    from pydantic import create_model

    return create_model(f"{name.title()}Config", __base__=CoinConfig, type=(Literal[name], name))  # type: ignore[valid-type]


SCENARIO = {
    "name": "coin_toy",
    "environment": {"type": "coin"},
    "population": [{"name": "callers", "size": 4, "policy": "heads"}],
    "mechanics": {"social_learning": {"enabled": True}},
    "run": {"steps": 3, "seed": 1},
}


@pytest.fixture
def coin():
    spec = environments.register(make_spec())
    yield spec
    environments.unregister("coin")


def test_a_registered_environment_loads_and_lists_itself(coin):
    assert "coin" in environments.names()
    scenario = load_scenario(SCENARIO)
    assert scenario.spec is coin and scenario.environment.bonus == 1.0


def test_unsupported_mechanics_are_rejected_at_validate_with_the_supported_list(coin, tmp_path, capsys):
    path = tmp_path / "coin.yaml"
    path.write_text(yaml.safe_dump({**SCENARIO, "mechanics": {"punishment": {"enabled": True}}}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mechanics: 'punishment' is not supported by the coin environment" in err
    assert "supported mechanics: social_learning" in err
    assert len(err.strip().splitlines()) == 2  # the file's line and the problem: no traceback


def test_the_headline_is_printed(coin, tmp_path, capsys):
    path = tmp_path / "coin.yaml"
    path.write_text(yaml.safe_dump(SCENARIO))
    assert main(["--quiet", "run", str(path), "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "  match_rate: " in out and "  mean_action_entropy: " in out
    assert "survival_time" not in out


def test_the_throwaway_environment_passes_the_conformance_suite(coin, tmp_path):
    check_environment(coin, tmp_path, scenario=SCENARIO)


class _Leaky(CoinModel):
    """Draws from the global numpy state instead of the model's seeded generator."""

    def step(self) -> None:
        self.rng = np.random.default_rng()  # a fresh, unseeded generator every step
        super().step()


class _Improper(CoinModel):
    """Logs a decision whose probabilities do not sum to 1."""

    def decide(self, agents: Any, requests: Any) -> list[Decision]:
        decisions = super().decide(agents, requests)
        decisions[0].info["_row"]["probs"] = [0.5, 0.6]
        return decisions


@pytest.mark.parametrize(
    ("model", "message"), [(_Leaky, "same seed"), (_Improper, "do not sum to 1")], ids=["unseeded", "improper"]
)
def test_the_suite_catches_a_broken_environment(model, message, tmp_path):
    spec = environments.register(make_spec("brokencoin", model))
    try:
        with pytest.raises(AssertionError, match=message):
            check_environment(spec, tmp_path, scenario={**SCENARIO, "environment": {"type": "brokencoin"}})
    finally:
        environments.unregister("brokencoin")


def test_an_entry_point_registers_an_environment_without_editing_normsim(tmp_path, monkeypatch):
    # A minimal installed distribution: its entry point names this module's spec factory output.
    dist = tmp_path / "coin_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: coin-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[normsim.environments]\ncoin = {__name__}:PLUGIN_SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    environments.unregister("coin")
    try:
        assert "coin" in environments.names()
        assert environments.get("coin") is PLUGIN_SPEC
        assert load_scenario(SCENARIO).spec is PLUGIN_SPEC
    finally:
        environments.unregister("coin")


def test_an_unknown_environment_type_names_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"environment.type: unknown environment 'nope'; allowed: bandit, commons"):
        load_scenario({**SCENARIO, "environment": {"type": "nope"}})


PLUGIN_SPEC = make_spec()
