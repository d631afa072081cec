"""What an environment tells the rest of normsim: one :class:`EnvironmentSpec` per family.

The spec is the one place that says everything environment-specific: the scenario's
``environment:`` block, the Mesa model, the scripted rules, the metrics and which of
them are headlines, the progress-bar fields, the report's plots, the shared mechanics
the environment supports (and what its norms and sanctions mean), the extra policies it
needs beyond the population (a forum's guardian and moderator), and an example scenario.
The runner, CLI, progress bar, reports and steering sweeps read it; nothing outside an
environment's package names the environment.

A third party registers an environment by exposing a spec under the Python entry point
group ``normsim.environments`` (``name = "package.module:SPEC"``) or by calling
:func:`environments.register` before loading a scenario; :func:`sim.testing.check_environment`
is the conformance suite it should pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import model_validator
from pydantic_core import PydanticCustomError

from agents.config import PolicyConfig
from agents.scripted import Rule
from sim.core.schema import StrictModel

MetricsFn = Callable[[pd.DataFrame, pd.DataFrame, Any], dict[str, Any]]
"""(events, steps, scenario) -> metrics; must work on empty and one-step logs."""


@dataclass(frozen=True)
class NormSpec:
    """What a norm is in this environment.

    ``kind``: a ``ceiling`` (acting above it violates, e.g. a harvest limit), a ``floor``
    (acting below it violates, e.g. a minimum contribution) or a ``rule`` (a written rule
    that content or a purchase breaks or keeps); ``unit`` is what the number counts.
    """

    kind: Literal["ceiling", "floor", "rule"]
    unit: str
    meaning: str


@dataclass(frozen=True)
class SanctionSpec:
    """Who may sanction whom, at what cost, in this environment."""

    by: str  # "peers", "the platform", "moderators"
    target: str  # whom a sanction hits
    cost: str  # what a sanction costs the sanctioner (and the target)
    meaning: str


class MechanicsBlock(StrictModel):
    """Base of an environment's ``mechanics:`` block: one field per supported mechanic.

    A mechanic the environment does not support is an unknown key, and the error names
    the environment and what it supports.
    """

    environment: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [str(k) for k in data if k not in cls.model_fields]
            if unknown:
                supported = ", ".join(sorted(cls.model_fields)) or "none"
                raise PydanticCustomError(
                    "unsupported_mechanic",
                    "{keys} not supported by the {env} environment; supported mechanics: {supported}",
                    {
                        "env": cls.environment,
                        "keys": ", ".join(f"'{k}'" for k in unknown) + (" is" if len(unknown) == 1 else " are"),
                        "supported": supported,
                    },
                )
        return data

    def enabled(self) -> list[str]:
        """Names of the mechanics switched on."""
        return [name for name in type(self).model_fields if getattr(getattr(self, name), "enabled", False)]


@dataclass(frozen=True)
class EnvironmentSpec:
    """Everything environment-specific, in one place (see the module docstring)."""

    name: str  # the scenario's `environment: {type: ...}`
    summary: str  # one line for help texts and docs
    config: type[StrictModel]  # the `environment:` block; its `type` field is Literal[name]
    mechanics: type[MechanicsBlock]  # the `mechanics:` block: the mechanics it supports
    model: type  # the Mesa model, a subclass of environments.base.SocietyModel
    rules: Mapping[str, Rule]  # scripted rules by name
    metrics: MetricsFn
    headline: tuple[str, ...]  # metrics `normsim run` prints, in order
    example: str  # an example scenario file (relative to the repository's scenarios/)
    progress: tuple[str, ...] = ()  # step-row fields shown beside the progress bar
    plots: str | None = None  # "module:function" (RunData -> list[Plot]); matplotlib loads only for reports
    plotted_steps: tuple[str, ...] = ()  # steps columns its plots show (the generic trends skip them)
    strategy: type[StrictModel] = StrictModel  # a group's `strategy:` block (initial strategy)
    # roles the environment needs beyond the population (a forum's guardian), from its
    # config: role -> policy block; the runner builds them like groups, so `policies=` reaches them
    extra_policies: Callable[[Any], dict[str, PolicyConfig]] = field(default=lambda env: {})
    # checks across blocks (scenario -> None; raise ValueError naming the field path)
    check: Callable[[Any], None] | None = None
    norm: NormSpec | None = None
    sanctions: SanctionSpec | None = None
    # the shared mechanics' meaning, mechanic name -> sentence (docs and `normsim validate`)
    mechanic_notes: Mapping[str, str] = field(default_factory=dict)
    # metric -> (low, high) it can take, for sweep intervals and plots; metrics not listed are
    # inferred (0/1 values, shares by name, survival_time in [0, run.steps], else observed)
    metric_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        type_field = self.config.model_fields.get("type")
        if type_field is None or type_field.default != self.name:
            raise ValueError(f"environment '{self.name}': its config class needs `type: Literal['{self.name}']`")
        if not issubclass(self.mechanics, MechanicsBlock):
            raise ValueError(f"environment '{self.name}': mechanics must derive from MechanicsBlock")
        if not self.headline:
            raise ValueError(f"environment '{self.name}': at least one headline metric")
        for metric, (low, high) in self.metric_ranges.items():
            if not low <= high:
                raise ValueError(f"environment '{self.name}': metric_ranges['{metric}'] needs low <= high")
        self.mechanics.environment = self.name

    @property
    def supported_mechanics(self) -> tuple[str, ...]:
        return tuple(self.mechanics.model_fields)
