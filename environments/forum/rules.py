"""Scripted forum members (and the scripted moderator). Rules read only the observation.

Act phase (``observation["actions"]``, one dict per option, aligned with the options):
``type`` (nothing, post, comment, upvote, downvote, report, follow), ``topic``,
``invites`` (the topic tempts a rule break), ``bad`` (the item is labelled violating),
``agree`` (the item's or author's stance has the member's sign), ``labelled`` (reports
past the threshold put a warning label on it), ``misleading`` (the item sits in a thread
that endorses breaking a rule). A rule gives every action type a propensity W[type] and
every option an appeal in [0, 1]; a type's total weight is W[type] times the best appeal
among its options, shared among them in proportion to appeal (a member who sees one
violation reports it as readily as one who sees three).

The report propensity ``report_prob`` is a strategy trait (default
``mechanics.reporting.report_prob``), so social learning copies it too.

* ``civil``: posts and comments helpfully, upvotes agreeable civil content, downvotes and
  (with its report probability) reports violations.
* ``troll``: breaks rules, upvotes violations and allies, downvotes and falsely reports
  the other camp's civil content (weaponised reporting).
* ``vigilant``: mostly polices: reports and downvotes every violation it sees.
* ``lurker``: mostly does nothing, sometimes upvotes.
* ``conformist``: civil, but in a thread that endorses or shows a violation it follows
  the thread with probability ``conform_prob`` (CASA's misleading threads).

Write phase: ``labels`` names each option (helpful, chatter, violation); ``misleading``,
``thread_violations`` and ``invites`` describe the context. Moderate phase (``moderator``):
sanction what the guardian judged violating.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from agents.interfaces import DecisionRequest, one_hot
from agents.scripted import RuleBook

RULES = RuleBook()
Appeal = Callable[[str, Mapping[str, Any]], float]


def _act(req: DecisionRequest, W: Mapping[str, float], appeal: Appeal) -> np.ndarray:
    actions = req.observation["actions"]
    a = np.array([appeal(x["type"], x) for x in actions], dtype=np.float64)
    total: dict[str, float] = defaultdict(float)
    best: dict[str, float] = defaultdict(float)
    for x, v in zip(actions, a, strict=True):
        total[x["type"]] += v
        best[x["type"]] = max(best[x["type"]], v)
    w = np.array(
        [
            W.get(x["type"], 0.0) * best[x["type"]] * v / total[x["type"]] if v > 0 else 0.0
            for x, v in zip(actions, a, strict=True)
        ]
    )
    return w if w.sum() > 0 else one_hot(len(actions), 0)


def _write(req: DecisionRequest, weights: Mapping[str, float]) -> np.ndarray:
    return np.array([weights.get(label, 0.0) for label in req.observation["labels"]])


def _civil_appeal(t: str, a: Mapping[str, Any]) -> float:
    if t == "post":
        return 0.5 if a["invites"] else 1.0
    if t == "comment":
        return 0.2 if a["bad"] else 1.0
    if t == "upvote":
        return 0.0 if a["bad"] else (1.0 if a["agree"] else 0.4)
    if t == "downvote":
        return 1.0 if a["bad"] else (0.05 if a["agree"] is False else 0.0)
    if t == "report":
        return 1.0 if a["bad"] else 0.0
    if t == "follow":
        return 1.0 if a["agree"] else 0.1
    return 1.0


@RULES.rule("civil")
def civil(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "write":
        return _write(req, {"helpful": 0.85, "chatter": 0.15})
    if req.phase != "act":
        return one_hot(len(req.options), 0)
    W = {
        "nothing": 1.0,
        "post": 1.0,
        "comment": 1.5,
        "upvote": 2.0,
        "downvote": 1.0,
        "report": 4.0 * obs["report_prob"],
        "follow": 0.3,
    }
    return _act(req, W, _civil_appeal)


@RULES.rule("conformist")
def conformist(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "write":
        if obs["misleading"] or obs["thread_violations"] > 0:
            p = obs["conform_prob"]
            return _write(req, {"violation": p, "helpful": 1.0 - p})
        return _write(req, {"helpful": 0.8, "chatter": 0.2})
    if req.phase != "act":
        return one_hot(len(req.options), 0)
    W = {
        "nothing": 1.0,
        "post": 0.6,
        "comment": 2.5,
        "upvote": 2.0,
        "downvote": 0.5,
        "report": 2.0 * obs["report_prob"],
        "follow": 0.3,
    }

    def appeal(t: str, a: Mapping[str, Any]) -> float:
        if t == "comment":  # goes where the crowd is, bad company included
            return 1.0 if a["misleading"] or a["score"] > 0 else 0.5
        return _civil_appeal(t, a)

    return _act(req, W, appeal)


@RULES.rule("troll")
def troll(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "write":
        return _write(req, {"violation": 0.9, "chatter": 0.1})
    if req.phase != "act":
        return one_hot(len(req.options), 0)
    W = {
        "nothing": 0.5,
        "post": 1.5,
        "comment": 2.0,
        "upvote": 1.0,
        "downvote": 1.5,
        "report": 2.0 * obs["report_prob"],
        "follow": 0.2,
    }

    def appeal(t: str, a: Mapping[str, Any]) -> float:
        if t == "post":
            return 1.0 if a["invites"] else 0.5
        if t == "comment":
            return 1.0 if a["agree"] is False or a["misleading"] else 0.5
        if t == "upvote":
            return 1.0 if a["bad"] or a["agree"] else 0.0
        if t in ("downvote", "report"):  # the other camp's civil content
            return 1.0 if a["agree"] is False and not a["bad"] else 0.0
        if t == "follow":
            return 1.0 if a["agree"] else 0.0
        return 1.0

    return _act(req, W, appeal)


@RULES.rule("vigilant")
def vigilant(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "write":
        return _write(req, {"helpful": 1.0})
    if req.phase != "act":
        return one_hot(len(req.options), 0)
    W = {
        "nothing": 1.0,
        "post": 0.3,
        "comment": 0.7,
        "upvote": 1.5,
        "downvote": 1.5,
        "report": 8.0 * obs["report_prob"],
        "follow": 0.2,
    }
    return _act(req, W, _civil_appeal)


@RULES.rule("lurker")
def lurker(req: DecisionRequest) -> np.ndarray:
    if req.phase == "write":
        return _write(req, {"chatter": 0.7, "helpful": 0.3})
    if req.phase != "act":
        return one_hot(len(req.options), 0)
    W = {"nothing": 6.0, "post": 0.1, "upvote": 1.0}

    def appeal(t: str, a: Mapping[str, Any]) -> float:
        return 0.0 if t == "upvote" and (a["bad"] or not a["agree"]) else 1.0

    return _act(req, W, appeal)


@RULES.rule("moderator")
def moderator(req: DecisionRequest) -> np.ndarray:
    """Sanction exactly what the guardian judged violating (options: dismiss, sanction)."""
    if req.phase != "moderate":
        return one_hot(len(req.options), 0)
    obs = req.observation
    return one_hot(2, int(obs["guardian_p"] >= obs["threshold"]))
