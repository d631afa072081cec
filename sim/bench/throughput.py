"""Decision throughput of four ways of deciding, on the same commons requests, side by side.

* ``naive_generate``: per agent, ``model.generate`` a short reply and parse a number out
  of it (how most LLM-agent frameworks call a model; :func:`sim.bench.measure.naive_generate`);
* ``per_agent_scoring``: per agent, one backend call scoring that agent's options (its
  context once, then all its options in one forward), no batching across agents;
* ``batched_scoring``: all agents in one call, but every row carries its full prompt
  (a backend with prefix reuse switched off);
* ``batched_prefix``: all agents in one call, the shared prefix (chat header + the
  environment's system text) computed once: the path ``LLMPolicy`` takes.

The scoring variants go through :class:`agents.llm.policy.LLMPolicy` (scores, softmax,
sampled choice), so they time whole decisions. Each call gets a fresh backend around the
same model (one copy), so no call starts with a prefix cached by an earlier one.
Variants are interleaved, their order rotating each repeat; the best time counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

VARIANTS = ("naive_generate", "per_agent_scoring", "batched_scoring", "batched_prefix")
SCORERS = VARIANTS[1:]
AGREEMENT_TOLERANCE = 1e-4


def scorer(backend: Any, reuse_prefix: bool) -> Any:
    """A fresh Backend around the same model and tokenizer (no prefix cached yet)."""
    from agents.llm.backend import Backend

    return Backend(backend.model, backend.tokenizer, name=backend.name, reuse_prefix=reuse_prefix)


def variants(
    backend: Any, max_new_tokens: int, last_replies: list[tuple[int | None, str]] | None = None
) -> dict[str, Callable[[Sequence[Any]], list[np.ndarray | None]]]:
    """Each variant decides a list of requests; scorers return each decision's probabilities.
    ``last_replies`` receives the (parsed choice, reply) pairs of the naive way's latest call."""
    last_replies = last_replies if last_replies is not None else []
    from agents.llm.policy import LLMPolicy
    from sim.bench.measure import naive_generate

    def naive(reqs: Sequence[Any]) -> list[np.ndarray | None]:
        choices, replies = naive_generate(backend, reqs, max_new_tokens=max_new_tokens)
        last_replies[:] = list(zip(choices, replies, strict=True))
        return [None for _ in choices]

    def per_agent(reqs: Sequence[Any]) -> list[np.ndarray | None]:
        rng = np.random.default_rng(0)
        return [LLMPolicy(scorer(backend, False)).decide([r], rng)[0].probs for r in reqs]

    def batched(reqs: Sequence[Any], reuse: bool) -> list[np.ndarray | None]:
        return [d.probs for d in LLMPolicy(scorer(backend, reuse)).decide(reqs, np.random.default_rng(0))]

    return {
        "naive_generate": naive,
        "per_agent_scoring": per_agent,
        "batched_scoring": lambda reqs: batched(reqs, False),
        "batched_prefix": lambda reqs: batched(reqs, True),
    }


def measure(
    backend: Any,
    requests: Sequence[Any],
    *,
    repeats: int = 3,
    max_new_tokens: int = 16,
    note: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Best-of-``repeats`` seconds per variant, decisions per second, ratios against the naive way.

    Refuses requests whose options read the same and decisions near uniform
    (:mod:`sim.bench.live`): on those every scorer agrees trivially."""
    from sim.bench.live import check_distributions, check_requests

    where = f"throughput, {len(requests)} agents"
    check_requests(requests, where)
    replies: list[tuple[int | None, str]] = []
    fns = variants(backend, max_new_tokens, replies)
    for fn in fns.values():  # warm-up: kernels, thread pools, allocator, on one request
        fn(requests[:1])
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu_times: dict[str, list[float]] = {name: [] for name in VARIANTS}  # context: CPU time, all threads
    probs: dict[str, list[np.ndarray | None]] = {}
    for r in range(repeats):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for name in order:
            start, cpu = time.perf_counter(), time.process_time()
            probs[name] = fns[name](requests)
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu)
            if note:
                note(f"{len(requests)} agents, {name}: {times[name][-1]:.2f} s")
    out = summarise(times, len(requests), {k: v for k, v in probs.items() if k in SCORERS})
    out["live"] = check_distributions(probs["batched_prefix"], where)
    for name, ts in cpu_times.items():
        out["variants"][name]["cpu_seconds"] = round(min(ts), 3)
    out["naive"] = {
        "max_new_tokens": max_new_tokens,
        "parse_failures": sum(c is None for c, _ in replies),
        "of": len(replies),
        "example_reply": replies[0][1] if replies else "",
    }
    return out


def summarise(times: dict[str, list[float]], n: int, probs: dict[str, list[Any]]) -> dict[str, Any]:
    """Per-variant figures and the scorers' agreement, from measured seconds and probabilities."""
    best = {name: min(ts) for name, ts in times.items()}
    base = best["naive_generate"]
    out: dict[str, Any] = {"agents": n, "variants": {}}
    for name, seconds in best.items():
        out["variants"][name] = {
            "seconds": round(seconds, 4),
            "all_seconds": [round(t, 4) for t in times[name]],
            "decisions_per_second": round(n / seconds, 3),
            "ratio": round(base / seconds, 2),  # how many times faster than per-agent generate-and-parse
        }
    out["agreement"] = agreement(probs)
    return out


def agreement(probs: dict[str, list[Any]]) -> dict[str, Any]:
    """Largest absolute probability difference of each scorer against batched_prefix, with
    its spread over decisions (each decision's largest |Δp|)."""
    from sim.bench.live import diff_spread

    ref = probs.get("batched_prefix")
    diffs, spreads = {}, {}
    for name, values in probs.items():
        if name == "batched_prefix" or ref is None:
            continue
        spreads[name] = diff_spread(values, ref)
        diffs[name] = spreads[name]["max"]
    worst = max(diffs.values(), default=0.0)
    return {
        "reference": "batched_prefix",
        "max_abs_diff": diffs,
        "per_decision": spreads,
        "worst": worst,
        "tolerance": AGREEMENT_TOLERANCE,
        "ok": bool(worst < AGREEMENT_TOLERANCE),
    }


def failed_checks(sizes: dict[str, Any]) -> list[str]:
    """One line per agent count whose scorers disagree beyond the tolerance."""
    out = []
    for n, row in sizes.items():
        agree = row["agreement"]
        if not agree["ok"]:
            out.append(
                f"throughput, {n} agents: scorers disagree with batched_prefix by up to {agree['worst']:.2e} "
                f"(tolerance {agree['tolerance']:.0e}): {agree['max_abs_diff']}"
            )
    return out


def prompt_stats(backend: Any, requests: Sequence[Any]) -> dict[str, Any]:
    """Prompt lengths in tokens and the prefix all of them share."""
    contexts = backend.encode(
        [backend.render(r.prompt.system, r.prompt.user, r.prompt.answer_prefix) for r in requests]
    )
    lengths = [len(c) for c in contexts]
    options = sum(len(r.options) for r in requests) / len(requests)
    return {
        "mean": round(float(np.mean(lengths)), 1),
        "max": int(max(lengths)),
        "shared_prefix": int(scorer(backend, True).shared_prefix_length(contexts)),
        "options_per_decision": round(options, 1),
    }


def section(bench: Any) -> dict[str, Any]:
    from sim.progress import Progress

    plan, out = bench.plan, {}
    with Progress(total=len(plan.agents), label="throughput", unit="size", show=()) as bar:
        for n in plan.agents:
            requests = bench.requests(n)
            row = measure(
                bench.backend, requests, repeats=plan.repeats, max_new_tokens=plan.max_new_tokens, note=bar.write
            )
            row["prompt_tokens"] = prompt_stats(bench.backend, requests)
            bench.cache[("batched_prefix_seconds", n)] = row["variants"]["batched_prefix"]["seconds"]
            out[str(n)] = row
            bar.update()
    return {
        "sizes": out,
        "dtype": str(bench.backend.dtype).removeprefix("torch."),
        "repeats": plan.repeats,
        "prompt_warmup_rounds": plan.prompt_warmup,
        "failed_checks": failed_checks(out),
    }


def measure_prefix_seconds(backend: Any, requests: Sequence[Any], repeats: int = 1) -> float:
    """Best seconds of the batched, prefix-reusing path alone (when the throughput section did not run)."""
    from sim.bench.live import check_requests

    check_requests(requests, f"decision path, {len(requests)} agents")
    fn = variants(backend, 1)["batched_prefix"]
    fn(requests[:2])
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn(requests)
        best = min(best, time.perf_counter() - start)
    return best
