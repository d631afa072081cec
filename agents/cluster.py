"""Where simulations and models run: in this process, or on a Ray cluster.

A scenario's (or a sweep's) ``backend:`` block::

    backend:
      kind: ray          # local: everything in this process; ray: runs are Ray tasks,
                         # LLM policies are served by model-host actors (agents.host)
      address: auto      # none: start a private local cluster; auto: join the running one
      hosts: 2           # model-host actors per distinct LLM config
      num_gpus: 0.5      # per host (fractional shares one GPU between hosts)
      num_cpus: 2        # per host; Ray sets OMP_NUM_THREADS from it, so torch keeps its threads
      workers: 4         # simulations running at once (default: as many as the CPUs allow)
      merge_batches: true  # one forward pass for the batches simulations send at once

Ray is imported only when a Ray backend is used, so scenarios load without it.
"""

from __future__ import annotations

import os
from typing import Any

from agents.config import BackendConfig


def ensure_ray(backend: BackendConfig, num_cpus: int | None = None) -> bool:
    """Connect to Ray as the backend says; True if this call started the connection.

    Inside a Ray worker, or when the caller (a test session) already connected, the
    existing connection is kept. ``num_cpus`` sizes a private local cluster only.
    """
    import ray

    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if backend.address is None:
        kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
    else:
        kwargs["address"] = backend.address
    ray.init(**kwargs)
    return True


def cluster_cpus() -> float:
    """CPUs of the connected Ray cluster."""
    import ray

    return float(ray.cluster_resources().get("CPU", 1.0))


def host_resources(backend: BackendConfig) -> dict[str, float]:
    """``num_cpus``/``num_gpus`` for one model-host actor.

    An actor without ``num_cpus`` gets OMP_NUM_THREADS=1, so a CPU model would run on a
    single thread; a CPU host therefore claims its share of the node's cores.
    """
    if backend.num_cpus is not None:
        cpus = backend.num_cpus
    elif backend.num_gpus > 0:
        cpus = 1.0
    else:  # an equal share of the cluster, at most one node (an actor lives on one node)
        cpus = min(cluster_cpus() / backend.hosts, largest_node_cpus())
    return {"num_cpus": cpus, "num_gpus": backend.num_gpus}


def largest_node_cpus() -> float:
    import ray

    return max((float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")), default=1.0)


def task_cpus(uses_hosts: bool) -> float:
    """CPUs one simulation task claims.

    A simulation whose LLM decisions run on model hosts mostly waits for them; claiming
    a whole core would leave none for the hosts on a small machine (and deadlock), so
    such tasks claim none and ``workers`` bounds how many run at once.
    """
    return 0.0 if uses_hosts else 1.0
