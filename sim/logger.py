"""Run directories: config.yaml, events.parquet, steps.parquet, metrics.json.

Rows are appended to JSON-lines journals after every step and flushed to disk, so a
crash or Ctrl-C loses nothing finished; :meth:`RunWriter.close` turns the journals into
Parquet (also after an interruption). :func:`read_table` reads a run's table from
Parquet, or from the journal of a run that was killed before it could close.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.events import EVENT_SCHEMA

TABLES = ("events", "steps")


class RunWriter:
    """Writes one run's directory step by step."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._journals = {name: open(self.dir / f"{name}.jsonl", "a", encoding="utf-8") for name in TABLES}  # noqa: SIM115
        self.steps_written = 0

    def write_text(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text, encoding="utf-8")

    def write_step(self, events: list[dict[str, Any]], step_row: dict[str, Any]) -> None:
        for name, rows in (("events", events), ("steps", [step_row])):
            f = self._journals[name]
            for row in rows:
                f.write(json.dumps(row, default=_jsonable) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.steps_written += 1

    def close(self) -> None:
        """Convert the journals to Parquet and remove them."""
        for name, f in self._journals.items():
            f.close()
            journal = self.dir / f"{name}.jsonl"
            _write_parquet(name, _read_rows(journal), self.dir / f"{name}.parquet")
            journal.unlink()
        self._journals = {}

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        tmp = self.dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(metrics, indent=2, default=_jsonable), encoding="utf-8")
        tmp.replace(self.dir / "metrics.json")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a crash
                    break
    return rows


def _write_parquet(name: str, rows: list[dict[str, Any]], path: Path) -> None:
    schema = EVENT_SCHEMA if name == "events" else None
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def read_table(run_dir: str | Path, name: str) -> pd.DataFrame:
    """A run's events or steps, from Parquet or, for a killed run, its journal."""
    run_dir = Path(run_dir)
    parquet = run_dir / f"{name}.parquet"
    if parquet.exists():
        return pd.read_parquet(parquet)
    journal = run_dir / f"{name}.jsonl"
    if name == "events":
        return pa.Table.from_pylist(_read_rows(journal), schema=EVENT_SCHEMA).to_pandas()
    return pd.DataFrame(_read_rows(journal))
