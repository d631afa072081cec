"""The commons' `environment:` block."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from environments.mechanics import SocialLearningConfig
from environments.spec import MechanicsBlock
from sim.core.schema import StrictModel

# Presets fill fields the scenario leaves unset. `rich` is GovSim's fishery (capacity
# 100, stock doubles after harvest); `scarce` starts at a third of capacity and
# regrows logistically, so greedy harvesting collapses it within a few rounds.
PRESETS: dict[str, dict[str, object]] = {
    "rich": {"capacity": 100.0, "initial_stock": 100.0, "regrowth": "doubling", "consumption": 2.0},
    "scarce": {
        "capacity": 100.0,
        "initial_stock": 40.0,
        "regrowth": "logistic",
        "growth_rate": 0.6,
        "consumption": 3.0,
    },
}


class CommonsConfig(StrictModel):
    type: Literal["commons"] = "commons"
    preset: Literal["rich", "scarce"] | None = None
    capacity: float = Field(100.0, gt=0, description="K, the stock's ceiling")
    initial_stock: float | None = Field(None, gt=0, description="R(0); default K")
    regrowth: Literal["doubling", "logistic"] = "doubling"
    growth_rate: float = Field(1.0, gt=0, description="r of logistic regrowth R + r R (1 - R/K)")
    collapse_threshold: float = Field(5.0, ge=0, description="C: the run ends when R < C after harvest")
    alpha: float = Field(1.0, gt=0, le=1, description="catchability: catch = alpha * effort * R")
    efforts: list[float] | None = Field(
        None,
        min_length=2,
        description=(
            "the harvest options, as fractions of the current stock; default: 0, 0.5, 1, 1.5, 2, 3 and 4 "
            "times the fair fraction f(R0)/(n R0) at the starting stock (GovSim's lake, 5 fishers: 0% to 40%)"
        ),
    )
    allocation: Literal["proportional", "random"] = "proportional"
    consumption: float = Field(2.0, ge=0, description="c, paid by every agent every round")
    insolvency: Literal["debt", "remove"] = Field(
        "debt", description="an agent that cannot pay c: goes into debt, or leaves"
    )
    public_catches: bool = Field(True, description="everyone sees everyone's catch after the harvest")
    public_record: int = Field(
        5,
        ge=0,
        description=(
            "entries of the public record (each month's catches and stock, each vote) every fisher reads; it opens "
            "every prompt, so all agents share it as one prefix that an LLM policy prefills once per step"
        ),
    )
    norm_options: list[Annotated[float, Field(ge=0)]] | None = Field(
        None, description="ceilings (tons per agent) agents may propose; default derived from capacity"
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _check(self) -> CommonsConfig:
        if self.efforts is not None and any(not 0 <= e <= 1 for e in self.efforts):
            raise ValueError("efforts must lie in [0, 1]")
        if self.initial_stock is not None and self.initial_stock > self.capacity:
            raise ValueError(f"initial_stock ({self.initial_stock}) exceeds capacity ({self.capacity})")
        return self


class PunishmentConfig(StrictModel):
    """Peer sanctions: a fisher watches one random peer and may fine a catch above the norm in force
    (G(t), else the fair share); the fine costs the punisher ``cost``."""

    enabled: bool = False
    monitor_prob: float = Field(0.5, ge=0.0, le=1.0, description="default chance to observe one random peer")
    punish_prob: float = Field(0.5, ge=0.0, le=1.0, description="default chance a scripted agent punishes a violator")
    cost: float = Field(1.0, ge=0.0, description="paid by the punisher")
    fine: float = Field(4.0, ge=0.0, description="paid by the punished")
    graduated: bool = Field(False, description="fine grows with the offender's earlier sanctions")
    fine_step: float = Field(2.0, ge=0.0, description="added to the fine per earlier sanction")
    max_fine: float = Field(20.0, ge=0.0)


class GroupNormConfig(StrictModel):
    """Collective choice of the norm: every ``every`` rounds each fisher proposes a catch ceiling
    (tons per fisher); the median or the most proposed becomes G(t)."""

    enabled: bool = False
    every: int = Field(3, ge=1, description="rounds between votes")
    rule: Literal["median", "majority"] = "median"
    initial: float | None = Field(None, ge=0.0, description="G(0); none means no norm until the first vote")
    proposal: Literal["choice", "text"] = Field(
        "choice", description="LLM agents pick a ceiling from options or write one"
    )


class CommonsMechanics(MechanicsBlock):
    punishment: PunishmentConfig = Field(default_factory=PunishmentConfig)
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)
    group_norm: GroupNormConfig = Field(default_factory=GroupNormConfig)


class CommonsStrategy(StrictModel):
    """A group's initial strategy; social learning copies it between fishers."""

    monitor_prob: float | None = Field(
        None, ge=0.0, le=1.0, description="chance to watch a random peer; default mechanics.punishment.monitor_prob"
    )
    punish_prob: float | None = Field(
        None, ge=0.0, le=1.0, description="chance a scripted fisher fines a violator; default mechanics.punishment"
    )
    norm: float | None = Field(
        None, ge=0.0, description="starting norm belief: the catch ceiling (tons per fisher) the fisher stands for"
    )
