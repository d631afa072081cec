"""Executing a sweep's runs: one run into its directory, atomically; many as Ray tasks.

:func:`execute_run` is the Ray task (and the in-process step for ``kind: local``): it
writes the run into ``runs/.tmp-<name>-<random>`` and renames it to ``runs/<name>`` only
once the runner reports it finished, so a directory under its final name always holds a
finished run. :func:`run_on_ray` keeps at most ``workers`` runs in flight, starts the
model hosts LLM runs need (and stops those it started), and reports each run as it ends.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import logging
import os
import platform
import shutil
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.cluster import cluster_cpus, ensure_ray, task_cpus
from agents.config import BackendConfig
from sim import reaper
from sim.config import load_scenario
from sim.core.schema import ConfigError
from sim.logger import owner

TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class RunSpec:
    """One (cell, seed) of a sweep: what a worker needs to run it."""

    name: str  # the run directory's name: <cell>-seed<seed>
    cell: str
    seed: int
    params: dict[str, Any]
    scenario: dict[str, Any]  # raw scenario dict, overrides applied, seed and run_id set


def import_all(modules: list[str]) -> None:
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"imports: cannot import '{module}': {exc}") from None


def is_finished(run_dir: Path) -> bool:
    """A run counts as finished only when its metrics.json says so."""
    try:
        return json.loads((run_dir / "metrics.json").read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def execute_run(spec: RunSpec, root: str, imports: tuple[str, ...] = (), slot: int | None = None) -> dict[str, Any]:
    """Run one (cell, seed) into ``root/runs/<name>``; never raises for a failing run.

    Runs in a Ray worker (or in-process for ``kind: local``). The run is written into a
    temporary directory and renamed into place once finished; a failed one moves to
    ``root/failed/<name>`` with its traceback in ``error.txt``. ``slot`` picks which of
    a model's hosts the run's LLM groups use.
    """
    from sim.runner import run  # heavy imports only where runs happen

    import_all(list(imports))
    if slot is not None:
        from agents.host import host_slot

        with host_slot(slot):
            return _execute(spec, root, run)
    return _execute(spec, root, run)


def _execute(spec: RunSpec, root: str, run: Callable[..., Any]) -> dict[str, Any]:
    runs, final = Path(root) / "runs", Path(root) / "runs" / spec.name
    tmp = runs / f"{TMP_PREFIX}{spec.name}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    try:
        result = run(spec.scenario, run_dir=tmp, progress=False)  # the sweep shows its own progress
        if result.status != "finished":
            raise RuntimeError(f"run ended with status '{result.status}'")
    except Exception:
        error = traceback.format_exc()
        failed = Path(root) / "failed" / spec.name
        shutil.rmtree(failed, ignore_errors=True)
        failed.parent.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            tmp.rename(failed)
        failed.mkdir(exist_ok=True)
        (failed / "error.txt").write_text(error)
        return {"run": spec.name, "status": "failed", "error": error, "wall_seconds": time.perf_counter() - started}
    if is_finished(final):  # a duplicate attempt (a retried task) finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    shutil.rmtree(Path(root) / "failed" / spec.name, ignore_errors=True)
    return {"run": spec.name, "status": "finished", "error": None, "ended": result.extras.get("ended")}


def clean_partial(root: Path) -> None:
    """Remove directories of runs interrupted earlier (never counted as finished).

    A directory whose run is still being written by a live process on this machine is
    left alone: it is another sweep's, not an interrupted one.
    """
    runs = root / "runs"
    if runs.exists():
        for path in runs.glob(f"{TMP_PREFIX}*"):
            if not _held_by_live_process(path):
                shutil.rmtree(path, ignore_errors=True)


def _held_by_live_process(run_dir: Path) -> bool:
    held = owner(run_dir)
    if not held or held.get("host") != platform.node() or not isinstance(held.get("pid"), int):
        return False
    if held["pid"] == os.getpid():
        return False  # this process's own run, left over by an interruption
    try:
        os.kill(held["pid"], 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, another user's
        return True
    return True


@contextmanager
def sweep_lock(root: Path) -> Iterator[None]:
    """Hold ``root`` for one sweep at a time: a second sweep on the same root refuses with one line.

    An advisory lock on ``root/.sweep.lock``: the kernel drops it when the process ends,
    however it ends, so a killed sweep never blocks the next one.
    """
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".sweep.lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            who = f.read().strip() or "another process"
            raise ConfigError(
                f"{root}: another sweep ({who}) is writing here; wait for it to end or pass another --out"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {platform.node()}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


_RAY_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def _drop_auth_notice(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled")


def connect_ray(backend: BackendConfig) -> bool:
    """Connect to Ray (``ensure_ray``); a private local cluster starts quietly and is
    watched, so its processes end with this driver even if it is killed. True if started here."""
    if backend.address is None:
        # Ray turns token authentication on for a new local cluster and warns about it on
        # every start. The default is kept (setting RAY_AUTH_MODE after Ray is imported
        # leaves the driver and its cluster disagreeing); only that one notice is dropped.
        logging.getLogger(_RAY_AUTH_LOGGER).addFilter(_drop_auth_notice)
    started = ensure_ray(backend)
    if started and backend.address is None:
        import ray

        # Ray names no public accessor for the session folder; without it there is no watchdog.
        node = getattr(ray._private.worker, "_global_node", None)
        session = node.get_session_dir_path() if node is not None else None
        if session:
            reaper.start(session)  # Ray's agents outlive a SIGKILLed driver
    return started


def run_on_ray(
    backend: BackendConfig,
    imports: tuple[str, ...],
    todo: list[RunSpec],
    root: Path,
    outcomes: dict[str, dict[str, Any]],
    on_run: Callable[[dict[str, Any], int, int], None] | None,
) -> None:
    """Each run is a Ray task; at most ``workers`` are in flight, results taken as they end."""
    if not todo:
        return
    import ray

    started = connect_ray(backend)
    llm_configs = _llm_configs(todo)
    uses_hosts, ours = bool(llm_configs), []
    pending: dict[Any, RunSpec] = {}
    try:
        if llm_configs:
            # The driver starts the hosts so that it owns them: they live as long as the
            # sweep, whichever worker process runs which simulation.
            from agents.host import ensure_hosts, hosts_running

            ours = [cfg for cfg in llm_configs if not hosts_running(cfg, backend)]
            for cfg in llm_configs:
                ensure_hosts(cfg, backend)
        workers = backend.workers or _default_workers(uses_hosts, backend.hosts)
        remote = ray.remote(execute_run).options(
            num_cpus=task_cpus(uses_hosts), max_retries=backend.retries, name="normsim-run"
        )
        queue = list(reversed(todo))
        done = started_runs = 0
        while queue or pending:
            while queue and len(pending) < workers:
                spec = queue.pop()
                # Consecutive runs go to different hosts, so concurrent runs spread out.
                slot = started_runs if uses_hosts else None
                pending[remote.remote(spec, str(root), imports, slot)] = spec
                started_runs += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ready[0])
            try:
                row = ray.get(ready[0])
            except Exception as exc:  # the worker died more often than max_retries allows
                row = {"run": spec.name, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            outcomes[spec.name] = row
            done += 1
            if on_run:
                on_run(row, done, len(todo))
    finally:
        if pending:  # interrupted: stop the runs in flight before their directories are cleaned up
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.wait(list(pending), num_returns=len(pending), timeout=30)
        if ours:  # free the CPUs and memory of the hosts this sweep started
            from agents.host import stop_hosts

            for cfg in ours:
                stop_hosts(cfg, backend)
        if started:
            ray.shutdown()


def _default_workers(uses_hosts: bool, hosts: int) -> int:
    cpus = max(1, int(cluster_cpus()))
    # A host merges the batches of the simulations waiting on it, so each host needs
    # several simulations feeding it; CPU-bound scripted runs need one core each.
    return max(cpus, 4 * hosts) if uses_hosts else cpus


def _llm_configs(specs: list[RunSpec]) -> list[Any]:
    """One LLM policy config per distinct model of the runs (each model gets its own hosts;
    groups differing only in sampling settings share them)."""
    from agents.host import model_spec

    configs = {}
    for spec in specs:
        for group in load_scenario(spec.scenario).population:
            if group.policy.type == "llm":
                configs.setdefault(json.dumps(model_spec(group.policy), sort_keys=True), group.policy)
    return list(configs.values())
