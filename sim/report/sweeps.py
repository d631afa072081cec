"""A sweep's plots: every metric per grid cell with its 95 % confidence interval, and
survival curves per cell. The statistics are :func:`sim.aggregate.summarise`'s, the
same numbers as summary.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd

import environments
from sim.report.data import SweepData
from sim.report.plots import Plot, new_figure, render, style


def summary(sweep: SweepData) -> pd.DataFrame:
    from sim.aggregate import summarise

    return summarise(sweep.results, sweep.params)


def ordered_metrics(sweep: SweepData) -> list[str]:
    """The environment's headline metrics first (and in the summary table), then the rest."""
    try:
        headline = environments.get(sweep.env_type or "").headline
    except KeyError:
        headline = ()
    first = [m for m in headline if m in sweep.metrics]
    return first + [m for m in sweep.metrics if m not in first]


def plots(sweep: SweepData, table: pd.DataFrame) -> list[Plot]:
    out = []
    curves = survival_curves(sweep)
    if curves is not None:
        out.append(curves)
    labels = sweep.labels()
    for metric in ordered_metrics(sweep):
        plot = metric_by_cell(sweep, table, metric, labels)
        if plot is not None:
            out.append(plot)
    return out


def metric_by_cell(sweep: SweepData, table: pd.DataFrame, metric: str, labels: dict[str, str]) -> Plot | None:
    rows = table[table["metric"] == metric]
    if rows.empty:
        return None
    cells = list(rows["cell"])
    names = [labels.get(c, c) for c in cells]
    left = min(4.0, 0.3 + 0.065 * max(len(n) for n in names))  # room for the cell labels
    fig, axes = new_figure(height=0.32 * len(cells) + 1.0, margins=(left, 0.2, 0.15, 0.55))
    ax = axes[0, 0]
    y = np.arange(len(cells))[::-1]
    finished = sweep.results[sweep.results["status"] == "finished"]
    for yi, cell in zip(y, cells, strict=True):
        values = pd.to_numeric(finished.loc[finished["cell"] == cell, metric], errors="coerce").dropna().astype(float)
        jitter = (np.arange(len(values)) - (len(values) - 1) / 2) * 0.05
        ax.scatter(values, yi + jitter, s=12, color="tab:gray", alpha=0.6, zorder=2)
    mean = rows["mean"].to_numpy(dtype=float)
    low, high = rows["ci95_low"].to_numpy(dtype=float), rows["ci95_high"].to_numpy(dtype=float)
    err = np.vstack([mean - low, high - mean])
    err = np.where(np.isnan(err), 0.0, err)  # one run: no interval, just the mean
    ax.errorbar(
        mean, y, xerr=err, fmt="o", color="tab:blue", ecolor="tab:blue", capsize=4, linewidth=2, markersize=6, zorder=3
    )
    ax.set_yticks(y, names, fontsize=8)
    ax.set_ylim(-0.6, len(cells) - 0.4)
    style(ax, xlabel=metric)
    n = rows["n"].astype(int)
    runs = f"n = {n.min()}" if n.min() == n.max() else f"n = {n.min()} to {n.max()}"
    return render(
        fig,
        f"metric_{_slug(metric)}",
        f"{metric} per cell",
        f"Mean of {metric} over each cell's finished runs (blue) with its 95 % confidence interval (Student's t, "
        f"{runs} runs per cell; none for a single run), and the single runs (grey).",
    )


def survival_curves(sweep: SweepData) -> Plot | None:
    """Share of a cell's runs whose resource is still alive after each step."""
    if "survival_time" not in sweep.metrics:
        return None
    finished = sweep.results[sweep.results["status"] == "finished"]
    if finished.empty:
        return None
    times = pd.to_numeric(finished["survival_time"], errors="coerce")
    horizon = int(np.nanmax(times))
    labels = sweep.labels()
    fig, axes = new_figure(height=3.8)
    ax = axes[0, 0]
    t = np.arange(0, horizon + 1)
    for i, (cell, rows) in enumerate(finished.groupby("cell", sort=False)):
        alive = survival_fraction(rows, t, horizon)
        ax.step(
            t,
            alive + 0.006 * (i - 1),
            where="post",
            linewidth=1.8,
            label=f"{labels.get(str(cell), cell)} (n={len(rows)})",
        )
    ax.set_ylim(-0.05, 1.08)
    style(ax, ylabel="share of runs not collapsed", legend=False)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.85)
    return render(
        fig,
        "survival",
        "Survival curves per cell",
        "Share of each cell's finished runs whose resource had not collapsed after t steps (curves offset "
        "slightly so equal ones stay visible).",
    )


def survival_fraction(rows: pd.DataFrame, t: np.ndarray, horizon: int) -> np.ndarray:
    """S(t): a run that collapsed in step m (survival_time m) is alive for t < m; a run that
    survived (or reached the horizon without a `survived` column) for every t."""
    times = pd.to_numeric(rows["survival_time"], errors="coerce").to_numpy(dtype=float)
    survived = rows["survived"].astype(bool).to_numpy() if "survived" in rows else times >= horizon
    alive = (times[None, :] > t[:, None]) | survived[None, :]
    return alive.mean(axis=1)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
