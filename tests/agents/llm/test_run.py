"""Whole commons runs with LLM agents: determinism, full distributions, hidden-state capture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from agents.llm.capture import load_activations
from sim.runner import run

SCENARIO = "scenarios/commons_llm.yaml"
TINY = {f"population.{i}.policy.model": "tiny-random-llama" for i in range(3)}
QUICK = {**TINY, "run.steps": 3, "output.report": False}


def _events(result) -> pd.DataFrame:
    return result.events.drop(columns=["run_id"])


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    overrides = {**QUICK, "population.0.policy.capture_layers": [0, 1]}
    return run(SCENARIO, out=tmp_path_factory.mktemp("a"), overrides=overrides)


def test_every_decision_has_a_distribution(first_run):
    events = first_run.events
    llm = events[events["phase"].isin(["harvest", "punish", "vote"])]
    assert set(llm["phase"]) == {"harvest", "punish", "vote"}  # the vote is free text (proposal: text)
    for probs, n_options, ent in zip(llm["probs"], llm["options"].map(len), llm["entropy"], strict=True):
        assert len(probs) == n_options and abs(sum(probs) - 1) < 1e-9
        p = np.asarray(probs)
        assert ent == pytest.approx(-(p[p > 0] * np.log(p[p > 0])).sum())
    votes = llm[llm["phase"] == "vote"]
    assert votes["text"].notna().all() and votes["parse_failed"].notna().all()


def test_a_run_is_deterministic(first_run, tmp_path):
    overrides = {**QUICK, "population.0.policy.capture_layers": [0, 1]}
    again = run(SCENARIO, out=tmp_path, overrides=overrides)
    pd.testing.assert_frame_equal(_events(first_run), _events(again))
    a, _ = load_activations(first_run.dir)
    b, _ = load_activations(again.dir)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_captured_activations_index_the_event_log(first_run):
    tensors, index = load_activations(first_run.dir)
    assert set(tensors) == {"layer_0", "layer_1"}
    events = first_run.events
    captured_group = events[(events["group"] == "altruists") & events["phase"].isin(["harvest", "punish", "vote"])]
    for layer, rows in index.groupby("layer"):
        assert len(rows) == len(captured_group) == tensors[f"layer_{layer}"].shape[0]
        assert sorted(rows["row"]) == list(range(len(rows)))
    keys = set(zip(index["step"], index["phase"], index["agent_id"], strict=True))
    assert keys == set(zip(captured_group["step"], captured_group["phase"], captured_group["agent_id"], strict=True))
    assert np.abs(tensors["layer_0"]).sum() > 0


def test_no_capture_no_files(tmp_path):
    result = run(SCENARIO, out=tmp_path, overrides={**QUICK, "run.steps": 1})
    assert not (result.dir / "activations.safetensors").exists()
