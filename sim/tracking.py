"""Optional experiment tracking: ``output.tracking: mlflow``.

Logs the scenario's parameters (flattened dotted keys), every numeric step-row field as
a per-step metric, the final metrics, and the run directory as artifacts to MLflow. The
tracking URI comes from MLflow's own settings (``MLFLOW_TRACKING_URI``; default a local
``./mlruns`` file store), so nothing leaves the machine unless the user points it
elsewhere. MLflow is an extra (``pip install 'normsim[tracking]'``), imported only
when a scenario asks for it.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

from sim.config import Scenario
from sim.core.schema import ConfigError


class NoTracker:
    def log_step(self, step: int, row: dict[str, Any]) -> None:
        pass

    def finish(self, metrics: dict[str, Any], run_dir: Path) -> None:
        pass


MISSING = (
    "output.tracking: 'mlflow' needs the mlflow package: pip install 'normsim[tracking]' (or set output.tracking: none)"
)


def check_tracker(scenario: Scenario) -> None:
    """One ConfigError line when the scenario asks for a tracker this machine lacks
    (``normsim validate`` says so before a run, not after its first step)."""
    if scenario.output.tracking == "mlflow" and importlib.util.find_spec("mlflow") is None:
        raise ConfigError(MISSING)


class MlflowTracker:
    def __init__(self, scenario: Scenario, name: str) -> None:
        try:
            import mlflow
        except ImportError:
            raise ConfigError(MISSING) from None
        self.mlflow = mlflow
        mlflow.set_experiment(scenario.name)
        self.run = mlflow.start_run(run_name=name)
        params = flatten(scenario.model_dump(mode="json"))
        # MLflow caps a parameter's value at a few thousand characters: long texts are cut.
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_step(self, step: int, row: dict[str, Any]) -> None:
        values = {k: float(v) for k, v in row.items() if _number(v) and k != "step"}
        if values:
            self.mlflow.log_metrics(values, step=step)

    def finish(self, metrics: dict[str, Any], run_dir: Path) -> None:
        try:
            self.mlflow.log_metrics({k: float(v) for k, v in flatten(metrics).items() if _number(v)})
            self.mlflow.log_artifacts(str(run_dir))
        finally:
            status = "FINISHED" if metrics.get("status") == "finished" else "FAILED"
            self.mlflow.end_run(status=status)


def open_tracker(scenario: Scenario, name: str) -> NoTracker | MlflowTracker:
    """The run's tracker, named ``name`` (the run id); raises ConfigError if mlflow is asked for but missing."""
    return MlflowTracker(scenario, name) if scenario.output.tracking == "mlflow" else NoTracker()


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}, 'c': [2]} -> {'a.b': 1, 'c.0': 2}."""
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in items:
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
