"""Reading what a report shows: a run directory or a sweep directory.

The report reads the files as written (``config.yaml`` as plain YAML, not re-validated),
so a run made by an older version of normsim still gets a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from sim.core.schema import ConfigError
from sim.logger import read_table
from sim.names import key_labels

Kind = Literal["run", "sweep"]


def detect(path: str | Path) -> Kind:
    """'sweep' for a directory with results.parquet, 'run' for one with config.yaml and a log."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such directory")
    if (path / "results.parquet").exists():
        return "sweep"
    logs = ("steps.parquet", "steps.jsonl", "events.parquet", "events.jsonl")
    if (path / "config.yaml").exists() and any((path / name).exists() for name in logs):
        return "run"
    raise ConfigError(
        f"{path}: neither a run directory (config.yaml with steps/events) nor a sweep directory (results.parquet)"
    )


@dataclass
class RunData:
    dir: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    events: pd.DataFrame
    steps: pd.DataFrame
    prompts: dict[str, str] = field(default_factory=dict)  # phase -> shared system text

    @property
    def env_type(self) -> str:
        return str(self.config.get("environment", {}).get("type", "unknown"))

    @property
    def title(self) -> str:
        return str(self.config.get("name", self.dir.name))


def load_run_data(path: str | Path) -> RunData:
    path = Path(path)
    config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    metrics_path, prompts_path = path / "metrics.json", path / "prompts.json"
    return RunData(
        dir=path,
        config=config,
        metrics=json.loads(metrics_path.read_text()) if metrics_path.exists() else {},
        events=read_table(path, "events"),
        steps=read_table(path, "steps"),
        prompts=json.loads(prompts_path.read_text()) if prompts_path.exists() else {},
    )


@dataclass
class SweepData:
    """A sweep directory as :mod:`sim.sweep` writes it (format: :mod:`sim.aggregate`)."""

    dir: Path
    results: pd.DataFrame  # one row per run
    params: list[str]  # the swept dotted keys (grid and zip)
    metrics: list[str]  # numeric metric columns
    spec: dict[str, Any] = field(default_factory=dict)  # sweep.yaml

    @property
    def title(self) -> str:
        return str(self.spec.get("name") or self.dir.name)

    @property
    def env_type(self) -> str | None:
        """The environment its runs simulate, read from the first run's config.yaml."""
        for config in sorted(self.dir.glob("runs/*/config.yaml")):
            data = yaml.safe_load(config.read_text()) or {}
            return str(data.get("environment", {}).get("type"))
        return None

    @property
    def grid(self) -> list[str]:
        """The grid's keys (each a factor of its own)."""
        return [p for p in self.spec.get("grid", {}) if p in self.params]

    @property
    def zipped(self) -> list[str]:
        """The zip's keys (together one factor)."""
        return [p for p in self.spec.get("zip", {}) if p in self.params]

    def key_labels(self) -> dict[str, str]:
        """Swept key -> its readable label (sim.names): punishment.enabled, cooperators.persona."""
        groups: list[str] = []
        for config in sorted(self.dir.glob("runs/*/config.yaml"))[:1]:
            data = yaml.safe_load(config.read_text()) or {}
            groups = [str(g.get("name")) for g in data.get("population") or [] if isinstance(g, dict)]
        return key_labels(self.params, groups)

    def labels(self) -> dict[str, str]:
        """cell id -> its parameter values under their readable labels, e.g.
        'preset=rich, punishment.enabled=true, cooperators.persona=altruistic'."""
        out: dict[str, str] = {}
        names = self.key_labels()
        for cell, rows in self.results.groupby("cell", sort=False):
            first = rows.iloc[0]
            text = ", ".join(f"{names[p]}={_fmt_value(first[p])}" for p in self.params)
            out[str(cell)] = text or str(cell)
        return out


def load_sweep_data(path: str | Path) -> SweepData:
    from sim.aggregate import numeric_metrics

    path = Path(path)
    results = pd.read_parquet(path / "results.parquet")
    spec = _read_spec(path)
    declared = [*spec.get("grid", {}), *spec.get("zip", {})]
    params = [p for p in declared if p in results.columns]
    finished = results[results["status"] == "finished"] if "status" in results else results
    return SweepData(dir=path, results=results, params=params, metrics=numeric_metrics(finished, params), spec=spec)


def _read_spec(path: Path) -> dict[str, Any]:
    spec_path = path / "sweep.yaml"
    data = yaml.safe_load(spec_path.read_text()) if spec_path.exists() else None
    return data if isinstance(data, dict) else {}


def _fmt_value(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
