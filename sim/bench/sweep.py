"""Sweep throughput: N LLM simulations sharing one Ray model host vs one host each.

The same sweep (N seeds of a small LLM commons, run at once as Ray tasks) runs twice on
one private Ray cluster: with ``hosts: 1`` (the host merges the simulations' concurrent
batches into one forward pass) and with ``hosts: N`` (each host a model copy with 1/N of
the cores). A warm-up sweep first starts each setting's hosts (loading the model) and
worker processes, so the timed sweep measures deciding, not start-up; the start-up is
reported beside it. Figures: decisions per second (events logged / wall time).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def sweep_file(model: str, *, device: str, agents: int, steps: int, sims: int) -> dict[str, Any]:
    """An inline sweep: ``sims`` seeds of a commons whose fishers all use the model."""
    policy = {"type": "llm", "model": model, "device": device}
    half = max(1, agents // 2)
    base = {
        "name": "bench_sweep",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [
            {"name": "altruists", "size": half, "persona": "altruistic", "policy": policy},
            {"name": "selfish", "size": agents - half, "persona": "selfish", "policy": policy},
        ],
        "mechanics": {"punishment": {"enabled": True}, "group_norm": {"enabled": True, "every": 2}},
        "run": {"steps": steps},
        "output": {"report": False},
    }
    base["population"] = [g for g in base["population"] if g["size"] > 0]
    return {"name": "bench_sweep", "base": base, "seeds": sims, "backend": {"kind": "ray"}}


def _decisions(root: Path) -> int:
    import pandas as pd

    return sum(len(pd.read_parquet(p, columns=["agent_id"])) for p in root.glob("runs/*/events.parquet"))


def timed_sweep(spec: dict[str, Any], backend: dict[str, Any], scratch: Path, label: str) -> dict[str, Any]:
    """Warm-up sweep (hosts and workers start), then the timed one; hosts stopped after."""
    from agents.host import stop_hosts
    from sim.backend import BackendConfig
    from sim.config import LLMPolicyConfig
    from sim.sweep import run_sweep

    cfg = LLMPolicyConfig.model_validate(spec["base"]["population"][0]["policy"])
    warm = {**spec, "base": {**spec["base"], "run": {"steps": 1}}}
    try:
        start = time.perf_counter()
        result = run_sweep(warm, scratch / f"{label}-warmup", backend=backend)
        startup = time.perf_counter() - start
        if result.failed:
            raise RuntimeError(f"warm-up sweep failed: {result.results['error'].dropna().iloc[0]}")
        start = time.perf_counter()
        result = run_sweep(spec, scratch / label, backend=backend)
        seconds = time.perf_counter() - start
        if result.failed:
            raise RuntimeError(f"sweep failed: {result.results['error'].dropna().iloc[0]}")
    finally:
        stop_hosts(cfg, BackendConfig.model_validate({"kind": "ray", **backend}))
    decisions = _decisions(scratch / label)
    return {"hosts": backend["hosts"], "seconds": round(seconds, 3), "decisions": decisions,
            "decisions_per_second": round(decisions / seconds, 3), "warmup_seconds": round(startup, 2)}  # fmt: skip


def measure(model: str, *, device: str = "cpu", agents: int = 4, steps: int = 2, sims: int = 2,
            num_cpus: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Decisions per second of ``sims`` simulations on one shared host vs one host each."""
    import ray

    from sim.backend import BackendConfig, ensure_ray

    started = ensure_ray(BackendConfig(kind="ray"), num_cpus=num_cpus or os.cpu_count() or 1)
    scratch = Path(tempfile.mkdtemp(prefix="normsim-bench-sweep-"))
    spec = sweep_file(model, device=device, agents=agents, steps=steps, sims=sims)
    rows = {}
    try:
        for label, hosts in (("shared_host", 1), ("host_each", sims)):
            backend: dict[str, Any] = {"kind": "ray", "hosts": hosts, "workers": sims}
            if device == "cuda":
                backend["num_gpus"] = 1.0 / hosts  # the hosts share the one GPU
            rows[label] = timed_sweep(spec, backend, scratch, label)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if started:
            ray.shutdown()
    ratio = rows["host_each"]["seconds"] / rows["shared_host"]["seconds"]
    return {"simulations": sims, "agents_per_simulation": agents, "steps": steps, "cpus": float(num_cpus or 0)
            or float(os.cpu_count() or 1), "settings": rows, "ratio": round(ratio, 2)}  # fmt: skip


def section(bench: Any) -> dict[str, Any]:
    plan = bench.plan
    return measure(bench.model, device=bench.device, agents=plan.sweep_agents, steps=plan.sweep_steps,
                   sims=plan.sweep_sims)  # fmt: skip
