"""Measurements of the LLM decision path (reused by ``normsim bench``).

* :func:`env_requests`: realistic requests of any registered environment for n agents
  (its example scenario, scripted, is played for a few steps so memories are filled,
  then one step's requests of its main decision phase are recorded);
* :func:`decisions_per_second`: decisions per second of (a) the usual LLM-agent way,
  one ``generate`` call per agent whose reply is parsed into an option, and (b) this
  package's batched, prefix-reusing exact scorer, on the same requests, side by side;
* :func:`load_seconds`: the default model's load time with an empty cache (GGUF
  dequantisation + conversion) and from the safetensors cache;
* :func:`dtype_comparison`: scoring time per dtype and how far each moves the probabilities.

``python -m sim.bench.measure --agents 16 --dtypes`` prints all of them as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import environments
from agents.interfaces import Decision, DecisionRequest, nearest_option
from agents.scripted import Rule, ScriptedPolicy
from sim.bench.scale import scripted_scenario

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class _Recorder:
    """Scripted decisions, keeping the requests. Deliberately not a ScriptedPolicy: an
    environment builds prompt text only for agents whose policy reads it, and the
    recorded requests must carry the prompts an LLM would see."""

    def __init__(self, rules: Mapping[str, Rule]) -> None:
        self.inner = ScriptedPolicy(rules)
        self.seen: list[DecisionRequest] = []

    def decide(self, requests: Sequence[DecisionRequest], rng: np.random.Generator) -> list[Decision]:
        self.seen.extend(requests)
        return self.inner.decide(requests, rng)


def env_requests(
    name: str | None = None, n_agents: int = 16, *, warmup: int = 3, seed: int = 0, live: bool = True
) -> list[DecisionRequest]:
    """One step's requests of the environment's main decision phase for n agents.

    The spec's example scenario (its scripted groups, shares kept, scaled to n agents)
    is played for up to ``warmup`` steps so memories are filled; of each step's
    requests, those of the phase with the most requests count. ``live`` (the default):
    the latest step's whose options all read differently
    (:func:`sim.bench.live.check_requests`), since a scripted commons at 16 agents is
    fished out by its third step and its "0 tons" options would let any engine pass;
    :class:`sim.bench.live.DegenerateRequests` if no step is live. ``live=False``: the
    step after ``warmup``, whatever it holds. ``name`` None: the :func:`reference_environment`.
    """
    from sim.bench.live import DegenerateRequests, same_options

    spec = environments.get(name or reference_environment())
    scenario = scripted_scenario(spec.name, n_agents, seed=seed)
    recorder = _Recorder(spec.rules)
    model = spec.model(scenario, {g.name: recorder for g in scenario.population})
    chosen: list[DecisionRequest] = []
    for step in range(warmup + 1):
        if live and not model.running:  # an ended society (a collapsed fishery) decides nothing live
            break
        recorder.seen.clear()
        model.step()
        phases = Counter(r.phase for r in recorder.seen)
        if not phases:
            continue
        main = max(phases, key=lambda p: (phases[p], p))
        requests = [r for r in recorder.seen if r.phase == main]
        if not live or not any(same_options(r) for r in requests):
            chosen = requests
        if not live and step == warmup:
            return requests
    if not chosen:
        if not live:
            raise ValueError(f"environment '{spec.name}' made no decisions in step {warmup + 1} of its example")
        raise DegenerateRequests(
            f"environment '{spec.name}' at {n_agents} agents: no step of the first {warmup + 1} of its example had "
            "requests whose options all read differently"
        )
    return chosen


def graded(requests: Sequence[DecisionRequest]) -> bool:
    """A graded numeric choice: at least three options, each with a number the naive way can parse."""
    return bool(requests) and all(
        r.kind == "choice" and len(r.options) >= 3 and all(_NUMBER.search(o) for o in r.options) for r in requests
    )


@functools.cache
def reference_environment() -> str:
    """The environment the engine sections measure by default: the first registered one
    whose main decision phase is a graded numeric choice (where the naive way's number
    parsing is meaningful), else the first registered one."""
    names = environments.names()
    for name in names:
        try:
            if graded(env_requests(name, 3, warmup=0)):
                return name
        except Exception:  # an environment that cannot be played small is no reference
            continue
    return names[0]


def parse_option(reply: str, request: DecisionRequest) -> int | None:
    """The naive way's parser: for numeric options, the first number in the reply matched
    to the options' leading numbers; otherwise the first option named in the reply
    (None when neither is found)."""
    if all(_NUMBER.search(o) for o in request.options):
        match = _NUMBER.search(reply)
        if match is None:
            return None
        leading = [float(_NUMBER.search(o).group()) for o in request.options]  # type: ignore[union-attr]
        return nearest_option(leading, float(match.group()))
    low = reply.lower()
    found = [(low.find(o.lower()), i) for i, o in enumerate(request.options) if o.lower() in low]
    return min(found)[1] if found else None


def naive_generate(
    backend: Any, requests: Sequence[DecisionRequest], *, max_new_tokens: int = 16, seed: int = 0
) -> tuple[list[int | None], list[str]]:
    """(a) One ``model.generate`` call per agent, sampling, then parsing the reply."""
    import torch

    tok, model = backend.tokenizer, backend.model
    choices, replies = [], []
    torch.manual_seed(seed)
    for req in requests:
        text = backend.render(req.prompt.system, req.prompt.user, req.prompt.answer_prefix)
        ids = torch.tensor(backend.encode([text]), device=backend.device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                pad_token_id=backend.pad_id,
            )
        reply = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        replies.append(reply)
        choices.append(parse_option(reply, req))
    return choices, replies


def decisions_per_second(
    backend: Any, requests: Sequence[DecisionRequest], *, repeats: int = 2, max_new_tokens: int = 16
) -> dict[str, Any]:
    """Both ways on the same requests: best of ``repeats`` interleaved timed runs after one warm-up each."""
    from agents.llm.policy import LLMPolicy

    policy = LLMPolicy(backend)
    n = len(requests)

    def batched() -> Any:
        backend._prefixes.clear()  # every batch pays its own prefix prefill: no head start across calls
        return policy.decide(requests, np.random.default_rng(0))

    def naive() -> Any:
        return naive_generate(backend, requests, max_new_tokens=max_new_tokens)

    ways = {"naive_generate": naive, "batched_scoring": batched}
    warm = {name: fn() for name, fn in ways.items()}  # one-time costs (kernel set-up) stay out of the timings
    wall: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeats):  # interleaved, so a change in machine load hits both ways alike
        for name, fn in ways.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    out: dict[str, Any] = {"agents": n, "threads": _threads(), "dtype": str(backend.dtype).removeprefix("torch.")}
    for name in ways:
        best = min(wall[name])
        out[name] = {
            "seconds": round(best, 3),
            "cpu_seconds": round(min(cpu[name]), 3),
            "decisions_per_second": round(n / best, 2),
        }
    choices, replies = warm["naive_generate"]
    out["naive_generate"]["parse_failures"] = sum(c is None for c in choices)
    out["naive_generate"]["example_reply"] = replies[0]
    out["speedup"] = round(out["naive_generate"]["seconds"] / out["batched_scoring"]["seconds"], 1)
    return out


def dtype_comparison(
    requests: Sequence[DecisionRequest],
    model: str = "smollm2-135m",
    dtypes: Sequence[str] = ("float32", "bfloat16"),
    repeats: int = 2,
) -> dict[str, Any]:
    """Batched scoring time per dtype on this device, and each dtype's largest probability
    difference from float32 (the reference precision)."""
    from agents.interfaces import softmax
    from agents.llm import get_backend
    from agents.llm.backend import ScoreItem

    items = [ScoreItem(r.prompt.system, r.prompt.user, r.prompt.answer_prefix, tuple(r.options)) for r in requests]
    out: dict[str, Any] = {}
    reference = None
    for dtype in dtypes:
        backend = get_backend(model, dtype=dtype)

        def score(backend: Any = backend) -> Any:
            backend._prefixes.clear()
            return backend.score(items)

        results = score()
        probs = np.array([softmax(r.logprobs) for r in results])
        reference = probs if reference is None else reference
        cpu = min(_timed(score, cpu=True) for _ in range(repeats))
        wall = min(_timed(score) for _ in range(repeats))
        out[dtype] = {
            "seconds": round(wall, 3),
            "cpu_seconds": round(cpu, 3),
            "max_prob_diff_vs_first": float(np.abs(probs - reference).max()),
        }
    return out


def load_seconds(name: str = "smollm2-135m") -> dict[str, float]:
    """Load time with an empty cache (conversion included) and from the cache it wrote."""
    import os

    from agents.llm import loading

    old = os.environ.get("NORMSIM_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NORMSIM_CACHE"] = tmp
        try:
            cold = loading.load(name)
            warm = loading.load(name)
        finally:
            if old is None:
                os.environ.pop("NORMSIM_CACHE", None)
            else:
                os.environ["NORMSIM_CACHE"] = old
    return {
        "uncached_seconds": round(cold.seconds, 2),
        "cached_seconds": round(warm.seconds, 2),
        "sources": f"{cold.source} -> {warm.source}",
    }


def _timed(fn: Any, cpu: bool = False) -> float:
    clock = time.process_time if cpu else time.perf_counter
    start = clock()
    fn()
    return clock() - start


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--environment", help="environment whose requests are measured (default: the reference)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-load", action="store_true", help="skip the load-time measurement")
    parser.add_argument("--dtypes", action="store_true", help="also compare float32 and bfloat16 scoring")
    args = parser.parse_args(argv)
    from agents.llm import get_backend

    report: dict[str, Any] = {}
    if not args.no_load:
        report["load"] = load_seconds(args.model)
    backend = get_backend(args.model, dtype=args.dtype)
    requests = env_requests(args.environment, args.agents)
    lengths = [len(c) for c in backend.encode([backend.render(r.prompt.system, r.prompt.user) for r in requests])]
    report["prompt_tokens"] = {"mean": round(float(np.mean(lengths)), 1), "max": int(max(lengths))}
    report["decisions"] = decisions_per_second(backend, requests, repeats=args.repeats)
    if args.dtypes:
        report["dtypes"] = dtype_comparison(requests, args.model, repeats=args.repeats)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
