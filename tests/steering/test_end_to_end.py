"""From a simulation's own logs to steered agents: capture, fit, run, sweep (tiny model)."""

from __future__ import annotations

import numpy as np
import pytest

from sim.cli import main
from sim.runner import run
from steering.vectors import SteeringVector

LLM = {"type": "llm", "model": "tiny-random-llama"}


def bandit(**groups):
    return {
        "name": "bandit_tiny",
        "environment": {"type": "bandit", "noise": 1.0},
        "population": [{"name": k, **v} for k, v in groups.items()],
        "run": {"steps": 3, "seed": 0},
        "output": {"report": False},
    }


@pytest.fixture(scope="module")
def captured_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run(bandit(players={"size": 4, "policy": {**LLM, "capture_layers": [0, 1]}}), out=out)


def test_fit_east_from_a_run_then_steer_some_agents(captured_run, tmp_path):
    assert (captured_run.dir / "activations.safetensors").exists()
    vec_path = tmp_path / "east"
    assert main(["steer", "fit", "--method", "east", "--from", str(captured_run.dir), "--layers", "0,1",
                 "--out", str(vec_path)]) == 0  # fmt: skip
    vec = SteeringVector.load(vec_path)
    assert vec.method == "east" and vec.layers == [0, 1] and vec.model_id == "tiny-random-llama"
    assert vec.source_runs == [str(captured_run.dir)] and vec.params["decisions"] == 12

    steer = {"vector": str(vec_path), "layers": [1], "coefficient": 8.0}
    plain = run(bandit(a={"size": 2, "policy": LLM}, b={"size": 2, "policy": LLM}), out=tmp_path / "p")
    mixed = run(bandit(a={"size": 2, "policy": LLM, "steering": steer}, b={"size": 2, "policy": LLM}),
                out=tmp_path / "m")  # fmt: skip
    ev, ev0 = mixed.events, plain.events
    a, b = ev[ev["group"] == "a"], ev[ev["group"] == "b"]
    assert (a["steer_vector"] == "east@1:add").all() and (a["steer_coef"] == 8.0).all()
    assert b["steer_vector"].isna().all() and b["steer_coef"].isna().all()
    # the unsteered group decides as it would without anyone being steered
    b0 = ev0[ev0["group"] == "b"]
    # (the tiny model is nearly certain, so compare log-probabilities)
    logp = lambda frame: np.log(np.stack(frame["probs"]))  # noqa: E731
    np.testing.assert_allclose(logp(b), logp(b0), atol=1e-4)
    assert not np.allclose(logp(a), logp(ev0[ev0["group"] == "a"]), atol=1e-2)


def test_inline_fit_spec_and_sweep_with_shuffled_control(captured_run, tmp_path):
    fit = {"method": "east", "layers": [1], "runs": [str(captured_run.dir)]}
    res = run(bandit(p={"size": 2, "policy": LLM, "steering": {"fit": fit, "coefficient": 4.0}}), out=tmp_path)
    assert res.events["steer_vector"].str.startswith("fit-east-").all()

    vec = tmp_path / "v"
    main(["steer", "fit", "--method", "east", "--from", str(captured_run.dir), "--layers", "0,1", "--out", str(vec)])
    scenario = tmp_path / "s.yaml"
    import yaml

    scenario.write_text(yaml.safe_dump(bandit(p={"size": 3, "policy": LLM})))
    out = tmp_path / "sweep"
    assert main(["steer", "sweep", str(scenario), "--vector", str(vec), "--coefficients", "0,6",
                 "--control", "shuffled", "--layers", "1", "--out", str(out), "--quiet"]) == 0  # fmt: skip
    import pandas as pd

    table = pd.read_csv(out / "sweep.csv")
    assert list(zip(table["vector"], table["coefficient"], strict=True)) == [
        ("vector", 0.0), ("vector", 6.0), ("shuffled", 0.0), ("shuffled", 6.0)]  # fmt: skip
    assert table["mean_action_entropy"].iloc[0] == table["mean_action_entropy"].iloc[2]
    assert {"best_arm_rate", "switch_rate", "regret"} <= set(table.columns)
    assert (out / "sweep.md").exists() and (out / "shuffled_vector.safetensors").exists()
