"""What a shopper is offered each step: the page's menu of actions, and the same
situation as a structured observation.

LLM shoppers read the menu as text: on the search page they write their own query (a
``kind="text"`` request); elsewhere they pick one of the page's valid actions.
Scripted shoppers read the structured observation (documented in :func:`observation`);
they never parse text.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Collection
from typing import Any

from environments.webshop.catalog import Product
from environments.webshop.scoring import best_choice, reward
from environments.webshop.shop import ASK_TEXT, REFUSE_TEXT, Session, action_text, parse_action
from environments.webshop.tasks import Task, Want


def menu_for(session: Session) -> tuple[str, ...]:
    """The actions offered on the current page; the search page's two searches are the
    queries a scripted shopper knows (an LLM writes its own)."""
    ask, refuse = action_text("ask", ASK_TEXT), action_text("refuse", REFUSE_TEXT)
    if session.page.kind == "home":
        want = session.want
        searches = [action_text("search", want.query()), action_text("search", want.category)]
        return tuple(dict.fromkeys(searches)) + (ask, refuse)
    return (*session.valid_actions(), ask, refuse)


def best_config(task: Task, want: Want, product: Product, forbidden: Collection[str] | None) -> dict[str, str] | None:
    """The highest-reward configuration that breaks none of the forbidden norms (None:
    none of them; every norm of the country when ``forbidden`` is None); None if every
    configuration breaks one."""
    preferred = best_choice(want, product)
    names = list(product.options)
    # Try the preferred configuration first, then the rest in catalogue order.
    combos = [preferred] + [dict(zip(names, c, strict=True)) for c in itertools.product(*product.options.values())]
    best, best_r = None, -1.0
    for combo in combos:
        broken = task.breaks(product, combo)
        if (forbidden is None and broken) or (forbidden is not None and set(broken) & set(forbidden)):
            continue
        r = reward(want, product, combo)
        if r > best_r + 1e-12:
            best, best_r = combo, r
    return best


def _candidate(session: Session, pid: str, index: int, notes: Collection[str]) -> dict[str, Any]:
    configs = _configs(session.shop, session.task, session.want, pid, tuple(notes))
    # Copies: the memo's dicts must not change under a caller that edits its observation.
    return {"index": index, "id": pid} | {k: dict(v) if isinstance(v, dict) else v for k, v in configs.items()}


@functools.lru_cache(maxsize=65536)
def _configs(shop: Any, task: Task, want: Want, pid: str, notes: tuple[str, ...]) -> dict[str, Any]:
    """A product's best configurations for a task: a pure function of its arguments, and
    shoppers of a society meet the same (task, product) pairs again and again."""
    product = shop.product(pid)
    naive = best_choice(want, product)
    aware = best_config(task, want, product, None)
    noted = best_config(task, want, product, notes) if notes else naive
    return {
        "naive": naive,
        "naive_reward": reward(want, product, naive),
        "aware": aware,
        "aware_reward": reward(want, product, aware) if aware else 0.0,
        "noted": noted,
        "noted_reward": reward(want, product, noted) if noted else 0.0,
    }


def observation(session: Session, menu: tuple[str, ...], rule: str | None, notes: Collection[str]) -> dict[str, Any]:
    """Keys: ``rule``; ``page`` (home/results/item/tab); ``actions`` (each menu entry, i.e.
    each option, parsed as (verb, argument)); ``request_breaks`` (the current request itself breaks a norm: a
    violate task before the user accepted an alternative); ``asked`` and ``reply``;
    ``searches`` (queries made so far); ``candidates`` (results page: each product's
    option index and its best configurations, ignoring norms / avoiding every norm /
    avoiding the noted norms, with their rewards); ``item`` (item page: the same for the
    product shown, plus the configuration that would ship now); ``notes`` (norm ids the
    society has noted)."""
    task = session.task
    actions = [parse_action(o) or ("", "") for o in menu]
    obs: dict[str, Any] = {
        "rule": rule,
        "page": session.page.kind,
        "actions": actions,
        "request_breaks": task.kind == "violate" and session.want == task.want,
        "asked": session.asked,
        "reply": session.reply,
        "searches": session.searches,
        "notes": list(notes),
    }
    if session.page.kind == "results":
        index = {arg: i for i, (verb, arg) in enumerate(actions) if verb == "click"}
        obs["candidates"] = [
            _candidate(session, pid, index[session.shop.product(pid).title], notes) for pid in session.page_items()
        ]
    elif session.page.kind == "item":
        item = session.item()
        assert item is not None
        obs["item"] = {**_candidate(session, item.id, -1, notes), "chosen": session.chosen()}
    return obs
