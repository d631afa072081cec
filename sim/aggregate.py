"""A sweep's tables: one row per run (``results.parquet``) and per-cell statistics (``summary.csv``).

``results.parquet`` columns: ``run``, ``cell``, ``seed``, the swept parameters (their
dotted keys; lists and mappings as JSON text), ``status`` (finished, failed, pending),
``error`` (the traceback of a failed run), ``dir``, then the run's metrics: every
scalar of ``metrics.json`` and the scalars of its mappings one level down
(``total_gain.sum``, ``mean_action_entropy_by_phase.harvest``).

``summary.csv`` has one row per cell and numeric metric over the cell's finished runs:
``n``, ``mean``, ``std`` and the 95 % confidence interval of the mean from Student's t
distribution (``mean +- t(0.975, n-1) * std / sqrt(n)``; empty for n = 1). Booleans
count as 0/1, so ``survived``'s mean is the survival rate.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

META = ("run", "cell", "seed", "status", "error", "dir")


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars of metrics.json, and scalars of its mappings one level down."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if key == "status":
            continue
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                if _is_scalar(inner):
                    flat[f"{key}.{sub}"] = inner
        elif _is_scalar(value):
            flat[key] = value
    return flat


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bool, numbers.Number))


def _param(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def results_table(specs: Sequence[Any], root: Path, outcomes: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run of the sweep, in sweep order.

    Finished runs are read from their ``metrics.json`` (so runs finished by an earlier
    invocation appear too); failed ones from this invocation's outcomes; the rest are
    ``pending`` (an interrupted sweep).
    """
    rows = []
    for spec in specs:
        run_dir = root / "runs" / spec.name
        row: dict[str, Any] = {"run": spec.name, "cell": spec.cell, "seed": spec.seed}
        row |= {key: _param(value) for key, value in spec.params.items()}
        metrics = _read_metrics(run_dir)
        if metrics.get("status") == "finished":
            row |= {"status": "finished", "error": None, "dir": f"runs/{spec.name}"}
            row |= flatten_metrics(metrics)
        elif spec.name in outcomes:
            outcome = outcomes[spec.name]
            row |= {"status": outcome["status"], "error": outcome.get("error"), "dir": f"failed/{spec.name}"}
        else:
            row |= {"status": "pending", "error": None, "dir": None}
        rows.append(row)
    return pd.DataFrame(rows)


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}


def numeric_metrics(results: pd.DataFrame, params: Sequence[str]) -> list[str]:
    """Metric columns whose values are all numbers or booleans."""
    names = []
    for col in results.columns:
        if col in META or col in params:
            continue
        values = results[col].dropna()
        if len(values) and all(isinstance(v, (bool, numbers.Number)) for v in values):
            names.append(col)
    return names


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, std, low, high) of the mean, Student's t; low/high are NaN for one value."""
    n = len(values)
    series = pd.Series(values, dtype=float)
    mean = float(series.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(series.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def summarise(results: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Mean and 95 % CI per cell and numeric metric, over each cell's finished runs."""
    columns = ["cell", *params, "runs", "failed", "metric", "n", "mean", "std", "ci95_low", "ci95_high"]
    if results.empty:
        return pd.DataFrame(columns=columns)
    finished = results[results["status"] == "finished"]
    metrics = numeric_metrics(finished, params)
    rows = []
    for cell, runs in results.groupby("cell", sort=False):
        ok = runs[runs["status"] == "finished"]
        head = {"cell": cell, **{p: runs[p].iloc[0] for p in params}}
        head |= {"runs": len(runs), "failed": int((runs["status"] == "failed").sum())}
        for metric in metrics:
            values = [float(v) for v in ok[metric].dropna()] if metric in ok else []
            if not values:
                continue
            mean, std, low, high = confidence_interval(values)
            rows.append(
                {
                    **head,
                    "metric": metric,
                    "n": len(values),
                    "mean": mean,
                    "std": std,
                    "ci95_low": low,
                    "ci95_high": high,
                }
            )
    return pd.DataFrame(rows, columns=columns)


def write_results(root: Path, results: pd.DataFrame, summary: pd.DataFrame) -> None:
    """Write both tables atomically (a reader never sees half a file)."""
    table = pa.Table.from_pandas(_arrow_safe(results), preserve_index=False)
    tmp = root / "results.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, root / "results.parquet")
    tmp = root / "summary.csv.tmp"
    summary.to_csv(tmp, index=False)
    os.replace(tmp, root / "summary.csv")


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing types (a parameter swept over 1 and 'a') become text."""
    frame = frame.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            try:
                pa.array(frame[col], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                frame[col] = frame[col].map(lambda v: None if v is None else str(v))
    return frame
