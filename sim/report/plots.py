"""Plots every run gets, whatever its environment: per-step trends and action entropy.

Figures are built with matplotlib's object API (``Figure``, never pyplot), so nothing
global is touched, no display is needed and reports can be written from any thread.
Each plot function returns a :class:`Plot` (PNG bytes and captions) or ``None`` when
the run has nothing to show for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd
from matplotlib.ticker import MaxNLocator

from sim.core.metrics import policy_events
from sim.core.numbers import num
from sim.core.plotting import Plot, new_figure, numeric, render, style
from sim.report.data import RunData


# ----------------------------------------------------------------- generic run plots
def step_trends(run: RunData, skip: Iterable[str] = ()) -> Plot | None:
    """Small multiples of every numeric column of steps.parquet over the steps."""
    steps = run.steps
    if steps.empty or "step" not in steps:
        return None
    skipped = set(skip) | {"step"}
    candidates = [c for c in steps.columns if c not in skipped and numeric(steps[c]).notna().any()]
    # A flat line (the seed, a population that never changed) says nothing: named, not drawn.
    flat = [c for c in candidates if numeric(steps[c]).nunique(dropna=False) <= 1]
    columns = [c for c in candidates if c not in flat]
    if not columns:
        return None
    cols = 3 if len(columns) > 4 else min(2, len(columns))
    rows = math.ceil(len(columns) / cols)
    fig, axes = new_figure(rows, cols, height=2.2, margins=(0.6, 0.15, 0.3, 0.35), gaps=(0.6, 0.55))
    x = steps["step"].to_numpy()
    for ax, column in zip(axes.flat, columns, strict=False):
        y = numeric(steps[column]).to_numpy()
        ax.plot(x, y, marker="o", markersize=3, linewidth=1.4)
        ax.set_title(column, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_visible(False)
    return render(
        fig,
        "step_trends",
        "Per-step series",
        f"Every numeric column of steps.parquet ({len(columns)} series) against the step."
        + (f" Constant, so not drawn: {', '.join(f'{c} = {_value(steps[c])}' for c in flat)}." if flat else ""),
    )


def _value(series: pd.Series) -> str:
    first = numeric(series).iloc[0]
    return "n/a" if first != first else num(float(first))


def steering_label(vector: object, coef: object) -> str:
    if vector is None or (isinstance(vector, float) and math.isnan(vector)) or vector == "":
        return "unsteered"
    c = float(coef) if coef is not None and not pd.isna(coef) else 0.0
    return f"{vector} x {c:g}"


def entropy_over_time(run: RunData) -> Plot | None:
    """Mean action entropy per step: all decisions and per phase, per persona, per group
    (and per steering setting when any decision was steered)."""
    ev = policy_events(run.events)
    if ev.empty:
        return None
    ev = ev.assign(steering=[steering_label(v, c) for v, c in zip(ev["steer_vector"], ev["steer_coef"], strict=True)])
    panels: list[tuple[str, str | None]] = [
        ("all decisions and per phase", "phase"),
        ("per persona", "persona"),
        ("per group", "group"),
    ]
    if (ev["steering"] != "unsteered").any():
        panels.append(("per steering setting", "steering"))
    fig, axes = new_figure(len(panels), 1, height=2.4, margins=(0.8, 2.0, 0.3, 0.55), gaps=(0.6, 0.75))
    for ax, (label, by) in zip(axes.flat, panels, strict=True):
        if by == "phase":
            mean = ev.groupby("step")["entropy"].mean()
            ax.plot(mean.index, mean.to_numpy(), color="black", linewidth=2.2, label="mean, all decisions")
        _lines(ax, ev, by)
        ax.set_title(f"Action entropy, {label}", fontsize=9)
        ax.set_ylim(0, max(0.1, 1.1 * float(ev["entropy"].max())))
        style(ax, ylabel="nats")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside, never over a line
    return render(
        fig,
        "entropy",
        "Action entropy over time",
        "Mean Shannon entropy (nats) of the policies' distributions over the options, per step; "
        "rule decisions (social-learning copies) are left out.",
    )


def _lines(ax: object, ev: pd.DataFrame, by: str) -> None:
    table = ev.groupby(["step", by])["entropy"].mean().unstack(by)
    for column in table.columns:
        series = table[column].dropna()
        ax.plot(series.index, series.to_numpy(), marker="o", markersize=3, linewidth=1.2, label=str(column))  # type: ignore[attr-defined]


def generic_plots(run: RunData, skip_steps: Iterable[str] = ()) -> list[Plot]:
    return [p for p in (step_trends(run, skip_steps), entropy_over_time(run)) if p is not None]
