"""Environment registry.

Each environment family lives in its own package with the same layout (``config.py``,
``agents.py``, ``model.py``, ``rules.py``, ``metrics.py``) and plugs into the shared
runner, logger and policies through :class:`environments.base.SocietyModel`.

Only the light configuration modules are imported here; models load on demand.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.scripted import RULES
from environments.commons.config import CommonsConfig

# environment type -> its pydantic config (the scenario's `environment:` block)
CONFIGS: dict[str, type] = {
    "commons": CommonsConfig,
    "forum": importlib.import_module("environments.forum.config").ForumConfig,
    "bandit": importlib.import_module("environments.bandit.config").BanditConfig,
    "webshop": importlib.import_module("environments.webshop.config").WebShopConfig,
}

# environment type -> "module:Class" of its Mesa model
MODELS: dict[str, str] = {
    "commons": "environments.commons.model:CommonsModel",
    "forum": "environments.forum.model:ForumModel",
    "bandit": "environments.bandit.model:BanditModel",
    "webshop": "environments.webshop.model:WebShopModel",
}

# environment type -> {rule name: rule}; filled by each environment's rules module
SCRIPTED_RULES: dict[str, dict[str, Any]] = RULES


def _load_rules() -> None:
    for env in MODELS:
        importlib.import_module(f"environments.{env}.rules")


def model_class(env_type: str) -> type:
    module, _, name = MODELS[env_type].partition(":")
    return getattr(importlib.import_module(module), name)


_load_rules()
