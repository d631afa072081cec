"""Per-cell statistics and contrasts of a sweep's results table (sim.aggregate)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import environments
from sim.aggregate import contrasts, flatten_metrics, metric_ranges, summarise, summary_lines, write_results
from sim.core.stats import mean_interval
from sim.report.sweeps import contrasts_html, summary_warnings_html

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
    assert t["distribution"] == "2:1 3:1 20:3" and t["ci_method"] == "hall-t"
    assert (t["range_low"], t["range_high"]) == (0, 20)  # [0, run.steps]
    s = scarce.loc["survived"]
    assert s["ci_method"] == "wilson" and s["mean"] == 0.6 and 0 < s["ci95_low"] < 0.6 < s["ci95_high"] < 1
    never = table[(table["metric"] == "survived") & (table["mean"] == 0)]
    assert (never["ci_method"] == "wilson").all() and (never["ci95_high"] > 0).all()  # 0 of 5 is not "never"
    assert scarce.loc["over_usage", "range_high"] == 1.0  # declared by the commons spec
    # an all-zero count is not a rate: no Wilson interval pretending it could be 0.43
    failures = table[table["metric"] == "parse_failures"]
    assert (failures["ci_method"] != "wilson").all() and (failures["ci95_high"] == 0).all()
    assert np.isinf(failures["range_high"]).all()  # a count's range is unknown: unbounded, not [0, 0]
    rich = table[table["cell"] == "rich-True-altruistic"].iloc[0]
    assert (rich["runs"], rich["failed"]) == (6, 1)


def test_ranges_come_from_the_spec_the_name_and_run_steps():
    ranges = metric_ranges(results(), ["survival_time", "survived", "over_usage", "parse_failures"], "commons")
    assert ranges == {
        "survival_time": (0, 20),
        "survived": (0, 1),
        "over_usage": (0, 1),
        "parse_failures": (-np.inf, np.inf),
    }


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
    assert (row["ci95_low"], row["ci95_high"]) == pytest.approx(
        mean_interval(np.array([17.0, 1, 17, -1, 17]), bounds=(-20, 20))
    )
    assert -20 <= row["ci95_low"] < 10.2 < row["ci95_high"] <= 20  # survival in [0, 20]: differences in +-20
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


def test_few_runs_say_so_and_the_summary_warns():
    res = results()
    res = res[~((res["cell"] == "rich-True-altruistic") & (res["seed"] >= 2))]  # 2 runs left there
    table = summarise(res, GRID + ZIP, "commons")
    row = table[(table["cell"] == "rich-True-altruistic") & (table["metric"] == "survival_time")].iloc[0]
    assert row["n"] == 2 and row["ci_method"] == "none" and np.isnan(row["ci95_low"])
    text = "\n".join(summary_lines(table, "commons"))
    assert "n=2: too few runs for an interval" in text
    assert text.startswith("warning: 1 of 8 cells have fewer than 5 finished runs (fewest 2)")
    assert "fewer than 5 finished runs" in summary_warnings_html(table)
    assert "warning" not in "\n".join(summary_lines(summarise(results(), GRID + ZIP, "commons"), "commons"))


# ------------------------------------------------------------------ presentation sensitivity
def _llm_metrics(ev: float, spread: float) -> dict:
    """metrics.json of an LLM run: expected value and presentation spread of the harvest phase."""
    return {
        "status": "finished",
        "survival_time": 3,
        "expected_value_by_phase": {"harvest": ev},
        "presentation_spread": {
            "harvest": {
                "measure": "expected value (tons)",
                "n": 20,
                "by_presentation": {"shipped": ev, "reversed order": ev + spread},
                "spread": spread,
            }
        },
    }


def _llm_results(on_ev: list[float], off_ev: list[float], on_spread: float, off_spread: float) -> pd.DataFrame:
    rows = []
    for talk, evs, spread in ((True, on_ev, on_spread), (False, off_ev, off_spread)):
        for seed, ev in enumerate(evs):
            flat = flatten_metrics(_llm_metrics(ev, spread + 0.1 * seed))
            rows.append({"run": f"{talk}-{seed}", "cell": str(talk), "seed": seed, "status": "finished", "talk": talk})
            rows[-1] |= flat
    return pd.DataFrame(rows)


def test_presentation_spread_is_flattened_per_phase():
    flat = flatten_metrics(_llm_metrics(7.0, 1.5))
    assert flat["presentation_spread.harvest.spread"] == 1.5
    assert flat["presentation_spread.harvest.measure"] == "expected value (tons)"
    assert flat["expected_value_by_phase.harvest"] == 7.0
    assert not any(k.startswith("presentation_spread.harvest.by_presentation") for k in flat)
    assert "presentation_spread.harvest.spread" not in flatten_metrics({"survival_time": 3})  # scripted


def test_summary_shows_each_cells_mean_presentation_spread():
    res = _llm_results([7, 8, 9, 8, 7], [6, 7, 8, 7, 6], on_spread=1.0, off_spread=3.0)
    table = summarise(res, ["talk"])
    means = table[table["metric"] == "presentation_spread.harvest.spread"].set_index("cell")["mean"]
    # spreads 1.0 + 0.1 * seed over seeds 0..4: mean 1.2; 3.0 + ...: 3.2
    assert means.to_dict() == pytest.approx({"True": 1.2, "False": 3.2})
    text = "\n".join(summary_lines(table))
    assert "presentation spread (mean over runs): harvest: 1.2" in text
    assert "harvest: 3.2" in summary_warnings_html(table)


def test_an_expected_value_effect_below_the_presentation_spread_is_flagged():
    # effect +1 t; the off cell's spread 3.2 t is larger: presentation alone moves more
    res = _llm_results([7, 8, 9, 8, 7], [6, 7, 8, 7, 6], on_spread=1.0, off_spread=3.0)
    table = contrasts(res, ["talk"]).set_index("metric")
    ev = table.loc["expected_value_by_phase.harvest"]
    assert ev["diff"] == pytest.approx(1.0) and bool(ev["presentation_flag"])
    assert ev["presentation_spread_on"] == "harvest: 1.2" and ev["presentation_spread_off"] == "harvest: 3.2"
    # other metrics: the spreads beside, never a flag
    other = table.loc["survival_time"]
    assert other["presentation_spread_on"] == "harvest: 1.2" and not bool(other["presentation_flag"])
    page = contrasts_html(table.reset_index(), ["survival_time"])
    assert "effect smaller than presentation spread" in page and "expected_value_by_phase.harvest" in page
    # the same effect with spreads of 0.5 t on both sides is not flagged
    small = contrasts(_llm_results([7, 8, 9, 8, 7], [6, 7, 8, 7, 6], 0.5, 0.5), ["talk"]).set_index("metric")
    assert not bool(small.loc["expected_value_by_phase.harvest", "presentation_flag"])
    assert "effect smaller" not in contrasts_html(small.reset_index(), ["survival_time"])
    # scripted runs: no spread columns filled, no flag
    plain = contrasts(results(), GRID, ZIP, "commons")
    assert not plain["presentation_flag"].any() and (plain["presentation_spread_on"] == "").all()
