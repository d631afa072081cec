"""The commons' own plots: stock and G(t), catches, over-usage, punishments, wealth Gini."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from sim.core.plotting import Plot, RunView, new_figure, numeric, render, style


def plots(run: RunView) -> list[Plot]:
    own = [stock(run), catches(run), over_usage(run), punishments(run), wealth_gini(run)]
    return [p for p in own if p is not None]


def _harvest(run: RunView) -> pd.DataFrame:
    ev = run.events
    if ev.empty:
        return ev
    harvest = ev[ev["phase"] == "harvest"].copy()
    harvest["fair_share"] = harvest["info"].map(lambda s: json.loads(s).get("fair_share") if s else None)
    return harvest


def stock(run: RunView) -> Plot | None:
    steps = run.steps
    if steps.empty or "stock" not in steps:
        return None
    env = run.config.get("environment", {})
    threshold = env.get("collapse_threshold")
    fig, axes = new_figure(height=3.6, margins=(0.8, 0.9, 0.2, 0.95))
    ax = axes[0, 0]
    x = steps["step"].to_numpy()
    # R(0) is the stock before the first harvest; each step's row is the stock after its regrowth.
    start = env.get("initial_stock") if env.get("initial_stock") is not None else env.get("capacity")
    xs, ys = (
        (np.r_[0, x], np.r_[float(start), numeric(steps["stock"])])
        if start is not None
        else (x, numeric(steps["stock"]))
    )
    ax.plot(xs, ys, marker="o", color="tab:blue", linewidth=2, label="stock R(t)")
    if env.get("capacity") is not None:
        ax.axhline(float(env["capacity"]), color="tab:blue", linestyle=":", linewidth=1, label="capacity K")
    if threshold is not None:
        ax.axhline(
            float(threshold),
            color="tab:red",
            linestyle="--",
            linewidth=1.5,
            label=f"collapse threshold C = {threshold:g}",
        )
    collapsed = steps[steps["collapsed"].astype(bool)] if "collapsed" in steps else steps.iloc[0:0]
    if len(collapsed):
        ax.axvline(float(collapsed["step"].iloc[0]), color="tab:red", alpha=0.4, linewidth=6, label="collapse")
    style(ax, ylabel="tons in the lake")
    handles, labels = ax.get_legend_handles_labels()
    norm = numeric(steps["group_norm"]) if "group_norm" in steps else pd.Series(dtype=float)
    if norm.notna().any():
        right = ax.twinx()
        right.step(x, norm, where="post", color="tab:green", linewidth=2, label="group norm G(t)")
        right.set_ylabel("G(t), tons per agent", color="tab:green")
        right.set_ylim(0, 1.5 * float(norm.max()))  # keeps the G(t) line off the stock line near K
        h2, l2 = right.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.set_ylim(bottom=0)
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncols=len(labels), frameon=False)
    caption = "Stock before the first harvest (step 0) and after each month's regrowth, the collapse threshold C"
    caption += " and the voted catch limit G(t) (right axis)." if norm.notna().any() else "; no group norm was voted."
    return render(fig, "stock", "Stock over time", caption)


def catches(run: RunView) -> Plot | None:
    harvest = _harvest(run)
    if harvest.empty:
        return None
    fig, axes = new_figure(1, 2, height=3.4, margins=(0.7, 0.15, 0.35, 0.6), gaps=(0.8, 0.0))
    left, right = axes[0]
    groups = list(dict.fromkeys(harvest["group"]))
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    for (_agent, group), rows in harvest.groupby(["agent_id", "group"], sort=True):
        left.plot(
            rows["step"],
            rows["value"],
            color=colours[group],
            alpha=0.75,
            linewidth=1.2,
            marker=".",
            label=group if group not in left.get_legend_handles_labels()[1] else None,
        )
    fair = harvest.groupby("step")["fair_share"].mean()
    if fair.notna().any():
        left.plot(fair.index, fair.to_numpy(), color="black", linestyle="--", linewidth=1.5, label="fair share f(t)/n")
    left.set_title("catch per agent and month", fontsize=9)
    style(left, ylabel="tons", legend=True)
    totals = harvest.groupby(["agent_id", "group"], sort=True)["value"].sum().reset_index()
    right.bar(totals["agent_id"].astype(str), totals["value"], color=[colours[g] for g in totals["group"]])
    right.set_title("total catch per agent", fontsize=9)
    style(right, xlabel="agent", ylabel="tons")
    if len(totals) > 30:
        right.tick_params(axis="x", labelbottom=False)
    return render(
        fig,
        "catch_per_agent",
        "Catch per agent",
        "Each agent's catch per month (left, coloured by group, with the fair share f(t)/n) "
        "and its total over the run (right).",
    )


def over_usage(run: RunView) -> Plot | None:
    harvest = _harvest(run)
    if harvest.empty:
        return None
    harvest = harvest.assign(
        over=(harvest["value"] > harvest["fair_share"].astype(float) + 1e-9).astype(float),
        violated=harvest["violation"].astype(float),
    )
    per_step = harvest.groupby("step")[["over", "violated"]].mean()
    fig, axes = new_figure(height=3.0)
    ax = axes[0, 0]
    ax.plot(
        per_step.index,
        per_step["over"],
        marker="o",
        markersize=7,
        linewidth=2.5,
        alpha=0.7,
        label="over-usage: catch > f(t)/n",
    )
    ax.plot(
        per_step.index,
        per_step["violated"],
        marker="s",
        markersize=4,
        linestyle="--",
        color="tab:red",
        label="norm violation: catch > norm in force",
    )
    ax.set_ylim(-0.03, 1.03)
    style(ax, ylabel="share of agents", legend=True)
    return render(
        fig,
        "over_usage",
        "Over-usage and violations",
        "Per month, the share of harvest decisions whose catch exceeded the fair share f(t)/n "
        "(over-usage) and the norm in force (G(t) once voted, else the fair share).",
    )


def punishments(run: RunView) -> Plot | None:
    steps = run.steps
    if steps.empty or "punishments" not in steps:
        return None
    ev = run.events
    punish = ev[(ev["phase"] == "punish") & (ev["choice"] == 1)] if len(ev) else ev
    x = steps["step"].to_numpy()
    fig, axes = new_figure(height=3.0)
    ax = axes[0, 0]
    if len(punish):
        hit = punish.groupby("step")["violation"].agg(lambda v: int(v.astype(bool).sum()))
        miss = punish.groupby("step")["violation"].agg(lambda v: int((~v.astype(bool)).sum()))
        hit, miss = (s.reindex(x, fill_value=0).to_numpy() for s in (hit, miss))
        ax.bar(x, hit, color="tab:purple", label="punished a violator")
        ax.bar(x, miss, bottom=hit, color="tab:orange", label="punished a non-violator")
    else:
        ax.bar(x, numeric(steps["punishments"]).to_numpy(), color="tab:purple", label="punishments")
    if "violations" in steps:
        ax.plot(x, numeric(steps["violations"]), color="black", marker="o", linewidth=1.2, label="violations")
    enabled = run.config.get("mechanics", {}).get("punishment", {}).get("enabled")
    style(ax, ylabel="count", legend=True)
    caption = "Punishments per month (split by whether the punished agent had violated the norm) and violations."
    if enabled is False:
        caption += " Punishment was disabled in this run."
    return render(fig, "punishments", "Punishments", caption)


def wealth_gini(run: RunView) -> Plot | None:
    steps = run.steps
    if steps.empty or "wealth_gini" not in steps:
        return None
    fig, axes = new_figure(height=2.8)
    ax = axes[0, 0]
    ax.plot(steps["step"], numeric(steps["wealth_gini"]), marker="o", color="tab:brown")
    top = float(np.nanmax(numeric(steps["wealth_gini"]))) if len(steps) else 1.0
    ax.set_ylim(0, max(0.05, min(1.0, top * 1.2)))
    style(ax, ylabel="Gini of wealth")
    return render(
        fig,
        "wealth_gini",
        "Wealth Gini",
        "Gini coefficient of the agents' wealth after each month (0: equal, 1: one agent holds all).",
    )
