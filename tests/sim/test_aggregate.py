"""Per-cell statistics and contrasts of a sweep's results table (sim.aggregate)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import environments
from sim.aggregate import contrasts, metric_ranges, summarise, summary_lines, write_results

GRID = ["environment.preset", "mechanics.punishment.enabled"]
ZIP = ["population.0.persona", "population.0.policy"]
SURVIVAL = {  # months survived per (preset, punishment, persona) and seed 0..4; bimodal where it lasts
    ("rich", True, "altruistic"): [5, 2, 4, 2, 20],
    ("rich", False, "altruistic"): [2, 2, 3, 2, 2],
    ("scarce", True, "altruistic"): [20, 3, 20, 2, 20],
    ("scarce", False, "altruistic"): [3, 2, 3, 3, 3],
    ("rich", True, "selfish"): [1] * 5,
    ("rich", False, "selfish"): [1] * 5,
    ("scarce", True, "selfish"): [1] * 5,
    ("scarce", False, "selfish"): [1] * 5,
}


def results(seeds_off: list[int] | None = None) -> pd.DataFrame:
    """A results table as sim.aggregate.results_table writes it, for a 2 x 2 x zip(2) grid."""
    rows = []
    for (preset, punish, persona), months in SURVIVAL.items():
        policy = "sustainable" if persona == "altruistic" else "greedy"
        cell = f"{preset}-{punish}-{persona}"
        seeds = seeds_off if (seeds_off is not None and not punish) else list(range(5))
        for seed, t in zip(seeds, months, strict=True):
            rows.append(
                {
                    "run": f"{cell}-seed{seed}",
                    "cell": cell,
                    "seed": seed,
                    "run_steps": 20,
                    "environment.preset": preset,
                    "mechanics.punishment.enabled": punish,
                    "population.0.persona": persona,
                    "population.0.policy": policy,
                    "status": "finished",
                    "error": None,
                    "dir": f"runs/{cell}-seed{seed}",
                    "survival_time": t,
                    "survived": t == 20,
                    "over_usage": 0.9 / t,
                    "parse_failures": 0,
                }
            )
    rows.append({**rows[0], "run": "x-seed9", "seed": 9, "status": "failed", "survival_time": None})
    return pd.DataFrame(rows)


def test_summary_has_the_shape_and_honest_intervals():
    table = summarise(results(), GRID + ZIP, "commons")
    assert {"n", "mean", "median", "q1", "q3", "ci95_low", "ci95_high", "ci_method", "distribution"} <= set(table)
    assert ((table["ci95_low"] >= table["range_low"]) & (table["ci95_high"] <= table["range_high"])).all()
    scarce = table[(table["cell"] == "scarce-True-altruistic")].set_index("metric")
    t = scarce.loc["survival_time"]
    assert (t["n"], t["mean"], t["median"], t["q1"], t["q3"]) == (5, 13.0, 20.0, 3.0, 20.0)
    assert t["distribution"] == "2:1 3:1 20:3" and t["ci_method"] == "bootstrap-percentile"
    assert (t["range_low"], t["range_high"]) == (0, 20)  # [0, run.steps]
    s = scarce.loc["survived"]
    assert s["ci_method"] == "wilson" and s["mean"] == 0.6 and 0 < s["ci95_low"] < 0.6 < s["ci95_high"] < 1
    never = table[(table["metric"] == "survived") & (table["mean"] == 0)]
    assert (never["ci_method"] == "wilson").all() and (never["ci95_high"] > 0).all()  # 0 of 5 is not "never"
    assert scarce.loc["over_usage", "range_high"] == 1.0  # declared by the commons spec
    # an all-zero count is not a rate: no Wilson interval pretending it could be 0.43
    failures = table[table["metric"] == "parse_failures"]
    assert (failures["ci_method"] != "wilson").all() and (failures["ci95_high"] == 0).all()
    rich = table[table["cell"] == "rich-True-altruistic"].iloc[0]
    assert (rich["runs"], rich["failed"]) == (6, 1)


def test_ranges_come_from_the_spec_the_name_and_run_steps():
    ranges = metric_ranges(results(), ["survival_time", "survived", "over_usage", "parse_failures"], "commons")
    assert ranges == {"survival_time": (0, 20), "survived": (0, 1), "over_usage": (0, 1), "parse_failures": (0, 0)}


def test_contrasts_pair_by_seed_at_each_level_of_the_other_factors():
    table = contrasts(results(), GRID, ZIP, "commons")
    assert set(table["factor"]) == {
        "environment.preset",
        "mechanics.punishment.enabled",
        "population.0.persona + population.0.policy",
    }
    punish = table[(table["factor"] == "mechanics.punishment.enabled") & (table["metric"] == "survival_time")]
    assert set(punish["on"]) == {"true"} and set(punish["off"]) == {"false"}
    row = punish[
        punish["at"] == "environment.preset=scarce, population.0.persona=altruistic, population.0.policy=sustainable"
    ]
    row = row.iloc[0]
    # per-seed differences 20-3, 3-2, 20-3, 2-3, 20-3 = 17, 1, 17, -1, 17
    assert row["paired"] and row["n"] == 5 and row["diff"] == pytest.approx(10.2)
    assert -1 <= row["ci95_low"] < 10.2 < row["ci95_high"] <= 17
    preset = table[table["factor"] == "environment.preset"]
    assert set(preset["on"]) == {"scarce"} and set(preset["off"]) == {"rich"}  # listed second minus first
    assert (table["ci95_low"] <= table["diff"] + 1e-12).all() and (table["diff"] <= table["ci95_high"] + 1e-12).all()


def test_contrasts_fall_back_to_unpaired_when_seeds_differ():
    table = contrasts(results(seeds_off=[10, 11, 12, 13, 14]), GRID, ZIP, "commons")
    punish = table[table["factor"] == "mechanics.punishment.enabled"]
    assert not punish["paired"].any()
    assert table[table["factor"] == "environment.preset"]["paired"].all()


def test_a_factor_with_three_levels_gets_no_contrast():
    res = results()
    res.loc[res["cell"].str.startswith("rich-True"), "environment.preset"] = "medium"
    table = contrasts(res, GRID, ZIP, "commons")
    assert "environment.preset" not in set(table["factor"])


def test_summary_lines_name_factors_in_full(tmp_path):
    res = results()
    table = summarise(res, GRID + ZIP, "commons")
    text = "\n".join(summary_lines(table, "commons"))
    assert "environment.preset=scarce, mechanics.punishment.enabled=true, population.0.persona=altruistic" in text
    assert "survived" in text and "wilson" in text and "2:1 3:1 20:3" in text
    assert "parse_failures" not in text  # only the environment's headline metrics
    write_results(tmp_path, res, table, contrasts(res, GRID, ZIP, "commons"))
    back = pd.read_csv(tmp_path / "contrasts.csv")
    assert len(back) and not np.isnan(back["diff"]).any()
    assert pd.read_csv(tmp_path / "summary.csv").shape == table.shape


def test_a_spec_declares_ranges_low_to_high():
    spec = environments.get("commons")
    assert spec.metric_ranges["over_usage"] == (0.0, 1.0)
    with pytest.raises(ValueError, match="metric_ranges\\['x'\\] needs low <= high"):
        dataclasses.replace(spec, metric_ranges={"x": (1.0, 0.0)})


def test_a_single_switch_is_contrasted_over_the_whole_sweep():
    res = results()
    res = res[res["population.0.persona"] == "altruistic"]
    res = res[res["environment.preset"] == "scarce"]
    table = contrasts(res, ["mechanics.punishment.enabled"], [], "commons")
    row = table[table["metric"] == "survival_time"].iloc[0]
    assert row["at"] == "" and row["paired"] and row["diff"] == pytest.approx(10.2)
