"""Scenario files: the pydantic models, YAML loading and ``--set`` overrides.

A scenario has six blocks: ``name``, ``environment`` (with ``type``), ``population``
(groups of agents), ``mechanics`` (social learning, punishment, group norm; each
switchable), ``run`` (steps, seed) and ``output``. Everything is validated here, so a
typo never reaches a simulation.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from agents.config import BackendConfig, PolicyConfig
from environments import CONFIGS, SCRIPTED_RULES
from sim.core.schema import ConfigError, StrictModel, format_errors, register_union_tags
from steering.config import SteeringConfig

Persona = Literal["altruistic", "selfish", "neutral"]


class StrategyConfig(StrictModel):
    """Initial behavioural parameters; social learning copies them between agents."""

    monitor_prob: float | None = Field(None, ge=0.0, le=1.0)
    punish_prob: float | None = Field(None, ge=0.0, le=1.0)
    norm: float | None = Field(None, ge=0.0, description="individual norm belief (harvest ceiling)")


class GroupConfig(StrictModel):
    name: str
    size: int = Field(ge=1, le=100_000)
    persona: Persona = "neutral"
    policy: PolicyConfig
    memory: int = Field(5, ge=0, le=1000, description="how many past rounds an agent remembers")
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    steering: SteeringConfig | None = Field(None, description="activation steering of this group's LLM (steering/)")

    @model_validator(mode="after")
    def _steer_llm_only(self) -> GroupConfig:
        if self.steering is not None and self.policy.type != "llm":
            raise ValueError(f"steering needs an llm policy; group '{self.name}' is {self.policy.type}")
        engine = getattr(self.policy, "engine", "hf")
        if self.steering is not None and engine != "hf":
            raise ValueError(
                f"steering needs policy.engine hf (the built-in engine); group '{self.name}' uses {engine}"
            )
        return self

    @field_validator("policy", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `policy: greedy` is short for `policy: {type: scripted, rule: greedy}`.
        if isinstance(value, str):
            return {"type": "scripted", "rule": value}
        if isinstance(value, dict) and "type" not in value:
            return {"type": "scripted", **value}
        return value


# -------------------------------------------------------------------------- mechanics
class PunishmentConfig(StrictModel):
    enabled: bool = False
    monitor_prob: float = Field(0.5, ge=0.0, le=1.0, description="default chance to observe one random peer")
    punish_prob: float = Field(0.5, ge=0.0, le=1.0, description="default chance a scripted agent punishes a violator")
    cost: float = Field(1.0, ge=0.0, description="paid by the punisher")
    fine: float = Field(4.0, ge=0.0, description="paid by the punished")
    graduated: bool = Field(False, description="fine grows with the offender's earlier sanctions")
    fine_step: float = Field(2.0, ge=0.0, description="added to the fine per earlier sanction")
    max_fine: float = Field(20.0, ge=0.0)


class SocialLearningConfig(StrictModel):
    enabled: bool = False
    every: int = Field(1, ge=1, description="rounds between learning phases")
    probability: float = Field(1.0, ge=0.0, le=1.0, description="chance an agent compares itself this round")
    selection_strength: float = Field(
        1.0, gt=0.0, description="Fermi temperature K: p = 1/(1+exp(-(pi_peer-pi_self)/K))"
    )
    copy_beliefs: bool = Field(True, description="copy the peer's norm belief along with its strategy")
    payoff: Literal["round", "wealth"] = "round"


class GroupNormConfig(StrictModel):
    enabled: bool = False
    every: int = Field(3, ge=1, description="rounds between votes")
    rule: Literal["median", "majority"] = "median"
    initial: float | None = Field(None, ge=0.0, description="G(0); none means no norm until the first vote")
    proposal: Literal["choice", "text"] = Field(
        "choice", description="LLM agents pick a ceiling from options or write one"
    )


class MechanicsConfig(StrictModel):
    punishment: PunishmentConfig = Field(default_factory=PunishmentConfig)
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)
    group_norm: GroupNormConfig = Field(default_factory=GroupNormConfig)


# ------------------------------------------------------------------------ run, output
class RunConfig(StrictModel):
    steps: int = Field(12, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0)


class OutputConfig(StrictModel):
    dir: str = "runs"
    run_id: str | None = Field(None, description="directory name; default <name>-seed<seed>-<timestamp>")
    report: bool = Field(True, description="write report.html (plots, transcript) into the run directory at the end")


EnvironmentConfig = Annotated[
    Union[tuple(Annotated[cls, tag] for tag, cls in CONFIGS.items())]  # type: ignore[misc]  # noqa: UP007
    if len(CONFIGS) > 1
    else next(iter(CONFIGS.values())),
    Field(discriminator="type"),
]
register_union_tags(set(CONFIGS) | {"scripted", "llm"})


class Scenario(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    environment: EnvironmentConfig
    population: list[GroupConfig] = Field(min_length=1)
    mechanics: MechanicsConfig = Field(default_factory=MechanicsConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)

    @model_validator(mode="after")
    def _check_population(self) -> Scenario:
        names = [g.name for g in self.population]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"population: group names must be unique; repeated: {', '.join(dupes)}")
        rules = SCRIPTED_RULES.get(self.environment.type, {})
        for i, group in enumerate(self.population):
            if group.policy.type == "scripted" and group.policy.rule not in rules:
                raise ValueError(
                    f"population[{i}].policy.rule: unknown rule '{group.policy.rule}' for environment "
                    f"'{self.environment.type}'; allowed: {', '.join(sorted(rules))}"
                )
        return self

    @property
    def n_agents(self) -> int:
        return sum(g.size for g in self.population)


# --------------------------------------------------------------------------- loading
def parse_value(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (numbers, booleans, lists, null)."""
    return yaml.safe_load(text) if text.strip() else ""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['a.b=1', 'c=[1, 2]'] -> {'a.b': 1, 'c': [1, 2]}."""
    pairs: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        pairs[key.strip()] = parse_value(value)
    return pairs


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    """Set dotted keys (``mechanics.punishment.enabled``, ``population.0.size``) in a raw dict."""
    if not overrides:
        return data
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    data = copy.deepcopy(data)
    for dotted, value in overrides.items():
        node: Any = data
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"--set {dotted}: '{part}' is not an index of a list of {len(node)}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"--set {dotted}: '{'.'.join(parts[:i])}' is not a mapping")
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a mapping at the top level")
    return data


def load_scenario(
    source: str | Path | dict[str, Any] | Scenario,
    overrides: dict[str, Any] | list[str] | None = None,
) -> Scenario:
    """Load and validate a scenario from a YAML path, a dict, or a Scenario.

    Raises :class:`ConfigError` with one line per problem, each naming the field path.
    """
    if isinstance(source, Scenario):
        if not overrides:
            return source
        data = source.model_dump(mode="json")
        label = source.name
    elif isinstance(source, dict):
        data, label = source, "scenario"
    else:
        data, label = read_yaml(source), str(source)
    data = apply_overrides(data, overrides)
    try:
        return Scenario.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, label)) from None


def dump_scenario(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
