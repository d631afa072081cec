"""A step is all or nothing in a run's tables: rows of a step cut short are dropped, and counted."""

from __future__ import annotations

import errno
import json

import pandas as pd

from sim.cli import main
from sim.logger import COMMITS, RunWriter, read_table
from sim.runner import run
from tests.sim.test_runner import SCRIPTED


class FullDisk:
    """A journal whose next write fails as a full disk does."""

    def __init__(self, real):
        self.real = real

    def write(self, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_a_write_failure_mid_step_leaves_only_whole_steps(tmp_path, monkeypatch):
    real, calls = RunWriter.write_step, []

    def failing(self, events, step_row, agents=None):
        calls.append(len(events))
        if len(calls) == 2:  # the events of step 2 reach their journal, then the disk is full
            self._journals["steps"] = FullDisk(self._journals["steps"])
        return real(self, events, step_row, agents)

    monkeypatch.setattr(RunWriter, "write_step", failing)
    out = tmp_path / "runs"
    assert main(["-q", "run", str(SCRIPTED), "--out", str(out), "--set", "output.report=false"]) == 2
    [run_dir] = out.iterdir()
    events, steps = pd.read_parquet(run_dir / "events.parquet"), pd.read_parquet(run_dir / "steps.parquet")
    agents = pd.read_parquet(run_dir / "agents.parquet")
    assert list(steps.step) == [1] and set(events.step) == {1} and set(agents.step) == {1}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["steps_completed"] == 1
    assert metrics["rows_dropped"] == calls[1] > 0  # step 2's events, dropped whole
    assert "No space left" in metrics["error"] and not (run_dir / COMMITS).exists()


def test_finalize_keeps_whole_steps_and_says_how_many_rows_it_dropped(tmp_path, capsys):
    result = run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2}, report=False)
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.yaml").write_text((result.dir / "config.yaml").read_text())
    writer = RunWriter(killed, run_id="killed", seed=0)
    rows = json.loads(result.events.drop(columns=["run_id", "seed"]).to_json(orient="records"))
    for step in (1,):
        row = json.loads(
            result.steps[result.steps.step == step].drop(columns=["run_id", "seed"]).to_json(orient="records")
        )[0]
        writer.write_step([r for r in rows if r["step"] == step], row)
    cut = [r for r in rows if r["step"] == 2]
    with open(killed / "events.jsonl", "a") as f:  # step 2's events, then the kill: no steps row, no commit
        f.writelines(json.dumps(r) + "\n" for r in cut)
    assert len(read_table(killed, "events")) == len([r for r in rows if r["step"] == 1])  # read before finalizing
    assert main(["finalize", str(killed)]) == 0
    printed = capsys.readouterr().out
    assert f"1 steps; dropped {len(cut)} rows of a step never written whole" in printed
    assert set(pd.read_parquet(killed / "events.parquet").step) == {1}
    assert json.loads((killed / "metrics.json").read_text())["rows_dropped"] == len(cut) > 0
