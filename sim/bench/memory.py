"""Memory: peak resident memory while N agents decide, one model copy, each N in a fresh process.

The child process loads the model, builds one step's requests of the measured
environment's main decision phase for N agents (:func:`sim.bench.measure.env_requests`), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``; without it the
mark would hold the load's transient peak and hide growth), lets all N agents decide in
one batched call (what one LLM phase does) and reports the peak. Growth from
the smallest to the largest N is the figure; the model and runtime are in every
reading, once. On CUDA the GPU's peak allocation is reported too.

``python -m sim.bench.memory --agents 50`` runs one child and prints its JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from sim.bench.envs import spread


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kb() -> int:
    import resource

    hwm = _status_kb("VmHWM")
    # ru_maxrss is in kilobytes on Linux: the fallback where /proc is missing.
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_one(
    model: str,
    agents: int,
    *,
    device: str = "cpu",
    dtype: str = "auto",
    warmup: int = 0,
    token_budget: int | None = None,
    logit_budget: int | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """Peak memory of one decision round of ``agents`` agents, in this process (call it in a fresh one)."""
    import numpy as np
    import torch

    from agents.llm import get_backend
    from agents.llm.backend import Backend
    from agents.llm.policy import LLMPolicy
    from sim.bench.measure import env_requests

    backend = get_backend(model, dtype=dtype, device=device)
    if token_budget or logit_budget:
        backend = Backend(
            backend.model,
            backend.tokenizer,
            name=backend.name,
            token_budget=token_budget or backend.token_budget,
            logit_budget=logit_budget or backend.logit_budget,
        )
    requests = env_requests(environment, agents, warmup=warmup)
    LLMPolicy(backend).decide(requests[:1], np.random.default_rng(0))  # first-call set-up is not per-agent memory
    loaded = _status_kb("VmRSS")
    exact = _reset_peak()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    LLMPolicy(backend).decide(requests, np.random.default_rng(0))
    out: dict[str, Any] = {
        "agents": agents,
        "rss_before_mb": round((loaded or 0) / 1024, 1),
        "peak_rss_mb": round(_peak_kb() / 1024, 1),
        "peak_method": "VmHWM after reset" if exact else "ru_maxrss (includes loading)",
    }
    if device == "cuda":
        out["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def run_child(
    model: str,
    agents: int,
    *,
    device: str = "cpu",
    dtype: str = "auto",
    warmup: int = 0,
    environment: str | None = None,
    token_budget: int | None = None,
    logit_budget: int | None = None,
    timeout: float = 1800,
) -> dict[str, Any]:
    """:func:`measure_one` in a fresh Python process."""
    cmd = [
        sys.executable,
        "-m",
        "sim.bench.memory",
        "--model",
        model,
        "--agents",
        str(agents),
        "--device",
        device,
        "--dtype",
        dtype,
        "--warmup",
        str(warmup),
    ]
    if environment:
        cmd += ["--environment", environment]
    if token_budget:
        cmd += ["--token-budget", str(token_budget)]
    if logit_budget:
        cmd += ["--logit-budget", str(logit_budget)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory child for {agents} agents failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth(rows: Sequence[dict[str, Any]], key: str = "peak_rss_mb") -> float:
    """Percent growth of ``key`` from the first (fewest agents) to the last row."""
    return round(100.0 * (rows[-1][key] / rows[0][key] - 1.0), 2)


def _median_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The reading with the median peak (the middle one; the lower middle of an even count)."""
    ordered = sorted(rows, key=lambda r: r["peak_rss_mb"])
    return {**ordered[(len(ordered) - 1) // 2], "all_peak_rss_mb": [r["peak_rss_mb"] for r in rows]}


def section(bench: Any) -> dict[str, Any]:
    plan = bench.plan
    kwargs = {"device": bench.device, "dtype": plan.dtype, "warmup": plan.memory_warmup, "environment": bench.env}
    sizes = sorted(plan.memory_agents)
    # Repeats interleaved (every size, then again), so drifting load hits every size alike;
    # the growth of each repeat gives the spread, the median reading of each size the rows.
    runs = [[run_child(bench.model, n, **kwargs) for n in sizes] for _ in range(max(1, plan.memory_repeats))]
    rows = [_median_row([run[i] for run in runs]) for i in range(len(sizes))]
    growths = [growth(run) for run in runs]
    out: dict[str, Any] = {
        "environment": bench.env,
        "rows": rows,
        "growth_pct": growth(rows),
        "growth_pct_spread": spread(growths, 2),
        "repeats": len(runs),
        "prompt_warmup_rounds": plan.memory_warmup,
    }
    if plan.memory_budgets:
        tokens, logits = plan.memory_budgets
        ends = sorted({min(plan.memory_agents), max(plan.memory_agents)})
        bounded = [run_child(bench.model, n, token_budget=tokens, logit_budget=logits, **kwargs) for n in ends]
        out["bounded"] = {
            "token_budget": tokens,
            "logit_budget": logits,
            "rows": bounded,
            "growth_pct": growth(bounded),
        }
    if bench.device == "cuda":
        out["gpu_growth_pct"] = growth(rows, "gpu_peak_mb")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="peak memory of one decision round of N agents")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--agents", type=int, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--environment", help="whose requests decide (default: the reference environment)")
    parser.add_argument("--token-budget", type=int)
    parser.add_argument("--logit-budget", type=int)
    args = parser.parse_args(argv)
    row = measure_one(
        args.model,
        args.agents,
        device=args.device,
        dtype=args.dtype,
        warmup=args.warmup,
        token_budget=args.token_budget,
        logit_budget=args.logit_budget,
        environment=args.environment,
    )
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
