"""A sweep's tables: one row per run (``results.parquet``) and per-cell statistics (``summary.csv``).

``results.parquet`` columns: ``run``, ``cell``, ``seed``, ``run_steps`` (the run's
``run.steps``), the swept parameters (their dotted keys; lists and mappings as JSON
text), ``status`` (finished, failed, pending), ``error`` (the traceback of a failed
run), ``dir``, then the run's metrics: every scalar of ``metrics.json`` and the scalars
of its mappings one level down (``total_gain.sum``, ``mean_action_entropy_by_phase.harvest``);
an LLM run's ``presentation_spread`` (per phase: how far the decisions' measure moved
when the options were shown otherwise) becomes ``presentation_spread.<phase>.spread``
and ``presentation_spread.<phase>.measure`` (its text).

``summary.csv`` has one row per cell and numeric metric over the cell's finished runs
(booleans count as 0/1, so ``survived``'s mean is the survival rate):

* ``n`` runs; ``mean``, ``std``, ``median``, ``q1``, ``q3`` (quartiles), ``min``, ``max``;
* ``ci95_low``, ``ci95_high``: the 95 % interval of the mean, ``ci_method`` how:
  ``wilson`` (a 0/1 outcome: the Wilson score interval of the rate), ``hall-t`` (the
  t-interval with Hall's skewness correction, :func:`sim.core.stats.mean_interval`),
  ``none`` (fewer than 3 runs: too few for an interval, empty ends); simulated, they
  cover the mean >= 93 % of the time for normal data from 3 runs and >= 90 % for
  skewed and 0/1 data from 5 (``tests/sim/test_stats.py``);
* ``range_low``, ``range_high``: the values the metric can take (the environment
  spec's ``metric_ranges``, else [0, 1] for 0/1 outcomes and shares, [0, run.steps]
  for ``survival_time``, else unbounded, -inf to inf); the interval never leaves it;
* ``distribution``: runs per value (``2:1 3:1 20:3``) when at most 12 distinct values.

``contrasts.csv``: for each factor with two levels (a grid key; the zip keys as one
factor), ``on`` minus ``off`` per metric at each combination of the other factors'
values (``at``): ``n`` seeds (paired: the mean of per-seed differences over the seeds
both sides ran) or, when fewer than two seeds match, the difference of means
(``paired`` false); ``on_mean``, ``off_mean``, ``diff``, and its 95 % interval
``ci95_low``, ``ci95_high``, ``ci_method`` (``hall-t`` paired, ``welch-t`` unpaired,
``none`` below 3 seeds). ``on`` is ``true`` for a boolean switch, else the level the
sweep file lists second. ``presentation_spread_on``/``_off``: each side's mean
presentation spread per phase (``harvest: 1.2; vote: 0.04``; empty for scripted runs);
``presentation_flag``: for ``expected_value_by_phase.<phase>``, true when |diff| is
smaller than the larger of the two sides' mean spreads for that phase (the effect is
smaller than what re-ordering or relabelling the options alone moves).
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

import environments
from sim.core.stats import ADVISED_RUNS, MIN_RUNS, contrast, describe, format_counts, is_binary, metric_range

META = ("run", "cell", "seed", "status", "error", "dir", "run_steps")
STAT_COLUMNS = [
    *("n", "mean", "std", "median", "q1", "q3", "min", "max"),
    *("ci95_low", "ci95_high", "ci_method", "range_low", "range_high", "distribution"),
]
CONTRAST_COLUMNS = [
    *("factor", "on", "off", "at", "metric", "n", "paired", "on_mean", "off_mean", "diff"),
    *("ci95_low", "ci95_high", "ci_method"),
    *("presentation_spread_on", "presentation_spread_off", "presentation_flag"),
]
SPREAD = "presentation_spread"  # per phase: the measure's max - min over presentations of the options
EXPECTED_VALUE = "expected_value_by_phase"


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars of metrics.json, and scalars of its mappings one level down."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        if key == "status":
            continue
        if key == SPREAD and isinstance(value, Mapping):
            for phase, entry in value.items():
                if isinstance(entry, Mapping):  # only the spread and its measure: the rest is per run
                    flat |= {f"{key}.{phase}.{k}": entry[k] for k in ("spread", "measure") if _is_scalar(entry.get(k))}
        elif isinstance(value, Mapping):
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
        row["run_steps"] = (spec.scenario.get("run") or {}).get("steps") or _planned_steps(run_dir)
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


def _planned_steps(run_dir: Path) -> int | None:
    """run.steps as the finished run recorded it (the scenario may rely on the default)."""
    try:
        return int(yaml.safe_load((run_dir / "config.yaml").read_text())["run"]["steps"])
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None


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


def metric_ranges(
    results: pd.DataFrame, metrics: Sequence[str], env_type: str | None = None
) -> dict[str, tuple[float, float]]:
    """Each metric's possible range (:func:`sim.core.stats.metric_range`) over the finished
    runs: the environment spec's ``metric_ranges``, else inferred from name and values,
    ``survival_time`` in [0, run.steps]."""
    finished = _finished(results)
    steps = pd.to_numeric(finished.get("run_steps", pd.Series(dtype=float)), errors="coerce").max()
    declared, binary = _declared_ranges(env_type), binary_metrics(results, metrics)
    steps = None if pd.isna(steps) else float(steps)
    return {
        m: metric_range(m, _values(finished, m), declared=declared, steps=steps, binary=m in binary) for m in metrics
    }


def binary_metrics(results: pd.DataFrame, metrics: Sequence[str]) -> set[str]:
    """Metrics that are 0/1 outcomes (rates get Wilson intervals): booleans, or numbers that
    are 0 or 1 in every finished run and both somewhere (an all-zero count is not a rate)."""
    finished = _finished(results)
    out = set()
    for metric in metrics:
        raw = finished[metric].dropna() if metric in finished else pd.Series(dtype=float)
        values = _values(finished, metric)
        booleans = bool(len(raw)) and all(isinstance(v, bool | np.bool_) for v in raw)
        if booleans or (is_binary(values) and {0.0, 1.0} <= set(values.tolist())):
            out.add(metric)
    return out


def summarise(results: pd.DataFrame, params: Sequence[str], env_type: str | None = None) -> pd.DataFrame:
    """Per cell and numeric metric over the cell's finished runs: n, mean, std, median,
    quartiles, extremes, the 95 % interval of the mean (Wilson for 0/1 outcomes, else
    bootstrap) inside the metric's range, and the runs per value when few."""
    if results.empty:
        return pd.DataFrame(columns=["cell", *params, "runs", "failed", "metric", *STAT_COLUMNS])
    finished = _finished(results)
    metrics = numeric_metrics(finished, params)
    ranges, binary = metric_ranges(results, metrics, env_type), binary_metrics(results, metrics)
    rows = []
    for cell, runs in results.groupby("cell", sort=False):
        ok = runs[runs["status"] == "finished"]
        head = {"cell": cell, **{p: runs[p].iloc[0] for p in params}}
        head |= {"runs": len(runs), "failed": int((runs["status"] == "failed").sum())}
        for metric in metrics:
            values = _values(ok, metric)
            if not values.size:
                continue
            d = describe(values, bounds=ranges[metric], binary=metric in binary)
            low, high = ranges[metric]
            rows.append(
                {
                    **head,
                    "metric": metric,
                    **{k: getattr(d, k) for k in ("n", "mean", "std", "median", "q1", "q3", "min", "max")},
                    "ci95_low": d.ci_low,
                    "ci95_high": d.ci_high,
                    "ci_method": d.method,
                    "range_low": low,
                    "range_high": high,
                    "distribution": format_counts(d.counts),
                }
            )
    return pd.DataFrame(rows, columns=["cell", *params, "runs", "failed", "metric", *STAT_COLUMNS])


def factors(grid: Sequence[str], zipped: Sequence[str]) -> list[tuple[str, ...]]:
    """A sweep's factors: each grid key, and the zip keys together (they vary as one)."""
    return [(key,) for key in grid] + ([tuple(zipped)] if zipped else [])


def contrasts(
    results: pd.DataFrame, grid: Sequence[str], zipped: Sequence[str] = (), env_type: str | None = None
) -> pd.DataFrame:
    """For each factor with two levels: ``on`` minus ``off`` per metric, at each combination
    of the other factors' values, paired by seed (see :func:`sim.core.stats.contrast`).

    ``on`` is ``true`` for a boolean switch, else the level listed second in the sweep file.
    """
    params = [*grid, *zipped]
    finished = _finished(results)
    if finished.empty:
        return pd.DataFrame(columns=CONTRAST_COLUMNS)
    metrics = numeric_metrics(finished, params)
    ranges = metric_ranges(results, metrics, env_type)
    rows = []
    for factor in factors(grid, zipped):
        levels = _levels(results, factor)
        if len(levels) != 2:
            continue
        off, on = levels
        others = [p for p in params if p not in factor]
        keys = finished[list(factor)].apply(lambda r: tuple(_text(v) for v in r), axis=1)
        at_key = finished[others].apply(lambda r: tuple(_text(v) for v in r), axis=1) if others else None
        groups = [((), finished)] if at_key is None else list(finished.groupby(at_key, sort=False))
        for at, rows_at in groups:
            side = {lvl: rows_at[keys.loc[rows_at.index] == lvl] for lvl in levels}
            for metric in metrics:
                a, b = (_by_seed(side[lvl], metric) for lvl in (on, off))
                if not a or not b:
                    continue
                c = contrast(a, b, bounds=ranges[metric])
                spread = {lvl: _mean_spreads(side[lvl]) for lvl in (on, off)}
                rows.append(
                    {
                        "factor": " + ".join(factor),
                        "on": _level_text(factor, on),
                        "off": _level_text(factor, off),
                        "at": ", ".join(f"{k}={v}" for k, v in zip(others, at, strict=True)),
                        "metric": metric,
                        "n": c.n,
                        "paired": c.paired,
                        "on_mean": c.on_mean,
                        "off_mean": c.off_mean,
                        "diff": c.diff,
                        "ci95_low": c.ci_low,
                        "ci95_high": c.ci_high,
                        "ci_method": c.method,
                        "presentation_spread_on": _spread_text(spread[on]),
                        "presentation_spread_off": _spread_text(spread[off]),
                        "presentation_flag": _below_spread(metric, c.diff, spread[on], spread[off]),
                    }
                )
    return pd.DataFrame(rows, columns=CONTRAST_COLUMNS)


def _mean_spreads(rows: pd.DataFrame) -> dict[str, float]:
    """Phase -> mean presentation spread over the runs that carry one."""
    out = {}
    for col in rows.columns:
        if col.startswith(f"{SPREAD}.") and col.endswith(".spread"):
            values = _values(rows, col)
            if values.size:
                out[col[len(SPREAD) + 1 : -len(".spread")]] = float(values.mean())
    return out


def _spread_text(spreads: Mapping[str, float]) -> str:
    return "; ".join(f"{phase}: {value:.3g}" for phase, value in spreads.items())


def _below_spread(metric: str, diff: float, on: Mapping[str, float], off: Mapping[str, float]) -> bool:
    """An expected-value contrast smaller than the larger side's presentation spread of its phase."""
    if not metric.startswith(f"{EXPECTED_VALUE}."):
        return False
    phase = metric[len(EXPECTED_VALUE) + 1 :]
    spreads = [s[phase] for s in (on, off) if phase in s]
    return bool(spreads) and bool(abs(diff) < max(spreads))


def _levels(results: pd.DataFrame, factor: Sequence[str]) -> list[tuple[str, ...]]:
    """A factor's levels in sweep order; a boolean switch as (false, true)."""
    seen = list(dict.fromkeys(tuple(_text(v) for v in row) for row in results[list(factor)].itertuples(index=False)))
    if len(factor) == 1 and sorted(seen) == [("false",), ("true",)]:
        return [("false",), ("true",)]
    return seen


def _level_text(factor: Sequence[str], level: Sequence[str]) -> str:
    if len(factor) == 1:
        return level[0]
    return ", ".join(f"{k}={v}" for k, v in zip(factor, level, strict=True))


def _by_seed(rows: pd.DataFrame, metric: str) -> dict[Any, float]:
    values = pd.to_numeric(rows[metric].astype(object), errors="coerce") if metric in rows else pd.Series(dtype=float)
    return {seed: float(v) for seed, v in zip(rows["seed"], values, strict=True) if not pd.isna(v)}


def _text(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _finished(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["status"] == "finished"] if "status" in results else results


def _values(rows: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in rows:
        return np.array([], dtype=float)
    values = pd.to_numeric(rows[metric].astype(object), errors="coerce").to_numpy(dtype=float)
    return values[~np.isnan(values)]


def _declared_ranges(env_type: str | None) -> dict[str, tuple[float, float]]:
    try:
        spec = environments.get(env_type or "")
    except KeyError:  # not installed here, or unknown: infer every range
        return {}
    return dict(getattr(spec, "metric_ranges", {}))


def write_results(
    root: Path, results: pd.DataFrame, summary: pd.DataFrame, contrast_table: pd.DataFrame | None = None
) -> None:
    """Write the tables atomically (a reader never sees half a file)."""
    table = pa.Table.from_pandas(_arrow_safe(results), preserve_index=False)
    tmp = root / "results.parquet.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, root / "results.parquet")
    tables = {"summary.csv": summary} | ({"contrasts.csv": contrast_table} if contrast_table is not None else {})
    for name, frame in tables.items():
        tmp = root / f"{name}.tmp"
        frame.to_csv(tmp, index=False)
        os.replace(tmp, root / name)


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


def headline_metrics(env_type: str | None, metrics: Sequence[str]) -> list[str]:
    """The environment's headline metrics present in ``metrics`` (all of them if it has none here)."""
    try:
        headline = environments.get(env_type or "").headline
    except KeyError:
        return list(metrics)
    return [m for m in headline if m in metrics] or list(metrics)


def summary_lines(summary: pd.DataFrame, env_type: str | None = None) -> list[str]:
    """:func:`summarise`'s table as text, a block per cell: each headline metric's mean with
    its interval and method, median and quartiles, and the runs per value when few."""
    if summary.empty:
        return []
    params = list(summary.columns[1 : list(summary.columns).index("runs")])
    metrics = headline_metrics(env_type, list(dict.fromkeys(summary["metric"])))
    lines: list[str] = few_runs_warnings(summary)
    width = max((len(m) for m in metrics), default=0)
    for cell, rows in summary.groupby("cell", sort=False):
        first = rows.iloc[0]
        label = ", ".join(f"{p}={_text(first[p])}" for p in params) or str(cell)
        lines.append(f"{label} ({first['runs']} runs, {first['failed']} failed)")
        for metric in metrics:
            hit = rows[rows["metric"] == metric]
            if len(hit):
                lines.append(f"  {metric:<{width}}  {format_stat(hit.iloc[0])}")
        spreads = cell_spreads(rows)
        if spreads:
            lines.append(f"  presentation spread (mean over runs): {_spread_text(spreads)}")
    return lines


def cell_spreads(rows: pd.DataFrame) -> dict[str, float]:
    """A cell's summary rows -> phase: mean presentation spread over its runs."""
    hit = rows[rows["metric"].str.startswith(f"{SPREAD}.") & rows["metric"].str.endswith(".spread")]
    return {m[len(SPREAD) + 1 : -len(".spread")]: float(v) for m, v in zip(hit["metric"], hit["mean"], strict=True)}


def few_runs_warnings(summary: pd.DataFrame) -> list[str]:
    """A warning line when a cell has fewer than :data:`ADVISED_RUNS` runs of a metric."""
    if summary.empty:
        return []
    fewest = summary.groupby("cell", sort=False)["n"].max().astype(int)
    few = fewest[fewest < ADVISED_RUNS]
    if few.empty:
        return []
    return [
        f"warning: {len(few)} of {len(fewest)} cells have fewer than {ADVISED_RUNS} finished runs "
        f"(fewest {few.min()}): their intervals cover less than 95 % for skewed metrics, "
        f"and below {MIN_RUNS} runs there is none"
    ]


def spread_warnings(contrast_table: pd.DataFrame) -> list[str]:
    """A line per expected-value contrast smaller than the cells' presentation spread."""
    if contrast_table.empty or "presentation_flag" not in contrast_table:
        return []
    flagged = contrast_table[contrast_table["presentation_flag"].astype(bool)]
    return [
        f"warning: {r.factor} {r.on} minus {r.off}{f' at {r.at}' if r.at else ''}: {r.metric} "
        f"{r.diff:+.3g}: effect smaller than presentation spread (on {r.presentation_spread_on}; "
        f"off {r.presentation_spread_off})"
        for r in flagged.itertuples(index=False)
    ]


def format_stat(row: Mapping[str, Any]) -> str:
    """'6.6 [2.2, 12] hall-t, median 4 (IQR 2-5), n=5, 2:2 4:1 5:1 20:1'."""
    if int(row["n"]) < MIN_RUNS:
        return f"{row['mean']:.3g}, n={int(row['n'])}: too few runs for an interval"
    if row["ci_method"] == "none" or pd.isna(row["ci95_low"]):
        text = f"{row['mean']:.3g} (no interval)"
    else:
        text = f"{row['mean']:.3g} [{row['ci95_low']:.3g}, {row['ci95_high']:.3g}] {row['ci_method']}"
    text += f", median {row['median']:.3g} (IQR {row['q1']:.3g}-{row['q3']:.3g}), n={int(row['n'])}"
    distribution = row.get("distribution")
    # runs per value say most for whole numbers (survival months, 0/1 outcomes)
    whole = isinstance(distribution, str) and distribution and "." not in distribution
    return text + (f", {distribution}" if whole else "")
