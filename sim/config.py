"""Scenario files: the pydantic models, YAML loading and ``--set`` overrides.

A scenario has six blocks: ``name``, ``environment`` (with ``type``), ``population``
(groups of agents), ``mechanics`` (the shared mechanics the environment supports, each
switchable), ``run`` (steps, seed) and ``output``. Everything is validated here, against
the environment's spec, so a typo never reaches a simulation.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, create_model, field_validator, model_validator

import environments
from agents.config import BackendConfig, PolicyConfig
from environments.spec import EnvironmentSpec, MechanicsBlock
from sim.core.schema import ConfigError, StrictModel, format_errors
from steering.config import SteeringConfig

Persona = Literal["altruistic", "selfish", "neutral"]


class GroupConfig(StrictModel):
    """A group of agents sharing a persona, a policy and an initial strategy.

    ``strategy`` is validated by the environment's spec (``EnvironmentSpec.strategy``):
    its fields mean what that environment says (a starting norm belief in the
    environment's unit, a report probability...).
    """

    name: str = Field(min_length=1, max_length=200)
    size: int = Field(ge=1, le=100_000)
    persona: Persona = "neutral"
    policy: PolicyConfig
    memory: int = Field(5, ge=0, le=1000, description="how many past rounds an agent remembers (lines of memory)")
    strategy: SerializeAsAny[StrictModel] = Field(
        default_factory=StrictModel, description="initial strategy; fields per environment"
    )
    steering: SteeringConfig | None = Field(None, description="activation steering of this group's LLM (steering/)")

    @model_validator(mode="after")
    def _steer_llm_only(self) -> GroupConfig:
        if self.steering is not None and self.policy.type != "llm":
            raise ValueError(f"steering needs an llm policy; group '{self.name}' is {self.policy.type}")
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


# ------------------------------------------------------------------------ run, output
class RunConfig(StrictModel):
    steps: int = Field(12, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0)


class OutputConfig(StrictModel):
    dir: str = "runs"
    run_id: str | None = Field(None, description="the run directory's name; default <name>-seed<seed>")
    report: bool = Field(True, description="write report.html (plots, transcript) into the run directory at the end")


class Scenario(StrictModel):
    """A whole scenario. Each environment gets its own subclass (:func:`scenario_model`)
    whose ``environment``, ``mechanics`` and group ``strategy`` blocks are that
    environment's; :func:`load_scenario` picks it from ``environment.type``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=200)
    description: str = ""
    environment: SerializeAsAny[StrictModel]
    population: list[GroupConfig] = Field(min_length=1)
    mechanics: SerializeAsAny[MechanicsBlock] = Field(default_factory=MechanicsBlock)
    run: RunConfig = Field(default_factory=RunConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)

    @model_validator(mode="after")
    def _check_population(self) -> Scenario:
        names = [g.name for g in self.population]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"population: group names must be unique; repeated: {', '.join(dupes)}")
        spec = self.spec
        clash = sorted(set(names) & set(spec.extra_policies(self.environment)))
        if clash:
            raise ValueError(f"population: group name {', '.join(clash)} is taken by the {spec.name} environment")
        for i, group in enumerate(self.population):
            if group.policy.type == "scripted" and group.policy.rule not in spec.rules:
                raise ValueError(
                    f"population[{i}].policy.rule: unknown rule '{group.policy.rule}' for environment "
                    f"'{spec.name}'; allowed: {', '.join(sorted(spec.rules))}"
                )
        if spec.check is not None:
            spec.check(self)
        return self

    @property
    def spec(self) -> EnvironmentSpec:
        return environments.get(self.environment.type)  # type: ignore[attr-defined]

    @property
    def n_agents(self) -> int:
        return sum(g.size for g in self.population)


@functools.cache
def scenario_model(env_type: str) -> type[Scenario]:
    """The Scenario subclass of one environment (its blocks typed by its spec)."""
    spec = environments.get(env_type)
    group = create_model(
        f"{spec.config.__name__.removesuffix('Config')}Group",
        __base__=GroupConfig,
        __module__=__name__,
        strategy=(spec.strategy, Field(default_factory=spec.strategy, description="initial strategy")),
    )
    return create_model(
        f"{spec.config.__name__.removesuffix('Config')}Scenario",
        __base__=Scenario,
        __module__=__name__,
        environment=(spec.config, ...),
        population=(list[group], Field(min_length=1)),  # type: ignore[valid-type]
        mechanics=(spec.mechanics, Field(default_factory=spec.mechanics)),
    )


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
    model = scenario_model(environment_type(data, label))
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, label)) from None


def environment_type(data: dict[str, Any], label: str = "scenario") -> str:
    """The scenario's ``environment.type``, checked against the registry."""
    env = data.get("environment")
    allowed = ", ".join(environments.names())
    if not isinstance(env, dict) or "type" not in env:
        raise ConfigError(f"{label}: environment.type: required field is missing; allowed: {allowed}")
    env_type = env["type"]
    if not isinstance(env_type, str) or env_type not in environments.names():
        raise ConfigError(f"{label}: environment.type: unknown environment {env_type!r}; allowed: {allowed}")
    return env_type


def dump_scenario(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
