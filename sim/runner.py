"""Run a scenario: build the Mesa model, step it, write the run directory.

>>> from sim import run
>>> result = run("scenarios/commons_scripted.yaml", seed=3, out="runs")
>>> result.metrics["survival_time"], result.events.shape
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from agents.factory import build_policies
from agents.interfaces import Policy
from agents.llm.capture import ActivationWriter
from environments import model_class
from sim.config import Scenario, dump_scenario, load_scenario, parse_overrides
from sim.logger import RunWriter, read_table
from sim.progress import Progress


@dataclass
class RunResult:
    """A finished (or interrupted) run: its directory, metrics and tables."""

    dir: Path
    scenario: Scenario
    metrics: dict[str, Any]
    status: str = "finished"
    extras: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None  # report.html, when one was written

    @cached_property
    def events(self) -> pd.DataFrame:
        return read_table(self.dir, "events")

    @cached_property
    def steps(self) -> pd.DataFrame:
        return read_table(self.dir, "steps")


def run_id_for(scenario: Scenario) -> str:
    return scenario.output.run_id or f"{scenario.name}-seed{scenario.run.seed}"


def _fresh_dir(root: Path, name: str) -> Path:
    """root/name, or root/name-2, -3... if taken: a run never overwrites another."""
    path, k = root / name, 2
    while path.exists():
        path, k = root / f"{name}-{k}", k + 1
    return path


def run(
    source: str | Path | dict[str, Any] | Scenario,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    policies: Mapping[str, Policy] | None = None,
    progress: bool = False,
    run_dir: str | Path | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    report: bool | None = None,
) -> RunResult:
    """Run a scenario and write its directory.

    ``out`` is the parent directory (default: the scenario's ``output.dir``); the run
    gets its own sub-directory unless ``run_dir`` names it exactly. ``policies``
    replaces the scenario's policies by group name (for tests and custom agents).
    ``report`` (default: the scenario's ``output.report``) writes report.html at the end.
    """
    overrides = dict(_as_dict(overrides))
    if seed is not None:
        overrides["run.seed"] = seed
    scenario = load_scenario(source, overrides or None)
    if run_dir is None:
        root = Path(out if out is not None else scenario.output.dir)
        run_dir = _fresh_dir(root, run_id_for(scenario))
    writer = RunWriter(Path(run_dir))
    writer.write_text("config.yaml", dump_scenario(scenario))

    built = dict(build_policies(scenario, fit=_fit_inline)) if policies is None else {}
    if policies is not None:
        built = {g.name: policies[g.name] for g in scenario.population}
    model_cls = model_class(scenario.environment.type)
    model = model_cls(scenario, built, run_id=run_id_for(scenario))

    status = "finished"
    started = time.perf_counter()
    bar = Progress(total=scenario.run.steps, label=scenario.name, enabled=progress)
    activations = ActivationWriter(writer.dir)  # writes files only when a policy captured something
    try:
        for _ in range(scenario.run.steps):
            if not model.running:
                break
            model.step()
            activations.collect(int(model.steps), model.policies.values())  # hidden-state capture, if any
            step_row = {"step": int(model.steps), **_latest_row(model)}
            writer.write_step(model.take_step_events(), step_row)
            bar.update(step_row)
            if on_step is not None:
                on_step(int(model.steps), step_row)
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception:
        status = "failed"
        raise
    finally:
        bar.close()
        writer.close()
        activations.close()
        if getattr(model, "system_prompts", None):
            writer.write_text("prompts.json", json.dumps(model.system_prompts, indent=2))
        result = _finish(writer, scenario, model_cls, status, time.perf_counter() - started)
    if scenario.output.report if report is None else report:
        from sim.report import write_report  # matplotlib loads only when a report is written

        result.report = write_report(result.dir)
    return result


def _finish(writer: RunWriter, scenario: Scenario, model_cls: type, status: str, seconds: float) -> RunResult:
    events = read_table(writer.dir, "events")
    steps = read_table(writer.dir, "steps")
    metrics = model_cls.compute_metrics(events, steps, scenario) if len(steps) else {}
    metrics = {"status": status, "steps_completed": int(len(steps)), "wall_seconds": round(seconds, 3), **metrics}
    writer.write_metrics(metrics)
    return RunResult(dir=writer.dir, scenario=scenario, metrics=metrics, status=status)


def _latest_row(model: Any) -> dict[str, Any]:
    """The DataCollector's row for the step just collected."""
    series = model.datacollector.model_vars
    return {name: values[-1] for name, values in series.items() if values}


def _as_dict(overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    if not overrides:
        return {}
    return overrides if isinstance(overrides, dict) else parse_overrides(overrides)


def load_run(run_dir: str | Path) -> RunResult:
    """Open a run directory written earlier."""
    run_dir = Path(run_dir)
    scenario = load_scenario(run_dir / "config.yaml")
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return RunResult(dir=run_dir, scenario=scenario, metrics=metrics, status=metrics.get("status", "unknown"))


def _fit_inline(spec: Any, backend: Any) -> Any:
    """Fit a group's inline ``steering: {fit: ...}`` spec (torch loads only for such groups)."""
    from steering.fit import fit_spec

    return fit_spec(spec, backend)
