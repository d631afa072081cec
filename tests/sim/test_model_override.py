"""The scenario-wide ``model`` key: one flag switches every LLM group's model, in runs and sweeps."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from agents.llm.testing import tiny_llama, tiny_tokenizer
from sim.config import dump_scenario, load_scenario
from sim.core.schema import ConfigError
from sim.sweep import expand, load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[2]
LLM = REPO / "scenarios" / "commons_llm.yaml"


def small_llm_scenario() -> dict:
    """commons_llm.yaml with one fisher per LLM group, a scripted group beside them, one month."""
    data = yaml.safe_load(LLM.read_text())
    for group in data["population"]:
        group["size"] = 1
    data["population"].append({"name": "scripted", "size": 1, "policy": "greedy"})
    data["run"]["steps"] = 1
    data["output"] = {"report": False}
    return data


def llm_models(scenario) -> list[str]:
    return [g.policy.model for g in scenario.population if g.policy.type == "llm"]


def test_model_replaces_every_llm_groups_model_and_nothing_else():
    data = small_llm_scenario()
    assert set(llm_models(load_scenario(data))) == {"smollm2-135m"}  # the groups' own models
    switched = load_scenario(data, ["model=tiny-random-llama"])
    assert switched.model == "tiny-random-llama"
    assert llm_models(switched) == ["tiny-random-llama"] * 3
    assert switched.population[-1].policy.type == "scripted" and switched.population[-1].policy.rule == "greedy"
    # The recorded scenario loads again to the same thing (each group names the model that ran).
    again = load_scenario(yaml.safe_load(dump_scenario(switched)))
    assert again == switched


def test_one_groups_model_is_still_set_by_its_path():
    one = load_scenario(small_llm_scenario(), ["population.0.policy.model=gemma3-270m"])
    assert llm_models(one) == ["gemma3-270m", "smollm2-135m", "smollm2-135m"] and one.model is None


@pytest.mark.parametrize(("value", "message"), [("''", "model"), ("[a, b]", "model")])
def test_a_bad_model_value_names_the_field(value, message):
    with pytest.raises(ConfigError, match=message):
        load_scenario(small_llm_scenario(), [f"model={value}"])


def test_model_is_a_sweep_axis(tmp_path):
    other = tmp_path / "tiny-seed1"  # a second model: another seeded tiny Llama, as a local checkpoint
    tiny_llama(seed=1).save_pretrained(other)
    tiny_tokenizer().save_pretrained(other)
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(small_llm_scenario()))
    sweep = {
        "base": "base.yaml",
        "grid": {"model": ["tiny-random-llama", str(other)]},
        "seeds": 1,
        "backend": {"kind": "local"},
        "report": False,
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    specs = expand(*load_sweep(tmp_path / "sweep.yaml"))
    assert [s.params for s in specs] == [{"model": "tiny-random-llama"}, {"model": str(other)}]
    assert specs[0].name.startswith("model=tiny-random-llama-")
    run_sweep(tmp_path / "sweep.yaml", tmp_path / "out")
    policies = {}
    for spec in specs:
        events = pd.read_parquet(tmp_path / "out" / "runs" / spec.name / "events.parquet")
        llm = events[events["group"] != "scripted"]
        policies[spec.params["model"]] = set(llm["policy"])
    assert policies == {"tiny-random-llama": {"llm:tiny-random-llama"}, str(other): {f"llm:{other}"}}
