"""The environment registry: environment type -> :class:`environments.spec.EnvironmentSpec`.

Each environment family lives in its own package with the same layout (``config.py``,
``agents.py``, ``model.py``, ``rules.py``, ``metrics.py``, ``spec.py``); its ``spec.py``
says everything the rest of normsim needs to know about it. Built-in specs load on
first use, so reading a scenario loads only the environment it names. Third parties add
theirs through the ``normsim.environments`` entry point group or :func:`register`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from environments.spec import EnvironmentSpec

# The built-in environments: type -> module holding its SPEC.
BUILTIN: dict[str, str] = {
    "commons": "environments.commons.spec",
    "webshop": "environments.webshop.spec",
    "forum": "environments.forum.spec",
    "bandit": "environments.bandit.spec",
    "public_goods": "environments.public_goods.spec",
}
ENTRY_POINT_GROUP = "normsim.environments"

_loaded: dict[str, EnvironmentSpec] = {}


def register(spec: EnvironmentSpec) -> EnvironmentSpec:
    """Add (or replace) an environment at run time; returns the spec."""
    _loaded[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _loaded.pop(name, None)


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every environment type a scenario may name."""
    return sorted(set(BUILTIN) | set(_plugins()) | set(_loaded))


def get(name: str) -> EnvironmentSpec:
    """The spec of an environment type; KeyError (with the allowed types) if unknown."""
    if name in _loaded:
        return _loaded[name]
    if name in BUILTIN:
        spec = importlib.import_module(BUILTIN[name]).SPEC
    elif name in (plugins := _plugins()):
        module, _, attr = plugins[name].partition(":")
        spec = getattr(importlib.import_module(module), attr or "SPEC")
    else:
        raise KeyError(f"unknown environment '{name}'; allowed: {', '.join(names())}")
    if not isinstance(spec, EnvironmentSpec) or spec.name != name:
        raise TypeError(f"environment '{name}' does not resolve to an EnvironmentSpec named '{name}'")
    return register(spec)


def all_specs() -> list[EnvironmentSpec]:
    return [get(name) for name in names()]
