"""Run directories: config.yaml, run.json, events/steps/agents.parquet, metrics.json.

Rows are appended to JSON-lines journals after every step and flushed to disk, so a
crash or Ctrl-C loses nothing finished; :meth:`RunWriter.close` turns the journals into
Parquet (also after an interruption). :func:`read_table` reads a run's table from
Parquet, or from the journal of a run that was killed before it could close;
:func:`convert_journals` turns such journals into Parquet afterwards. Every row of
every table carries the run's ``run_id`` and ``seed``.

A step is all or nothing: once its rows are in all three journals (and on disk) its
number goes to ``steps.commit``; rows of a step never committed there (a kill, a full
disk, ``ulimit -f`` in the middle of writing it) are dropped when the journals are
converted, and counted.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.core.events import EVENT_SCHEMA
from sim.core.schema import ConfigError

TABLES = ("events", "steps", "agents")
COMMITS = "steps.commit"  # one {"step": n} line per step whose rows are all written
OWNER = ".owner"  # marks a run directory as one process's while that run writes it
_RUN_FILES = ("config.yaml", "run.json", "metrics.json", *(f"{t}.{x}" for t in TABLES for x in ("jsonl", "parquet")))


def _me() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": platform.node()}


def owner(run_dir: Path) -> dict[str, Any] | None:
    """Who holds ``run_dir`` (its marker's pid and host), or None when nobody marked it."""
    try:
        data = json.loads((Path(run_dir) / OWNER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else {}


def _mark(run_dir: Path) -> bool:
    """Create the owner marker exclusively: True if this process now holds the directory."""
    try:
        fd = os.open(run_dir / OWNER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return owner(run_dir) == _me()
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(_me(), f)
    return True


def claim_dir(path: Path, *, next_free: bool) -> Path:
    """Create a run directory and mark it as this process's, atomically, before anything slow.

    ``next_free``: on a clash take ``path-2``, ``path-3``... (mkdir without exist_ok decides
    who wins, so two processes never get the same one). Otherwise ``path`` itself is
    claimed: it may exist only empty of another run's files and unmarked.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    name, k = path.name, 2
    while True:
        try:
            path.mkdir()
            break
        except FileExistsError:
            if not next_free:
                break
            path, k = path.with_name(f"{name}-{k}"), k + 1
    if not path.is_dir():
        raise ConfigError(f"{path}: exists and is not a directory")
    taken = [n for n in _RUN_FILES if (path / n).exists()]
    if taken or not _mark(path):
        held = owner(path)
        why = f"process {held.get('pid')} on {held.get('host')} writes it" if held else f"it holds {taken[0]}"
        raise ConfigError(f"{path}: already holds another run ({why}); choose another directory")
    return path


def release_dir(run_dir: Path, *, remove: bool = False) -> None:
    """Drop this process's marker; ``remove`` also deletes the directory if nothing else is in it."""
    if owner(run_dir) == _me():
        (Path(run_dir) / OWNER).unlink(missing_ok=True)
    if remove:
        with contextlib.suppress(OSError):  # not empty (or gone): it is left as it is
            Path(run_dir).rmdir()


class RunWriter:
    """Writes one run's directory step by step."""

    def __init__(self, run_dir: Path, run_id: str | None = None, seed: int | None = None) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        if not _mark(self.dir):  # another process holds it: its journals are not ours to append to
            raise ConfigError(f"{self.dir}: another run (process {(owner(self.dir) or {}).get('pid')}) writes here")
        self._journals = {}
        self.rows_dropped = 0  # rows of an unfinished step left out when the journals were converted
        try:  # "x": a journal already there belongs to another run, never appended to
            for name in (*TABLES, "commit"):
                path = self.dir / (COMMITS if name == "commit" else f"{name}.jsonl")
                self._journals[name] = open(path, "x", encoding="utf-8")  # noqa: SIM115
        except FileExistsError as exc:
            for f in self._journals.values():  # ours, still empty: not left beside the other run's
                f.close()
                Path(f.name).unlink()
            raise ConfigError(f"{self.dir}: already holds a run's journal {Path(exc.filename).name}") from None
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
        # Only now is the step whole: a failure above leaves it uncommitted, and dropped.
        f = self._journals["commit"]
        f.write(json.dumps({"step": step_row.get("step", self.steps_written + 1)}, default=_jsonable) + "\n")
        f.flush()
        os.fsync(f.fileno())
        self.steps_written += 1

    def close(self) -> None:
        """Convert the journals to Parquet and remove them."""
        journals, self._journals = self._journals, {}
        for f in journals.values():
            f.close()
        self.rows_dropped = convert_journals(self.dir)
        release_dir(self.dir)

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


def _committed(run_dir: Path) -> int | None:
    """The last step written whole (0: none), or None for journals from before step commits."""
    path = run_dir / COMMITS
    if not path.exists():
        return None
    steps = [r.get("step") for r in _read_rows(path)]
    return max((s for s in steps if isinstance(s, int)), default=0)


def _whole_steps(run_dir: Path, name: str) -> tuple[list[dict[str, Any]], int]:
    """A journal's rows of committed steps only, and how many rows were left out."""
    rows, last = _read_rows(run_dir / f"{name}.jsonl"), _committed(run_dir)
    if last is None:
        return rows, 0
    kept = [r for r in rows if not isinstance(r.get("step"), int) or r["step"] <= last]
    return kept, len(rows) - len(kept)


def convert_journals(run_dir: str | Path) -> int:
    """Turn a run's JSON-lines journals into Parquet tables and remove them; returns the
    number of rows dropped because their step was never written whole.

    Written to a temporary file and renamed, so a second kill leaves either the journal
    or the finished table, never half a Parquet file.
    """
    run_dir, dropped = Path(run_dir), 0
    for name in TABLES:
        journal = run_dir / f"{name}.jsonl"
        if not journal.exists():
            continue
        rows, left_out = _whole_steps(run_dir, name)
        dropped += left_out
        tmp = run_dir / f"{name}.parquet.tmp"
        _write_parquet(name, rows, tmp)
        tmp.replace(run_dir / f"{name}.parquet")
        journal.unlink()
    (run_dir / COMMITS).unlink(missing_ok=True)
    return dropped


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
    rows, _ = _whole_steps(run_dir, name)
    return _arrow(name, rows).to_pandas()
