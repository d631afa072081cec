"""sim.build_model: the scenario's Mesa model, stepped and inspected by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import sim
from sim.logger import read_table

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = ROOT / "scenarios" / "commons_scripted.yaml"


def test_build_a_commons_model_step_it_three_times_and_read_its_tables():
    model = sim.build_model(SCRIPTED, seed=3, overrides={"mechanics.social_learning.enabled": False})
    assert int(model.steps) == 0 and model.running
    for _ in range(3):
        model.step()
    steps = model.datacollector.get_model_vars_dataframe()
    agents = model.datacollector.get_agent_vars_dataframe()
    assert len(steps) == 3 and {"stock", "total_catch", "group_norm"} <= set(steps.columns)
    assert agents.index.names == ["Step", "AgentID"]
    assert len(agents) == 3 * 8  # eight fishers, three steps
    assert {"group", "wealth", "catch", "fines_paid"} <= set(agents.columns)
    # the per-agent catches of a step add up to the step's total catch
    by_step = agents["catch"].groupby(level="Step").sum()
    assert by_step.tolist() == pytest.approx(steps["total_catch"].tolist(), rel=1e-9)
    rows = model.take_step_events()  # the decisions since the last take: one harvest per fisher per step
    assert sorted(r["step"] for r in rows if r["phase"] == "harvest") == [1] * 8 + [2] * 8 + [3] * 8
    assert model.take_step_events() == []


def test_build_model_steps_like_sim_run(tmp_path):
    """Same seed, same society: the hand-stepped model's agent table is the run's agents.parquet."""
    result = sim.run(SCRIPTED, out=tmp_path, seed=5, overrides={"run.steps": 4}, report=False)
    model = sim.build_model(SCRIPTED, seed=5, overrides={"run.steps": 4})
    for _ in range(4):
        if model.running:
            model.step()
    mine = model.datacollector.get_agent_vars_dataframe().reset_index()
    written = read_table(result.dir, "agents")
    assert len(mine) == len(written)
    pd.testing.assert_series_equal(
        mine["wealth"].reset_index(drop=True), written["wealth"].reset_index(drop=True), check_names=False
    )
    # the run keeps its model, whose collector holds the same rows
    kept = result.model.datacollector.get_agent_vars_dataframe()
    assert kept["wealth"].tolist() == mine["wealth"].tolist()
    assert sim.load_run(result.dir).model is None


def test_a_large_run_keeps_its_agent_rows_on_disk_only(tmp_path, monkeypatch):
    from sim import runner

    monkeypatch.setattr(runner, "AGENT_ROWS_IN_MEMORY", 10)
    result = sim.run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2}, report=False)
    assert not result.model.datacollector.agent_reporters
    assert len(result.agents) == 2 * 8
