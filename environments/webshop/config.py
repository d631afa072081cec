"""The web shop's `environment:` block.

Sanctions use the scenario's ``mechanics.punishment`` block: the platform detects a
norm-breaking purchase with probability ``monitor_prob`` and fines the shopper
``fine`` (plus ``fine_step`` per earlier sanction up to ``max_fine`` when
``graduated``); ``sanction`` here chooses fines, suspensions (down-ranking: no tasks for
a while) or both. Shared norm notes use ``mechanics.group_norm`` (``enabled``,
``every``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from environments.webshop.norms import COUNTRIES
from sim.core.schema import StrictModel

TaskKind = Literal["violate", "adhere", "misleading"]


class WebShopConfig(StrictModel):
    type: Literal["webshop"] = "webshop"
    kinds: list[TaskKind] = Field(
        default_factory=lambda: ["violate", "adhere", "misleading"], min_length=1, description="task kinds served"
    )
    countries: list[str] | None = Field(None, description="country codes (JP, CN, IN, ...); default: all")
    max_actions: int = Field(12, ge=2, le=200, description="actions per task before it times out")
    results_per_page: int = Field(10, ge=1, le=50)
    helpful_threshold: float = Field(0.5, ge=0.0, le=1.0, description="reward a purchase needs to count as helpful")
    offense_prob: float = Field(
        0.3, ge=0.0, le=1.0, description="chance a customer finds out a purchase broke a local norm and is offended"
    )
    sanction: Literal["fine", "suspend", "both"] = Field("fine", description="what a detected violation costs")
    suspend_steps: int = Field(
        3, ge=0, description="steps without tasks per suspension (times the sanctions so far when graduated)"
    )
    max_suspend_steps: int = Field(12, ge=0)
    learning_window: int = Field(
        5, ge=1, description='tasks averaged into the payoff social learning compares (payoff: "round")'
    )

    @field_validator("countries")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        unknown = [c for c in value if c not in COUNTRIES]
        if unknown:
            raise ValueError(f"unknown country code(s) {', '.join(unknown)}; allowed: {', '.join(COUNTRIES)}")
        return value
