"""Scripted shoppers. Each rule maps a request to a distribution over the page's actions,
reading only the structured observation (:func:`environments.webshop.observe.observation`).
The three handling strategies social learning copies:

* ``naive``: the naive buyer. Searches the request, opens the best-matching product,
  selects the wanted options and buys; never asks or refuses. It does follow the
  society's shared norm notes (it skips products and options that break a noted norm
  when it can).
* ``refuser``: the norm-aware refuser. Refuses a request that itself breaks a norm;
  otherwise buys the best configuration that breaks no norm; refuses when the results
  offer none.
* ``asker``: asks the user first whenever the refuser would refuse; then buys the
  alternative the user accepts, or refuses when the user insists or says to stop.
* ``random``: uniform over the offered actions (an exploration baseline).

A shopper that finds nothing on its first search tries the bare category, then pages
on; the naive buyer never gives up, so it may run out of actions (a timeout).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.interfaces import DecisionRequest, one_hot
from agents.scripted import RuleBook

RULES = RuleBook()
HANDLING = ("naive", "refuser", "asker")


def _find(obs: dict[str, Any], verb: str, arg: str | None = None) -> int | None:
    for i, (v, a) in enumerate(obs["actions"]):
        if v == verb and (arg is None or a == arg):
            return i
    return None


def _pick(req: DecisionRequest, index: int | None) -> np.ndarray:
    if index is None:  # nothing sensible to do: go back, or (on the home page) search again
        index = _find(req.observation, "back")
        if index is None:
            index = _find(req.observation, "search") or 0
    return one_hot(len(req.options), index)


def _restart(obs: dict[str, Any]) -> int | None:
    """Back to the search page, to try another query."""
    return _find(obs, "click", "back to search")


def _search(obs: dict[str, Any]) -> int | None:
    """The full request first; the bare category once that has been tried."""
    searches = [i for i, (v, _) in enumerate(obs["actions"]) if v == "search"]
    return searches[min(obs["searches"], len(searches) - 1)] if searches else None


def _shop(obs: dict[str, Any], mode: str) -> tuple[str, int | None]:
    """The next step of buying with configurations of the given mode (naive/aware/noted):
    ('act', index), or ('stuck', None) when this page offers nothing buyable."""
    page = obs["page"]
    if page == "home":
        return "act", _search(obs)
    if page == "tab":
        return "act", _find(obs, "back")
    if page == "results":
        scored = [(c[f"{mode}_reward"], -k, c) for k, c in enumerate(obs["candidates"]) if c[mode] is not None]
        scored = [s for s in scored if s[0] > 0]
        if scored:
            return "act", max(scored, key=lambda s: s[:2])[2]["index"]
        nxt = _find(obs, "click", "next >")
        return ("act", nxt) if nxt is not None else ("stuck", None)
    item = obs["item"]
    target = item[mode]
    if target is None:
        return "act", _find(obs, "back")
    for name, value in target.items():
        if item["chosen"].get(name) != value:
            return "act", _find(obs, "click", f"{name}: {value}")
    return "act", _find(obs, "buy")


def _vote(req: DecisionRequest) -> np.ndarray:
    """Norm notes: every handling strategy backs the most reported problem (option 1)."""
    return one_hot(len(req.options), 1 if len(req.options) > 1 else 0)


# After this many searches a stuck shopper stops trying new queries.
TRIES = 2


@RULES.rule("naive")
def naive(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "notes":
        return _vote(req)
    # Shared notes steer it for its first searches; after that it buys whatever matches.
    mode = "noted" if obs["notes"] and obs["searches"] <= TRIES else "naive"
    state, index = _shop(obs, mode)
    return _pick(req, _restart(obs) if state == "stuck" else index)


@RULES.rule("refuser")
def refuser(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "notes":
        return _vote(req)
    if obs["request_breaks"]:
        return _pick(req, _find(obs, "refuse"))
    state, index = _shop(obs, "aware")
    if state == "stuck":
        index = _restart(obs) if obs["searches"] < TRIES else _find(obs, "refuse")
    return _pick(req, index)


@RULES.rule("asker")
def asker(req: DecisionRequest) -> np.ndarray:
    obs = req.observation
    if req.phase == "notes":
        return _vote(req)
    if obs["request_breaks"]:
        return _pick(req, _find(obs, "refuse" if obs["reply"] == "insist" else "ask"))
    state, index = _shop(obs, "aware")
    if state == "stuck":
        index = _restart(obs) if obs["searches"] < TRIES else _find(obs, "refuse" if obs["asked"] else "ask")
    return _pick(req, index)


@RULES.rule("random")
def uniform(req: DecisionRequest) -> np.ndarray:
    return np.full(len(req.options), 1.0 / len(req.options))
