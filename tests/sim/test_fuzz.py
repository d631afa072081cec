"""Fuzzing the scenario loader and ``--set``: any input is a scenario or one ConfigError.

Hypothesis generates YAML text, raw bytes, dotted keys and values; the only acceptable
outcomes are a validated Scenario or a ConfigError (which the CLI prints as one
``error:`` line with exit code 2). Anything else (a TypeError, a RecursionError, a
pydantic error escaping) is a bug. Findings so far are listed in the tests' comments.
"""

from __future__ import annotations

import atexit
import copy
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from sim.cli import main
from sim.config import apply_overrides, load_scenario, parse_overrides, read_yaml, safe_yaml
from sim.core.schema import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((ROOT / "scenarios" / "commons_scripted.yaml").read_text())
FORUM = yaml.safe_load((ROOT / "scenarios" / "forum_unmoderated.yaml").read_text())

# No .hypothesis folder in the checkout: its example database is off and its caches go to
# a temporary folder removed at exit.
_HOME = tempfile.mkdtemp(prefix="normsim-hypothesis-")
atexit.register(shutil.rmtree, _HOME, True)
set_hypothesis_home_dir(_HOME)
FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# Keys that exist in scenarios (so values reach validators) and some that do not.
KEYS = st.sampled_from(
    [
        "run.steps",
        "run.seed",
        "name",
        "output.run_id",
        "output.dir",
        "environment.capacity",
        "environment.initial_stock",
        "environment.norm_options",
        "environment.efforts",
        "environment.type",
        "mechanics.punishment.fine",
        "mechanics.punishment.enabled",
        "mechanics.social_learning.selection_strength",
        "mechanics.group_norm.initial",
        "population.0.size",
        "population.0.policy",
        "population.0.name",
        "population.0.strategy.norm",
        "population.9.size",
        "population",
        "mechanics",
        "run",
        "x.y.z",
        "run.steps.deeper",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("inf"), float("-inf"), float("nan"), 1e308, -1e308, 2**64]),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)


def accepted_or_config_error(fn, *args):
    try:
        return fn(*args)
    except ConfigError as err:
        assert str(err).strip(), "a ConfigError must say something"
        return None


# Findings on the old code: control characters (ReaderError from --set), non-UTF-8 bytes
# (UnicodeDecodeError), deep nesting (RecursionError) all escaped as tracebacks.
@FUZZ
@given(st.text(max_size=400))
def test_any_yaml_text_loads_or_is_one_config_error(text):
    data = accepted_or_config_error(safe_yaml, text, "fuzz")
    if isinstance(data, dict):
        accepted_or_config_error(load_scenario, data)


@FUZZ
@given(st.binary(max_size=300))
def test_any_file_bytes_give_exit_0_or_2(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("f") / "s.yaml"
    path.write_bytes(data)
    assert main(["validate", str(path), "-q"]) in (0, 2)


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=4))
def test_any_overrides_give_a_scenario_or_a_config_error(overrides):
    # Finding on the old code: inf capacities and fines validated, and NaN then reached metrics.json.
    scenario = accepted_or_config_error(load_scenario, copy.deepcopy(BASE), overrides)
    if scenario is not None:
        # Whatever validates is finite and of sane size (no inf/NaN reaching metrics.json later).
        assert all(math.isfinite(x) and abs(x) <= 1e12 for x in numbers(scenario.model_dump()))


def numbers(node):
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list | tuple):
        return [x for item in node for x in numbers(item)]
    return [node] if isinstance(node, float | int) and not isinstance(node, bool) else []


@FUZZ
@given(st.lists(st.text(max_size=30), max_size=4))
def test_any_set_strings_parse_or_are_one_config_error(items):
    pairs = accepted_or_config_error(parse_overrides, items)
    if pairs is not None:
        accepted_or_config_error(apply_overrides, copy.deepcopy(BASE), pairs)


@FUZZ
@given(st.dictionaries(st.sampled_from(["k", "p", "m", "seed", "x"]), VALUES, max_size=3))
def test_forum_graph_params_are_typed(params):
    data = copy.deepcopy(FORUM)
    data["environment"].setdefault("graph", {})["params"] = params
    accepted_or_config_error(load_scenario, data)


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]",  # a recursive alias
        "[" * 5000 + "]" * 5000,  # deep nesting
        "{" * 5000,  # deep and unterminated
        "!!python/object/apply:os.system ['echo hi']",
        "a: !!binary aGk=",  # bytes are not a scenario value
        "? [1, 2]\n: x",  # a list as a mapping key
        "\ufeffname: x",  # BOM
    ],
)
def test_hostile_yaml_is_one_config_error(tmp_path, text, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_scenario(read_yaml(path))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


NUMERIC_KEYS = [
    "environment.capacity",
    "environment.initial_stock",
    "environment.growth_rate",
    "environment.consumption",
    "environment.norm_options",
    "mechanics.punishment.fine",
    "mechanics.punishment.cost",
    "mechanics.punishment.max_fine",
    "mechanics.punishment.fine_step",
    "mechanics.group_norm.initial",
    "population.0.strategy.norm",
    "run.seed",
]


@FUZZ
@given(
    st.sampled_from(NUMERIC_KEYS),
    st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
)
def test_every_number_field_refuses_inf_nan_and_huge_values(key, value, as_list):
    # Finding on the old code: capacity/fine = inf or 1e308, and norm_options with inf, NaN or
    # negative values validated.
    value = [value, 5.0] if as_list or key.endswith("norm_options") else value
    scenario = accepted_or_config_error(load_scenario, copy.deepcopy(BASE), {key: value})
    if scenario is not None:
        assert all(math.isfinite(x) and abs(x) <= 1e12 for x in numbers(scenario.model_dump()))
        options = scenario.environment.norm_options or []
        assert all(x >= 0 for x in options)
