"""A sweep's plots and contrasts: every metric's distribution per grid cell (one dot per
seed, the median, the mean with its 95 % interval), survival curves per cell, and for
every factor with two levels the difference on minus off at each level of the other
factors, paired by seed. The numbers are :func:`sim.aggregate.summarise`'s and
:func:`sim.aggregate.contrasts`'s, the same as summary.csv and contrasts.csv."""

from __future__ import annotations

import math
import textwrap
from html import escape

import numpy as np
import pandas as pd

import environments
from sim.aggregate import cell_spreads, contrasts, few_runs_warnings, spread_warnings, summarise
from sim.core.stats import FEW_VALUES
from sim.report import html
from sim.report.data import SweepData
from sim.report.plots import Plot, new_figure, render, style

CONTRAST_METRICS = 4  # headline metrics per contrast plot
TABLE_METRICS = 6  # headline metrics per contrast table (all of them are in contrasts.csv)


def summary(sweep: SweepData) -> pd.DataFrame:
    return summarise(sweep.results, sweep.params, sweep.env_type)


def contrast_table(sweep: SweepData) -> pd.DataFrame:
    return contrasts(sweep.results, sweep.grid, sweep.zipped, sweep.env_type)


def ordered_metrics(sweep: SweepData) -> list[str]:
    """The environment's headline metrics first (and in the summary table), then the rest."""
    try:
        headline = environments.get(sweep.env_type or "").headline
    except KeyError:
        headline = ()
    first = [m for m in headline if m in sweep.metrics]
    return first + [m for m in sweep.metrics if m not in first]


def plots(sweep: SweepData, table: pd.DataFrame, diffs: pd.DataFrame | None = None) -> list[Plot]:
    out = []
    curves = survival_curves(sweep)
    if curves is not None:
        out.append(curves)
    labels = sweep.labels()
    for metric in ordered_metrics(sweep):
        plot = metric_distribution(sweep, table, metric, labels)
        if plot is not None:
            out.append(plot)
    diffs = contrast_table(sweep) if diffs is None else diffs
    shown = [m for m in ordered_metrics(sweep) if m in set(diffs["metric"])][:CONTRAST_METRICS]
    for factor in dict.fromkeys(diffs["factor"]):
        out.append(contrast_plot(diffs, factor, shown))
    return out


def metric_distribution(sweep: SweepData, table: pd.DataFrame, metric: str, labels: dict[str, str]) -> Plot | None:
    """Per cell: the runs (a dot per seed, equal values stacked like a histogram, so two
    modes show as two piles), their median and the mean with its interval."""
    rows = table[table["metric"] == metric]
    if rows.empty:
        return None
    names = [_wrap(labels.get(str(c), str(c))) for c in rows["cell"]]
    row_h, left = _row_layout(names)
    fig, axes = new_figure(height=row_h * len(rows) + 1.1, margins=(left, 0.2, 0.15, 0.85))
    ax = axes[0, 0]
    y = np.arange(len(rows))[::-1].astype(float)
    finished = sweep.results[sweep.results["status"] == "finished"]
    for yi, row in zip(y, rows.itertuples(index=False), strict=True):
        values = pd.to_numeric(finished.loc[finished["cell"] == row.cell, metric].astype(object), errors="coerce")
        values = values.dropna().to_numpy(dtype=float)
        ax.scatter(values, yi + 0.08 + _stack(values), s=14, color="tab:gray", alpha=0.75, zorder=2, linewidths=0)
        if not math.isnan(row.ci95_low):
            err = [[max(0.0, row.mean - row.ci95_low)], [max(0.0, row.ci95_high - row.mean)]]  # float noise
            ax.errorbar(row.mean, yi - 0.2, xerr=err, fmt="o", color="tab:blue", capsize=3, linewidth=2, zorder=3)
        else:
            ax.plot(row.mean, yi - 0.2, "o", color="tab:blue", zorder=3)
        ax.plot(row.median, yi - 0.2, marker="|", markersize=13, markeredgewidth=2.5, color="tab:orange", zorder=4)
    lo, hi = float(rows["range_low"].iloc[0]), float(rows["range_high"].iloc[0])
    if math.isfinite(lo) and math.isfinite(hi):
        pad = 0.04 * (hi - lo) if hi > lo else 0.5
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks(y, names, fontsize=7)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    style(ax, xlabel=metric)
    keys = [
        ax.scatter([], [], s=14, color="tab:gray"),
        ax.errorbar([], [], xerr=[], fmt="o", color="tab:blue"),
        ax.plot([], [], "|", markersize=10, markeredgewidth=2.5, color="tab:orange")[0],
    ]
    names = ["runs (a dot per seed)", "mean, 95 % interval", "median"]
    fig.legend(keys, names, loc="lower center", ncol=3, fontsize=7, frameon=False)
    n = rows["n"].astype(int)
    runs = f"n = {n.min()}" if n.min() == n.max() else f"n = {n.min()} to {n.max()}"
    return render(
        fig,
        f"dist_{_slug(metric)}",
        f"{metric} per cell",
        f"Each cell's finished runs ({runs} per cell): a grey dot per seed (equal values stack, so a bimodal "
        f"metric shows two piles), the median (orange) and the mean with its 95 % interval (blue; "
        f"{_methods(rows['ci_method'])}), on the metric's range [{lo:g}, {hi:g}].",
    )


def contrast_plot(diffs: pd.DataFrame, factor: str, metrics: list[str]) -> Plot:
    """One panel per metric: on minus off at each level of the other factors, with its interval."""
    sub = diffs[diffs["factor"] == factor]
    metrics = [m for m in metrics if m in set(sub["metric"])] or list(dict.fromkeys(sub["metric"]))[:1]
    ats = list(dict.fromkeys(sub["at"].fillna("")))
    names = [_wrap(a or "(no other factor)") for a in ats]
    row_h, left = _row_layout(names)
    fig, axes = new_figure(len(metrics), 1, height=row_h * len(ats) + 0.9, margins=(left, 0.2, 0.35, 0.5))
    y = np.arange(len(ats))[::-1].astype(float)
    first = sub.iloc[0]
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        m = sub[sub["metric"] == metric].assign(at=lambda f: f["at"].fillna("")).set_index("at").reindex(ats)
        diff = m["diff"].to_numpy(dtype=float)
        err = np.vstack([diff - m["ci95_low"].to_numpy(dtype=float), m["ci95_high"].to_numpy(dtype=float) - diff])
        ax.axvline(0.0, color="0.4", linewidth=1, linestyle="--", zorder=1)
        ax.errorbar(
            diff,
            y,
            xerr=np.clip(np.nan_to_num(err), 0, None),
            fmt="o",
            color="tab:purple",
            capsize=3,
            linewidth=2,
            zorder=3,
        )
        ax.set_yticks(y, names, fontsize=7)
        ax.set_ylim(-0.6, len(ats) - 0.4)
        style(ax, xlabel=f"{metric}: {first['on']} minus {first['off']}" if len(factor) < 40 else metric)
        ax.set_title(metric, fontsize=9)
    paired = "paired by seed" if sub["paired"].all() else "paired by seed where the seeds match, else unpaired"
    n = sub["n"].astype(int)
    return render(
        fig,
        f"contrast_{_slug(factor)}",
        f"{factor}: {first['on']} minus {first['off']}",
        f"The difference {factor} = {first['on']} minus {first['off']} at each combination of the other "
        f"factors, with its 95 % interval ({paired}; n = {n.min()} to {n.max()} seeds). "
        "Zero (dashed) is no effect.",
    )


def contrasts_html(diffs: pd.DataFrame, metrics: list[str], csv_exists: bool = False) -> str:
    """A table per two-level factor: its effect on the headline metrics at each level of the others."""
    if diffs.empty:
        return "<p>No factor of this sweep has exactly two levels with finished runs: nothing to contrast.</p>"
    shown = [m for m in metrics if m in set(diffs["metric"])][:TABLE_METRICS]
    # expected values per phase are what presentation can move: always shown beside the rest
    shown += [m for m in dict.fromkeys(diffs["metric"]) if m.startswith("expected_value_by_phase.") and m not in shown]
    spreads = bool(diffs["presentation_spread_on"].fillna("").astype(bool).any()) if len(diffs) else False
    parts = [warnings_html(spread_warnings(diffs))]
    for factor, sub in diffs.groupby("factor", sort=False):
        first = sub.iloc[0]
        rows = []
        for r in sub[sub["metric"].isin(shown)].itertuples(index=False):
            interval = "" if math.isnan(r.ci95_low) else f"[{r.ci95_low:.3g}, {r.ci95_high:.3g}]"
            pairs = f"{r.n} paired" if r.paired else f"{r.n} (unpaired)"
            row: tuple[object, ...] = (r.at or "(no other factor)", r.metric, r.on_mean, r.off_mean, r.diff, interval)
            if spreads:
                flag = "effect smaller than presentation spread" if r.presentation_flag else ""
                row += (r.presentation_spread_on or "", r.presentation_spread_off or "", flag)
            rows.append((*row, pairs))
        extra = ["presentation spread: on", "presentation spread: off", "flag"] if spreads else []
        parts.append(
            f"<h3>{escape(str(factor))}: {escape(str(first['on']))} minus {escape(str(first['off']))}</h3>"
            + html.table(
                ["other factors", "metric", *_side_headers(first), "difference", "95 % interval", *extra, "seeds"],
                rows,
                numeric=[False, False, True, True, True, True, *([False] * len(extra)), True],
            )
        )
    note = (
        "<p>On minus off for every factor with two levels (a boolean switch: true minus false; otherwise the "
        "level listed second minus the first), at each combination of the other factors, paired by seed: the "
        "mean of per-seed differences with its 95 % interval (t with Hall's skewness correction; Welch's "
        "t where the seeds do not match; none below 3 seeds)."
        + (" Every metric is in <code>contrasts.csv</code>.</p>" if csv_exists else "</p>")
    )
    return note + "".join(parts)


def warnings_html(lines: list[str]) -> str:
    """Warning lines as a visible block (empty when there are none)."""
    if not lines:
        return ""
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f'<div class="warning"><strong>Warnings</strong><ul>{items}</ul></div>'


def summary_warnings_html(table: pd.DataFrame) -> str:
    """The few-runs warning, then each cell's mean presentation spread per phase (LLM runs)."""
    out = warnings_html(few_runs_warnings(table))
    rows = []
    for cell, sub in table.groupby("cell", sort=False):
        spreads = cell_spreads(sub)
        if spreads:
            rows.append((str(cell), "; ".join(f"{p}: {v:.3g}" for p, v in spreads.items())))
    if rows:
        out += (
            "<p>Presentation spread per cell: the mean over its runs of how far each phase's measure (expected "
            "value or P(yes)) moved when the same options were shown in another order or with other labels.</p>"
            + html.table(["cell", "mean presentation spread per phase"], rows, numeric=[False, False])
        )
    return out


def _side_headers(row: pd.Series) -> list[str]:
    """'true: mean', 'false: mean' (a long zip level: 'on: mean', 'off: mean')."""
    on, off = str(row["on"]), str(row["off"])
    return [f"{on}: mean", f"{off}: mean"] if max(len(on), len(off)) <= 24 else ["on: mean", "off: mean"]


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
    fig, axes = new_figure(height=3.8 + 0.16 * finished["cell"].nunique())
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
    ax.legend(fontsize=6, loc="lower left", framealpha=0.85)
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


def _stack(values: np.ndarray) -> np.ndarray:
    """Vertical offsets in [0, 0.5]: equal values stack upwards (a dot histogram) when
    there are few distinct values, else a fixed jitter (a strip)."""
    if not values.size:
        return values
    distinct, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(distinct) <= FEW_VALUES:
        step = min(0.1, 0.5 / max(1, counts.max() - 1)) if counts.max() > 1 else 0.0
        rank = np.zeros(values.size)
        for k in range(len(distinct)):
            idx = np.flatnonzero(inverse == k)
            rank[idx] = np.arange(idx.size)
        return rank * step
    return np.random.default_rng(0).uniform(0.0, 0.5, size=values.size)


def _methods(methods: pd.Series) -> str:
    texts = {
        "wilson": "Wilson score interval of the rate",
        "hall-t": "t-interval with Hall's skewness correction",
        "none": "no interval below 3 runs",
    }
    return "; ".join(texts.get(m, m) for m in dict.fromkeys(methods))


def _wrap(label: str, width: int = 48) -> str:
    """A long cell label on up to a few lines, broken between parameters where possible."""
    return "\n".join(textwrap.wrap(label, width, break_long_words=False, break_on_hyphens=False)) or label


def _row_layout(names: list[str]) -> tuple[float, float]:
    """(inches per row, left margin) for y tick labels of several lines."""
    lines = max(n.count("\n") + 1 for n in names)
    longest = max(len(line) for n in names for line in n.split("\n"))
    return max(0.42, 0.13 * lines + 0.2), min(3.6, 0.3 + 0.052 * longest)


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)
