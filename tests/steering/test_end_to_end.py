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
    assert (
        main(
            [
                "steer",
                "fit",
                "--method",
                "east",
                "--from",
                str(captured_run.dir),
                "--layers",
                "0,1",
                "--out",
                str(vec_path),
            ]
        )
        == 0
    )
    vec = SteeringVector.load(vec_path)
    assert vec.method == "east" and vec.layers == [0, 1] and vec.model_id == "tiny-random-llama"
    assert vec.source_runs == [str(captured_run.dir)] and vec.params["decisions"] == 12

    steer = {"vector": str(vec_path), "layers": [1], "coefficient": 8.0}
    plain = run(bandit(a={"size": 2, "policy": LLM}, b={"size": 2, "policy": LLM}), out=tmp_path / "p")
    mixed = run(
        bandit(a={"size": 2, "policy": LLM, "steering": steer}, b={"size": 2, "policy": LLM}), out=tmp_path / "m"
    )
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
    assert (
        main(
            [
                "steer",
                "sweep",
                str(scenario),
                "--vector",
                str(vec),
                "--coefficients",
                "0,6",
                "--control",
                "shuffled",
                "--layers",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    import pandas as pd

    table = pd.read_csv(out / "sweep.csv")
    assert list(zip(table["vector"], table["coefficient"], strict=True)) == [
        ("vector", 0.0),
        ("vector", 6.0),
        ("shuffled", 0.0),
        ("shuffled", 6.0),
    ]
    assert table["mean_action_entropy"].iloc[0] == table["mean_action_entropy"].iloc[2]
    assert {"best_arm_rate", "switch_rate", "regret"} <= set(table.columns)
    assert (out / "sweep.md").exists() and (out / "shuffled_vector.safetensors").exists()


def test_sweep_over_seeds_summarizes_mean_sd_and_paired_difference(tmp_path):
    import pandas as pd
    import torch
    import yaml

    from steering.sweep import summarize

    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(bandit(p={"size": 3, "policy": LLM})))
    vec = tmp_path / "v"
    SteeringVector(
        directions={1: torch.linspace(-4, 4, 64)},
        model_id="tiny-random-llama",
        hidden_size=64,
        num_layers=2,
        method="east",
    ).save(vec)
    out = tmp_path / "sweep"
    assert (
        main(
            [
                "steer",
                "sweep",
                str(scenario),
                "--vector",
                str(vec),
                "--coefficients",
                "0,6",
                "--control",
                "shuffled",
                "--layers",
                "1",
                "--seeds",
                "3,4",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    table = pd.read_csv(out / "sweep.csv")
    assert list(table["seed"]) == [3, 3, 3, 3, 4, 4, 4, 4]
    runs = table[["seed", "run"]].drop_duplicates()
    assert len(runs) == 6 and all(f"-s{s}" in r for s, r in zip(runs["seed"], runs["run"], strict=True))
    zero = table[table["coefficient"] == 0].set_index(["seed", "vector"])["mean_action_entropy"]
    assert zero[(3, "vector")] == zero[(3, "shuffled")] and zero[(4, "vector")] == zero[(4, "shuffled")]
    assert zero[(3, "vector")] != zero[(4, "vector")]  # the seed reached the run
    summary = pd.read_csv(out / "summary.csv")
    pd.testing.assert_frame_equal(summary, summarize(table), check_dtype=False)
    row = summary[(summary["vector"] == "vector") & (summary["coefficient"] == 6)].iloc[0]
    at6 = table[table["coefficient"] == 6].pivot(index="seed", columns="vector", values="mean_action_entropy")
    diff = at6["vector"] - at6["shuffled"]
    assert row["seeds"] == 2 and np.isclose(row["mean_action_entropy_mean"], at6["vector"].mean())
    assert np.isclose(row["mean_action_entropy_sd"], at6["vector"].std(ddof=1))
    assert np.isclose(row["minus_shuffled_mean"], diff.mean()) and np.isclose(row["minus_shuffled_sd"], diff.std())
    assert np.isnan(summary[summary["vector"] == "shuffled"]["minus_shuffled_mean"]).all()
    assert "per run:" in (out / "sweep.md").read_text()


def test_layer_report_scales_and_orders_layers(captured_run):
    import torch

    from steering import extract
    from steering.fit import captured, layer_report

    rows = layer_report([captured_run.dir], [0, 1])
    assert sorted(r["layer"] for r in rows) == [0, 1]
    for r in rows:
        acts, ev = captured(captured_run.dir, r["layer"])
        assert np.isclose(r["resid_norm"], float(acts.norm(dim=1).mean()), rtol=1e-5)
        u = extract.east(acts, ev["entropy"].to_numpy(), list(ev["agent_id"]))
        assert np.isclose(r["east_norm"], float(u.norm()), rtol=1e-5)
        centred = torch.cat(
            [
                acts[torch.tensor((ev["agent_id"] == a).to_numpy())]
                - acts[torch.tensor((ev["agent_id"] == a).to_numpy())].mean(0)
                for a in ev["agent_id"].unique()
            ]
        )
        assert np.isclose(r["spread"], float(centred.norm(dim=1).mean()), rtol=1e-4)
        assert np.isclose(r["unit_coef"], r["spread"] / r["east_norm"])
        assert np.isclose(r["snr"], r["separation"] / r["spread"])
    keys = [(not r["opposite"], -r["snr"]) for r in rows]
    assert keys == sorted(keys)
    assert main(["steer", "layers", "--from", str(captured_run.dir), "--layers", "0,1"]) == 0


def test_sweep_rows_split_entropy_by_phase_and_summarize_any_column():
    import pandas as pd

    from steering.sweep import _by_phase, summarize

    assert _by_phase({"mean_action_entropy_by_phase": {"harvest": 0.5, "punish": 0.25}}) == {
        "entropy.harvest": 0.5,
        "entropy.punish": 0.25,
    }
    assert _by_phase({"mean_action_entropy_by_phase": {"pull": 0.5}}) == {}  # one phase: the overall column says it
    table = pd.DataFrame(
        {"seed": [1, 2], "vector": "vector", "layers": "3", "coefficient": 2.0, "entropy.harvest": [0.2, 0.4]}
    )
    row = summarize(table, "entropy.harvest").iloc[0]
    assert np.isclose(row["entropy.harvest_mean"], 0.3) and row["seeds"] == 2
    with pytest.raises(ValueError, match="no column 'entropy.vote'"):
        summarize(table, "entropy.vote")
