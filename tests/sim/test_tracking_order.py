"""The tracker ends after the report (so report.html and plots/ reach it), and a missing
tracker package fails `normsim validate` with one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

import sim
from sim import runner
from sim.cli import main

SCRIPTED = Path(__file__).resolve().parents[2] / "scenarios" / "commons_scripted.yaml"


class Recorder:
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.seen: list[str] = []

    def log_step(self, step, row):
        self.steps.append(step)

    def finish(self, metrics, run_dir):
        self.seen = sorted(p.name for p in Path(run_dir).iterdir())
        self.status = metrics["status"]


def test_the_tracker_finishes_after_the_report_is_written(tmp_path, monkeypatch):
    recorder = Recorder()
    monkeypatch.setattr(runner, "open_tracker", lambda scenario, name: recorder)
    result = sim.run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2})
    assert recorder.steps == [1, 2] and recorder.status == "finished"
    assert "report.html" in recorder.seen and "plots" in recorder.seen and "metrics.json" in recorder.seen
    assert result.report is not None


def test_a_run_that_fails_still_ends_its_tracker_once(tmp_path, monkeypatch):
    calls = []

    class Once(Recorder):
        def finish(self, metrics, run_dir):
            calls.append(metrics["status"])

    class Boom:
        def decide(self, requests, rng):
            raise RuntimeError("boom")

    monkeypatch.setattr(runner, "open_tracker", lambda scenario, name: Once())
    with pytest.raises(RuntimeError, match="boom"):
        sim.run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2}, policies={"cooperators": Boom()})
    assert calls == ["failed"]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is not None, reason="mlflow is installed here")
def test_validate_fails_in_one_line_when_the_tracker_is_missing(tmp_path, capsys):
    data = yaml.safe_load(SCRIPTED.read_text())
    data["output"] = {"tracking": "mlflow"}
    path = tmp_path / "tracked.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "output.tracking: 'mlflow' needs the mlflow package" in err[0]
