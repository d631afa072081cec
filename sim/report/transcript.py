"""The transcript: every decision of a run, per agent and step, collapsed and searchable.

Each decision shows the user part of the prompt the policy read (persona, memory,
observation; the shared system text is shown once above), the options with their
probabilities, the chosen option, any generated text and the logged outcome. Rows
come from events.parquet; scripted policies read no prompt, so theirs shows none.
"""

from __future__ import annotations

import json
import math
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from sim.core.numbers import num
from sim.report.plots import steering_label

# A transcript longer than this shows the first whole steps that fit (a 10,000-row
# transcript is ~15 MB of HTML, too slow to search); `normsim report --max-decisions`.
MAX_DECISIONS = 5000


def transcript_html(events: pd.DataFrame, prompts: dict[str, str], max_decisions: int = MAX_DECISIONS) -> str:
    if events.empty:
        return "<p>No decisions were logged.</p>"
    shown, note = _limit(events, max_decisions)
    parts = [
        '<div class="transcript-tools">',
        '<input id="transcript-search" type="search" placeholder="Search prompts, options, text, phases, groups..." '
        'aria-label="search the transcript">',
        '<button type="button" id="transcript-expand">expand matches</button>',
        '<button type="button" id="transcript-collapse">collapse all</button>',
        f'<span id="transcript-count">{len(shown)} decisions</span>',
        _filters(shown),
        "</div>",
    ]
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    phases_by_text: dict[str, list[str]] = {}
    for phase, text in prompts.items():  # phases usually share one system text: show it once
        phases_by_text.setdefault(text, []).append(phase)
    for text, phases in phases_by_text.items():
        parts.append(
            f'<details class="system"><summary>System prompt shared by all agents ({escape(", ".join(phases))})'
            f"</summary><pre>{escape(text)}</pre></details>"
        )
    parts.append('<div id="transcript-agents">')
    for agent_id, rows in shown.groupby("agent_id", sort=True):
        first = rows.iloc[0]
        head = (
            f"agent {int(agent_id)} &middot; {escape(str(first['group']))} &middot; {escape(str(first['persona']))}"
            f" &middot; {escape(str(first['policy']))} &middot; {len(rows)} decisions"
        )
        parts.append(f'<details class="agent" data-agent="{int(agent_id)}"><summary>{head}</summary>')
        parts.extend(_turn(row) for row in rows.itertuples(index=False))
        parts.append("</details>")
    parts.append("</div>")
    return "\n".join(parts)


def _limit(events: pd.DataFrame, cap: int) -> tuple[pd.DataFrame, str]:
    if len(events) <= cap:
        return events, ""
    per_step = events.groupby("step").size().cumsum()
    fits = per_step[per_step <= cap]
    last = int(fits.index[-1]) if len(fits) else int(per_step.index[0])
    shown = events[events["step"] <= last]
    return shown, (
        f"The run logged {len(events)} decisions; the transcript shows the {len(shown)} of steps "
        f"{int(events['step'].min())}-{last}. Raise the limit with normsim report --max-decisions N."
    )


def _turn(row: Any) -> str:
    options, probs = list(row.options), [float(p) for p in row.probs]
    choice = int(row.choice)
    p_chosen = probs[choice] if 0 <= choice < len(probs) else float("nan")
    badges = []
    if _present(row.violation) and bool(row.violation):
        # with a target (a watched peer), the violation is the target's, not this agent's
        who = "target violated" if _present(row.target) else "violation"
        badges.append(f'<span class="badge bad">{who}</span>')
    if bool(row.parse_failed):
        badges.append('<span class="badge bad">parse failed</span>')
    steer = steering_label(row.steer_vector, row.steer_coef)
    if steer != "unsteered":
        badges.append(f'<span class="badge">steered {escape(steer)}</span>')
    summary = (
        f"step {int(row.step)} &middot; {escape(str(row.phase))} &rarr; <b>{escape(str(row.chosen))}</b> "
        f'<span class="muted">(p = {p_chosen:.2f}, H = {float(row.entropy):.2f} nats)</span> {" ".join(badges)}'
    )
    body = [_prompt_block(row)]
    body.append(_options_table(options, probs, choice))
    if _present(row.text) and str(row.text):
        body.append(_answer(row))
    body.append(f'<div class="facts">{_facts(row)}</div>')
    attrs = (
        f'data-step="{int(row.step)}" data-phase="{escape(str(row.phase))}" '
        f'data-group="{escape(str(row.group))}" data-agent="{int(row.agent_id)}"'
    )
    return f'<details class="turn" {attrs}><summary>{summary}</summary>{"".join(body)}</details>'


def _filters(events: pd.DataFrame) -> str:
    """Select boxes for phase, group and agent and a step range; the page's script applies them."""

    def select(name: str, values: list[Any]) -> str:
        options = "".join(f'<option value="{escape(str(v))}">{escape(str(v))}</option>' for v in values)
        return (
            f'<label>{name} <select class="transcript-filter" data-key="{name}" aria-label="{name}">'
            f'<option value="">all</option>{options}</select></label>'
        )

    lo, hi = int(events["step"].min()), int(events["step"].max())
    steps = (
        f'<label>steps <input class="transcript-filter" data-key="step-from" type="number" min="{lo}" max="{hi}" '
        f'value="{lo}" aria-label="from step"> to <input class="transcript-filter" data-key="step-to" '
        f'type="number" min="{lo}" max="{hi}" value="{hi}" aria-label="to step"></label>'
    )
    return (
        '<div class="transcript-filters">'
        + select("phase", list(dict.fromkeys(events["phase"])))
        + select("group", list(dict.fromkeys(events["group"])))
        + select("agent", sorted(int(a) for a in events["agent_id"].unique()))
        + steps
        + "</div>"
    )


def _answer(row: Any) -> str:
    """The written answer beside the option it counted as, and how it was counted."""
    info = _info(row)
    if bool(row.parse_failed):
        how = "the answer named no option, so the phase's fallback counted"
    elif info.get("probs_from"):  # an LLM's free text: the option parsed from it
        how = "the option read from the answer"
    else:  # a custom policy that wrote text beside its choice
        how = "the option the policy chose with this text"
    if info.get("probs_from") == "option_scores":
        how += "; p in the table is the model's score of each option, not of the written answer"
    elif info.get("probs_from") == "unscored":
        how += "; the options were not scored, so p is 1 for it"
    return (
        '<div class="answer"><div><b>Written answer</b>'
        f"<pre>{escape(str(row.text))}</pre></div>"
        f'<div><b>Counted as</b><p class="counted">{escape(str(row.chosen))}</p>'
        f'<p class="muted">{escape(how)}</p></div></div>'
    )


def _info(row: Any) -> dict[str, Any]:
    if not (_present(row.info) and row.info):
        return {}
    try:
        value = json.loads(row.info)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _prompt_block(row: Any) -> str:
    prompt = getattr(row, "prompt", None)
    if _present(prompt) and str(prompt):
        return f'<div class="prompt"><b>Prompt (agent part)</b><pre>{escape(str(prompt))}</pre></div>'
    if str(row.phase) == "learn":
        return '<p class="muted">Decided by the social-learning rule (Fermi probability), not by the policy.</p>'
    if str(row.policy).startswith("scripted"):
        return '<p class="muted">Scripted policy: it decides from the structured observation and reads no prompt.</p>'
    return '<p class="muted">No prompt was logged for this decision.</p>'


def _options_table(options: list[str], probs: list[float], choice: int) -> str:
    rows = []
    for i, (option, p) in enumerate(zip(options, probs, strict=False)):
        cls = ' class="chosen"' if i == choice else ""
        width = max(0.0, min(100.0, 100.0 * p))
        rows.append(
            f"<tr{cls}><td>{escape(str(option))}</td><td class='num'>{p:.3f}</td>"
            f'<td class="barcell"><span class="bar" style="width:{width:.1f}%"></span></td></tr>'
        )
    return '<table class="options"><tr><th>option</th><th>p</th><th></th></tr>' + "".join(rows) + "</table>"


def _facts(row: Any) -> str:
    facts: list[tuple[str, Any]] = [
        ("policy", row.policy),
        ("value", row.value),
        ("target", row.target),
        ("violation", row.violation),
        ("group norm", row.group_norm),
    ]
    if _present(row.info) and row.info:
        try:
            facts.extend(json.loads(row.info).items())
        except (TypeError, ValueError):
            facts.append(("info", row.info))
    shown = [f"<span><i>{escape(str(k))}</i> {escape(_fmt(v))}</span>" for k, v in facts if _present(v)]
    return " ".join(shown)


def _present(value: Any) -> bool:
    if value is None:
        return False
    try:
        return not (isinstance(value, float) and math.isnan(value)) and value is not pd.NA
    except TypeError:
        return True


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return num(value)
