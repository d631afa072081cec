"""Build a scenario's Mesa model to step and inspect yourself (a notebook, a Mesa tool).

>>> import sim
>>> model = sim.build_model("scenarios/commons_scripted.yaml", seed=3)
>>> for _ in range(3):
...     model.step()
>>> model.datacollector.get_model_vars_dataframe()  # one row per step
>>> model.datacollector.get_agent_vars_dataframe()  # one row per agent per step

``sim.run`` builds the same model (same seed, same policies, same events) and also
writes the run directory; ``build_model`` writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agents.interfaces import Policy
from sim.agentvars import attach_agent_reporters
from sim.config import Scenario, load_scenario
from sim.rundir import check_models
from sim.runner import _as_dict, build_policies, run_id_for


def build_model(
    source: str | Path | dict[str, Any] | Scenario,
    *,
    seed: int | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    policies: Mapping[str, Policy] | None = None,
    run_id: str | None = None,
) -> Any:
    """The scenario's ready Mesa model: validated, policies built, seeded, not yet stepped.

    Arguments mean what they mean for ``sim.run``: ``seed`` overrides ``run.seed``,
    ``overrides`` are ``--set`` style, ``policies`` replace groups' policies by name.
    ``run_id`` (default: the name ``sim.run`` would give) goes into every event row.
    The model's ``datacollector`` has the environment's per-step series as model
    reporters and agents.parquet's columns as agent reporters. The decisions of every
    ``model.step()`` pile up in ``model.step_events`` until ``model.take_step_events()``
    hands them over and clears them (the runner takes them after every step).
    """
    changes = dict(_as_dict(overrides))
    if seed is not None:
        changes["run.seed"] = seed
    scenario = load_scenario(source, changes or None)
    check_models(scenario, skip=set(policies or ()))
    built = build_policies(scenario, policies)
    model = scenario.spec.model(scenario, built, run_id=run_id or run_id_for(scenario, changes))
    attach_agent_reporters(model)
    return model
