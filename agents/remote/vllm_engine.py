"""``engine: vllm``: vLLM's own engine (its ``LLM`` class) in a Ray actor.

One named actor per (model, dtype, tensor_parallel_size) on the Ray cluster
(``normsim-vllm-<hash>``): every simulation of a sweep finds it by name and sends it its
batches, as simulations share a model host (:mod:`agents.host`). The actor takes a GPU
when the cluster has one; with ``tensor_parallel_size > 1`` vLLM spreads the model over
that many GPUs with its own Ray executor. Automatic prefix caching is on, so the shared
system prompt of a phase is computed once.

What it answers is what :class:`agents.remote.policy.RemotePolicy` needs:

* ``render``: the prompt as the built-in engine renders it (:mod:`agents.llm.turns`: the
  model's chat template, or a base model's turn format);
* ``echo``: exact log-probabilities of given texts (``prompt_logprobs=0``: the prompt's own
  tokens), tokenised without added special tokens (the template holds them);
* ``complete``: seeded sampling with stop strings.

vllm is not importable beside this project's transformers (it pins an older one), so it
is imported only inside the actor; :func:`score_params`, :func:`generate_params` and
:func:`echo_from_output` build and read its requests without it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.remote.client import ECHO_CHUNK, Scored, ServerError, Usage
from agents.remote.options import Echo, echo_from_prompt_logprobs, exact_scores

ACTOR_PREFIX = "normsim-vllm"


def score_params() -> dict[str, Any]:
    """SamplingParams of a scoring request: the prompt's own log-probabilities, one greedy
    token generated (vLLM generates at least one)."""
    return {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0, "detokenize": False}


def generate_params(*, max_tokens: int, temperature: float, seed: int, stop: Sequence[str]) -> dict[str, Any]:
    """SamplingParams of a free-text request; temperature 0 is greedy decoding."""
    params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": max(0.0, temperature), "seed": int(seed)}
    if stop:
        params["stop"] = list(stop)
    return params


def engine_args(model_path: str, *, dtype: str, tensor_parallel_size: int, trust_remote_code: bool) -> dict[str, Any]:
    """Arguments of ``vllm.LLM``: prefix caching on, vLLM's Ray executor across GPUs."""
    args: dict[str, Any] = {
        "model": model_path,
        "dtype": dtype,
        "tensor_parallel_size": tensor_parallel_size,
        "enable_prefix_caching": True,
        "trust_remote_code": trust_remote_code,
        "seed": 0,
    }
    if tensor_parallel_size > 1:
        args["distributed_executor_backend"] = "ray"
    return args


def echo_from_output(output: Any) -> Echo:
    """An :class:`Echo` from a vLLM ``RequestOutput`` made with :func:`score_params`."""
    return echo_from_prompt_logprobs(list(output.prompt_token_ids), list(output.prompt_logprobs))


def actor_name(spec: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    return f"{ACTOR_PREFIX}-{digest}"


class VLLMEngine:
    """The actor's body: one ``vllm.LLM``."""

    def __init__(self, args: dict[str, Any]) -> None:
        from vllm import LLM  # only here: vllm lives where the actor runs

        self.llm = LLM(**args)
        self.tokenizer = self.llm.get_tokenizer()

    def ready(self) -> bool:
        return True

    def render(self, prompts: Sequence[tuple[str, str, str]]) -> list[str]:
        """Prompts as the built-in engine renders them (:mod:`agents.llm.turns`): the chat
        template, or a base model's documented turn format."""
        from agents.llm.turns import turn_format  # no torch: safe beside vLLM

        fmt = turn_format(self.tokenizer)
        return [fmt.render(self.tokenizer, system, user, prefix) for system, user, prefix in prompts]

    def _prompts(self, texts: Sequence[str]) -> list[dict[str, list[int]]]:
        ids = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [{"prompt_token_ids": list(i)} for i in ids]

    def echo(self, texts: Sequence[str]) -> list[tuple[list[int], list[Any]]]:
        from vllm import SamplingParams

        outputs = self.llm.generate(self._prompts(texts), SamplingParams(**score_params()), use_tqdm=False)
        result = []
        for out in outputs:
            echo = echo_from_output(out)
            result.append((list(echo.tokens), list(echo.logprobs)))
        return result

    def complete(self, texts: Sequence[str], params: Sequence[dict[str, Any]]) -> list[tuple[str, int, int]]:
        from vllm import SamplingParams

        sampling = [SamplingParams(**p) for p in params]
        outputs = self.llm.generate(self._prompts(texts), sampling, use_tqdm=False)
        return [(o.outputs[0].text, len(o.prompt_token_ids), len(o.outputs[0].token_ids)) for o in outputs]


def _model_path(model: str) -> str:
    """A local checkpoint vLLM can read: the embedded default converted once, a folder, or a hub id."""
    from agents.llm import loading  # torch and transformers: only for engine vllm

    if model in loading.EMBEDDED:
        return str(loading.convert_embedded(model))
    return str(Path(model)) if Path(model).is_dir() else model


class VLLMServer:
    """The driver's handle on the shared vLLM actor, with the primitives of a remote front."""

    def __init__(self, cfg: Any) -> None:
        import ray

        from agents.cluster import ensure_ray
        from agents.config import BackendConfig

        ensure_ray(BackendConfig(kind="ray"))
        dtype = "float32" if cfg.dtype == "auto" and not ray.cluster_resources().get("GPU") else cfg.dtype
        args = engine_args(
            _model_path(cfg.model),
            dtype=dtype,
            tensor_parallel_size=cfg.tensor_parallel_size,
            trust_remote_code=cfg.trust_remote_code,
        )
        # One GPU for the actor itself; with several, vLLM's Ray executor places its own workers.
        gpus = 1 if ray.cluster_resources().get("GPU") and cfg.tensor_parallel_size == 1 else 0
        self.key = ("vllm", cfg.model, dtype, str(cfg.tensor_parallel_size))
        self.timeout = float(cfg.timeout)
        self.actor = (
            ray.remote(VLLMEngine)
            .options(name=actor_name(args), get_if_exists=True, num_gpus=gpus, max_concurrency=1)
            .remote(args)
        )
        ray.get(self.actor.ready.remote())

    def _get(self, ref: Any, items: int) -> Any:
        """The actor's answer, or one ServerError line once ``policy.timeout`` has passed per
        32 items (what one request of the openai engine carries), never a wait without end."""
        import ray

        limit = self.timeout * max(1, math.ceil(items / ECHO_CHUNK))
        try:
            return ray.get(ref, timeout=limit)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref)
            raise ServerError(
                f"engine vllm: no answer for {items} texts within {limit:.0f} s (policy.timeout: {self.timeout:g} s "
                "per 32); is the GPU shared or the model too large for it?"
            ) from None

    def mode(self, preference: str, usage: Usage) -> str:
        return "exact"  # prompt log-probabilities are always there

    def map(self, fn: Any, items: Any) -> list[Any]:
        return [fn(item) for item in items]  # the actor batches; requests need no fan-out

    def render(self, system: str, user: str, answer_prefix: str, usage: Usage) -> str:
        return self.render_many([(system, user, answer_prefix)])[0]

    def render_many(self, prompts: Sequence[tuple[str, str, str]]) -> list[str]:

        return self._get(self.actor.render.remote(list(prompts)), len(prompts))

    def score(self, contexts: Sequence[str], options: Sequence[Sequence[str]], usage: Usage) -> list[Scored]:
        """Exact option scores from prompt log-probabilities of context and context + option."""

        texts = list(
            dict.fromkeys(t for c, opts in zip(contexts, options, strict=True) for t in (c, *(c + o for o in opts)))
        )
        answers = self._get(self.actor.echo.remote(texts), len(texts))
        usage.requests += 1
        usage.prompt_tokens += sum(len(ids) for ids, _ in answers)
        echoes = {t: Echo(tuple(ids), tuple(lps)) for t, (ids, lps) in zip(texts, answers, strict=True)}
        out = []
        for ctx, opts in zip(contexts, options, strict=True):
            logprobs, lengths = exact_scores(echoes[ctx], [echoes[ctx + o] for o in opts])
            out.append(Scored(logprobs, lengths, len(echoes[ctx].tokens) - 1))
        return out

    def complete(
        self, text: str, *, max_tokens: int, temperature: float, seed: int, stop: Sequence[str], usage: Usage
    ) -> tuple[str, dict[str, int]]:

        params = generate_params(max_tokens=max_tokens, temperature=temperature, seed=seed, stop=stop)
        reply, n_prompt, n_out = self._get(self.actor.complete.remote([text], [params]), 1)[0]
        usage.requests += 1
        usage.prompt_tokens += n_prompt
        usage.completion_tokens += n_out
        return reply, {"prompt_tokens": n_prompt, "completion_tokens": n_out}
