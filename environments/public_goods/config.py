"""The public-goods game's `environment:` block and its `mechanics:` block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from environments.mechanics import SocialLearningConfig
from environments.spec import MechanicsBlock
from sim.core.schema import StrictModel


class PublicGoodsConfig(StrictModel):
    """Fehr & Gächter's linear public-goods game: every round each member of a group gets
    ``endowment`` tokens and puts c_i of them (a whole number, 0..endowment) into a group
    project, all at the same time; the project pays ``mpcr`` × the group's total to every
    member, so π_i = endowment − c_i + mpcr × Σ_j c_j. Contributions are revealed to the
    group after each round. One round is one step (run.steps rounds; the papers play 10)."""

    type: Literal["public_goods"] = "public_goods"
    group_size: int = Field(4, ge=2, le=100, description="members per group; the population must split evenly")
    endowment: int = Field(
        20, ge=1, le=100, description="tokens each member gets per round; contributions 0..endowment"
    )
    mpcr: float = Field(
        0.4, gt=0.0, le=1.0, description="marginal per-capita return: what each contributed token pays every member"
    )
    matching: Literal["partner", "stranger"] = Field(
        "partner", description="partner: fixed groups for the whole run; stranger: groups re-drawn every round (seeded)"
    )
    history: int = Field(
        3, ge=0, le=100, description="past rounds of the agent's group an LLM member reads (contributions, earnings)"
    )


class PunishmentConfig(StrictModel):
    """Costly peer punishment (Fehr & Gächter 2002): after contributions are revealed, each
    member assigns 0..max_points punishment points to each other member of its group; a point
    costs the punisher ``cost`` and takes ``impact`` from the target."""

    enabled: bool = False
    max_points: int = Field(10, ge=1, le=30, description="most points a member may assign to one other member")
    cost: float = Field(1.0, ge=0.0, description="tokens a point costs the member who assigns it")
    impact: float = Field(3.0, ge=0.0, description="tokens a point takes from the member who receives it")
    floor: Literal["round_income", "none"] = Field(
        "round_income",
        description=(
            "round_income: punishment received takes at most the target's earnings of the round from the "
            "contribution stage (never below 0, as in the papers); the punisher's own costs are always paid in full. "
            "none: no floor"
        ),
    )


class PublicGoodsMechanics(MechanicsBlock):
    punishment: PunishmentConfig = Field(default_factory=PunishmentConfig)
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)


class PublicGoodsStrategy(StrictModel):
    """A group's initial strategy, read by the conditional rules (``conditional``,
    ``punisher``); social learning copies it along with the rule."""

    start: float = Field(
        0.5, ge=0.0, le=1.0, description="round-1 contribution of the conditional rules, as a share of the endowment"
    )
    reciprocity: float = Field(
        1.0,
        ge=0.0,
        le=2.0,
        description=(
            "share of the other members' mean (last round) the conditional rules contribute; below 1 is the "
            "'imperfect' conditional cooperation Fischbacher & Gächter (2010) find drives the decay"
        ),
    )
