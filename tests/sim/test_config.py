"""Scenario validation: good files load, malformed ones name the field and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from sim.cli import main
from sim.config import load_scenario
from sim.core.schema import ConfigError

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "name": "t",
    "environment": {"type": "commons", "preset": "rich"},
    "population": [{"name": "a", "size": 3, "policy": "sustainable"}],
    "run": {"steps": 4, "seed": 1},
}


def with_change(path: str, value, base=GOOD):
    data = copy.deepcopy(base)
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    last = keys[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


DELETE = object()

# (change, what the message must contain)
MALFORMED = [
    (("run.stepz", 3), ["run", "'stepz'", "did you mean 'steps'"]),
    (("environment.type", "lake"), ["environment", "commons"]),
    (("environment.regrowth", "cubic"), ["environment.regrowth", "'doubling'", "'logistic'"]),
    (("environment.capcity", 50), ["environment", "did you mean 'capacity'"]),
    (("population.0.size", 0), ["population[0].size", "greater than or equal to 1"]),
    (("population.0.persona", "grumpy"), ["population[0].persona", "'altruistic'", "'selfish'", "'neutral'"]),
    (("population.0.policy", "sneaky"), ["population[0].policy.rule", "sneaky", "greedy", "sustainable"]),
    (("population.0.policy", {"type": "oracle"}), ["population[0].policy", "'scripted'", "'llm'"]),
    (("population.0.policy", {"type": "llm", "dtype": "int3"}), ["population[0].policy.dtype", "'bfloat16'"]),
    (("population", []), ["population", "at least 1"]),
    (("run.seed", -1), ["run.seed", "greater than or equal to 0"]),
    (("run.steps", "many"), ["run.steps", "integer"]),
    (("mechanics", {"punishment": {"enabled": True, "fine": -2}}), ["mechanics.punishment.fine"]),
    (("mechanics", {"group_norm": {"rule": "mode"}}), ["mechanics.group_norm.rule", "'median'", "'majority'"]),
    (("mechanics", {"social_learning": {"selection_strength": 0}}), ["mechanics.social_learning.selection_strength"]),
    (("name", DELETE), ["name", "required"]),
    (("environment.initial_stock", 500), ["environment", "exceeds capacity"]),
    (
        ("population", [{"name": "a", "size": 1, "policy": "greedy"}, {"name": "a", "size": 1, "policy": "greedy"}]),
        ["population", "unique", "a"],
    ),
]


def test_good_scenario_loads():
    s = load_scenario(GOOD)
    assert s.n_agents == 3
    assert s.population[0].policy.type == "scripted"
    assert s.population[0].policy.rule == "sustainable"
    assert s.environment.initial_stock == 100.0  # from the preset


@pytest.mark.parametrize(("change", "needles"), MALFORMED, ids=[c[0][0] for c in MALFORMED])
def test_malformed_scenario_names_the_field(change, needles):
    with pytest.raises(ConfigError) as info:
        load_scenario(with_change(*change))
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in:\n{message}"


def test_every_shipped_scenario_validates():
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        if "\nbase:" in text or text.startswith("base:"):
            continue  # sweep files have their own schema
        load_scenario(path)


def test_overrides_set_dotted_keys_and_list_items():
    s = load_scenario(GOOD, ["run.steps=9", "population.0.size=5", "mechanics.punishment.enabled=true"])
    assert (s.run.steps, s.population[0].size, s.mechanics.punishment.enabled) == (9, 5, True)
    with pytest.raises(ConfigError, match="not an index"):
        load_scenario(GOOD, ["population.3.size=5"])
    with pytest.raises(ConfigError, match="key=value"):
        load_scenario(GOOD, ["run.steps"])


def test_yaml_errors_are_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(bad)
    with pytest.raises(ConfigError, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    # safe_load: a python tag is refused, never executed
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError):
        load_scenario(evil)


def test_validate_command_exit_codes(tmp_path, capsys):
    assert main(["validate", str(ROOT / "scenarios" / "commons_scripted.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nenvironment: {type: commons}\npopulation: [{name: a, size: 1, policy: greedy}]\nrun: {stepz: 3}\n"
    )
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "run: unknown key 'stepz' (did you mean 'steps'?)" in err
    assert "Traceback" not in err
