"""The ``steering:`` block of a population group (no torch here: scenarios load fast).

Either a saved vector or an inline fit spec, plus how to apply it::

    steering:
      vector: vectors/bandit_east.safetensors   # or: fit: {method: east, runs: [runs/bandit_llm-seed0]}
      layers: [15]                              # default: every layer of the vector
      coefficient: 4.0
      positions: [last_prompt, generated]
      operator: add                             # add | add_norm | rotate | ablate
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from sim.core.schema import StrictModel

Position = Literal["last_prompt", "all_prompt", "generated"]
Operator = Literal["add", "add_norm", "rotate", "ablate"]
Method = Literal["east", "contrastive", "pca", "success"]


class FitSpec(StrictModel):
    """Fit a vector when the scenario starts (cached by spec, so once per machine).

    * ``east`` and ``success``: from runs written with ``capture_layers`` on;
    * ``contrastive`` (mean difference): ``positive``/``negative`` are two prompt files
      (YAML), or, with ``runs``, two event filters such as ``persona=altruistic`` that
      split the runs' captured decisions;
    * ``pca``: from two prompt files of paired prompts.
    """

    method: Method
    layers: list[int] = Field(min_length=1, description="decoder layers to fit (layer L = output of block L)")
    runs: list[str] = Field(default_factory=list, description="run directories to fit from")
    phase: str | None = Field(None, description="only decisions of this phase (default: all)")
    positive: str | None = Field(None, description="prompt file, or with runs an event filter 'column=value'")
    negative: str | None = None
    quantile: float = Field(0.5, gt=0, lt=1, description="success: payoff quantile splitting success/failure")
    center: Literal["episode", "step", "episode+step"] = Field(
        "episode",
        description="east: subtract each episode's mean (EAST), each step's mean across agents (removes the "
        "context's drift within episodes), or both",
    )

    @model_validator(mode="after")
    def _check(self) -> FitSpec:
        if self.method in ("east", "success") and not self.runs:
            raise ValueError(f"fit.method {self.method} needs runs (directories written with capture_layers)")
        if self.method in ("contrastive", "pca") and (self.positive is None or self.negative is None):
            raise ValueError(f"fit.method {self.method} needs positive and negative (prompt files or run filters)")
        if self.method == "pca" and self.runs:
            raise ValueError("fit.method pca needs paired prompt files, not runs")
        return self


class SteeringConfig(StrictModel):
    vector: str | None = Field(None, description="a saved steering vector (.safetensors with its .json)")
    fit: FitSpec | None = None
    layers: list[int] | None = Field(None, description="apply at these layers of the vector (default: all)")
    coefficient: float = Field(0.0, description="add/add_norm: multiplier; rotate: degrees; ablate: fraction removed")
    positions: list[Position] = Field(default_factory=lambda: ["last_prompt", "generated"], min_length=1)
    operator: Operator = "add"
    gate: float | None = Field(None, ge=-1, le=1, description="add only where cos(h, v) < gate (success vectors)")
    generated_tokens: int | None = Field(None, ge=1, description="steer only the first N generated tokens")

    @model_validator(mode="after")
    def _check(self) -> SteeringConfig:
        if (self.vector is None) == (self.fit is None):
            raise ValueError("steering needs exactly one of vector (a file) or fit (an inline fit spec)")
        if self.gate is not None and self.operator not in ("add", "add_norm"):
            raise ValueError(f"a cosine gate applies to add and add_norm, not {self.operator}")
        return self


@dataclass(frozen=True)
class SteerSpec:
    """One group's steering as it travels with each request to the backend (possibly
    in another process): plain, hashable data. Requests with equal (vector, layers,
    operator, gate) share one bank row; coefficient and positions are per row."""

    vector: str  # path of the saved vector
    layers: tuple[int, ...]
    coefficient: float
    positions: str  # "last_prompt+generated"
    operator: str = "add"
    gate: float | None = None
    generated_tokens: int | None = None

    @property
    def bank_key(self) -> tuple[str, tuple[int, ...], str, float | None]:
        return (self.vector, self.layers, self.operator, self.gate)

    @property
    def label(self) -> str:
        """How events name the vector: file stem, layers and operator."""
        return f"{Path(self.vector).stem}@{','.join(map(str, self.layers))}:{self.operator}"
