"""The bandit's `environment:` block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.core.schema import StrictModel


class BanditConfig(StrictModel):
    """Every agent plays its own bandit (independent arms and rewards) for run.steps
    rounds, so one batched policy call per round serves the whole population."""

    type: Literal["bandit"] = "bandit"
    arms: list[str] = Field(default_factory=lambda: ["blue", "red"], min_length=2, description="button names")
    means: list[float] | None = Field(
        None, description="every agent's arm means; default: drawn per agent, uniform in mean_range"
    )
    mean_range: tuple[float, float] = Field((0.0, 10.0), description="range the arm means are drawn from")
    noise: float = Field(3.0, ge=0.0, description="standard deviation of a reward around its arm's mean")
    history: int | None = Field(None, ge=1, description="rounds the prompt shows (latest); default: all of them")

    @model_validator(mode="after")
    def _check(self) -> BanditConfig:
        if len(set(self.arms)) != len(self.arms):
            raise ValueError("arm names must differ")
        if self.means is not None and len(self.means) != len(self.arms):
            raise ValueError(f"means has {len(self.means)} values for {len(self.arms)} arms")
        lo, hi = self.mean_range
        if lo > hi:
            raise ValueError(f"mean_range ({lo}, {hi}) is empty")
        return self
