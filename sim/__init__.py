"""normsim: simulate societies of LLM agents.

>>> import sim
>>> result = sim.run("scenarios/commons_scripted.yaml", seed=1, out="runs")
>>> result.metrics["survival_time"]
"""

from __future__ import annotations

import importlib
from typing import Any

# Public names, imported on first use: environments import sim.core.schema while
# sim.config imports the environments' registry, so nothing heavy loads here.
_EXPORTS = {
    "ConfigError": "sim.core.schema",
    "Scenario": "sim.config",
    "load_scenario": "sim.config",
    "RunResult": "sim.runner",
    "build_model": "sim.mesa_model",
    "load_sweep": "sim.sweep_tables",
    "load_run": "sim.runner",
    "run": "sim.runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
