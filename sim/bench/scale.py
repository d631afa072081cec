"""Scripted societies at scale: time per agent-step at 1,000 to 100,000 agents.

Each environment of the registry runs its spec's ``example`` scenario with the
population scaled to n scripted agents (group shares kept). A step's cost should grow
like n (flat time per agent-step); ``ratio`` is the time per agent-step at the largest
size over that at the smallest, step by step. Sizes are measured interleaved (round r
of every size before round r + 1), so drifting machine load hits them alike, and each
ratio is given as min / median / max over the rounds' steps.

``python -m sim.bench.scale --agents 1000 10000 --steps 2`` prints one JSON line per environment.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Sequence
from typing import Any

import yaml

from sim.bench.envs import SCENARIOS, _shares, spread


def scripted_scenario(name: str, agents: int, *, seed: int = 0) -> Any:
    """The spec's example scenario (scripted groups as written) scaled to n agents."""
    import environments
    from sim.config import load_scenario

    spec = environments.get(name)
    raw = yaml.safe_load((SCENARIOS / spec.example).read_text())
    groups = raw["population"]
    sizes = _shares([int(g.get("size", 1)) for g in groups], agents)
    raw["population"] = [{**g, "size": n} for g, n in zip(groups, sizes, strict=True) if n]
    raw["run"] = {**raw.get("run", {}), "steps": 10_000, "seed": seed}
    raw.pop("output", None)
    return load_scenario(raw)


def scripted(name: str) -> bool:
    """Whether the environment's example scenario is all scripted (no model to load)."""
    import environments

    raw = yaml.safe_load((SCENARIOS / environments.get(name).example).read_text())
    return all(
        isinstance(g.get("policy"), str) or (g.get("policy") or {}).get("type") == "scripted" for g in raw["population"]
    )


def build(name: str, agents: int, *, seed: int = 0) -> Any:
    from sim.runner import build_policies

    scenario = scripted_scenario(name, agents, seed=seed)
    return scenario.spec.model(scenario, build_policies(scenario))


def _step(model: Any) -> None:
    """One step as a run takes it: the model steps and hands over the step's event rows.
    Without the hand-over, every step's rows would stay in memory, and the garbage
    collector's passes over them made 100,000 agents look 1.3-1.6x dearer per agent."""
    model.step()
    model.take_step_events()


def _fresh(name: str, agents: int, warmup: int, *, seed: int) -> Any:
    model = build(name, agents, seed=seed)
    for _ in range(warmup):
        _step(model)
    return model


def measure(name: str, sizes: Sequence[int], *, steps: int = 2, warmup: int = 1, rounds: int = 1) -> dict[str, Any]:
    """Seconds per agent-step of each size: per round, a fresh society of each size (seed
    = the round), ``warmup`` steps untimed, then ``steps`` timed.

    Steps differ in work (a commons vote every few steps), so the ratio compares each
    timed step with the same step of the same round at the other size, and only one
    society is in memory at a time, so the garbage collector never walks a larger
    society's objects while a smaller one is timed. A step that ends a society (a
    fishery collapsing, which small societies do more often: fewer agents, more
    variance) does less work than the same step of one that goes on, so it is left
    out of the ratio; ``ended`` counts the rounds a size ended within its timed steps.
    """
    per: dict[int, dict[tuple[int, int], float]] = {n: {} for n in sizes}
    ended = dict.fromkeys(sizes, 0)
    for r in range(rounds):
        for n in sizes:
            model = _fresh(name, n, warmup, seed=r)
            for k in range(steps):
                if not model.running:
                    break
                start = time.perf_counter()
                _step(model)
                per[n][r, k] = (time.perf_counter() - start) / n
                if not model.running:
                    ended[n] += 1
                    del per[n][r, k]
            del model
            gc.collect()  # untimed: the society's reference cycles go before the next one is built
    small, large = min(sizes), max(sizes)
    ratios = [per[large][key] / per[small][key] for key in per[small] if key in per[large]]
    return {
        "environment": name,
        "steps": steps,
        "rounds": rounds,
        "seconds_per_agent_step": {str(n): spread(list(per[n].values()), 9) for n in sizes},
        "ended": {str(n): ended[n] for n in sizes},
        "ratio": spread(ratios),
        "ratio_sizes": [small, large],
    }


def main(argv: Sequence[str] | None = None) -> int:
    import environments

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=None, help=f"default: all of {', '.join(environments.names())}")
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: 1)")
    args = parser.parse_args(argv)
    names = args.env or [n for n in environments.names() if scripted(n)]
    for name in names:  # one JSON line per environment, printed as soon as it is measured
        print(
            json.dumps(measure(name, args.agents, steps=args.steps, warmup=args.warmup, rounds=args.rounds)), flush=True
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
