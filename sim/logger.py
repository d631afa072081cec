"""Run directories: config.yaml, run.json, events/steps/agents.parquet, metrics.json.

Rows are appended to JSON-lines journals after every step and flushed to disk, so a
crash or Ctrl-C loses nothing finished; :meth:`RunWriter.close` turns the journals into
Parquet (also after an interruption). :func:`read_table` reads a run's table from
Parquet, or from the journal of a run that was killed before it could close;
:func:`convert_journals` turns such journals into Parquet afterwards. Every row of
every table carries the run's ``run_id`` and ``seed``.
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

TABLES = ("events", "steps", "agents")


class RunWriter:
    """Writes one run's directory step by step."""

    def __init__(self, run_dir: Path, run_id: str | None = None, seed: int | None = None) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._journals = {name: open(self.dir / f"{name}.jsonl", "a", encoding="utf-8") for name in TABLES}  # noqa: SIM115
        self.steps_written = 0
        self._ids = {"run_id": run_id if run_id is not None else self.dir.name, "seed": seed}

    def write_text(self, name: str, text: str) -> None:
        (self.dir / name).write_text(text, encoding="utf-8")

    def write_step(
        self, events: list[dict[str, Any]], step_row: dict[str, Any], agents: list[dict[str, Any]] | None = None
    ) -> None:
        for name, rows in (("events", events), ("steps", [step_row]), ("agents", agents or [])):
            f = self._journals[name]
            for row in rows:
                f.write(json.dumps({**row, **self._ids}, default=_jsonable) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.steps_written += 1

    def close(self) -> None:
        """Convert the journals to Parquet and remove them."""
        journals, self._journals = self._journals, {}
        for f in journals.values():
            f.close()
        convert_journals(self.dir)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        tmp = self.dir / "metrics.json.tmp"
        tmp.write_text(json.dumps(metrics, indent=2, default=_jsonable), encoding="utf-8")
        tmp.replace(self.dir / "metrics.json")


def _jsonable(value: Any) -> Any:
    if getattr(value, "ndim", 0) > 0 and hasattr(value, "tolist"):  # a numpy array (tables read back)
        return value.tolist()
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


def has_journals(run_dir: str | Path) -> bool:
    return any((Path(run_dir) / f"{name}.jsonl").exists() for name in TABLES)


def convert_journals(run_dir: str | Path) -> list[str]:
    """Turn a run's JSON-lines journals into Parquet tables and remove them; the names converted.

    Written to a temporary file and renamed, so a second kill leaves either the journal
    or the finished table, never half a Parquet file.
    """
    run_dir, done = Path(run_dir), []
    for name in TABLES:
        journal = run_dir / f"{name}.jsonl"
        if not journal.exists():
            continue
        tmp = run_dir / f"{name}.parquet.tmp"
        _write_parquet(name, _read_rows(journal), tmp)
        tmp.replace(run_dir / f"{name}.parquet")
        journal.unlink()
        done.append(name)
    return done


def _write_parquet(name: str, rows: list[dict[str, Any]], path: Path) -> None:
    pq.write_table(_arrow(name, rows), path)


def _arrow(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    if name == "events":
        return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    table = pa.Table.from_pylist(rows)
    # A step or agent series with gaps (a norm not voted yet) or none at all (group norms
    # off) is a float column with NaN: as None it read back as `object`, and tables of two
    # runs concatenated to `object`.
    for i, column in enumerate(table.schema):
        if pa.types.is_null(column.type) or (pa.types.is_integer(column.type) and table.column(i).null_count):
            table = table.set_column(i, column.name, table.column(i).cast(pa.float64()))
    return table


def read_table(run_dir: str | Path, name: str) -> pd.DataFrame:
    """A run's events or steps, from Parquet or, for a killed run, its journal."""
    run_dir = Path(run_dir)
    parquet = run_dir / f"{name}.parquet"
    if parquet.exists():
        return pd.read_parquet(parquet)
    journal = run_dir / f"{name}.jsonl"
    return _arrow(name, _read_rows(journal)).to_pandas()
