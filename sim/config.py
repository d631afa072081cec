"""Scenario files: the pydantic models, YAML loading and ``--set`` overrides.

A scenario has six blocks: ``name``, ``environment`` (with ``type``), ``population``
(groups of agents), ``mechanics`` (the shared mechanics the environment supports, each
switchable), ``run`` (steps, seed) and ``output``; an optional top-level ``model`` runs
every LLM group on one model. Everything is validated here, against
the environment's spec, so a typo never reaches a simulation.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, create_model, field_validator, model_validator

import environments
from agents.config import BackendConfig, PolicyConfig
from agents.menus import GroupPresentation, PresentationConfig
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
    presentation: GroupPresentation | None = Field(
        None, description="this group's override of the scenario's presentation block (order, decimals)"
    )

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


# ------------------------------------------------------------------------ run, output
class RunConfig(StrictModel):
    steps: int = Field(12, ge=1, le=1_000_000)
    seed: int = Field(0, ge=0, le=2**32 - 1)


class OutputConfig(StrictModel):
    dir: str = "runs"
    run_id: str | None = Field(
        None,
        description=(
            "the run directory's name under the output directory (a plain name: no '/', no '..'); "
            "default <name>-seed<seed>, with the --set overrides in between"
        ),
    )
    report: bool = Field(True, description="write report.html (plots, transcript) into the run directory at the end")
    tracking: Literal["none", "mlflow"] = Field(
        "none", description="also log params, per-step metrics and the run directory to MLflow (pip install mlflow)"
    )

    @field_validator("run_id")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        # The run directory must stay under the output root: no separators, no '..', not absolute.
        if value is not None and (
            not value or value.startswith(".") or not _PLAIN_NAME.fullmatch(value) or len(value) > 200
        ):
            raise ValueError(
                f"'{value[:60]}' is not a plain directory name; allowed: letters, digits, '_', '-', '.', '=', '+' "
                "(no '/', not starting with '.', at most 200 characters)"
            )
        return value


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.=+-]+")
# One cap on the whole society (each group has its own, 100,000): a million scripted agents
# take about 5 GB; more is a typo, or many groups each at its cap.
MAX_AGENTS = 1_000_000


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
    presentation: PresentationConfig = Field(
        default_factory=PresentationConfig,
        description="how menus and numeric labels are shown to LLM agents (agents.presentation)",
    )
    model: str | None = Field(
        None,
        min_length=1,
        description=(
            "one model for every LLM group: replaces each LLM group's policy.model "
            "(`--set model=gemma3-270m`, or a sweep axis); default: each group's own"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _one_model(cls, data: Any) -> Any:
        # Applied to the raw groups before they are validated, so each group's checks see
        # the model that will run, and the recorded config.yaml names it in every group.
        model = data.get("model") if isinstance(data, dict) else None
        if isinstance(model, str) and model and isinstance(data.get("population"), list):
            data = {**data, "population": [_with_model(g, model) for g in data["population"]]}
        return data

    @model_validator(mode="after")
    def _check_population(self) -> Scenario:
        if self.n_agents > MAX_AGENTS:
            raise ValueError(
                f"population: {self.n_agents:,} agents in {len(self.population)} groups; "
                f"a scenario may have at most {MAX_AGENTS:,} in all"
            )
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


def _with_model(group: Any, model: str) -> Any:
    policy = group.get("policy") if isinstance(group, dict) else None
    if isinstance(policy, dict) and policy.get("type") == "llm":
        return {**group, "policy": {**policy, "model": model}}
    return group


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
# A scenario is a few kilobytes; a sweep a little more. Anything far larger is a mistake
# (or an attack), and so is YAML whose aliases expand into millions of nodes.
MAX_YAML_BYTES = 4_000_000
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 64

# libyaml's loader when installed (orders of magnitude faster on big files), else pure Python.
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKey(yaml.YAMLError):
    """A key written twice in one mapping (YAML would keep the last one silently)."""


class ScenarioLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe YAML loading (no Python tags) with the C parser when present.

    Aliases are resolved by the parser into shared objects; :func:`safe_yaml` then counts
    the nodes as if every alias were expanded, so an alias bomb is refused before anything
    copies, validates or serialises it. A key repeated in one mapping is refused.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                    continue  # keys merged in with << may be overridden: that is what merging is for
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise DuplicateKey(f"duplicate key '{key}' on line {seen[key]} and line {line}; keep one")
                seen[key] = line
        return super().construct_mapping(node, deep)


def _check_expansion(data: Any, source: str) -> None:
    """Walk ``data`` counting every node as expanded; stop at the caps (cycles included)."""
    budget = MAX_YAML_NODES
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(f"{source}: too large once its aliases are expanded (more than {MAX_YAML_NODES} values)")
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(f"{source}: nested deeper than {MAX_YAML_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str | int | float | bool) and key is not None:
                    raise ConfigError(f"{source}: a mapping key must be a plain value, got {type(key).__name__}")
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)


def safe_yaml(text: str, source: str = "YAML") -> Any:
    """``yaml.safe_load`` with caps on size, alias expansion and nesting; every failure a ConfigError."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: {len(text)} characters; a scenario may have at most {MAX_YAML_BYTES}")
    try:
        data = yaml.load(text, Loader=ScenarioLoader)  # noqa: S506  (a SafeLoader subclass)
    except DuplicateKey as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())
        raise ConfigError(f"{source}: not valid YAML: {first}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested deeper than {MAX_YAML_DEPTH} levels") from None
    _check_expansion(data, source)
    return data


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value the way YAML would (numbers, booleans, lists, null)."""
    return safe_yaml(text, f"--set value '{text[:40]}'") if text.strip() else ""


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """['a.b=1', 'c=[1, 2]'] -> {'a.b': 1, 'c': [1, 2]}."""
    pairs: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"--set '{item}': the key must be dotted field names, e.g. run.steps=20")
        pairs[key] = parse_value(value)
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
        parts = str(dotted).split(".")
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
                where = ".".join(parts[:i]) or "(top level)"
                raise ConfigError(f"--set {dotted}: '{where}' is not a mapping")
    return data


def override_slug(params: dict[str, Any]) -> str:
    """A readable name for a set of overrides: ``{'mechanics.punishment.enabled': True}`` -> ``enabled=true``.

    Used for sweep cells and for ``normsim run --set`` directories, so two conditions get
    two names instead of a silent ``-2``.
    """
    parts = []
    for key, value in params.items():
        last = str(key).split(".")[-1]
        label = last if not last.isdigit() else str(key).replace(".", "")
        text = json.dumps(value) if isinstance(value, list | dict) else str(value).lower()
        parts.append(f"{label}={text}")
    return re.sub(r"[^A-Za-z0-9.=_+-]", "", "_".join(parts))[:80].strip(".")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; every problem with the file is a one-line ConfigError."""
    path = Path(path)
    try:
        if not path.exists():
            raise ConfigError(f"{path}: no such file")
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; expected a YAML file")
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: {size} bytes; a scenario file may have at most {MAX_YAML_BYTES}")
        with open(path, "rb") as f:  # st_size is 0 for /dev/zero, a FIFO, <(...): read one byte past the cap
            raw = f.read(MAX_YAML_BYTES + 1)
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError(f"{path}: more than {MAX_YAML_BYTES} bytes; a scenario file may have at most that")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    data = safe_yaml(text, str(path))
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
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: a scenario must be a mapping at the top level")
    _check_expansion(data, label)
    model = scenario_model(environment_type(data, label))
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, label)) from None
    except RecursionError:
        raise ConfigError(f"{label}: nested deeper than {MAX_YAML_DEPTH} levels") from None


def environment_type(data: dict[str, Any], label: str = "scenario") -> str:
    """The scenario's ``environment.type``, checked against the registry."""
    env = data.get("environment")
    allowed = ", ".join(environments.names())
    if not isinstance(env, dict) or "type" not in env:
        _unknown_top_level_keys(data, label)  # 'enviroment:' gets the did-you-mean line every key gets
        raise ConfigError(f"{label}: environment.type: required field is missing; allowed: {allowed}")
    env_type = env["type"]
    if not isinstance(env_type, str) or env_type not in environments.names():
        raise ConfigError(f"{label}: environment.type: unknown environment {env_type!r}; allowed: {allowed}")
    return env_type


def _unknown_top_level_keys(data: dict[str, Any], label: str) -> None:
    unknown = {k: v for k, v in data.items() if k not in Scenario.model_fields}
    if unknown:
        try:  # only the unknown keys: the unknown-key check is the one error pydantic reports
            Scenario.model_validate(unknown)
        except ValidationError as err:
            raise ConfigError(format_errors(err, label)) from None


def dump_scenario(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
