"""The embedded default model end to end: 3 LLM fishers, 2 rounds of scenarios/commons_llm.yaml."""

from __future__ import annotations

import numpy as np
import pytest

from sim.runner import run

pytestmark = pytest.mark.integration


def test_commons_llm_with_the_default_model(tmp_path):
    overrides = {
        "population.0.size": 1,
        "population.1.size": 1,
        "population.2.size": 1,
        "run.steps": 2,
        "output.report": False,
        "environment.collapse_threshold": 0,  # two rounds whatever the fishers take
    }
    result = run("scenarios/commons_llm.yaml", out=tmp_path, overrides=overrides)
    events = result.events
    harvest = events[events["phase"] == "harvest"]
    assert len(harvest) == 6 and set(harvest["policy"]) == {"llm:smollm2-135m"}
    for probs in harvest["probs"]:
        p = np.asarray(probs)
        assert len(p) == 7 and abs(p.sum() - 1) < 1e-9
    assert (harvest["entropy"] > 0).all()
    assert (harvest["probs"].map(max) < 0.99).any()  # real distributions, not one-hot guesses
    # The model reads its prompt: the distributions differ between personas.
    first = harvest[harvest["step"] == 1]
    assert np.abs(np.asarray(first["probs"].iloc[0]) - np.asarray(first["probs"].iloc[2])).max() > 1e-3
