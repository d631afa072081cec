"""The forum's metrics, computed from the event log (and the per-step table).

Contributions are posts and comments (``write`` events); an item's label is its
template's ground truth (scripted) or the guardian's judgement (generated text).

* ``violation_rate``: share of contributions labelled violating (CASA's Vio-R over all
  content); ``violation_rate_by_step``: the same per step;
* ``misleading_violation_rate``: the same among comments in threads that endorse
  breaking a rule (CASA's S2 threads); ``other_comment_violation_rate`` for comparison;
* ``cooperation``: share of contributions that are civil (not violating) and helpful
  (template label; for generated text the guardian's helpfulness verdict, or civility
  alone when ``judge_helpful`` is off or the guardian has no LLM);
* ``report_precision``: share of reports aimed at violating content; ``report_recall``:
  share of violating contributions reported at least once; ``flag_recall``: share
  reported at least ``report_threshold`` times (labelled and queued);
* ``sanctions``: sanctions per ladder rung; ``false_ban_rate``: share of bans (temporary
  or permanent) imposed for content that was not violating; ``false_sanction_rate``:
  the same over every rung;
* ``guardian_precision`` / ``guardian_recall``: the guardian's verdicts on scripted
  content against the templates' ground truth (per method: keyword, llm);
* exploration: ``action_type_entropy`` (mean entropy, nats, of each act decision's
  distribution summed by action type), ``empirical_action_type_entropy`` (per member,
  of its chosen types; averaged), ``topic_entropy`` (of the topics of all new posts) and
  ``mean_member_topic_entropy``;
* ``stance_polarisation``: mean pairwise stance distance / 2 (0 consensus, 1 two
  opposite camps), initial and final;
* ``karma_gini`` at the end and the shared entropy metrics over members' decisions.
* ``cooperation_by_step``: ``cooperation`` per step; ``stance_polarisation_by_step``: the
  polarisation per step;
* ``contributions``: posts and comments written; ``reports``: reports filed;
  ``banned_at_end``: members banned when the run ended;
* ``action_shares``: share of act decisions of each action type (read, post, comment,
  vote, report, follow...).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from agents.interfaces import entropy
from environments.forum.config import LADDER
from environments.forum.feed import ACTION_TYPES, action_type
from sim.core.metrics import common_metrics, share

MEMBER_PHASES = ("act", "write", "learn")
BANS = ("temp_ban", "perm_ban")


def _info(frame: pd.DataFrame) -> pd.DataFrame:
    """The JSON ``info`` column spread into columns (empty when there are no rows)."""
    if frame.empty:
        return pd.DataFrame(index=frame.index)
    rows = [json.loads(s) if isinstance(s, str) else {} for s in frame["info"]]
    return pd.DataFrame(rows, index=frame.index)


def _phase(events: pd.DataFrame, phase: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    ev = events[events["phase"] == phase] if len(events) else events
    return ev, _info(ev)


def _series(steps: pd.DataFrame, column: str) -> list[float | None]:
    if column not in steps:
        return []
    return [None if pd.isna(v) else float(v) for v in steps[column]]


def _hist_entropy(values: Any) -> float | None:
    counts = Counter(values)
    total = sum(counts.values())
    return entropy(np.array(list(counts.values()), dtype=np.float64) / total) if total else None


def type_entropy(options: Any, probs: Any) -> float:
    """Entropy of a decision's probability summed by action type."""
    mass: Counter[str] = Counter()
    for label, p in zip(options, probs, strict=True):
        mass[action_type(label)] += float(p)
    return entropy(np.array([mass[t] for t in ACTION_TYPES]))


def compute(events: pd.DataFrame, steps: pd.DataFrame, scenario: Any) -> dict[str, Any]:
    threshold = scenario.environment.moderation.report_threshold
    act, act_info = _phase(events, "act")
    write, write_info = _phase(events, "write")
    mod, mod_info = _phase(events, "moderate")
    guard, guard_info = _phase(events, "guard")

    # Contributions and their labels.
    bad = write["violation"].astype(bool) if len(write) else pd.Series(dtype=bool)
    helpful = write_info["helpful"].astype(bool) if len(write) else pd.Series(dtype=bool)
    in_bad_thread = write_info["misleading"].notna() if len(write) else pd.Series(dtype=bool)
    comments = write_info["kind"] == "comment" if len(write) else pd.Series(dtype=bool)
    violating_items = set(write_info.loc[bad, "item"].astype(int)) if len(write) else set()

    # Reports (peer punishment).
    types = act_info["type"] if len(act) else pd.Series(dtype=str)
    reports = act[types == "report"] if len(act) else act
    report_items = act_info.loc[reports.index, "item"].astype(int) if len(reports) else pd.Series(dtype=int)
    counts = Counter(report_items)
    recall = (len(violating_items & set(counts)) / len(violating_items)) if violating_items else None
    flagged = {i for i, c in counts.items() if c >= threshold}

    # Moderation.
    levels = mod_info["level"].dropna() if len(mod) and "level" in mod_info else pd.Series(dtype=str)
    sanctioned = mod.loc[levels.index] if len(levels) else mod.iloc[0:0]
    bans = sanctioned[levels.isin(BANS)] if len(levels) else sanctioned

    return {
        "violation_rate": share(bad) if len(write) else None,
        "violation_rate_by_step": _series(steps, "violation_rate"),
        "misleading_violation_rate": share(bad[in_bad_thread & comments]) if len(write) else None,
        "other_comment_violation_rate": share(bad[~in_bad_thread & comments]) if len(write) else None,
        "cooperation": share(~bad & helpful) if len(write) else None,
        "cooperation_by_step": _series(steps, "cooperation"),
        "contributions": int(len(write)),
        "reports": int(len(reports)),
        "report_precision": share(reports["violation"]) if len(reports) else None,
        "report_recall": recall,
        "flag_recall": len(violating_items & flagged) / len(violating_items) if violating_items else None,
        "sanctions": {lv: int((levels == lv).sum()) for lv in LADDER},
        "false_sanction_rate": share(~sanctioned["violation"].astype(bool)) if len(sanctioned) else None,
        "false_ban_rate": share(~bans["violation"].astype(bool)) if len(bans) else None,
        "banned_at_end": int(steps["banned"].iloc[-1]) if len(steps) else 0,
        **_guardian_quality(write_info, guard, guard_info),
        **_exploration(act, act_info, types),
        "stance_polarisation": {
            "initial": _first(steps, "stance_polarisation"),
            "final": _last(steps, "stance_polarisation"),
        },
        "stance_polarisation_by_step": _series(steps, "stance_polarisation"),
        "karma_gini": _last(steps, "karma_gini"),
        **common_metrics(events[events["phase"].isin(MEMBER_PHASES)] if len(events) else events, "act"),
    }


def _exploration(act: pd.DataFrame, act_info: pd.DataFrame, types: pd.Series) -> dict[str, Any]:
    if act.empty:
        return {
            "action_type_entropy": None,
            "empirical_action_type_entropy": None,
            "action_shares": {},
            "topic_entropy": None,
            "mean_member_topic_entropy": None,
        }
    per_decision = [type_entropy(o, p) for o, p in zip(act["options"], act["probs"], strict=True)]
    per_member = [_hist_entropy(t) for _, t in types.groupby(act["agent_id"])]
    posts = act_info.loc[types == "post", "topic"]
    topic_by_member = [_hist_entropy(t) for _, t in posts.groupby(act.loc[posts.index, "agent_id"])]
    shares = types.value_counts(normalize=True)
    return {
        "action_type_entropy": float(np.mean(per_decision)),
        "empirical_action_type_entropy": float(np.mean(per_member)),
        "action_shares": {t: float(shares.get(t, 0.0)) for t in ACTION_TYPES},
        "topic_entropy": _hist_entropy(posts),
        "mean_member_topic_entropy": float(np.mean(topic_by_member)) if topic_by_member else None,
    }


def _guardian_quality(write_info: pd.DataFrame, guard: pd.DataFrame, guard_info: pd.DataFrame) -> dict[str, Any]:
    """Precision and recall of the guardian's item verdicts on template (ground-truth) content."""
    out: dict[str, Any] = {}
    if guard.empty or write_info.empty:
        return {"guardian_precision": {}, "guardian_recall": {}}
    truth = {
        int(i): isinstance(r, str)
        for i, r, s in zip(write_info["item"], write_info["rule"], write_info["label_source"], strict=True)
        if s == "template"
    }
    precision, recall = {}, {}
    rules = guard_info["rule"] != "helpful"
    for method, rows in guard[rules].groupby(guard_info.loc[rules, "method"]):
        items = guard_info.loc[rows.index, "item"].astype(int)
        said = rows["violation"].astype(bool).groupby(items).any()
        said = said[said.index.isin(list(truth))]
        actual = pd.Series({i: truth[i] for i in said.index}, dtype=bool)
        tp = int((said & actual).sum())
        precision[method] = tp / int(said.sum()) if said.sum() else None
        recall[method] = tp / int(actual.sum()) if actual.sum() else None
    out["guardian_precision"], out["guardian_recall"] = precision, recall
    return out


def _first(steps: pd.DataFrame, column: str) -> float | None:
    return None if steps.empty or pd.isna(steps[column].iloc[0]) else float(steps[column].iloc[0])


def _last(steps: pd.DataFrame, column: str) -> float | None:
    return None if steps.empty or pd.isna(steps[column].iloc[-1]) else float(steps[column].iloc[-1])
