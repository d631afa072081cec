"""The commons' `environment:` block."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from environments.mechanics import DiscussionConfig, SocialLearningConfig
from environments.spec import MechanicsBlock
from sim.core.schema import StrictModel

# Presets fill fields the scenario leaves unset. `rich` and `scarce` differ in ONE
# parameter, the starting stock (100 vs 40 tons of a 100-ton lake; both double after
# the harvest up to capacity, both cost 2 tons a month to live), so a rich-vs-scarce
# contrast measures the starting abundance and nothing else. `govsim` is GovSim's
# fishery as its code runs it (docs/govsim.md): whole tons, a random ton-by-ton split of
# an over-demanded stock, the threshold shown as floor(floor(R/2)/n), free-number catches.
PRESETS: dict[str, dict[str, object]] = {
    "rich": {"capacity": 100.0, "initial_stock": 100.0, "regrowth": "doubling", "consumption": 2.0},
    "scarce": {"capacity": 100.0, "initial_stock": 40.0, "regrowth": "doubling", "consumption": 2.0},
    "govsim": {
        "capacity": 100.0,
        "initial_stock": 100.0,
        "regrowth": "doubling",
        "collapse_threshold": 5.0,
        "consumption": 0.0,
        "whole_tons": True,
        "harvest": "amount",
        "allocation": "stochastic",
        "threshold": "govsim",
        "show_threshold": True,
    },
}


class CommonsConfig(StrictModel):
    type: Literal["commons"] = "commons"
    preset: Literal["rich", "scarce", "govsim"] | None = None
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
    allocation: Literal["proportional", "random", "stochastic"] = Field(
        "proportional",
        description=(
            "split of an over-demanded stock: proportional to demand (whole tons: floor(R d_i / D), leftover tons "
            "to rounded-down fishers at random); random: fishers served whole in a seeded random order; "
            "stochastic: one ton at a time to a random fisher who still wants fish (GovSim's default)"
        ),
    )
    whole_tons: bool = Field(False, description="stock, demands and catches are whole tons (GovSim counts in int)")
    harvest: Literal["effort", "amount"] = Field(
        "effort",
        description=(
            "effort: pick one of `efforts` (fractions of the stock); amount: name a whole number of tons "
            "from 0 to the stock (GovSim), the LLM's exact distribution over every number is logged"
        ),
    )
    threshold: Literal["exact", "govsim"] = Field(
        "exact",
        description=(
            "the per-fisher sustainable share shown and judged against: exact f(t)/n, or GovSim's "
            "floor(floor(R/2)/n) (10 tons at 100 tons and 5 fishers)"
        ),
    )
    consumption: float = Field(2.0, ge=0, description="c, paid by every agent every round")
    insolvency: Literal["debt", "remove"] = Field(
        "debt", description="an agent that cannot pay c: goes into debt, or leaves"
    )
    show_threshold: bool = Field(
        False,
        description=(
            "LLM fishers read GovSim's universalization hint: 'if every fisher catches more than <share> tons, "
            "the lake will shrink next month' (GovSim's baseline leaves it out; its universalization runs show it)"
        ),
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
        None,
        description=(
            "ceilings (tons per agent) agents may propose; default 0.25-3 x the fair share at capacity, "
            "or every whole ton 1..capacity/n with whole_tons"
        ),
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
        if self.harvest == "amount" and not self.whole_tons:
            raise ValueError("harvest: amount names whole tons; set whole_tons: true")
        if self.allocation == "stochastic" and not self.whole_tons:
            raise ValueError("allocation: stochastic hands out whole tons; set whole_tons: true")
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
    discussion: DiscussionConfig = Field(default_factory=DiscussionConfig)


class CommonsStrategy(StrictModel):
    """A group's initial strategy; social learning copies it between fishers."""

    monitor_prob: float | None = Field(
        None, ge=0.0, le=1.0, description="chance to watch a random peer; default mechanics.punishment.monitor_prob"
    )
    punish_prob: float | None = Field(
        None, ge=0.0, le=1.0, description="chance a scripted fisher fines a violator; default mechanics.punishment"
    )
    norm: float | None = Field(
        None,
        ge=0.0,
        description=(
            "starting norm belief: the catch ceiling (tons per fisher) the fisher stands for; an LLM fisher reads "
            "it in its prompt. Default none: no belief until the fisher votes or talks (no number in the prompt)"
        ),
    )
    amount: float | None = Field(None, ge=0.0, description="rule `fixed`: tons requested every month")
    factor: float | None = Field(
        None, ge=0.0, description="rule `share`: requests factor x the sustainable share shown (default 1)"
    )
