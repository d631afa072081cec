"""Numbers as people read them, and step tables whose column types do not depend on the run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

import sim
from sim.core.numbers import num, tidy, tidy_frame
from sim.progress import _short
from sim.report.html import fmt

SCRIPTED = Path(__file__).resolve().parents[2] / "scenarios" / "commons_scripted.yaml"


def test_noise_at_a_bound_prints_as_the_bound_and_never_minus_zero():
    assert num(7.105e-15) == "0" and num(-1.11e-16) == "0" and num(-0.0) == "0"
    assert num(99.99999999999) == "100" and num(1 - 1e-12) == "1"
    assert num(0.5) == "0.5" and num(1e-6) == "1e-06"  # a real small value stays
    assert num(-0.25) == "-0.25" and math.isnan(tidy(float("nan")))
    assert fmt(7.105e-15) == "0" and _short(-0.0) == "0" and _short(None) == "n/a"


def test_tidy_frame_cleans_float_columns_only():
    table = pd.DataFrame({"diff": [-1.11e-16, 0.3], "n": [3, 4], "at": ["a", "b"]})
    clean = tidy_frame(table)
    assert clean["diff"].tolist() == [0.0, 0.3] and str(clean["diff"].iloc[0]) == "0.0"
    assert clean["n"].tolist() == [3, 4] and table["diff"].iloc[0] != 0  # the input is left as it was


def test_step_series_are_float_with_nan_in_scripted_runs_too(tmp_path):
    off = sim.run(
        SCRIPTED,
        out=tmp_path,
        overrides={"run.steps": 2, "mechanics.group_norm.enabled": False},
        report=False,
    )
    on = sim.run(SCRIPTED, out=tmp_path, overrides={"run.steps": 2}, report=False)
    for result in (off, on):
        assert result.steps["group_norm"].dtype == "float64"
        assert result.agents["norm_belief"].dtype == "float64"
    assert off.steps["group_norm"].isna().all()
    both = pd.concat([off.steps, on.steps])
    assert both["group_norm"].dtype == "float64"  # two runs' tables concatenate without `object`
