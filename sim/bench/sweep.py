"""Sweep throughput: N LLM simulations sharing one Ray model host vs one host each.

A thin wrapper over :func:`sim.scaling.host_sharing` (the one implementation of this
measurement): the same N seeds of a small LLM commons run at once as Ray tasks on one
private cluster, with ``hosts: 1`` (the host merges concurrent batches where that keeps
their shared prefix, see agents/merging.py) and with ``hosts: N`` (each host a model copy
with 1/N of the cores). Hosts are started and warmed before the clock starts; the
settings alternate over the repeats so both meet the same background load.
"""

from __future__ import annotations

import os
from typing import Any


def scenario(agents: int, model: str = "smollm2-135m") -> dict[str, Any]:
    """The reference environment's example scenario with every group deciding through one LLM."""
    from sim.bench.envs import env_scenario
    from sim.bench.measure import reference_environment

    return env_scenario(reference_environment(), agents, model).model_dump(mode="json")


def section(bench: Any) -> dict[str, Any]:
    from sim.scaling import host_sharing

    plan = bench.plan
    cpus = os.cpu_count() or 1
    rows = host_sharing(
        scenario(plan.sweep_agents),
        plan.sweep_sims,
        steps=plan.sweep_steps,
        repeats=plan.sweep_repeats,
        num_cpus=cpus,
        model=bench.model,
        device=bench.device,
    )
    settings = {}
    for label, setting in (("shared_host", "shared"), ("host_each", "one_each")):
        mine = [r for r in rows if r["setting"] == setting]
        settings[label] = {**min(mine, key=lambda r: r["seconds"]), "repeats": len(mine)}
    ratio = settings["host_each"]["seconds"] / settings["shared_host"]["seconds"]
    return {
        "simulations": plan.sweep_sims,
        "agents_per_simulation": plan.sweep_agents,
        "steps": plan.sweep_steps,
        "cpus": float(cpus),
        "settings": settings,
        "rows": rows,
        "ratio": round(ratio, 2),
    }
