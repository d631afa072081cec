"""Model hosts: Ray actors that serve one LLM backend to many simulations.

With ``backend: {kind: ray}`` an LLM group's policy front (:class:`agents.llm.policy.LLMPolicy`)
stays in the simulation's process, and its backend is a :class:`RemoteBackend`: a proxy
whose ``score``/``generate`` calls go to a :class:`ModelHost` actor holding the one model
copy. The front keeps the simulation's seeded rng and the parsing, and the backend's
work is pure (items in, log-probabilities and texts out; generation seeds travel in
the items), so a run gives the same events on a host as in-process.

A host is an async actor: the batches that simulations send while it is busy or within
``batch_wait_ms`` are merged into one backend call (one forward pass per stage) and the
answers split back. Hosts are named actors (``normsim-host-<model hash>-<i>``), started
by the driver (:func:`ensure_hosts`) and found by name from any worker; a simulation uses
host ``slot % hosts`` (the sweep spreads concurrent runs over the hosts). A crashed
host is restarted by Ray (``max_restarts``) and its in-flight calls re-sent
(``max_task_retries``); the proxy also retries calls that fail because the host died,
so a run fails only after ``retries`` attempts, with the error in its traceback.

Policies: :func:`agents.factory.llm_policy` builds a front for a proxy from
:func:`remote_backend` exactly as for a local backend (same checks, the model's facts
come from the host through :meth:`RemoteBackend.info`).

Steering: a group's vector is resolved where the simulation runs
(:func:`steering.resolve.resolve`, so fits and labels are a local run's) and registered
once per host under the hash of its files (:meth:`RemoteBackend.register_vector`);
items carry that key instead of a path, and the host's backend steers each row as
in-process (:mod:`steering.engine`). Each host keeps the vectors sent to it in a
temporary directory of its own, removed when it exits. A restarted host answers
:class:`MissingVector` and the proxy registers its vectors again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agents.cluster import ensure_ray, host_resources
from agents.config import BackendConfig
from agents.llm import get_backend
from agents.merging import plan_merges
from steering.resolve import ModelInfo

HOST_PREFIX = "normsim-host"
_slot = 0  # which of a model's hosts this process's simulation uses (set per sweep run)
_proxies: dict[tuple[str, ...], RemoteBackend] = {}
# Handles of the hosts this process started. A named actor that is not detached is
# destroyed once its owner holds no handle to it, so the owner keeps them here until
# stop_hosts (or the end of the process).
_owned: dict[str, Any] = {}


def private_vector_dir() -> Path:
    """A new folder for the steering vectors sent to one host (named by content): private
    (mode 0700, from mkdtemp), never a fixed path other users of the machine could read
    or plant files in; the host removes it when it goes."""
    return Path(tempfile.mkdtemp(prefix="normsim-host-vectors-"))


def model_spec(cfg: Any) -> dict[str, Any]:
    """The fields of an LLM policy config that decide the backend (the model copy)."""
    return {"model": cfg.model, "dtype": cfg.dtype, "device": cfg.device, "trust_remote_code": cfg.trust_remote_code}


def host_names(cfg: Any, backend: BackendConfig) -> list[str]:
    """Names of a model's hosts; they differ whenever a host would behave differently."""
    fields = {"hosts", "num_cpus", "num_gpus", "retries", "batch_wait_ms", "merge_batches"}
    settings = {**model_spec(cfg), **backend.model_dump(include=fields)}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return [f"{HOST_PREFIX}-{digest}-{i}" for i in range(backend.hosts)]


@contextlib.contextmanager
def host_slot(slot: int) -> Iterator[None]:
    """Make the policies built inside use host ``slot % hosts`` (one sweep run)."""
    global _slot
    previous, _slot = _slot, slot
    try:
        yield
    finally:
        _slot = previous


def vector_key(tensors: bytes, meta: bytes) -> str:
    """Content hash of a saved steering vector: its tensors file and its metadata file."""
    digest = hashlib.sha256(len(tensors).to_bytes(8, "little"))
    digest.update(tensors)
    digest.update(meta)
    return digest.hexdigest()


class MissingVector(LookupError):
    """A request names a steering vector the host does not hold (it restarted since)."""


# ----------------------------------------------------------------------------- host
class ModelHost:
    """The actor: one backend, its calls serialised on one thread, concurrent batches merged."""

    def __init__(self, spec: dict[str, Any], threads: int, batch_wait_ms: float, merge: bool = True) -> None:
        import torch

        # All model work runs on this one thread (the backend is not thread-safe). Ray
        # sets OMP_NUM_THREADS from the actor's num_cpus as an integer (1 for a fraction);
        # the thread count is set on the thread that runs the model, to the cores claimed.
        self.executor = ThreadPoolExecutor(max_workers=1)
        self.executor.submit(torch.set_num_threads, max(1, threads)).result()
        self.backend = self.executor.submit(lambda: get_backend(**spec)).result()
        self.wait = batch_wait_ms / 1000.0
        self.merge = merge
        self.pending: list[tuple[str, list[Any], asyncio.Future]] = []
        self.flusher: asyncio.Task | None = None
        self.vectors: dict[str, str] = {}  # content key -> this host's copy of the vector
        # This host's own directory for them (never a fixed path other users could share).
        self.vector_dir = private_vector_dir()
        weakref.finalize(self, shutil.rmtree, str(self.vector_dir), ignore_errors=True)
        threads_used = self.executor.submit(torch.get_num_threads).result()
        self.stats = {"backend_calls": 0, "requests": 0, "items": 0, "threads": threads_used}

    async def ready(self) -> dict[str, Any]:
        """Counters since start; ``cpu_seconds`` is this process's CPU time (all threads)."""
        return {**self.stats, "cpu_seconds": time.process_time()}

    async def score(self, items: Sequence[Any]) -> list[Any]:
        return await self._submit("score", items)

    async def generate(self, items: Sequence[Any]) -> list[str]:
        return await self._submit("generate", items)

    async def model_info(self) -> dict[str, Any]:
        """The model facts steering checks vectors against (name, hidden size, layer count)."""
        return dataclasses.asdict(self.backend.info())

    async def describe(self) -> dict[str, Any]:
        """The engine's attention path and why (see ``agents.llm.engine.Engine.describe``)."""
        return self.backend.describe()

    async def register_vector(self, key: str, tensors: bytes, meta: bytes) -> bool:
        """Keep a steering vector (.safetensors and .json bytes) under its content key, checked
        against the model; False, doing nothing, if the key is known."""
        if key in self.vectors:
            return False
        if vector_key(tensors, meta) != key:
            raise ValueError("steering vector content does not match its key")
        from steering.vectors import load_vector

        path = self.vector_dir / f"{key}.safetensors"
        for target, data in ((path, tensors), (path.with_suffix(".json"), meta)):
            tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # complete files only, even if killed
            tmp.write_bytes(data)
            tmp.replace(target)
        info = self.backend.info()
        load_vector(path, hidden_size=info.hidden_size, num_layers=info.num_layers, model_id=info.model_id)
        self.vectors[key] = str(path)
        return True

    def _local(self, item: Any) -> Any:
        """An item whose steering names a vector key, pointed at this host's copy."""
        spec = getattr(item, "steer", None)
        if spec is None:
            return item
        if spec.vector not in self.vectors:
            raise MissingVector(spec.vector)
        return dataclasses.replace(item, steer=dataclasses.replace(spec, vector=self.vectors[spec.vector]))

    async def _submit(self, kind: str, items: Sequence[Any]) -> list[Any]:
        local = [self._local(item) for item in items]  # before queuing: a missing vector fails only its sender
        future = asyncio.get_running_loop().create_future()
        self.pending.append((kind, local, future))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        """Serve queued requests until none is left, merging each round into one call per kind.

        Requests that arrive while a call runs wait for the next round; the bounded wait
        before a round lets simulations that are about to send join it.
        """
        loop = asyncio.get_running_loop()
        while self.pending:
            await asyncio.sleep(self.wait)
            batch, self.pending = self.pending, []
            for kind in ("score", "generate"):
                group = [(items, fut) for k, items, fut in batch if k == kind]
                # Exact mode serves each request alone, as a local run would. Otherwise
                # requests merge where that keeps their shared prefixes (agents/merging.py).
                plan = plan_merges([items for items, _ in group]) if self.merge else [[n] for n in range(len(group))]
                for members in plan:
                    await self._serve(loop, kind, [group[n] for n in members])

    async def _serve(self, loop: asyncio.AbstractEventLoop, kind: str, group: list[tuple[list[Any], Any]]) -> None:
        merged = [item for items, _ in group for item in items]
        call = getattr(self.backend, kind)
        try:
            answers = await loop.run_in_executor(self.executor, call, merged)
            if len(answers) != len(merged):
                raise RuntimeError(f"backend {kind} returned {len(answers)} answers for {len(merged)} items")
        except Exception as exc:
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(exc)
                return
            # One bad request must not fail the simulations it was merged with: serve
            # each alone so the error reaches only its sender.
            for items, fut in group:
                await self._serve(loop, kind, [(items, fut)])
            return
        self.stats["backend_calls"] += 1
        self.stats["requests"] += len(group)
        self.stats["items"] += len(merged)
        start = 0
        for items, fut in group:
            if not fut.done():
                fut.set_result(answers[start : start + len(items)])
            start += len(items)


def ensure_hosts(cfg: Any, backend: BackendConfig, *, wait: bool = True) -> list[Any]:
    """Handles of the hosts of an LLM config, starting the ones that are not running.

    ``wait`` blocks until every host has loaded its model, so a missing model fails
    here, before any simulation starts.
    """
    import ray

    ensure_ray(backend)
    resources = host_resources(backend)
    actor = ray.remote(ModelHost)
    handles = []
    for name in host_names(cfg, backend):
        if name in _owned:
            try:
                ray.get_actor(name)
            except ValueError:  # killed for good by someone else: its name is free again
                del _owned[name]
        if name not in _owned:  # never replace the creator's handle: dropping it ends the actor
            _owned[name] = actor.options(
                name=name,
                get_if_exists=True,
                max_restarts=backend.retries,
                max_task_retries=backend.retries,
                max_concurrency=1000,
                **resources,
            ).remote(model_spec(cfg), int(resources["num_cpus"]), backend.batch_wait_ms, backend.merge_batches)
        handles.append(_owned[name])
    if wait:
        ray.get([h.ready.remote() for h in handles])
    return handles


def hosts_running(cfg: Any, backend: BackendConfig) -> bool:
    """Whether every host of an LLM config is up (started earlier by this process or another)."""
    import ray

    try:
        for name in host_names(cfg, backend):
            ray.get_actor(name)
    except ValueError:
        return False
    return True


def stop_hosts(cfg: Any, backend: BackendConfig) -> None:
    """Kill the hosts of an LLM config (no restart)."""
    import ray

    for name in host_names(cfg, backend):
        _owned.pop(name, None)
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name), no_restart=True)
    for key in [k for k in _proxies if k[0] in host_names(cfg, backend)]:
        del _proxies[key]


def stop_all_hosts() -> None:
    """Kill every host this process started (a test module, a notebook): their CPUs go
    back to the cluster, so a later host that claims the whole cluster can start."""
    import ray

    for name in list(_owned):
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name), no_restart=True)
    _owned.clear()
    _proxies.clear()


def host_stats(cfg: Any, backend: BackendConfig) -> list[dict[str, Any]]:
    import ray

    return ray.get([ray.get_actor(name).ready.remote() for name in host_names(cfg, backend)])


# ---------------------------------------------------------------------------- proxy
class RemoteBackend:
    """The front's backend when the model lives in a host actor (the BatchBackend protocol)."""

    def __init__(self, cfg: Any, backend: BackendConfig, slot: int = 0) -> None:
        self.cfg, self.config = cfg, backend
        names = host_names(cfg, backend)
        self.host = names[slot % len(names)]
        spec = model_spec(cfg)
        # Fronts of one model share a batch key, so a phase's groups reach the host together.
        self.key = ("host", spec["model"], spec["dtype"], spec["device"])
        self._handle: Any = None
        self._vectors: dict[str, tuple[str, bytes, bytes]] = {}  # vector path -> (key, tensors, metadata)
        self._registered: set[str] = set()  # keys the host holds, as far as this proxy knows
        self._info: ModelInfo | None = None

    def score(self, items: Sequence[Any]) -> list[Any]:
        return self._serve("score", items)

    def generate(self, items: Sequence[Any]) -> list[str]:
        return self._serve("generate", items)

    def info(self) -> ModelInfo:
        """The hosted model's facts (name, hidden size, layer count), asked once."""
        if self._info is None:
            self._info = ModelInfo(**self._call("model_info"))
        return self._info

    def describe(self) -> dict[str, Any]:
        """The hosted engine's attention path and why, for the run's records."""
        return self._call("describe")

    def register_vector(self, path: str) -> str:
        """Send a saved steering vector (``path``: its .safetensors) to the host once; returns its key."""
        if path not in self._vectors:
            stem = Path(path).with_suffix("") if Path(path).suffix in (".safetensors", ".json") else Path(path)
            # the pair STEM.safetensors + STEM.json, as steering.vectors names them
            tensors, meta = (stem.with_name(stem.name + ext).read_bytes() for ext in (".safetensors", ".json"))
            self._vectors[path] = (vector_key(tensors, meta), tensors, meta)
        key, tensors, meta = self._vectors[path]
        if key not in self._registered:
            self._call("register_vector", key, tensors, meta)
            self._registered.add(key)
        return key

    def _serve(self, method: str, items: Sequence[Any]) -> list[Any]:
        try:
            return self._call(method, self._keyed(items))
        except MissingVector:  # the host restarted and lost its vectors: register them again
            self._registered.clear()
            return self._call(method, self._keyed(items))

    def _keyed(self, items: Sequence[Any]) -> list[Any]:
        """Items whose steering names its vector by content key instead of by path."""
        out = []
        for item in items:
            spec = getattr(item, "steer", None)
            if spec is not None:
                key = self.register_vector(spec.vector)
                item = dataclasses.replace(item, steer=dataclasses.replace(spec, vector=key))
            out.append(item)
        return out

    def _call(self, method: str, *args: Any) -> Any:
        import ray
        from ray.exceptions import ActorDiedError, ActorUnavailableError

        failure: Exception | None = None
        for attempt in range(self.config.retries + 1):
            try:
                return ray.get(getattr(self._actor(), method).remote(*args))
            except (ActorDiedError, ActorUnavailableError) as exc:  # ray.get without a timeout never times out
                # A host that died past its restarts has lost its name; the next attempt's
                # lookup then starts a fresh one (errors raised by the backend itself are
                # not retried: they would fail again).
                failure, self._handle = exc, None
                time.sleep(min(2.0, 0.1 * 2**attempt))
        raise RuntimeError(f"model host {self.host} failed {self.config.retries + 1} times: {failure}") from failure

    def _actor(self) -> Any:
        if self._handle is None:
            import ray

            try:
                self._handle = ray.get_actor(self.host)
            except ValueError:  # not started by a driver (a single `normsim run`): start it
                hosts = ensure_hosts(self.cfg, self.config)
                self._handle = hosts[host_names(self.cfg, self.config).index(self.host)]
        return self._handle


def remote_backend(cfg: Any, backend: BackendConfig) -> RemoteBackend:
    """The proxy of this process's host for an LLM config (``agents.factory.llm_policy``
    builds the front); fronts of one model and backend block share it."""
    ensure_ray(backend)
    key = (host_names(cfg, backend)[_slot % backend.hosts], backend.model_dump_json())
    if key not in _proxies:
        _proxies[key] = RemoteBackend(cfg, backend, _slot)
    return _proxies[key]
