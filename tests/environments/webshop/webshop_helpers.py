"""Shared builders for the web shop tests."""

from __future__ import annotations

from typing import Any

from environments.webshop.model import WebShopModel
from environments.webshop.shop import Session, Shop
from environments.webshop.tasks import dataset
from sim.config import load_scenario
from sim.runner import build_policies

_SHOP: Shop | None = None


def shop() -> Shop:
    global _SHOP
    if _SHOP is None:
        _SHOP = Shop(dataset())
    return _SHOP


def session(task_id: str) -> Session:
    return Session(shop(), dataset().task(task_id))


def scenario(
    groups: list[tuple[str, int, Any]],
    *,
    kinds: list[str] | None = None,
    steps: int = 10,
    seed: int = 0,
    mechanics: dict[str, Any] | None = None,
    **env: Any,
) -> Any:
    return load_scenario(
        {
            "name": "webshop_test",
            "environment": {"type": "webshop", "kinds": kinds or ["violate", "adhere", "misleading"], **env},
            "population": [{"name": n, "size": size, "policy": policy} for n, size, policy in groups],
            "mechanics": mechanics or {},
            "run": {"steps": steps, "seed": seed},
            "output": {"report": False},
        }
    )


def model(groups: list[tuple[str, int, Any]], **kwargs: Any) -> WebShopModel:
    s = scenario(groups, **kwargs)
    return WebShopModel(s, build_policies(s))
