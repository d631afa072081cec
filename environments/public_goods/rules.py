"""Scripted group members. A rule reads only the structured observation:

contribution phase (``contribute``, options 0..endowment tokens): ``endowment``, ``start``
and ``reciprocity`` (the agent's strategy),
``last_others_mean`` (the mean contribution of the other members of its group last round,
None in round 1), ``last_contribution``, ``last_points_received``, ``times_punished``;
punishment phase (``punish``, options 0..max_points, one request per other member):
``target_contribution``, ``target_others_mean`` (the mean of the rest of the group, the
punisher included, which is what F&G's gap is measured against), ``max_points``.

* ``conditional``: a conditional cooperator (Fischbacher, Gächter & Fehr 2001): ``start`` ×
  the endowment in round 1 (default half), then ``reciprocity`` × the others' mean of last
  round (default 1: that mean; stochastic rounding, so its expected contribution is exactly
  the target); once punished, at least the others' mean, plus a token per point received
  last round; never punishes. ``start`` and ``reciprocity`` come from the group's
  ``strategy:`` block.
* ``free_rider``: contributes 0, never punishes.
* ``full``: contributes the whole endowment, never punishes.
* ``opportunist``: a free rider that punishment deters: 0 until it has been punished once,
  then at least the others' mean of last round (rounded up), plus a token per point
  received last round; never punishes.
* ``punisher``: contributes like ``conditional`` and punishes a member below the others'
  mean with 0.25 points per token of the gap (stochastic rounding, capped).
* ``strict_punisher``: contributes the whole endowment and punishes 0.5 points per token
  of the gap.
* ``random``: contributions uniform over 0..endowment; punishes nobody with probability
  0.9, otherwise 1..max_points uniformly, whatever the target did (a null model for
  punishment by gap).
"""

from __future__ import annotations

import math

import numpy as np

from agents.interfaces import DecisionRequest, one_hot
from agents.scripted import RuleBook

RULES = RuleBook()

PUNISHER_RATE = 0.25  # points per token below the others' mean
STRICT_RATE = 0.5


def about(n_options: int, target: float) -> np.ndarray:
    """Stochastic rounding onto 0..n_options-1: mass on floor and ceil so the mean is target."""
    target = min(max(target, 0.0), n_options - 1.0)
    low = math.floor(target)
    frac = target - low
    probs = one_hot(n_options, low) * (1.0 - frac)
    if frac > 0:
        probs[low + 1] += frac
    return probs


def _conditional_target(obs: dict) -> float:
    mean = obs["last_others_mean"]
    if mean is None:
        return obs["start"] * obs["endowment"]
    return max(obs["reciprocity"] * float(mean), _deterred(obs))


def _deterred(obs: dict) -> float:
    """What punishment taught a member: once punished, at least the others' last mean; right
    after a punishment, that mean plus a token per point received (0 if never punished)."""
    if not obs["times_punished"] or obs["last_others_mean"] is None:
        return 0.0
    return float(obs["last_others_mean"]) + obs["last_points_received"]


def _gap_points(req: DecisionRequest, rate: float) -> np.ndarray:
    obs = req.observation
    gap = obs["target_others_mean"] - obs["target_contribution"]
    return about(len(req.options), rate * gap if gap > 0 else 0.0)


def _none(req: DecisionRequest) -> np.ndarray:
    return one_hot(len(req.options), 0)


@RULES.rule("conditional")
def conditional(req: DecisionRequest) -> np.ndarray:
    if req.phase == "punish":
        return _none(req)
    return about(len(req.options), _conditional_target(req.observation))


@RULES.rule("free_rider")
def free_rider(req: DecisionRequest) -> np.ndarray:
    return _none(req)


@RULES.rule("full")
def full(req: DecisionRequest) -> np.ndarray:
    if req.phase == "punish":
        return _none(req)
    return one_hot(len(req.options), len(req.options) - 1)


@RULES.rule("opportunist")
def opportunist(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "punish" or obs["times_punished"] == 0 or obs["last_others_mean"] is None:
        return _none(req)
    # once punished, it keeps up with the others (rounded up), and climbs further after a new punishment
    target = max(math.ceil(obs["last_others_mean"] - 1e-9), _deterred(obs), obs["last_contribution"] or 0)
    return one_hot(len(req.options), min(math.ceil(target - 1e-9), len(req.options) - 1))


@RULES.rule("punisher")
def punisher(req: DecisionRequest) -> np.ndarray:
    if req.phase == "punish":
        return _gap_points(req, PUNISHER_RATE)
    return about(len(req.options), _conditional_target(req.observation))


@RULES.rule("strict_punisher")
def strict_punisher(req: DecisionRequest) -> np.ndarray:
    if req.phase == "punish":
        return _gap_points(req, STRICT_RATE)
    return one_hot(len(req.options), len(req.options) - 1)


@RULES.rule("random")
def uniform(req: DecisionRequest) -> np.ndarray:
    n = len(req.options)
    if req.phase == "punish":
        probs = np.full(n, 0.1 / (n - 1))
        probs[0] = 0.9
        return probs
    return np.full(n, 1.0 / n)
