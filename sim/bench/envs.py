"""Any environment's LLM decision path, measured step by step (reused by ``normsim bench``).

Nothing here names an environment: the environments come from the registry
(:func:`environments.names`), each measured on its spec's ``example`` scenario with
every population group's policy swapped for the LLM under test and the population
scaled to n agents (group shares kept).

Per step it records wall seconds, decisions (requests answered by LLM policies), and
two token counts:

* ``computed``: real (non-padding) tokens the model ran, summed over every forward of
  the step (shared prefix, contexts, option tokens, generated tokens); ``padded`` adds
  the padding; ``logits``: positions whose logits are read (each context row's last
  token and its options' token-tree columns, each decode row), not the output head's
  padding nor a prefix forward's discarded column;
* ``distinct``: the tokens the step has to run at least once: the nodes of a prefix
  tree over every scored sequence (context, context + each option but its last token,
  whose probability is read at the token before) plus every generated token run. ``computed / distinct`` is 1.0 when each distinct token is computed once.

``python -m sim.bench.envs --env NAME --agents 5 20 --steps 2`` prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@dataclass
class Counts:
    """What one measured stretch (a step) cost."""

    decisions: int = 0
    computed: int = 0
    padded: int = 0
    logits: int = 0
    forwards: int = 0
    generated: int = 0
    cpu_seconds: float = 0.0  # this process's CPU time (all threads): less sensitive to other load than wall time
    sequences: list[list[int]] = field(default_factory=list)  # scored token sequences, for the prefix tree

    def distinct(self) -> int:
        return trie_nodes(self.sequences) + self.generated


def trie_nodes(sequences: Sequence[Sequence[int]]) -> int:
    """Nodes of the prefix tree over the sequences: each distinct (prefix, token) once."""
    return sum(end - start for start, end in _new_runs(sequences))


def trie_keys(sequences: Sequence[Sequence[int]]) -> int:
    """Keys the tree's nodes attend to, summed: a node at position p sees p + 1 keys."""
    return sum((end * (end + 1) - start * (start + 1)) // 2 for start, end in _new_runs(sequences))


def _new_runs(sequences: Sequence[Sequence[int]]) -> Iterator[tuple[int, int]]:
    """Per sequence, the positions [start, end) its predecessors in sorted order lack."""
    prev: tuple[int, ...] = ()
    for seq in sorted(map(tuple, sequences)):  # sorted: a sequence shares most with its predecessor
        yield _shared(seq, prev), len(seq)
        prev = seq


def _shared(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def env_scenario(
    name: str,
    agents: int,
    model: str,
    *,
    seed: int = 0,
    steps: int = 1,
    overrides: Sequence[str] = (),
    device: str = "auto",
    dtype: str = "auto",
) -> Any:
    """The spec's example scenario with every group's policy the LLM ``model``, n agents in
    all (``overrides``: ``key.path=value`` strings, as ``normsim run --set``)."""
    import yaml

    import environments
    from sim.config import apply_overrides, load_scenario
    from sim.core.schema import ConfigError

    spec = environments.get(name)
    raw = yaml.safe_load((SCENARIOS / spec.example).read_text())
    groups = raw["population"]
    raw["run"] = {**raw.get("run", {}), "steps": steps, "seed": seed}
    raw.pop("output", None)
    # An environment may take only some population sizes (whole groups of a game): the
    # nearest size at or above ``agents`` that it accepts.
    for n_agents in range(agents, agents + 16):
        sizes = _shares([int(g.get("size", 1)) for g in groups], n_agents)
        raw["population"] = [
            {**g, "size": n, "policy": {"type": "llm", "model": model, "device": device, "dtype": dtype}}
            for g, n in zip(groups, sizes, strict=True)
            if n
        ]
        try:
            return load_scenario(apply_overrides(raw, list(overrides)))
        except ConfigError as err:
            if "population" not in str(err) or n_agents == agents + 15:
                raise
    raise AssertionError("unreachable")


def _shares(weights: Sequence[int], total: int) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainders), at least one agent in the first group."""
    w = np.asarray(weights, dtype=np.float64)
    raw = w / w.sum() * total
    out = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - out), kind="stable")[: total - int(out.sum())]:
        out[i] += 1
    return [int(x) for x in out]


class EnvRun:
    """An environment with n LLM agents, stepped one measured step at a time."""

    def __init__(
        self,
        name: str,
        agents: int,
        model: str = "smollm2-135m",
        *,
        seed: int = 0,
        overrides: Sequence[str] = (),
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        from sim.runner import build_policies

        self.name, self.agents = name, agents
        self.scenario = env_scenario(
            name, agents, model, seed=seed, steps=10_000, overrides=overrides, device=device, dtype=dtype
        )
        self.policies = build_policies(self.scenario)
        self.model = self.scenario.spec.model(self.scenario, self.policies)
        fronts = [p for p in self.policies.values() if hasattr(p, "backend")]
        self.backends = list({id(p.backend): p.backend for p in fronts}.values())
        self.fronts = fronts

    def step(self) -> tuple[float, Counts]:
        counts = Counts()
        with _counting(self.backends, self.fronts, counts):
            start, cpu = time.perf_counter(), time.process_time()
            self.model.step()
            seconds = time.perf_counter() - start
            counts.cpu_seconds = time.process_time() - cpu
        return seconds, counts


@contextmanager
def _counting(backends: Sequence[Any], fronts: Sequence[Any], counts: Counts) -> Iterator[None]:
    """Count tokens and decisions by wrapping the backends' and policies' entry points
    (instance attributes, removed afterwards: the engine itself is not changed)."""
    from agents.llm.scoring import prepare

    def forward(engine: Any) -> Any:
        inner = engine.forward

        def run(ctx: Any, ids: Any, *args: Any, **kwargs: Any) -> Any:
            logits = inner(ctx, ids, *args, **kwargs)
            real = int(ctx.valid.sum()) if ctx.valid is not None else int(ids.numel())
            counts.computed += real
            counts.padded += int(ids.numel())
            if ctx.stage != "prefix":
                cont = ctx.continuation
                counts.logits += int(ids.shape[0]) + (0 if cont is None else int(cont.sum()))
            counts.forwards += 1
            if ctx.stage == "decode":
                counts.generated += real
            return logits

        return run

    def score(backend: Any) -> Any:
        inner = backend.score

        def run(items: Any) -> Any:
            for p in prepare(backend.engine, items):
                # An option's last token is never run (its probability is read at the
                # token before), so what has to run is the context and each option but its last token.
                counts.sequences.append(p.context)
                counts.sequences.extend(p.context + t[:-1] for t in p.tails if len(t) > 1)
            return inner(items)

        return run

    def decide_mixed(front: Any) -> Any:
        inner = front.decide_mixed

        def run(pairs: Any, rng: Any) -> Any:
            counts.decisions += len(pairs)
            return inner(pairs, rng)

        return run

    patched: list[tuple[Any, str]] = []
    try:
        for b in backends:
            b.engine.forward = forward(b.engine)  # the one place the model runs
            patched.append((b.engine, "forward"))
            b.score = score(b)
            patched.append((b, "score"))
        for f in fronts:
            f.decide_mixed = decide_mixed(f)
            patched.append((f, "decide_mixed"))
        yield
    finally:
        for obj, attr in patched:
            obj.__dict__.pop(attr, None)


def step_row(seconds: float, counts: Counts) -> dict[str, Any]:
    distinct = counts.distinct()
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(counts.cpu_seconds, 3),
        "decisions": counts.decisions,
        "decisions_per_second": round(counts.decisions / seconds, 3) if seconds > 0 else None,
        "computed": counts.computed,
        "padded": counts.padded,
        "logits": counts.logits,
        "forwards": counts.forwards,
        "generated": counts.generated,
        "distinct": distinct,
        "tokens_ratio": round(counts.computed / distinct, 3) if distinct else None,
    }


def spread(values: Sequence[float | None], digits: int = 3) -> dict[str, float] | None:
    """min / median / max of the measured values (None when none was measured)."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return None
    return {"min": round(min(v), digits), "median": round(float(np.median(v)), digits), "max": round(max(v), digits)}


def measure(
    name: str,
    agents: int,
    steps: int,
    *,
    warmup: int = 1,
    model: str = "smollm2-135m",
    overrides: Sequence[str] = (),
) -> dict[str, Any]:
    """``warmup`` untimed steps (kernels, memories, content), then ``steps`` measured ones."""
    env = EnvRun(name, agents, model, overrides=overrides)
    for _ in range(warmup):
        env.step()
    rows = [step_row(*env.step()) for _ in range(steps)]
    decisions, seconds = sum(r["decisions"] for r in rows), sum(r["seconds"] for r in rows)
    return {
        "environment": name,
        "agents": agents,
        "steps": rows,
        "seconds_per_step": spread([r["seconds"] for r in rows]),
        "cpu_seconds_per_step": spread([r["cpu_seconds"] for r in rows]),
        "decisions_per_second": round(decisions / seconds, 3) if seconds else None,
        "tokens_ratio": spread([r["tokens_ratio"] for r in rows]),
    }


def main(argv: Sequence[str] | None = None) -> int:
    import environments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=environments.names())
    parser.add_argument("--agents", type=int, nargs="+", default=[5])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="scenario override")
    args = parser.parse_args(argv)
    out = [
        measure(args.env, n, args.steps, warmup=args.warmup, model=args.model, overrides=args.set) for n in args.agents
    ]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
