"""A sweep's tables in one place, and its contrasts as text.

>>> import sim
>>> sweep = sim.load_sweep("runs/commons_grid")
>>> sweep.runs  # one row per run: cell, seed, the factors, status, metrics
>>> sweep.steps.groupby(["mechanics.punishment.enabled", "step"])["stock"].mean()
>>> sweep.events  # every decision of every finished run, with its cell's factors

Each run's rows carry ``run``, ``cell``, ``seed`` and the cell's factors (the sweep
file's grid and zip keys) as columns, so one ``groupby`` compares conditions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from sim.core.numbers import num
from sim.core.schema import ConfigError
from sim.logger import read_table

TABLES = ("steps", "events", "agents")


@dataclass
class SweepTables:
    """A sweep directory's runs, and their per-step, event (and agent) rows concatenated."""

    dir: Path
    factors: list[str]  # the swept keys: columns of every table
    runs: pd.DataFrame  # results.parquet
    steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    agents: pd.DataFrame = field(default_factory=pd.DataFrame)


def load_sweep(path: str | Path, tables: Sequence[str] = ("steps", "events")) -> SweepTables:
    """Open a sweep directory; ``tables`` picks which of steps, events, agents to concatenate
    (events of a large sweep are big: leave them out when only the steps are needed)."""
    path = Path(path)
    results_file = path / "results.parquet"
    if not results_file.exists():
        raise ConfigError(f"{path}: not a sweep directory (no results.parquet); run `normsim sweep` first")
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ConfigError(f"tables: unknown {', '.join(unknown)}; choose from {', '.join(TABLES)}")
    runs = pd.read_parquet(results_file)
    spec = _spec(path)
    factors = [k for k in (*spec.get("grid", {}), *spec.get("zip", {})) if k in runs.columns]
    out = SweepTables(dir=path, factors=factors, runs=runs)
    finished = runs[runs["status"] == "finished"] if "status" in runs else runs
    for name in tables:
        parts = []
        for _, row in finished.iterrows():  # factor keys have dots: rows by name, not attribute
            table = read_table(path / str(row["dir"]), name)
            ids = {key: row[key] for key in ("run", "cell", "seed", *factors)}
            parts.append(table.drop(columns=[c for c in ("run_id", "seed") if c in table]).assign(**ids))
        if parts:
            setattr(out, name, pd.concat(parts, ignore_index=True))
    return out


def _spec(path: Path) -> dict:
    spec_file = path / "sweep.yaml"
    data = yaml.safe_load(spec_file.read_text()) if spec_file.exists() else None
    return data if isinstance(data, dict) else {}


def contrast_lines(diffs: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """Each two-level factor's effect on ``metrics``: on minus off with its interval, per
    combination of the other factors (contrasts.csv, as text)."""
    shown = diffs[diffs["metric"].isin(list(metrics))] if len(diffs) else diffs
    if shown.empty:
        return ["contrasts: no factor has exactly two levels with finished runs"]
    lines = []
    width = max(len(m) for m in shown["metric"])
    for factor, sub in shown.groupby("factor", sort=False):
        first = sub.iloc[0]
        lines.append(f"{factor}: {first['on']} minus {first['off']}")
        for at, rows in sub.groupby("at", sort=False):
            if at:
                lines.append(f"  at {at}")
            for r in rows.itertuples(index=False):
                interval = "" if pd.isna(r.ci95_low) else f" [{num(r.ci95_low, 3)}, {num(r.ci95_high, 3)}]"
                pairs = f"{r.n} paired" if r.paired else f"n={r.n}"
                lines.append(f"    {r.metric:<{width}}  {num(r.diff, 3)}{interval} ({pairs})")
    return lines
