"""Layer x coefficient sweeps: run a scenario once per setting, tabulate what changed.

Each setting sets the ``steering:`` block of the targeted groups (default: every LLM
group) and runs the scenario with the same seed, so settings differ only by steering
(common random numbers). The table holds the mean action entropy and the
environment's headline metrics per (vector, layers, coefficient); with
``control="shuffled"`` every setting is repeated with the shuffled vector (same norm
per layer, no direction), EAST's control. Coefficient 0 is run once: it is
bit-identical whichever vector is loaded.

With ``seeds``, every setting runs once per seed (``run.seed``; the shuffled control
stays the one vector drawn from the scenario's own seed) and the table gains a
``seed`` column; ``summarize`` then gives each metric's mean, standard deviation and
seed count per setting, the change from coefficient 0 and the vector-minus-shuffled
difference, both paired by seed and with 95 % t-intervals.
Settings share each seed's random numbers, so paired differences carry less noise
than the spread across seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from steering.vectors import SteeringVector


# Metrics tabulated when an environment reports them (scalars only).
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
    seeds: Sequence[int] | None = None,
    metric: str = "mean_action_entropy",
    progress: bool = False,
) -> pd.DataFrame:
    """Run every (seed, vector, layers, coefficient) and write ``sweep.csv`` (one row per
    run) and ``sweep.md``; with seeds also ``summary.csv``, :func:`summarize` of ``metric``
    (a column of the table: a key metric, or ``entropy.PHASE`` for one phase's decisions)."""
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
    for seed in seeds if seeds else [None]:
        zero: dict[str, Any] | None = None  # coefficient 0 is run once per seed
        seeded = {**(overrides or {}), **({} if seed is None else {"run.seed": int(seed)})}
        for layers in layer_sets:
            for name, path in variants.items():
                for coef in coefficients:
                    label = f"{name}-L{'all' if layers is None else '_'.join(map(str, layers))}-c{coef:g}"
                    label += "" if seed is None else f"-s{seed}"
                    head = {} if seed is None else {"seed": int(seed)}
                    if coef == 0 and zero is not None:
                        rows.append({**zero, "vector": name, "layers": _layers(layers)})
                        continue
                    block = {
                        "vector": str(path),
                        "layers": None if layers is None else list(layers),
                        "coefficient": float(coef),
                        "positions": list(positions),
                        "operator": operator,
                    }
                    steer = {f"population.{names.index(g)}.steering": block for g in targets}
                    result = run(
                        scenario,
                        overrides={**seeded, **steer},
                        run_dir=out / "runs" / label,
                        progress=progress,
                        report=False,
                    )
                    row = {
                        **head,
                        "vector": name,
                        "layers": _layers(layers),
                        "coefficient": float(coef),
                        **{
                            k: result.metrics.get(k)
                            for k in result.scenario.spec.headline
                            if _scalar(result.metrics.get(k))
                        },
                        **_by_phase(result.metrics),
                        "run": str(result.dir),
                    }
                    rows.append(row)
                    pd.DataFrame(rows).to_csv(out / "sweep.csv", index=False)  # an interrupted sweep keeps its runs
                    if coef == 0:
                        zero = row
    table = pd.DataFrame(rows)
    table.to_csv(out / "sweep.csv", index=False)
    text = markdown(table)
    if seeds:
        summary = summarize(table, metric)
        summary.to_csv(out / "summary.csv", index=False)
        text = markdown(summary) + "\n\nper run:\n\n" + text
    (out / "sweep.md").write_text(text + "\n")
    return table


def summarize(table: pd.DataFrame, metric: str = "mean_action_entropy", level: float = 0.95) -> pd.DataFrame:
    """Per (vector, layers, coefficient) over seeds: ``metric`` mean, sd (ddof 1) and
    seed count; ``minus_zero``: the change from coefficient 0 at the same seed and
    layers (mean and a ``level`` t-interval over seeds: the pairing removes each seed's
    own level); and, when a shuffled control ran, ``minus_shuffled``: vector minus
    shuffled at the same seed, layers and coefficient, with its interval. Differences
    of means are unbounded in sign, so a t-interval is the honest summary here; with
    few seeds read the sd too."""
    keys = ["vector", "layers", "coefficient"]
    if metric not in table.columns:
        raise ValueError(f"no column '{metric}' in the sweep table; columns: {list(table.columns)}")
    stats = table.groupby(keys, sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    stats = stats.rename(columns={"mean": f"{metric}_mean", "std": f"{metric}_sd", "count": "seeds"})
    if "seed" not in table.columns:
        return stats
    if (table["coefficient"] == 0).any():
        zero = table[table["coefficient"] == 0].groupby(["seed", "layers"])[metric].first().rename("zero")
        paired = table.join(zero, on=["seed", "layers"])
        paired = paired.assign(d=paired[metric] - paired["zero"]).dropna(subset=["d"])
        stats = stats.merge(_interval(paired.groupby(keys)["d"], "minus_zero", level), on=keys, how="left")
    if {"vector", "shuffled"} <= set(table["vector"]):
        wide = table.pivot_table(index=["seed", "layers", "coefficient"], columns="vector", values=metric)
        diff = (wide["vector"] - wide["shuffled"]).dropna().rename("d").reset_index()
        diff = _interval(diff.groupby(["layers", "coefficient"])["d"], "minus_shuffled", level)
        stats = stats.merge(diff.assign(vector="vector"), on=keys, how="left")
    return stats


def _interval(groups: Any, name: str, level: float) -> pd.DataFrame:
    """Mean, sd and two-sided t-interval of paired differences per group."""
    from scipy import stats as st

    out = groups.agg(["mean", "std", "count"]).reset_index()
    half = st.t.ppf(0.5 + level / 2, (out["count"] - 1).clip(lower=1)) * out["std"] / out["count"] ** 0.5
    out[f"{name}_lo"], out[f"{name}_hi"] = out["mean"] - half, out["mean"] + half
    return out.drop(columns="count").rename(columns={"mean": f"{name}_mean", "std": f"{name}_sd"})


def _by_phase(metrics: dict[str, Any]) -> dict[str, float]:
    """Mean action entropy of each phase (``entropy.harvest``), when there are several."""
    phases = metrics.get("mean_action_entropy_by_phase") or {}
    return {f"entropy.{k}": float(v) for k, v in phases.items() if _scalar(v)} if len(phases) > 1 else {}


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
