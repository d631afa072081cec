"""The web shop's `environment:` block.

Sanctions use the scenario's ``mechanics.punishment`` block (:class:`PlatformSanctionConfig`):
the platform detects a norm-breaking purchase with probability ``detect_prob`` and fines
the shopper ``fine`` (plus ``fine_step`` per earlier sanction up to ``max_fine`` when
``graduated``); ``sanction`` here chooses fines, suspensions (down-ranking: no tasks for
a while) or both. Shared norm notes use ``mechanics.norm_notes`` (``enabled``, ``every``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from environments.mechanics import SocialLearningConfig
from environments.spec import MechanicsBlock
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


class PlatformSanctionConfig(StrictModel):
    """The platform, not peers, sanctions: it detects a purchase that broke the customer's
    local norm with ``detect_prob`` and fines (and/or suspends) the shopper; nobody pays
    to punish."""

    enabled: bool = False
    detect_prob: float = Field(0.5, ge=0.0, le=1.0, description="chance the platform detects a violating purchase")
    fine: float = Field(4.0, ge=0.0, description="paid by the shopper, in reward units")
    graduated: bool = Field(False, description="fine (and suspension) grows with the shopper's earlier sanctions")
    fine_step: float = Field(2.0, ge=0.0, description="added to the fine per earlier sanction")
    max_fine: float = Field(20.0, ge=0.0)


class NormNotesConfig(StrictModel):
    """Collective norm notes: every ``every`` steps shoppers vote which reported norm
    becomes a shared note that every shopper's prompt shows from then on."""

    enabled: bool = False
    every: int = Field(3, ge=1, description="steps between votes")


class WebShopMechanics(MechanicsBlock):
    punishment: PlatformSanctionConfig = Field(default_factory=PlatformSanctionConfig)
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)
    norm_notes: NormNotesConfig = Field(default_factory=NormNotesConfig)
