"""The public-goods game's plots: contributions by round against the human band, and
punishment received and given by contribution gap."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from environments.public_goods.metrics import HUMAN, bin_of, gap_bins
from sim.core.plotting import Plot, RunView, new_figure, render, style


def plots(run: RunView) -> list[Plot]:
    own = [contributions(run), punishment_by_gap(run)]
    return [p for p in own if p is not None]


def _contributions(run: RunView) -> pd.DataFrame:
    ev = run.events
    if ev.empty:
        return ev
    return ev[ev["phase"] == "contribute"]


def _condition(config: dict) -> str | None:
    punishment = bool(config.get("mechanics", {}).get("punishment", {}).get("enabled", False))
    if not punishment:
        return "no_punishment"
    return "punishment" if config.get("environment", {}).get("matching", "partner") == "partner" else None


def contributions(run: RunView) -> Plot | None:
    contrib = _contributions(run)
    if contrib.empty:
        return None
    endowment = float(run.config.get("environment", {}).get("endowment", 20))
    fig, axes = new_figure(height=3.6, margins=(0.8, 0.2, 0.35, 0.95))
    ax = axes[0, 0]
    rounds = np.array(sorted(contrib["step"].unique()))
    condition = _condition(run.config)
    if condition is not None:
        # The band between the papers' first-round and last-round ranges, drawn straight
        # between them: a guide to the shape, not the papers' per-round data.
        ref = HUMAN[condition]
        last = max(int(rounds.max()), 2)
        x = np.arange(1, last + 1)
        w = (x - 1) / (last - 1)
        lo = (1 - w) * ref["first_round"][0] + w * ref["last_round"][0]
        hi = (1 - w) * ref["first_round"][1] + w * ref["last_round"][1]
        ax.fill_between(x, lo, hi, color="grey", alpha=0.25, label=f"humans ({condition.replace('_', ' ')})")
    for i, (group, rows) in enumerate(contrib.groupby("group", sort=False)):
        mean = rows.groupby("step")["value"].mean() / endowment
        ax.plot(mean.index, mean.to_numpy(), color=f"C{i % 10}", alpha=0.6, linewidth=1.2, marker=".", label=group)
    overall = contrib.groupby("step")["value"].mean() / endowment
    ax.plot(overall.index, overall.to_numpy(), color="black", linewidth=2.5, marker="o", label="all members")
    expected = contrib["probs"].map(lambda p: float(np.dot(p, np.arange(len(p))))).groupby(contrib["step"]).mean()
    ax.plot(
        expected.index,
        expected.to_numpy() / endowment,
        color="black",
        linestyle="--",
        linewidth=1.5,
        label="all, expected",
    )
    ax.set_ylim(-0.02, 1.02)
    style(ax, ylabel="contribution / endowment")  # integer ticks for steps
    ax.set_xlabel("round")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncols=min(len(labels), 5), frameon=False)
    caption = (
        "Mean contribution per round as a share of the endowment, per population group and overall (solid: the "
        "contributions drawn; dashed: the mean of each decision's distribution)"
    )
    caption += (
        "; the grey band runs from the human first-round range to the human last-round range (Fehr & Gächter)."
        if condition is not None
        else "; no human band for punishment with stranger matching."
    )
    return render(fig, "contributions", "Contributions by round", caption)


def punishment_by_gap(run: RunView) -> Plot | None:
    contrib = _contributions(run)
    if contrib.empty or not (run.events["phase"] == "punish").any():
        return None
    endowment = float(run.config.get("environment", {}).get("endowment", 20))
    info = pd.DataFrame(list(contrib["info"].map(json.loads)))
    bins = gap_bins(endowment)
    labels = [b[0] for b in bins]
    info["bin"] = info["gap"].map(lambda g: bin_of(float(g), bins))
    received = info.groupby("bin")["points_received"].mean().reindex(labels)
    given = info.groupby("bin")["points_given"].mean().reindex(labels)
    counts = info["bin"].value_counts().reindex(labels, fill_value=0)
    fig, axes = new_figure(height=3.4, margins=(0.8, 0.2, 0.35, 0.9))
    ax = axes[0, 0]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, received.fillna(0).to_numpy(), width=0.4, color="tab:red", label="received")
    ax.bar(x + 0.2, given.fillna(0).to_numpy(), width=0.4, color="tab:blue", label="given")
    ax.set_xticks(x, [f"{lb}\nn={n}" for lb, n in zip(labels, counts, strict=True)], fontsize=7)
    style(ax, xlabel="own contribution minus the other members' mean (tokens)", ylabel="points per round", legend=True)
    return render(
        fig,
        "punishment_by_gap",
        "Punishment by contribution gap",
        "Mean punishment points a member received (summed over the members who punished it) and gave in a round, "
        "by how far its contribution lay from the other members' mean (n: member-rounds per bin).",
    )
