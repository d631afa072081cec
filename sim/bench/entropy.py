"""Entropy-bearing decisions: the exact option distribution vs a 25-sample estimate.

* ``exact``: one batched, prefix-reusing scoring pass over all decisions gives every
  option's probability, hence the exact entropy;
* ``sampled_prefix``: 25 completions per decision, sampled at temperature 1 by the backend's
  batched generation (one call per decision, whose 25 rows share the decision's whole
  prompt as a prefix computed once: the cheapest way to sample), each reply parsed to an
  option, entropy of the histogram (how EAST measured entropy);
* ``sampled_hf``: the same 25 samples the usual way, ``model.generate(...,
  num_return_sequences=25)``, which runs the prompt once per sample.

Times are per decision; the ratio is estimate / exact. The estimate's error against the
exact entropy mixes sampling noise (the plug-in estimate from 25 draws is biased low)
with replies that parse to an option the scorer would weigh differently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.interfaces import entropy


def histogram_entropy(choices: Sequence[int | None], n_options: int) -> float | None:
    """Plug-in entropy (nats) of the parsed choices; None when no reply parsed."""
    parsed = [c for c in choices if c is not None]
    if not parsed:
        return None
    counts = np.bincount(parsed, minlength=n_options)
    return entropy(counts / counts.sum())


def exact(backend: Any, requests: Sequence[Any]) -> list[Any]:
    """All decisions (each with its exact distribution and entropy) from one batched scoring pass."""
    from agents.llm.policy import LLMPolicy
    from sim.bench.throughput import scorer

    return LLMPolicy(scorer(backend, True)).decide(requests, np.random.default_rng(0))


def sampled(backend: Any, requests: Sequence[Any], samples: int, max_new_tokens: int) -> list[list[int | None]]:
    """Parsed choices of ``samples`` completions per decision (one batched generate call per decision)."""
    from agents.llm.backend import GenerateItem
    from sim.bench.measure import parse_option
    from sim.bench.throughput import scorer

    out = []
    for k, req in enumerate(requests):
        p = req.prompt
        items = [
            GenerateItem(
                p.system, p.user, p.answer_prefix, max_new_tokens=max_new_tokens, temperature=1.0, seed=k * samples + s
            )
            for s in range(samples)
        ]
        out.append([parse_option(reply, req) for reply in scorer(backend, True).generate(items)])
    return out


def sampled_hf(backend: Any, requests: Sequence[Any], samples: int, max_new_tokens: int) -> list[list[int | None]]:
    """Parsed choices of ``samples`` completions per decision from ``model.generate(num_return_sequences=...)``."""
    import torch

    from sim.bench.measure import parse_option

    out = []
    torch.manual_seed(0)
    for req in requests:
        p = req.prompt
        ids = torch.tensor(backend.encode([backend.render(p.system, p.user, p.answer_prefix)]), device=backend.device)
        with torch.inference_mode():
            gen = backend.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                num_return_sequences=samples,
                max_new_tokens=max_new_tokens,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                pad_token_id=backend.pad_id,
            )
        replies = backend.tokenizer.batch_decode(gen[:, ids.shape[1] :], skip_special_tokens=True)
        out.append([parse_option(reply, req) for reply in replies])
    return out


def spread(items: Sequence[Any], k: int) -> list[Any]:
    """k items evenly spaced through the list (every persona group gets its share)."""
    k = max(1, min(k, len(items)))
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, k).round()]


def errors(estimates: Sequence[float | None], truth: Sequence[float]) -> dict[str, Any]:
    diffs = [abs(e - t) for e, t in zip(estimates, truth, strict=False) if e is not None]
    if not diffs:
        return {"mean_abs_error": None, "max_abs_error": None, "decisions": 0}
    return {
        "mean_abs_error": round(float(np.mean(diffs)), 4),
        "max_abs_error": round(float(max(diffs)), 4),
        "decisions": len(diffs),
    }


def measure(
    backend: Any,
    requests: Sequence[Any],
    *,
    estimated: int = 4,
    samples: int = 25,
    max_new_tokens: int = 16,
    repeats: int = 1,
    hf_decisions: int = 1,
) -> dict[str, Any]:
    """Per-decision seconds of each way (best of interleaved repeats), ratios, and the estimates' errors.

    ``requests``: one phase's decisions, all scored exactly in one pass (as a simulation
    does); the sampled estimates run on ``estimated`` of them spread through the list
    (``hf_decisions`` of those for model.generate), their cost per decision being
    independent of the others'. Refuses requests whose options read the same and
    near-uniform exact distributions (:mod:`sim.bench.live`): the entropy of those is
    log(options) for any engine and any estimate.
    """
    from sim.bench.live import check_distributions, check_requests

    where = f"entropy, {len(requests)} decisions"
    check_requests(requests, where)
    index = spread(list(range(len(requests))), estimated)
    subset = [requests[i] for i in index]
    hf_subset = subset[:hf_decisions]
    sampled(backend, subset[:1], 2, 2)  # warm-up of the decode path
    runs = {
        "exact": (lambda: exact(backend, requests), len(requests)),
        "sampled_prefix": (lambda: sampled(backend, subset, samples, max_new_tokens), len(subset)),
        "sampled_hf": (lambda: sampled_hf(backend, hf_subset, samples, max_new_tokens), len(hf_subset)),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, (fn, count) in runs.items():
            if count:
                start = time.perf_counter()
                results[name] = fn()
                times[name].append((time.perf_counter() - start) / count)
    live = check_distributions([d.probs for d in results["exact"]], where)
    entropies = [d.entropy for d in results["exact"]]
    truth = [entropies[i] for i in index]
    out: dict[str, Any] = {
        "decisions": len(requests),
        "live": live,
        "samples": samples,
        "max_new_tokens": max_new_tokens,
        "mean_exact_entropy": round(float(np.mean(entropies)), 4),
        "ways": {},
    }
    base = min(times["exact"])
    for name, ts in times.items():
        if not ts:
            continue
        row: dict[str, Any] = {
            "seconds_per_decision": round(min(ts), 5),
            "ratio": round(min(ts) / base, 2),
            "decisions_timed": runs[name][1],
        }
        if name != "exact":
            choices = results[name]
            estimates = [histogram_entropy(c, len(r.options)) for c, r in zip(choices, subset, strict=False)]
            failures = sum(c is None for cs in choices for c in cs)
            row |= errors(estimates, truth) | {"parse_failure_rate": round(failures / (len(choices) * samples), 4)}
        out["ways"][name] = row
    return out


def section(bench: Any) -> dict[str, Any]:
    plan = bench.plan
    return measure(
        bench.backend,
        bench.requests(plan.agents[0]),
        estimated=plan.entropy_decisions,
        samples=plan.samples,
        max_new_tokens=plan.max_new_tokens,
        repeats=plan.repeats,
        hf_decisions=plan.hf_entropy_decisions,
    )
