"""The web shop's spec: everything the rest of normsim needs to know about it."""

from __future__ import annotations

from environments.spec import EnvironmentSpec, NormSpec, SanctionSpec
from environments.webshop import metrics
from environments.webshop.config import WebShopConfig, WebShopMechanics
from environments.webshop.model import WebShopModel
from environments.webshop.rules import RULES

SPEC = EnvironmentSpec(
    name="webshop",
    summary="shopping agents serve customers from 17 countries in a text shop with culture-specific norms (CASA)",
    config=WebShopConfig,
    mechanics=WebShopMechanics,
    model=WebShopModel,
    rules=RULES,
    metrics=metrics.compute,
    headline=(
        "violation_rate",
        "awareness_coverage",
        "mean_reward",
        "helpfulness",
        "false_alarm_rate",
        "mean_action_entropy",
    ),
    example="webshop_mixed.yaml",
    metric_ranges={"helpfulness": (0.0, 1.0)},
    progress=("episodes", "violations", "sanctions"),
    norm=NormSpec(
        kind="rule",
        unit="the customer's local norms (gift, food, colour and etiquette rules per country)",
        meaning="a purchase whose tags break the customer's local norm violates it",
    ),
    sanctions=SanctionSpec(
        by="the platform",
        target="a shopper whose purchase broke the customer's norm, when detected",
        cost="free for the platform; a fine (reward units) and/or a suspension for the shopper",
        meaning="central enforcement with graduated sanctions",
    ),
    mechanic_notes={
        "punishment": "the platform detects violating purchases and fines or suspends the shopper",
        "social_learning": "copy a better-paid peer's handling strategy (Fermi rule)",
        "norm_notes": "every k steps shoppers vote which reported norm becomes a shared note",
    },
)
