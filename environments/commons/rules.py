"""Scripted fishers. Each rule maps a request (harvest, punish or vote) to a
distribution over its options, reading only the structured observation:

* ``sustainable``: catch the fair share f(t)/n (capped by the group norm); punish
  violators with its punishment probability; propose the fair share.
* ``greedy``: take the largest option; never punish; propose the largest ceiling.
* ``random``: uniform over every option.
* ``conditional``: a conditional cooperator: the fair share while peers on average keep
  to the norm, otherwise match the peers' mean catch; punishes like ``sustainable``.
* ``punisher``: the fair share, and always fines a violator it sees.
* ``fixed``: requests ``amount`` tons every month (the group's ``strategy.amount``),
  whatever the norm; proposes the same amount. GovSim-style reference runs.
* ``share``: requests ``factor`` x the sustainable share shown (``strategy.factor``,
  default 1), capped by a voted or agreed limit; proposes factor x the share.

A rule's parameters live in the group's ``strategy:`` block, so social learning copies
them with the rule. Harvest requests are in tons (``harvest: amount``) or in efforts
(fractions of the stock); every rule names a target in tons and takes the largest
option not above it.
"""

from __future__ import annotations

import numpy as np

from agents.interfaces import DecisionRequest, nearest_option, one_hot
from agents.scripted import RuleBook

RULES = RuleBook()


def _fair_target(obs: dict) -> float:
    """The fair share in tons, capped by the group norm when there is one."""
    target = obs["sustainable_share"]
    if obs["group_norm"] is not None:
        target = min(target, obs["group_norm"])
    return target


def _harvest_at(req: DecisionRequest, tons: float) -> np.ndarray:
    """The largest option not above ``tons``: a cooperator never overshoots."""
    obs = req.observation
    target = tons if obs.get("harvest_unit") == "tons" else tons / max(obs["stock"] * obs["alpha"], 1e-9)
    values = np.asarray(req.values)
    below = np.where(values <= target + 1e-9)[0]
    index = int(below[np.argmax(values[below])]) if below.size else int(np.argmin(values))
    return one_hot(len(values), index)


def _punish_violator(req: DecisionRequest, prob: float) -> np.ndarray:
    obs = req.observation
    p = prob if obs["peer_catch"] > obs["norm_in_force"] + 1e-9 else 0.0
    return np.array([1 - p, p])


def _vote(req: DecisionRequest, value: float) -> np.ndarray:
    return one_hot(len(req.options), nearest_option(req.values, value))


@RULES.rule("sustainable")
def sustainable(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "harvest":
        return _harvest_at(req, _fair_target(obs))
    if req.phase == "punish":
        return _punish_violator(req, obs["punish_prob"])
    return _vote(req, obs["sustainable_share"])


@RULES.rule("greedy")
def greedy(req: DecisionRequest) -> np.ndarray:
    if req.phase == "punish":
        return np.array([1.0, 0.0])
    return one_hot(len(req.options), int(np.argmax(req.values)))


@RULES.rule("random")
def uniform(req: DecisionRequest) -> np.ndarray:
    return np.full(len(req.options), 1.0 / len(req.options))


@RULES.rule("conditional")
def conditional(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "harvest":
        peers = obs["peers_mean_catch"]
        if peers is None or peers <= obs["norm_in_force"] + 1e-9:
            return _harvest_at(req, _fair_target(obs))
        return _harvest_at(req, peers)
    if req.phase == "punish":
        return _punish_violator(req, obs["punish_prob"])
    return _vote(req, obs["own_norm"] if obs["own_norm"] is not None else obs["sustainable_share"])


@RULES.rule("punisher")
def punisher(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "harvest":
        return _harvest_at(req, _fair_target(obs))
    if req.phase == "punish":
        return _punish_violator(req, 1.0)
    return _vote(req, obs["sustainable_share"])


@RULES.rule("fixed")
def fixed(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    amount = float(obs["params"].get("amount", 0.0))
    if req.phase == "harvest":
        return _harvest_at(req, amount)
    if req.phase == "punish":
        return _punish_violator(req, obs["punish_prob"])
    return _vote(req, amount)


@RULES.rule("share")
def share(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    target = float(obs["params"].get("factor", 1.0)) * obs["sustainable_share"]
    if req.phase == "harvest":
        if obs["group_norm"] is not None:
            target = min(target, obs["group_norm"])
        return _harvest_at(req, target)
    if req.phase == "punish":
        return _punish_violator(req, obs["punish_prob"])
    return _vote(req, target)
