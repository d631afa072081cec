"""The run report's summary: metrics with their meaning, counts explained, n/a with a reason,
per-agent values as a chart, and how much a measure moved with the prompt's presentation.

Every metric the table shows has a definition (``sim.report.definitions``); one that has
none is listed as such so a test can catch it. A metric that could not be computed (no
punishments to be precise about) reads ``n/a`` with the reason, never an empty cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from sim.core.metrics import RULE_PHASES
from sim.core.numbers import num
from sim.core.plotting import Plot, new_figure, render
from sim.report import html
from sim.report.definitions import definition

# A dict with more entries than this is per-agent (or per-step) detail: a chart, not rows.
MAX_ROWS = 12

# Why a metric can be n/a: the thing it divides by did not occur in the run.
NA_REASONS = {
    "punishment_precision": "no punishment was given",
    "norm_convergence": "no agent held a numeric norm at the end",
    "final_group_norm": "no vote or meeting set a limit",
    "efficiency": "the sustainable catch at the start was 0",
    "misleading_violation_rate": "no comment in a thread that endorses breaking a rule",
    "other_comment_violation_rate": "no comment outside such threads",
    "false_ban_rate": "no ban was imposed",
    "false_sanction_rate": "no sanction was imposed",
    "report_precision": "no report was filed",
    "report_recall": "no contribution was labelled violating",
    "flag_recall": "no contribution was labelled violating",
    "helpfulness": "no adhere task ended",
    "false_alarm_rate": "no adhere task ended",
    "violation_rate": "no misleading task ended",
    "awareness_coverage": "no violate task ended",
    "education_rate": "no violate task in which the shopper noticed the norm",
    "empirical_action_entropy": "no policy decision in the main phase",
    "mean_action_entropy": "no policy decision",
}


def na(name: str) -> str:
    reason = NA_REASONS.get(name.split(".")[0], "nothing in this run to compute it from")
    return f"n/a: {reason}"


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, Any, str | None]]:
    """(name, value shown, definition or None) for every metric the summary shows."""
    rows: list[tuple[str, Any, str | None]] = []
    for key, value in metrics.items():
        if key in ("presentation_spread", "expected_value_by_phase"):
            continue  # their own section
        if isinstance(value, dict):
            if len(value) > MAX_ROWS:
                rows.append((key, _spread_text(value), None))
                continue
            for sub, inner in value.items():
                shown = _spread_text(inner) if isinstance(inner, dict | list) else inner
                rows.append((f"{key}.{sub}", shown, None))
        elif isinstance(value, list):
            rows.append((key, _spread_text(value), None))
        else:
            rows.append((key, na(key) if value is None else value, None))
    return rows


def _spread_text(values: dict[str, Any] | list[Any]) -> str:
    numbers = [float(v) for v in (values.values() if isinstance(values, dict) else values) if _is_number(v)]
    if not numbers:
        return f"{len(values)} values"
    lo, mid, hi = min(numbers), float(np.median(numbers)), max(numbers)
    return f"{len(numbers)} values: min {num(lo)}, median {num(mid)}, max {num(hi)} (chart in Plots)"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def metrics_table(metrics: Mapping[str, Any]) -> str:
    rows = [(name, shown) for name, shown, _ in metric_rows(metrics)]
    return html.table(["metric", "value"], rows, numeric=[False, True])


def definitions_table(metrics: Mapping[str, Any], known: dict[str, str]) -> str:
    """A definition for every metric the summary shows (and the presentation section's)."""
    names = [name for name, _, _ in metric_rows(metrics)]
    names += [k for k in ("presentation_spread", "expected_value_by_phase") if k in metrics]
    rows = [(name, definition(name, known) or "(no definition)") for name in names]
    return html.table(["metric", "definition"], rows, numeric=[False, False])


def undefined(metrics: Mapping[str, Any], known: dict[str, str]) -> list[str]:
    """The metrics the report shows without a definition (a test keeps this empty)."""
    names = [name for name, _, _ in metric_rows(metrics)]
    names += [k for k in ("presentation_spread", "expected_value_by_phase") if k in metrics]
    return [name for name in names if definition(name, known) is None]


# ------------------------------------------------------------------ decisions by phase
def decisions_by_phase(events: pd.DataFrame, metrics: Mapping[str, Any]) -> str:
    """Rows per phase, who decided them, and how they add up to the summary's count."""
    if events.empty:
        return ""
    counts = events.groupby("phase", sort=False).size()
    rows = [
        (phase, int(n), "a mechanic's rule" if phase in RULE_PHASES else "the policies") for phase, n in counts.items()
    ]
    by_rule = int(sum(n for phase, n in counts.items() if phase in RULE_PHASES))
    policy = int(counts.sum()) - by_rule
    counted = metrics.get("decisions")
    note = (
        f"<p>The transcript holds {int(counts.sum())} rows: {policy} decisions by the policies"
        + (f" and {by_rule} by a mechanic's rule (social learning's keep or copy)" if by_rule else "")
        + "."
        + (
            f" The summary's <code>decisions</code> ({counted}) counts the policies' decisions only."
            if counted is not None
            else ""
        )
        + "</p>"
    )
    table = html.table(["phase", "rows", "decided by"], rows, numeric=[False, True, False])
    return f"<h3>Decisions by phase</h3>{table}{note}"


# ------------------------------------------------------------------ per-agent charts
def per_agent_plots(metrics: Mapping[str, Any]) -> list[Plot]:
    """A bar chart for each metric with one value per agent (or per key) too many for the table."""
    out = []
    for name, values in _long_series(metrics):
        keys = list(values)
        numbers = [float(values[k]) for k in keys]
        fig, axes = new_figure(1, 1, height=2.6, margins=(0.8, 0.2, 0.3, 0.7))
        ax = axes[0, 0]
        ax.bar(range(len(keys)), numbers, color="#3f88c5")
        step = max(1, len(keys) // 30)  # at most ~30 tick labels
        ax.set_xticks(range(0, len(keys), step), [str(k) for k in keys[::step]], fontsize=8, rotation=90)
        ax.set_xlabel("agent" if "agent" in name else "key")
        ax.grid(True, axis="y", alpha=0.3)
        slug = name.replace(".", "_")
        out.append(render(fig, f"metric_{slug}", f"{name}", f"{name}: one bar per entry of metrics.json's {name}."))
    return out


def _long_series(metrics: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for key, value in metrics.items():
        if not isinstance(value, dict):
            continue
        candidates = [(key, value)] if len(value) > MAX_ROWS else []
        candidates += [(f"{key}.{sub}", inner) for sub, inner in value.items() if isinstance(inner, dict)]
        for name, inner in candidates:
            if inner and all(_is_number(v) for v in inner.values()):
                found.append((name, inner))
    return found


# ------------------------------------------------------------ presentation sensitivity
def presentation_html(metrics: Mapping[str, Any]) -> str | None:
    """Per phase: the measure under each presentation of the prompt and the spread; None
    when the run measured none (scripted runs read no prompt)."""
    spread = metrics.get("presentation_spread")
    if not isinstance(spread, dict) or not spread:
        return None
    expected = metrics.get("expected_value_by_phase") or {}
    parts = [
        "<p>Each phase's measure was taken again with the prompt presented differently (the options "
        "reversed, other labels...). The spread is the largest minus the smallest value: an effect "
        "smaller than the spread says more about prompt layout than about the agents.</p>"
    ]
    for phase, block in spread.items():
        if not isinstance(block, dict):
            continue
        by = block.get("by_presentation") or {}
        rows: list[tuple[str, Any]] = [(str(name), value) for name, value in by.items()]
        rows.append(("spread (max - min)", block.get("spread")))
        if phase in expected:
            rows.append(("expected value as run", expected[phase]))
        head = f"{phase}: {block.get('measure', 'measure')} (n = {block.get('n', '?')})"
        parts.append(f"<h3>{escape(head)}</h3>" + html.table(["presentation", "value"], rows, numeric=[False, True]))
    return "".join(parts)
