"""Runs end to end: files written, metrics present, reproducible, crash-safe."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.interfaces import Decision, one_hot
from sim.cli import main
from sim.logger import read_table
from sim.runner import load_run, run

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = ROOT / "scenarios" / "commons_scripted.yaml"

METRIC_KEYS = {
    "survival_time",
    "survived",
    "total_gain",
    "efficiency",
    "equality",
    "over_usage",
    "norm_violation_rate",
    "punishment_rate",
    "punishment_precision",
    "mean_action_entropy",
    "empirical_action_entropy",
    "norm_convergence",
}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_writes_the_four_files_and_every_metric(tmp_path):
    result = run(SCRIPTED, out=tmp_path)
    names = {p.name for p in result.dir.iterdir()}
    assert {"config.yaml", "events.parquet", "steps.parquet", "metrics.json"} <= names
    assert not any(n.endswith(".jsonl") for n in names)
    metrics = json.loads((result.dir / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    assert set(metrics["total_gain"]) == {"per_agent", "sum"}
    ev, steps = result.events, result.steps
    assert len(steps) == metrics["survival_time"]
    harvest = ev[ev.phase == "harvest"]
    assert len(harvest) == 8 * len(steps)  # one decision per agent per round
    for probs, ent in zip(harvest.probs, harvest.entropy, strict=True):
        assert abs(sum(probs) - 1) < 1e-9 and ent >= 0
    assert metrics["total_gain"]["sum"] == pytest.approx(harvest.value.sum())
    # the resolved config reloads to the same scenario
    assert load_run(result.dir).scenario == result.scenario


def test_same_seed_same_event_log(tmp_path):
    a = run(SCRIPTED, out=tmp_path / "a", seed=7, report=False)
    b = run(SCRIPTED, out=tmp_path / "b", seed=7, report=False)
    c = run(SCRIPTED, out=tmp_path / "c", seed=8, report=False)
    assert digest(a.dir / "events.parquet") == digest(b.dir / "events.parquet")
    assert digest(a.dir / "steps.parquet") == digest(b.dir / "steps.parquet")
    assert not a.events.equals(c.events)


def test_runs_never_overwrite_each_other(tmp_path):
    first = run(SCRIPTED, out=tmp_path, report=False)
    second = run(SCRIPTED, out=tmp_path, report=False)
    assert first.dir != second.dir and first.dir.exists() and second.dir.exists()


class CrashingPolicy:
    """Decides like a sustainable fisher, then raises in round `crash_at`."""

    def __init__(self, crash_at: int, exc: type[BaseException]) -> None:
        self.crash_at, self.exc, self.calls = crash_at, exc, 0

    def decide(self, requests, rng):
        if requests[0].phase == "harvest":
            self.calls += 1
            if self.calls == self.crash_at:
                raise self.exc("boom")
        return [
            Decision(
                probs=one_hot(len(r.options), 2 if r.phase == "harvest" else 0), choice=2 if r.phase == "harvest" else 0
            )
            for r in requests
        ]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_a_crash_keeps_finished_steps(tmp_path, exc):
    policy = CrashingPolicy(crash_at=4, exc=exc)
    groups = ["cooperators", "conditional", "punishers", "free_riders"]
    with pytest.raises(exc):
        run(SCRIPTED, run_dir=tmp_path / "r", policies={g: policy for g in groups}, report=False)
    steps = read_table(tmp_path / "r", "steps")
    events = read_table(tmp_path / "r", "events")
    assert list(steps.step) == [1, 2, 3]
    assert set(events.step) == {1, 2, 3}
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["status"] == ("interrupted" if exc is KeyboardInterrupt else "failed")
    assert metrics["steps_completed"] == 3


def test_a_killed_run_is_readable_from_its_journal(tmp_path):
    from sim.logger import RunWriter

    w = RunWriter(tmp_path)
    w.write_step([], {"step": 1, "stock": 50.0})
    w.write_step([], {"step": 2, "stock": 40.0})
    with open(tmp_path / "steps.jsonl", "a") as f:
        f.write('{"step": 3, "sto')  # the line a kill cut short
    steps = read_table(tmp_path, "steps")
    assert list(steps.step) == [1, 2]


def test_punishment_keeps_the_commons_alive_longer(tmp_path):
    seeds = range(12)
    with_p = [
        run(ROOT / "scenarios" / "commons_punishment.yaml", out=tmp_path, seed=s, report=False).metrics for s in seeds
    ]
    without = [
        run(ROOT / "scenarios" / "commons_no_punishment.yaml", out=tmp_path, seed=s, report=False).metrics
        for s in seeds
    ]
    surv_p = np.mean([m["survival_time"] for m in with_p])
    surv_n = np.mean([m["survival_time"] for m in without])
    assert surv_p > surv_n
    assert sum(m["punishment_rate"] > 0 for m in with_p) == len(with_p)
    assert all(m["punishment_rate"] == 0 for m in without)


def test_cli_run_prints_directory_and_headline(tmp_path, capsys):
    code = main(["run", str(SCRIPTED), "--out", str(tmp_path), "--seed", "2", "--set", "run.steps=3", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "run directory:" in out and "survival_time" in out
    run_dir = Path(out.split("run directory:")[1].split()[0])
    cfg = (run_dir / "config.yaml").read_text()
    assert "steps: 3" in cfg and "seed: 2" in cfg
    assert isinstance(pd.read_parquet(run_dir / "events.parquet"), pd.DataFrame)
