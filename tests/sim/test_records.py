"""What a run records (run.json, agents.parquet, run_id/seed/rule columns), finalizing a
killed run, sweeps' --set and names, progress lines, fast help and optional MLflow tracking."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim import progress
from sim.cli import COMMAND_INDEX, COMMANDS, build_parser, main
from sim.logger import RunWriter
from sim.progress import Progress
from sim.runner import load_run, run

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = ROOT / "scenarios" / "commons_scripted.yaml"
LEARNING = ROOT / "scenarios" / "commons_grid_base.yaml"  # social learning on: agents copy rules


@pytest.fixture(autouse=True)
def normal_verbosity():
    progress.configure()
    yield
    progress.configure()


def test_run_json_records_what_made_the_run(tmp_path):
    data = yaml.safe_load(SCRIPTED.read_text())
    data["population"].append({"name": "llm", "size": 1, "policy": {"type": "llm", "model": "tiny-random-llama"}})
    data["run"]["steps"] = 2
    result = run(data, out=tmp_path, report=False)
    record = json.loads((result.dir / "run.json").read_text())
    assert record["normsim"] and record["python"].count(".") == 2
    assert set(record["libraries"]) >= {"numpy", "pandas", "torch", "transformers", "mesa"}
    assert record["git_commit"] is None or len(record["git_commit"].split("-")[0]) == 40
    assert record["status"] == "finished" and record["started"] <= record["ended"]
    assert record["run_id"] == result.dir.name and record["seed"] == 0
    assert isinstance(record["command"], list)
    (model,) = record["models"]
    assert model["model"] == "tiny-random-llama" and model["device"] == "cpu" and model["dtype"] == "float32"
    # the attention path the engine chose is recorded with the run (a llama shares the prefix)
    assert model["engine"]["attention_path"] == "shared_prefix" and model["engine"]["fallback_reason"] is None


def test_agents_table_follows_each_agents_current_rule(tmp_path):
    result = run(LEARNING, out=tmp_path, seed=1, report=False)
    agents, events, steps = result.agents, result.events, result.steps
    n = result.scenario.n_agents
    assert len(agents) == n * len(steps) and set(agents.step) == set(steps.step)
    for column in ("wealth", "rule", "norm_belief", "sanctions_given", "sanctions_received", "group", "catch"):
        assert column in agents  # catch: what the commons adds
    catches = events[events.phase == "harvest"].groupby("agent_id")["value"].sum()
    last_totals = agents[agents.step == agents.step.max()].set_index("agent_id")["total_catch"]
    assert last_totals.round(9).to_dict() == catches.round(9).to_dict()
    # Social learning rewrote someone's rule: the policy column keeps the group's, rule the current one.
    changed = agents[agents["rule"] != agents["policy"].str.removeprefix("scripted:")]
    assert len(changed), "some agent copied another rule"
    copies = events[(events.phase == "learn") & (events.choice == 1)]
    assert len(copies) and "rule" in events and events["rule"].notna().all()
    # Sanctions given and received balance out over the society.
    last = agents[agents.step == agents.step.max()]
    assert last.sanctions_given.sum() == last.sanctions_received.sum() > 0
    for table in (agents, events, steps):
        assert (table["run_id"] == result.dir.name).all() and (table["seed"] == 1).all()


def records(frame: pd.DataFrame) -> list[dict]:
    """Table rows as the model hands them to the writer (None, not NaN; lists, not arrays)."""
    return json.loads(frame.drop(columns=["run_id", "seed"]).to_json(orient="records"))


def test_finalize_turns_a_killed_runs_journals_into_tables(tmp_path, capsys):
    result = run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2}, report=False)
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "config.yaml").write_text((result.dir / "config.yaml").read_text())
    writer = RunWriter(killed, run_id="killed", seed=0)
    for step in (1, 2):
        rows = records(result.events[result.events.step == step])
        row = records(result.steps[result.steps.step == step])[0]
        writer.write_step(rows, row, [{"step": step, "agent_id": 0}])
    with open(killed / "steps.jsonl", "a") as f:
        f.write('{"step": 3, "st')  # the line the kill cut short
    # no close(): the process was killed
    assert main(["finalize", str(killed)]) == 0
    assert "status killed, 2 steps" in capsys.readouterr().out
    assert not list(killed.glob("*.jsonl"))
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["status"] == "killed" and metrics["steps_completed"] == 2 and "survival_time" in metrics
    assert len(pd.read_parquet(killed / "events.parquet")) == len(result.events[result.events.step <= 2])
    assert main(["finalize", str(killed)]) == 0 and "nothing to finalize" in capsys.readouterr().out


def killed_copy(result, where: Path) -> Path:
    """A run directory as a kill leaves it: config.yaml and the journals of its first step."""
    where.mkdir()
    (where / "config.yaml").write_text((result.dir / "config.yaml").read_text())
    rows = records(result.events[result.events.step == 1])
    row = records(result.steps[result.steps.step == 1])[0]
    RunWriter(where, seed=0).write_step(rows, row)
    return where


def test_report_and_load_run_finalize_automatically(tmp_path):
    result = run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2}, report=False)
    run_dir = killed_copy(result, tmp_path / "r")
    assert load_run(run_dir).status == "killed" and (run_dir / "steps.parquet").exists()
    other = killed_copy(result, tmp_path / "r2")
    assert main(["report", str(other)]) == 0
    assert json.loads((other / "metrics.json").read_text())["status"] == "killed"
    assert "status: killed" in (other / "report.html").read_text()


def test_run_report_defines_its_metrics(tmp_path):
    result = run(SCRIPTED, out=tmp_path, overrides={"run.steps": 3})
    page = result.report.read_text()
    assert "Metric definitions" in page
    assert "1 - Gini of the agents" in page and "survival_time" in page


def test_run_directories_are_named_by_their_overrides(tmp_path, capsys):
    for value in ("true", "false"):
        argv = ["run", str(SCRIPTED), "--out", str(tmp_path), "-q", "--set", f"mechanics.punishment.enabled={value}"]
        assert main([*argv, "--set", "output.report=false"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "commons_scripted-punishment.enabled=false-seed0",
        "commons_scripted-punishment.enabled=true-seed0",
    ]
    assert main(["run", str(SCRIPTED), "--out", str(tmp_path), "-q", "--set", "output.report=false"]) == 0
    assert main(["run", str(SCRIPTED), "--out", str(tmp_path), "-q", "--set", "output.report=false"]) == 0
    assert "already exists: this run goes to" in capsys.readouterr().err  # a repeat is announced, not silent


def test_sweep_set_changes_every_cell_and_progress_goes_to_stderr(tmp_path, capsys):
    base = yaml.safe_load(LEARNING.read_text())
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"base": "base.yaml", "grid": {"mechanics.punishment.enabled": [True, False]}, "seeds": 1}
    sweep |= {"backend": {"kind": "local"}, "report": False}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--set", "run.steps=2"]) == 0
    out, err = capsys.readouterr()
    assert "[1/2]" in err and "[2/2]" in err and "[1/2]" not in out and "results:" in out
    names = sorted(p.name for p in (tmp_path / "o" / "runs").iterdir())
    assert (
        len(names) == 2
        and names[0].startswith("punishment.enabled=false-")
        and names[1].startswith("punishment.enabled=true-")
    )
    for name in names:
        assert json.loads((tmp_path / "o" / "runs" / name / "metrics.json").read_text())["steps_completed"] == 2
    # Other overrides are other cells (their hash), never a silent "-2" next to the old ones.
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--set", "run.steps=3"]) == 0
    again = sorted(p.name for p in (tmp_path / "o" / "runs").iterdir())
    assert len(again) == 4 and not any(n.endswith("-2") for n in again)


def test_a_run_that_ends_early_says_why_on_its_last_line(tmp_path, capsys):
    run(SCRIPTED, out=tmp_path, overrides={"run.steps": 30}, progress=True, report=False)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("[commons_scripted] 2/30 steps") and last.endswith("collapsed at step 2")


def test_progress_floats_keep_their_digits(capsys):
    with Progress(total=2, label="run", show=("rate", "stock"), every_seconds=0) as bar:
        bar.update({"rate": 0.12, "stock": 1234.5})
    line = capsys.readouterr().err.strip()
    assert line.startswith("[run] 1/2 steps (") and line.endswith(") rate=0.12 stock=1234")


def test_help_is_fast_and_the_command_index_matches_the_commands():
    import argparse
    import importlib

    registered = {}
    for entry in COMMANDS:
        parser = argparse.ArgumentParser()
        sub = parser.add_subparsers()
        module, _, name = entry.partition(":")
        getattr(importlib.import_module(module), name)(sub)
        registered |= {a.dest: (entry, a.help) for a in sub._choices_actions}
    assert registered == COMMAND_INDEX
    assert set(build_parser(None)._subparsers._group_actions[0].choices) == set(COMMAND_INDEX)
    # --help and `run --help` import none of the heavy libraries (they took 2-4 s to load);
    # checked by what is imported, not by a time that depends on the machine's load.
    code = (
        "import sys\nfrom sim.cli import main\n"
        "for argv in (['--help'], ['run', '--help'], ['validate', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
        "print('LOADED', sorted(m for m in ('pandas', 'matplotlib', 'mesa', 'torch', 'ray', 'scipy') if m in sys.modules))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


def test_mlflow_tracking_logs_params_steps_and_artifacts(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow is an optional extra: pip install 'normsim[tracking]'")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a plain local folder, no database server
    result = run(SCRIPTED, out=tmp_path / "o", overrides={"run.steps": 4, "output.tracking": "mlflow"}, report=False)
    client = mlflow.tracking.MlflowClient()
    (experiment,) = [e for e in client.search_experiments() if e.name == "commons_scripted"]
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.data.params["run.seed"] == "0" and logged.data.params["environment.type"] == "commons"
    history = client.get_metric_history(logged.info.run_id, "stock")
    assert [m.step for m in history] == list(range(1, result.metrics["steps_completed"] + 1))
    assert logged.data.metrics["survival_time"] == result.metrics["survival_time"]
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"metrics.json", "run.json", "events.parquet", "agents.parquet"} <= artifacts
    assert logged.info.status == "FINISHED"


def test_the_default_install_does_not_need_mlflow(tmp_path):
    code = (
        "import sys; sys.modules['mlflow'] = None\n"  # importing it now fails, as when it is not installed
        "from sim.runner import run\n"
        f"r = run({str(SCRIPTED)!r}, out={str(tmp_path)!r}, overrides={{'run.steps': 2}}, report=False)\n"
        "print(r.status)\n"
        "from sim.core.schema import ConfigError\n"
        "try:\n"
        f"    run({str(SCRIPTED)!r}, out={str(tmp_path)!r}, overrides={{'output.tracking': 'mlflow'}}, report=False)\n"
        "except ConfigError as e: print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "finished" and "pip install 'normsim[tracking]'" in done.stdout
