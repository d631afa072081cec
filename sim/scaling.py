"""Scaling measurements of the Ray layer, as functions ``normsim bench`` can call.

* :func:`sweep_workers` - wall time of one sweep run with 1, 2, ... workers on the same
  Ray cluster, side by side (a warm-up sweep first starts the worker processes).
* :func:`host_sharing` - decisions per second of N concurrent LLM simulations that
  share one model host, against the same simulations with one host each (same total
  CPUs, so the comparison is of batching, not of hardware).

Both connect to Ray themselves (a private local cluster) unless a connection exists.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.cluster import ensure_ray
from agents.config import BackendConfig


def sweep_workers(
    sweep: str | Path,
    workers: Sequence[int] = (1, 2),
    *,
    num_cpus: int | None = None,
    repeats: int = 1,
) -> list[dict[str, Any]]:
    """Seconds to run the whole sweep (every run fresh) with each worker count.

    Returns one row per worker count: ``workers``, ``runs``, ``seconds`` (best of
    ``repeats``), ``runs_per_second``.
    """
    import ray

    from sim.sweep import run_sweep

    started = ensure_ray(BackendConfig(kind="ray"), num_cpus=num_cpus or max(workers))
    scratch = Path(tempfile.mkdtemp(prefix="normsim-scaling-"))
    try:
        # Warm-up: start as many worker processes as the widest setting uses and let
        # them import the simulation code, so no setting pays for process start-up.
        run_sweep(sweep, scratch / "warmup", backend={"kind": "ray", "workers": max(workers)})
        rows = []
        for n in workers:
            best = float("inf")
            for k in range(repeats):
                start = time.perf_counter()
                result = run_sweep(sweep, scratch / f"w{n}-{k}", backend={"kind": "ray", "workers": n})
                best = min(best, time.perf_counter() - start)
            rows.append(
                {
                    "workers": n,
                    "runs": len(result.results),
                    "seconds": round(best, 3),
                    "runs_per_second": round(len(result.results) / best, 2),
                }
            )
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if started:
            ray.shutdown()


def host_sharing(
    scenario: str | Path | dict[str, Any],
    sims: int = 4,
    *,
    steps: int = 1,
    repeats: int = 1,
    num_cpus: int | None = None,
    model: str | None = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Decisions per second of ``sims`` concurrent LLM simulations: one shared host vs one host each.

    Both settings get the same CPUs (the whole local cluster): the shared host uses all
    of them as torch threads, the ``sims`` hosts a share each. Hosts are started and
    warmed (one simulation step each) before the clock starts; then the same simulations
    (seeds 0..sims-1) run as Ray tasks, all at once. Settings alternate over ``repeats``
    rounds so both meet the same background load. Each row: setting, round, decisions,
    seconds, decisions per second, the hosts' CPU-seconds per decision (independent of
    how much of a busy machine the scheduler grants) and requests per backend call (how
    many simulations' batches each forward pass merged).
    """
    import ray

    from agents.host import ensure_hosts, host_stats, stop_hosts
    from sim.config import load_scenario, read_yaml
    from sim.sweep import run_sweep

    base = copy.deepcopy(scenario) if isinstance(scenario, dict) else read_yaml(scenario)
    base.setdefault("run", {})["steps"] = steps
    base["output"] = {"report": False}
    for group in base["population"]:
        if isinstance(group.get("policy"), dict) and group["policy"].get("type") == "llm":
            group["policy"].update({"model": model} if model else {}, device=device)
    llm = next(g.policy for g in load_scenario(base).population if g.policy.type == "llm")
    started = ensure_ray(BackendConfig(kind="ray"), num_cpus=num_cpus)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    scratch = Path(tempfile.mkdtemp(prefix="normsim-hosts-"))
    rows = []
    try:
        for k in range(repeats):
            for label, hosts in [("shared", 1), ("one_each", sims)][:: 1 if k % 2 == 0 else -1]:
                backend = {"kind": "ray", "hosts": hosts, "num_cpus": cpus / hosts, "workers": sims}
                if device == "cuda":
                    backend["num_gpus"] = 1.0 / hosts  # the hosts share the one GPU
                config = BackendConfig.model_validate(backend)
                ensure_hosts(llm, config)  # load the models before the clock starts
                warm = {"base": {**base, "run": {**base["run"], "steps": 1}}, "seeds": hosts, "backend": backend}
                run_sweep(warm, scratch / f"{label}-{k}-warmup")
                before = host_stats(llm, config)
                start = time.perf_counter()
                result = run_sweep({"base": base, "seeds": sims, "backend": backend}, scratch / f"{label}-{k}")
                seconds = time.perf_counter() - start
                after = host_stats(llm, config)
                stop_hosts(llm, config)

                def delta(key: str, after: list = after, before: list = before) -> float:
                    return sum(a[key] - b[key] for a, b in zip(after, before, strict=True))

                decisions = int(result.results["decisions"].sum())
                rows.append(
                    {
                        "setting": label,
                        "round": k,
                        "sims": sims,
                        "hosts": hosts,
                        "threads_per_host": after[0]["threads"],
                        "decisions": decisions,
                        "seconds": round(seconds, 2),
                        "decisions_per_second": round(decisions / seconds, 3),
                        "host_cpu_seconds_per_decision": round(delta("cpu_seconds") / decisions, 3),
                        "requests_per_backend_call": round(delta("requests") / max(delta("backend_calls"), 1), 2),
                        "failed": len(result.failed),
                    }
                )
        return rows
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if started:
            ray.shutdown()
