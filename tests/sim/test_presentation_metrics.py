"""metrics.json of an LLM run says how much the presentation moved its decisions."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sim.core.metrics import presentation_metrics
from sim.runner import run


def test_presentation_metrics_average_each_presentation_over_the_probed_decisions():
    info = [
        {"presentation": {"measure": "expected ton amount", "value": 8.0, "probes": {"shipped": 8.0, "labels": 2.0}}},
        {"presentation": {"measure": "expected ton amount", "value": 6.0, "probes": {"shipped": 6.0, "labels": 4.0}}},
        {"presentation": {"measure": "expected ton amount", "value": 10.0}},
        {"presentation": {"order": "balanced", "measure": "P(yes)", "value": 0.2, "order_range": 0.1}},
        None,
    ]
    events = pd.DataFrame(
        {
            "phase": ["harvest", "harvest", "harvest", "punish", "learn"],
            "info": [json.dumps(i) if i else None for i in info],
        }
    )
    out = presentation_metrics(events)
    assert out["expected_value_by_phase"] == {"harvest": pytest.approx(8.0), "punish": pytest.approx(0.2)}
    spread = out["presentation_spread"]["harvest"]
    assert spread["by_presentation"] == {"shipped": 7.0, "labels": 3.0}
    assert spread["spread"] == pytest.approx(4.0) and spread["n"] == 2
    assert "punish" not in out["presentation_spread"]  # nothing probed there
    assert out["order_range_by_phase"] == {"punish": pytest.approx(0.1)}
    assert presentation_metrics(events.iloc[:0]) == {}


def test_an_llm_run_reports_its_presentation_spread_per_phase_and_a_scripted_one_none(tmp_path):
    llm = {"type": "llm", "model": "tiny-random-llama"}
    scenario = {
        "name": "shown",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [{"name": "f", "size": 4, "policy": llm}],
        "mechanics": {"punishment": {"enabled": True, "monitor_prob": 1.0}},
        "presentation": {"sensitivity": 1.0},
        "run": {"steps": 2},
        "output": {"report": False},
    }
    metrics = run(scenario, seed=0, out=tmp_path).metrics
    spread = metrics["presentation_spread"]
    assert set(spread) == {"harvest", "punish"}
    assert set(spread["harvest"]["by_presentation"]) == {"shipped", "labels with 1 decimal"}
    assert set(spread["punish"]["by_presentation"]) == {"shipped", "wording: spare/fine"}
    assert all(s["spread"] >= 0 and s["n"] > 0 for s in spread.values())
    assert "punish" in metrics["order_range_by_phase"]  # "yes; no" is balanced by default
    scripted = {**scenario, "name": "plain", "population": [{"name": "f", "size": 4, "policy": "sustainable"}]}
    plain = run(scripted, seed=0, out=tmp_path).metrics
    assert "presentation_spread" not in plain and "expected_value_by_phase" not in plain


def test_presentation_settings_leave_a_scripted_run_unchanged(tmp_path):
    scenario = {
        "name": "plain",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [{"name": "f", "size": 5, "policy": "greedy"}, {"name": "g", "size": 3, "policy": "sustainable"}],
        "mechanics": {"punishment": {"enabled": True}, "group_norm": {"enabled": True, "every": 1}},
        "run": {"steps": 4},
        "output": {"report": False},
    }
    logs = []
    for k, shown in enumerate(
        [{"order": "fixed", "sensitivity": 0.0}, {"order": "balanced", "sensitivity": 1.0}, {"order": "shuffled"}]
    ):
        result = run({**scenario, "presentation": shown}, seed=3, out=tmp_path / str(k))
        logs.append(result.events.drop(columns=["run_id"]))
    pd.testing.assert_frame_equal(logs[0], logs[1])
    pd.testing.assert_frame_equal(logs[0], logs[2])


def test_probes_measure_without_moving_any_choice(tmp_path):
    llm = {"type": "llm", "model": "tiny-random-llama"}
    scenario = {
        "name": "probed",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [{"name": "f", "size": 4, "policy": llm}],
        "mechanics": {
            "punishment": {"enabled": True, "monitor_prob": 1.0},
            "group_norm": {"enabled": True, "every": 1},
        },
        "run": {"steps": 3},
        "output": {"report": False},
    }
    logs = [
        run({**scenario, "presentation": {"sensitivity": s}}, seed=1, out=tmp_path / str(s)).events for s in (0.0, 1.0)
    ]
    for column in ("phase", "agent_id", "choice", "chosen"):
        assert logs[0][column].tolist() == logs[1][column].tolist()
    # the same distributions, to the rounding of a batch with more rows in it
    assert all(a == pytest.approx(b, abs=1e-5) for a, b in zip(logs[0]["probs"], logs[1]["probs"], strict=True))


def test_the_presentation_cost_bench_counts_the_tokens_probes_add(tmp_path):
    import yaml

    from sim.bench.presentation import tokens_by_setting

    scenario = {
        "name": "cost",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [{"name": "f", "size": 4, "policy": {"type": "llm", "model": "tiny-random-llama"}}],
        "mechanics": {"punishment": {"enabled": True, "monitor_prob": 1.0}},
        "run": {"steps": 2},
        "output": {"report": False},
    }
    path = tmp_path / "cost.yaml"
    path.write_text(yaml.safe_dump(scenario))
    settings = {
        "none": {"presentation.sensitivity": 0},
        "again": {"presentation.sensitivity": 0},
        "all": {"presentation.sensitivity": 1},
    }
    rows = tokens_by_setting(str(path), steps=2, settings=settings)
    assert rows["none"] == rows["again"]  # the same decisions, the same tokens
    assert rows["all"]["options"] > rows["none"]["options"]  # every decision's probes were scored too
    assert rows["all"]["logits"] > rows["none"]["logits"]
