"""Layer x coefficient sweeps: run a scenario once per setting, tabulate what changed.

Each setting sets the ``steering:`` block of the targeted groups (default: every LLM
group) and runs the scenario with the same seed, so settings differ only by steering
(common random numbers). The table holds the mean action entropy and the
environment's headline metrics per (vector, layers, coefficient); with
``control="shuffled"`` every setting is repeated with the shuffled vector (same norm
per layer, no direction), EAST's control. Coefficient 0 is run once: it is
bit-identical whichever vector is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from steering.vectors import SteeringVector

# Metrics tabulated when an environment reports them (scalars only).
KEY_METRICS = (
    "mean_action_entropy", "final_entropy", "switch_rate", "best_arm_rate", "mean_reward", "regret",
    "survival_time", "efficiency", "equality", "over_usage", "norm_violation_rate", "punishment_rate",
    "violation_rate", "cooperation",
)  # fmt: skip


def sweep(
    scenario: str | Path,
    vector: str | Path,
    coefficients: Sequence[float],
    out: str | Path,
    *,
    layer_sets: Sequence[Sequence[int] | None] = (None,),
    groups: Sequence[str] | None = None,
    positions: Sequence[str] = ("last_prompt", "generated"),
    operator: str = "add",
    control: str | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Run every (vector, layers, coefficient) and write ``sweep.csv`` and ``sweep.md``."""
    from sim.config import load_scenario
    from sim.runner import run

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = load_scenario(scenario, overrides)
    names = [g.name for g in base.population]
    targets = list(groups) if groups else [g.name for g in base.population if g.policy.type == "llm"]
    unknown = sorted(set(targets) - set(names))
    if unknown or not targets:
        raise ValueError(f"groups to steer: {targets or 'none'}; the scenario's groups are {names}")
    variants = {"vector": Path(vector)}
    if control == "shuffled":
        shuffled = SteeringVector.load(vector).shuffled(seed=base.run.seed)
        variants["shuffled"] = shuffled.save(out / "shuffled_vector")
    elif control is not None:
        raise ValueError(f"unknown control '{control}'; allowed: shuffled")
    rows: list[dict[str, Any]] = []
    zero: dict[str, Any] | None = None
    for layers in layer_sets:
        for name, path in variants.items():
            for coef in coefficients:
                label = f"{name}-L{'all' if layers is None else '_'.join(map(str, layers))}-c{coef:g}"
                if coef == 0 and zero is not None:
                    rows.append({**zero, "vector": name, "layers": _layers(layers), "run": zero["run"]})
                    continue
                block = {"vector": str(path), "layers": None if layers is None else list(layers),
                         "coefficient": float(coef), "positions": list(positions), "operator": operator}  # fmt: skip
                steer = {f"population.{names.index(g)}.steering": block for g in targets}
                result = run(scenario, overrides={**(overrides or {}), **steer}, run_dir=out / "runs" / label,
                             progress=progress, report=False)  # fmt: skip
                row = {"vector": name, "layers": _layers(layers), "coefficient": float(coef),
                       **{k: result.metrics.get(k) for k in KEY_METRICS if _scalar(result.metrics.get(k))},
                       "run": str(result.dir)}  # fmt: skip
                rows.append(row)
                if coef == 0:
                    zero = row
    table = pd.DataFrame(rows)
    table.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(markdown(table) + "\n")
    return table


def _layers(layers: Sequence[int] | None) -> str:
    return "all" if layers is None else ",".join(map(str, layers))


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def markdown(table: pd.DataFrame) -> str:
    cols = [c for c in table.columns if c != "run"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in table.iterrows():
        cells = [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
