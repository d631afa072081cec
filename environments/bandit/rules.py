"""Scripted players, reading only the observation (pull counts, sample means, round):

* ``random``: uniform over the arms.
* ``greedy``: the best sample mean; untried arms first.
* ``epsilon_greedy``: greedy with probability 0.9, otherwise uniform.
* ``softmax``: Boltzmann over sample means (temperature 1 point); untried arms count
  as the best mean seen.
* ``ucb``: UCB1, mean + s * sqrt(2 ln t / n) with s the pooled reward spread; untried first.
"""

from __future__ import annotations

import math

import numpy as np

from agents.interfaces import DecisionRequest, softmax
from agents.scripted import RuleBook

RULES = RuleBook()


def _untried(obs: dict) -> np.ndarray | None:
    counts = np.asarray(obs["counts"])
    if (counts == 0).any():
        mask = (counts == 0).astype(float)
        return mask / mask.sum()
    return None


def _argmax_uniform(scores: np.ndarray) -> np.ndarray:
    best = np.isclose(scores, scores.max())
    return best / best.sum()


@RULES.rule("random")
def uniform(req: DecisionRequest) -> np.ndarray:
    return np.full(len(req.options), 1.0 / len(req.options))


@RULES.rule("greedy")
def greedy(req: DecisionRequest) -> np.ndarray:
    first = _untried(req.observation)
    return first if first is not None else _argmax_uniform(np.asarray(req.observation["means"], dtype=float))


@RULES.rule("epsilon_greedy")
def epsilon_greedy(req: DecisionRequest) -> np.ndarray:
    return 0.9 * greedy(req) + 0.1 * uniform(req)


@RULES.rule("softmax")
def boltzmann(req: DecisionRequest) -> np.ndarray:
    means = req.observation["means"]
    seen = [m for m in means if m is not None]
    fill = max(seen) if seen else 0.0
    return softmax(np.array([fill if m is None else m for m in means]), temperature=1.0)


@RULES.rule("ucb")
def ucb(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    first = _untried(obs)
    if first is not None:
        return first
    counts = np.asarray(obs["counts"], dtype=float)
    means = np.asarray(obs["means"], dtype=float)
    spread = max(float(obs["reward_std"]), 1e-6)
    bonus = spread * np.sqrt(2.0 * math.log(counts.sum()) / counts)
    return _argmax_uniform(means + bonus)
