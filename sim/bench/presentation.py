"""What the presentation layer costs: tokens the engine computes for the same decisions.

Probes never change a choice (they draw nothing from the run's generator), so a run at
any ``presentation.sensitivity`` takes the same decisions, and the tokens the batched
scorer runs for them (padding included, counted by :func:`sim.bench.hardware.decision_tokens`
on every scoring call) compare exactly, free of the machine's timing noise::

    python -m sim.bench.presentation --steps 6            # commons_llm.yaml, seed 0, SmolLM2
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

SETTINGS: dict[str, dict[str, Any]] = {
    "fixed order, no probes": {"presentation.order": "fixed", "presentation.sensitivity": 0},
    "balanced, no probes": {"presentation.sensitivity": 0},
    "balanced, 5% probed": {"presentation.sensitivity": 0.05},
    "balanced, 10% probed": {"presentation.sensitivity": 0.1},
    "balanced, 20% probed": {"presentation.sensitivity": 0.2},
}


def tokens_by_setting(
    scenario: str = "scenarios/commons_llm.yaml",
    *,
    steps: int = 6,
    seed: int = 0,
    model: str | None = None,
    settings: dict[str, dict[str, Any]] | None = None,
) -> dict[str, dict[str, int]]:
    """Per presentation setting: tokens needed (distinct), computed with padding, option
    columns and logits, summed over every scoring call of ``steps`` steps."""
    import sim
    from agents.llm import get_backend
    from sim.bench.hardware import decision_tokens

    extra = {"model": model} if model else {}
    backend = get_backend(model or sim.load_scenario(scenario).population[0].policy.model)
    counted: list[dict[str, int]] = []
    score = backend.score

    def recording(items: Sequence[Any]) -> Any:
        counted.append(decision_tokens(backend, items))
        return score(items)

    out = {}
    backend.score = recording  # type: ignore[method-assign]
    try:
        for label, overrides in (settings or SETTINGS).items():
            counted.clear()
            society = sim.build_model(scenario, seed=seed, overrides={**overrides, **extra})
            for _ in range(steps):
                if society.running:
                    society.step()
                    society.take_step_events()
            out[label] = {k: sum(c[k] for c in counted) for k in ("needed", "padded", "options", "logits")}
    finally:
        del backend.score
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.bench.presentation", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/commons_llm.yaml")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="one model for every LLM group (default: the scenario's)")
    args = parser.parse_args(argv)
    rows = tokens_by_setting(args.scenario, steps=args.steps, seed=args.seed, model=args.model)
    base = rows["balanced, no probes"]["padded"]
    for label, row in rows.items():
        print(
            f"{label:24} computed {row['padded']:>8,} ({(row['padded'] / base - 1) * 100:+.1f} %)  distinct {row['needed']:>8,}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
