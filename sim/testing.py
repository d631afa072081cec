"""The conformance suite every environment must pass, in the spirit of PettingZoo's ``api_test``.

Run it over a registered environment (built-in or your own) from a test::

    from sim.testing import check_environment

    def test_my_environment_conforms(tmp_path):
        check_environment("my_env", tmp_path)             # uses the spec's example scenario
        check_environment(MY_SPEC, tmp_path, scenario={...})  # or a scenario of your own

Each check raises ``AssertionError`` naming what broke. The checks:

* the spec is complete (config ``type``, a headline, scripted rules, an example that loads);
* every event row matches the event schema, probabilities are a distribution (sum 1,
  none negative), the choice indexes the options and the entropy is the distribution's;
* every step row has the same keys;
* the same seed gives an identical event log;
* the metrics function works on an empty log and on a one-step log and returns JSON;
* a mechanic the environment does not support is rejected when the scenario is loaded
  (``normsim validate``), naming ``mechanics`` and what is supported, before any run
  directory exists;
* ``normsim run`` prints every headline metric the run produced, and at least one.

LLM groups of the scenario are played by the environment's first scripted rule, so the
suite needs no model.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import environments
from agents.interfaces import entropy
from environments.spec import EnvironmentSpec
from sim.cli import main as cli_main
from sim.config import load_scenario, read_yaml
from sim.core.events import EVENT_SCHEMA
from sim.core.schema import ConfigError
from sim.runner import run

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
# Every mechanic any built-in environment knows, plus one nobody does.
KNOWN_MECHANICS = ("punishment", "social_learning", "group_norm", "reporting", "norm_notes", "discussion")


def check_environment(
    spec: EnvironmentSpec | str,
    tmp_path: Path,
    *,
    scenario: dict[str, Any] | str | Path | None = None,
    steps: int = 3,
    seed: int = 0,
) -> None:
    """Run every conformance check on one environment (see the module docstring)."""
    spec = environments.get(spec) if isinstance(spec, str) else spec
    data = scripted_scenario(spec, scenario, steps=steps, seed=seed)
    check_spec(spec, data)
    first = _run(data, tmp_path / "first")
    check_events(first["events"])
    check_steps(first["steps_rows"])
    second = _run(data, tmp_path / "second")
    check_same_log(first["events"], second["events"])
    check_metrics(spec, data)
    check_unsupported_mechanics(spec, data, tmp_path / "rejected")
    check_headline(spec, data, tmp_path / "cli")


# ----------------------------------------------------------------------- scenario
def scripted_scenario(
    spec: EnvironmentSpec, scenario: dict[str, Any] | str | Path | None, *, steps: int, seed: int
) -> dict[str, Any]:
    """The scenario as a dict, LLM groups replaced by the first scripted rule, report off."""
    if scenario is None:
        scenario = SCENARIOS / spec.example
    data = copy.deepcopy(scenario) if isinstance(scenario, dict) else read_yaml(scenario)
    rule = next(iter(spec.rules))
    for group in data.get("population", []):
        policy = group.get("policy")
        if isinstance(policy, dict) and policy.get("type") == "llm":
            group["policy"] = rule
        group.pop("steering", None)
    data.setdefault("run", {}).update({"steps": steps, "seed": seed})
    data.setdefault("output", {})["report"] = False
    data.pop("backend", None)
    return data


def check_spec(spec: EnvironmentSpec, data: dict[str, Any]) -> None:
    assert spec.headline, f"{spec.name}: the spec names no headline metric"
    assert spec.rules, f"{spec.name}: the spec has no scripted rule (the suite and reference runs need one)"
    assert spec.config.model_fields["type"].default == spec.name, f"{spec.name}: config.type must default to its name"
    loaded = load_scenario(data)
    assert loaded.spec is spec, f"{spec.name}: the scenario does not resolve to this spec"


# ------------------------------------------------------------------------ the log
def _run(data: dict[str, Any], out: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    result = run(data, run_dir=out, on_step=lambda step, row: rows.append(dict(row)), progress=False)
    assert result.status == "finished", f"run ended {result.status}"
    return {"events": result.events, "steps": result.steps, "steps_rows": rows}


def check_events(events: pd.DataFrame) -> None:
    assert list(events.columns) == list(EVENT_SCHEMA.names), (
        f"event columns {list(events.columns)} differ from the schema {list(EVENT_SCHEMA.names)}"
    )
    assert len(events), "the run logged no decision"
    for row in events.itertuples(index=False):
        probs = np.asarray(row.probs, dtype=np.float64)
        where = f"event step {row.step} phase {row.phase} agent {row.agent_id}"
        assert len(probs) == len(row.options), f"{where}: {len(probs)} probabilities for {len(row.options)} options"
        assert np.all(probs >= 0) and abs(probs.sum() - 1.0) < 1e-6, f"{where}: probabilities {probs} do not sum to 1"
        assert 0 <= row.choice < len(row.options), f"{where}: choice {row.choice} is not an option index"
        assert row.chosen == row.options[row.choice], f"{where}: chosen {row.chosen!r} is not options[choice]"
        assert math.isclose(row.entropy, entropy(probs), abs_tol=1e-9), f"{where}: entropy is not the distribution's"
        if isinstance(row.info, str):
            assert isinstance(json.loads(row.info), dict), f"{where}: info is not a JSON object"


def check_steps(rows: list[dict[str, Any]]) -> None:
    assert rows, "the run logged no step"
    keys = set(rows[0])
    for row in rows[1:]:
        assert set(row) == keys, f"step {row.get('step')}: keys {sorted(set(row) ^ keys)} appear or vanish"


def check_same_log(first: pd.DataFrame, second: pd.DataFrame) -> None:
    # run_id names the run directory, which differs by construction; everything else must not
    pd.testing.assert_frame_equal(
        first.drop(columns="run_id"),
        second.drop(columns="run_id"),
        check_exact=True,
        obj="event log of two runs with the same seed",
    )


def check_metrics(spec: EnvironmentSpec, data: dict[str, Any]) -> None:
    scenario = load_scenario(data)
    one_step = dict(data, run={**data["run"], "steps": 1})
    with tempfile.TemporaryDirectory() as tmp:
        result = run(one_step, run_dir=Path(tmp) / "one", progress=False)
        logs = {
            "empty": (result.events.iloc[0:0], result.steps.iloc[0:0]),
            "one step": (result.events, result.steps),
        }
    for name, (events, steps) in logs.items():
        metrics = spec.metrics(events, steps, scenario)
        assert isinstance(metrics, dict), f"{spec.name}: metrics of the {name} log are not a dict"
        json.dumps(metrics, allow_nan=False, default=float)  # NaN and inf are not JSON


# ------------------------------------------------------------------- validation
def check_unsupported_mechanics(spec: EnvironmentSpec, data: dict[str, Any], out: Path) -> None:
    for name in (*KNOWN_MECHANICS, "no_such_mechanic"):
        if name in spec.supported_mechanics:
            continue
        bad = copy.deepcopy(data)
        bad.setdefault("mechanics", {})[name] = {"enabled": True}
        bad["output"]["dir"] = str(out)
        try:
            load_scenario(bad)
        except ConfigError as err:
            text = str(err)
            assert f"mechanics: '{name}'" in text and "supported mechanics" in text, (
                f"{spec.name}: unsupported mechanic '{name}' rejected without naming it and what is supported: {text}"
            )
        else:
            raise AssertionError(f"{spec.name}: enabling unsupported mechanic '{name}' was accepted")
        assert not out.exists(), f"{spec.name}: a rejected scenario created {out}"


def check_headline(spec: EnvironmentSpec, data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = cli_main(["--quiet", "run", str(path), "--out", str(out / "runs")])
    printed = stdout.getvalue()
    assert code == 0, f"{spec.name}: normsim run exited {code}: {stderr.getvalue()}"
    run_dir = Path(printed.splitlines()[0].removeprefix("run directory: ").strip())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    produced = [m for m in spec.headline if metrics.get(m) is not None]
    assert produced, f"{spec.name}: the run produced none of its headline metrics {spec.headline}"
    for name in produced:
        assert f"  {name}: " in printed, f"{spec.name}: headline metric '{name}' was not printed"
