"""Configuration blocks of the decision layer: which policy decides for a group, and
where LLM policies run (in this process or on Ray model hosts).

They sit at the bottom of the package layers so that environments (a content guardian,
a moderator) and the engines can validate policy blocks without importing the scenario.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sim.core.schema import StrictModel, register_union_tags


class ScriptedPolicyConfig(StrictModel):
    """A rule-based policy; ``rule`` names one of the environment's scripted rules."""

    type: Literal["scripted"] = "scripted"
    rule: str


class LLMPolicyConfig(StrictModel):
    """A language model deciding by scoring options (see agents.llm)."""

    type: Literal["llm"] = "llm"
    model: str = "smollm2-135m"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    temperature: float = Field(1.0, ge=0.0)
    greedy: bool = False
    trust_remote_code: bool = False
    max_new_tokens: int = Field(24, ge=1, le=512)
    capture_layers: list[int] = Field(default_factory=list)


PolicyConfig = Annotated[
    Annotated[ScriptedPolicyConfig, "scripted"] | Annotated[LLMPolicyConfig, "llm"],
    Field(discriminator="type"),
]
register_union_tags({"scripted", "llm"})  # pydantic puts the tag in error paths; users never wrote it


class BackendConfig(StrictModel):
    kind: Literal["local", "ray"] = "local"
    address: str | None = Field(None, description="Ray address; none starts a private local cluster, 'auto' joins one")
    hosts: int = Field(1, ge=1, le=1024, description="model-host actors per distinct LLM config")
    num_gpus: float = Field(0.0, ge=0.0, description="GPUs per model host; fractions share a GPU")
    num_cpus: float | None = Field(
        None,
        gt=0.0,
        description="CPUs per model host (torch threads); default: 1 with a GPU, else the cluster's CPUs / hosts",
    )
    workers: int | None = Field(
        None, ge=1, description="simulations running at once; default: as many as the CPUs allow"
    )
    retries: int = Field(3, ge=0, le=100, description="restarts of a crashed host, and retries of its requests")
    batch_wait_ms: float = Field(
        5.0, ge=0.0, le=10_000, description="how long a host waits to merge concurrent batches"
    )
    merge_batches: bool = Field(
        True,
        description=(
            "merge concurrent simulations' batches into one forward pass (fast; float rounding then differs from a "
            "local run by ~1e-6); false serves each batch alone: bit-identical to local"
        ),
    )
