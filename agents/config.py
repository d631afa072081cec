"""Configuration blocks of the decision layer: which policy decides for a group, and
where LLM policies run (in this process or on Ray model hosts).

They sit at the bottom of the package layers so that environments (a content guardian,
a moderator) and the engines can validate policy blocks without importing the scenario.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sim.core.schema import StrictModel, register_union_tags


class ScriptedPolicyConfig(StrictModel):
    """A rule-based policy; ``rule`` names one of the environment's scripted rules."""

    type: Literal["scripted"] = "scripted"
    rule: str


# Fields that only some engines read; setting one for another engine is a mistake worth naming.
_ENGINE_FIELDS: dict[str, tuple[str, ...]] = {
    "base_url": ("openai",),
    "api_key_env": ("openai",),
    "concurrency": ("openai",),
    "timeout": ("openai", "vllm"),
    "max_retries": ("openai",),
    "prob_source": ("openai",),
    "on_bad_reply": ("openai",),
    "top_logprobs": ("openai",),
    "samples": ("openai",),
    "cache": ("openai",),
    "usd_per_mtok_prompt": ("openai",),
    "usd_per_mtok_completion": ("openai",),
    "tensor_parallel_size": ("vllm",),
    "stop": ("vllm", "openai"),
    "device": ("hf",),
    "dtype": ("hf", "vllm"),
    "trust_remote_code": ("hf", "vllm"),
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LLMPolicyConfig(StrictModel):
    """A language model deciding by scoring options.

    ``engine`` says who runs it: ``hf`` (normsim's own engine, agents.llm: steering and
    activation capture), ``vllm`` (vLLM's engine in a Ray actor) or ``openai`` (any
    OpenAI-compatible HTTP server, agents.remote). See docs/models.md.
    """

    type: Literal["llm"] = "llm"
    engine: Literal["hf", "vllm", "openai"] = "hf"
    model: str = "smollm2-135m"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    temperature: float = Field(1.0, ge=0.0)
    greedy: bool = False
    trust_remote_code: bool = False
    max_new_tokens: int = Field(24, ge=1, le=512)
    capture_layers: list[int] = Field(default_factory=list)
    stop: list[str] = Field(default_factory=list, description="stop strings of free-text replies (vllm, openai)")
    # engine: openai
    base_url: str | None = Field(None, description="the server's OpenAI API root, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str | None = Field(
        None, description="NAME of the environment variable holding the API key (never the key itself)"
    )
    concurrency: int = Field(8, ge=1, le=1024, description="requests in flight at once")
    timeout: float = Field(60.0, gt=0.0, description="seconds per request (vllm: per 32 texts of a batch)")
    max_retries: int = Field(3, ge=0, le=20, description="retries with backoff on 429, 5xx and lost connections")
    prob_source: Literal["auto", "exact", "topk", "sampled"] = Field(
        "auto", description="how option distributions are obtained; auto: the best the server offers"
    )
    on_bad_reply: Literal["fail", "skip"] = Field(
        "fail",
        description="a decision the server's replies cannot score (after retries): fail the run, or skip: log it "
        "as failed (prob_source: failed) and count it in metrics.json",
    )
    top_logprobs: int = Field(20, ge=1, le=20, description="top log-probabilities asked for (prob_source topk)")
    samples: int = Field(8, ge=1, le=128, description="answers drawn per decision (prob_source sampled)")
    cache: str | None = Field(None, description="directory of the on-disk request cache (replays runs offline)")
    usd_per_mtok_prompt: float = Field(0.0, ge=0.0, description="price per million prompt tokens, for metrics")
    usd_per_mtok_completion: float = Field(0.0, ge=0.0, description="price per million completion tokens")
    # engine: vllm
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="GPUs one vLLM engine spans (vLLM's Ray executor)")

    @model_validator(mode="after")
    def _engine_fields(self) -> LLMPolicyConfig:
        for name, engines in sorted(_ENGINE_FIELDS.items()):
            # Only a value other than the default is a mistake: a run's config.yaml lists
            # every field, defaults included, and must load again.
            default = type(self).model_fields[name].get_default(call_default_factory=True)
            if self.engine not in engines and getattr(self, name) != default:
                raise ValueError(f"policy.{name} applies to engine {' or '.join(engines)}, not '{self.engine}'")
        if self.capture_layers and self.engine != "hf":
            raise ValueError(
                f"policy.capture_layers needs engine hf (the built-in engine); engine '{self.engine}' "
                "cannot capture activations"
            )
        if self.engine == "openai" and not self.base_url:
            raise ValueError("policy.base_url is required for engine openai (e.g. http://127.0.0.1:8000/v1)")
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            raise ValueError(
                "policy.api_key_env must be the NAME of an environment variable (letters, digits, _), "
                "never the key itself"
            )
        if self.engine == "vllm" and importlib.util.find_spec("vllm") is None:
            raise ValueError(
                "policy.engine: vllm needs the vllm package, which is not installed in this environment; "
                "serve the model with `vllm serve` and use engine: openai, or install vllm"
            )
        return self


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
