"""The public-goods game's spec: everything the rest of normsim needs to know about it."""

from __future__ import annotations

from typing import Any

from environments.public_goods import metrics
from environments.public_goods.config import PublicGoodsConfig, PublicGoodsMechanics, PublicGoodsStrategy
from environments.public_goods.model import PublicGoodsModel
from environments.public_goods.rules import RULES
from environments.spec import EnvironmentSpec, NormSpec, SanctionSpec


def check(scenario: Any) -> None:
    n, size = scenario.n_agents, scenario.environment.group_size
    if n % size:
        raise ValueError(
            f"population: {n} members do not split into groups of environment.group_size={size}; "
            f"use a multiple of {size}"
        )


SPEC = EnvironmentSpec(
    name="public_goods",
    summary="Fehr & Gächter's public-goods game in groups, with optional costly punishment (a human baseline)",
    config=PublicGoodsConfig,
    mechanics=PublicGoodsMechanics,
    strategy=PublicGoodsStrategy,
    model=PublicGoodsModel,
    rules=RULES,
    metrics=metrics.compute,
    headline=(
        "contribution_share",
        "first_round_share",
        "last_round_share",
        "human_gap",
        "efficiency",
        "punishment_points_per_member",
        "punishment_on_below",
        "mean_action_entropy",
    ),
    example="public_goods_punishment.yaml",
    progress=("contribution_share", "punishment_points", "efficiency"),
    plots="environments.public_goods.plots:plots",
    plotted_steps=("mean_contribution", "contribution_share", "punishment_points", "punished", "violations"),
    check=check,
    norm=NormSpec(
        kind="floor",
        unit="tokens contributed per round",
        meaning="contributing less than the other members' mean contribution of the round is what punishment targets",
    ),
    sanctions=SanctionSpec(
        by="peers: every other member of the group, after contributions are revealed",
        target="any other member of the group, 0..max_points points each",
        cost="`cost` per point to the punisher (1), `impact` per point to the punished (3), Fehr & Gächter 2002",
        meaning="altruistic punishment: costly to the punisher, no material gain in the round it is paid",
    ),
    mechanic_notes={
        "punishment": "after contributions are revealed, each member assigns 0..max_points points to each other member",
        "social_learning": "copy a better-paid member's rule (Fermi rule)",
    },
)
