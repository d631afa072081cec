"""Mesa agent reporters for what agents.parquet holds.

Every environment's ``agent_record(agent)`` is the row agents.parquet gets for an agent
after a step. :func:`attach_agent_reporters` registers one Mesa agent reporter per
column of that row, so ``model.datacollector.get_agent_vars_dataframe()`` returns the
same table a run writes. A row is built once per agent per collect, however many
columns read it, and :func:`agent_rows` hands the runner the rows the collector just
built instead of building them a second time.
"""

from __future__ import annotations

from typing import Any

# Columns the collector's index already holds (Step, AgentID): not reporters of their own.
_INDEX_COLUMNS = ("agent_id",)


class _RowCache:
    """The latest agent's record, built once and read by every column's reporter."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._key: tuple[int, int] | None = None
        self._row: dict[str, Any] = {}

    def get(self, agent: Any) -> dict[str, Any]:
        key = (int(self.model.steps), id(agent))
        if key != self._key:
            self._key, self._row = key, self.model.agent_record(agent)
        return self._row

    def reporter(self, column: str) -> Any:
        def report(agent: Any) -> Any:
            return self.get(agent).get(column)

        report.__name__ = f"agent_{column}"
        return report


def attach_agent_reporters(model: Any) -> list[str]:
    """Register an agent reporter per agents.parquet column on ``model.datacollector``.

    The columns come from the first agent's record (an environment's records share
    their keys); a society with no agents gets none. Returns the column names.
    """
    collector = getattr(model, "datacollector", None)
    agents = list(model.agents)
    if collector is None or not agents or not hasattr(model, "agent_record"):
        return []
    cache = _RowCache(model)
    columns = [c for c in model.agent_record(agents[0]) if c not in _INDEX_COLUMNS]
    for column in columns:
        collector._new_agent_reporter(column, cache.reporter(column))
    model._agent_columns = columns  # agent_rows reads the collected tuples back by these names
    return columns


def agent_rows(model: Any, step: int) -> list[dict[str, Any]]:
    """agents.parquet's rows for the step just taken: the collector's, when it collected them."""
    columns = getattr(model, "_agent_columns", None)
    records = getattr(getattr(model, "datacollector", None), "_agent_records", {}).get(step) if columns else None
    if records is None:
        return [{"step": step, **model.agent_record(a)} for a in model.society]
    # A collected record is (step, agent id, *columns), in the order the reporters were added.
    return [{"step": step, "agent_id": int(r[1]), **dict(zip(columns, r[2:], strict=True))} for r in records]
