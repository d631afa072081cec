"""The commons' spec: everything the rest of normsim needs to know about it."""

from __future__ import annotations

from typing import Any

from environments.commons import metrics
from environments.commons.config import CommonsConfig, CommonsMechanics, CommonsStrategy
from environments.commons.model import CommonsModel
from environments.commons.rules import RULES
from environments.spec import EnvironmentSpec, NormSpec, SanctionSpec


def check(scenario: Any) -> None:
    """Rule parameters the scripted rules need."""
    for i, group in enumerate(scenario.population):
        rule = group.policy.rule if group.policy.type == "scripted" else None
        if rule == "fixed" and group.strategy.amount is None:
            raise ValueError(f"population.{i}.strategy.amount: rule 'fixed' needs the tons it requests each month")


SPEC = EnvironmentSpec(
    name="commons",
    summary="a shared fish stock (GovSim's lake): harvest, sanctions, social learning and a voted catch limit",
    config=CommonsConfig,
    mechanics=CommonsMechanics,
    strategy=CommonsStrategy,
    model=CommonsModel,
    rules=RULES,
    metrics=metrics.compute,
    headline=(
        "survival_time",
        "survived",
        "efficiency",
        "equality",
        "over_usage",
        "norm_violation_rate",
        "punishment_rate",
        "mean_action_entropy",
    ),
    example="commons_scripted.yaml",
    metric_ranges={"efficiency": (0.0, 1.0), "equality": (0.0, 1.0), "over_usage": (0.0, 1.0)},
    progress=("stock", "group_norm", "punishments", "violations"),
    plots="environments.commons.plots:plots",
    plotted_steps=("stock", "group_norm", "punishments", "violations", "wealth_gini", "collapsed"),
    norm=NormSpec(
        kind="ceiling",
        unit="tons per fisher per month",
        meaning="a catch above the norm in force (G(t) once voted, else the fair share f(t)/n) violates it",
    ),
    sanctions=SanctionSpec(
        by="peers",
        target="a random peer the fisher watched, if its catch was above the norm",
        cost="`cost` to the punisher, `fine` (graduated if asked) to the punished, both in tons",
        meaning="Ostrom's monitoring and graduated sanctions",
    ),
    mechanic_notes={
        "punishment": "peers watch one random fisher and may fine a catch above the norm",
        "social_learning": "copy a better-off peer's rule and norm belief (Fermi rule)",
        "group_norm": "every k months the fishers vote a catch ceiling G(t) (median or majority)",
        "discussion": "after the catches are public the fishers talk in rounds; a limit a majority proposed is "
        "logged and becomes G(t)",
    },
    check=check,
)
