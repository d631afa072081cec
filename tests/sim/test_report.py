"""Reports: what a tiny run's and a tiny sweep's report.html contain, the transcript, the CLI."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.core.schema import ConfigError
from sim.report import write_report
from sim.report.data import load_sweep_data
from sim.report.sweeps import ordered_metrics, survival_fraction
from sim.report.transcript import transcript_html
from tests.sim.report_fixtures import COMMONS_PLOTS, SCENARIO, tiny_run

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run_result(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"))


def embedded_pngs(text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


# ----------------------------------------------------------------------------- runs
def test_a_run_ends_with_a_self_contained_report_of_every_plot(run_result):
    report = run_result.report
    assert report == run_result.dir / "report.html" and report.exists()
    text = report.read_text()
    pngs = {p.stem: p.read_bytes() for p in (run_result.dir / "plots").glob("*.png")}
    assert set(pngs) == COMMONS_PLOTS
    embedded = embedded_pngs(text)
    assert len(embedded) == len(pngs)
    assert sorted(embedded) == sorted(pngs.values())  # the page shows exactly the PNGs written
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for png in embedded)
    for name in COMMONS_PLOTS:
        assert f'id="plot-{name}"' in text
    # Nothing to fetch: no scheme-qualified URL anywhere in the page.
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
    assert "survival_time" in text and "cooperators" in text and "a tiny commons for report tests" in text


def test_the_transcript_shows_prompts_options_choices_and_text(run_result):
    events = run_result.events
    readers = events[(events["group"] == "readers") & (events["phase"] != "learn")]
    scripted = events[events["group"] == "cooperators"]
    assert readers["prompt"].notna().all() and scripted["prompt"].isna().all()  # prompts only where read
    prompts = yaml.safe_load((run_result.dir / "prompts.json").read_text())
    assert {"harvest", "punish", "vote"} <= set(prompts) and "fishers" in prompts["harvest"]

    text = run_result.report.read_text()
    section = text[text.index('<section id="transcript">') :]
    assert section.count('<details class="turn"') == len(events)
    assert section.count('<details class="agent"') == events["agent_id"].nunique()
    assert not re.search(r"<details[^>]*\sopen", section)  # everything collapsed by default
    assert 'id="transcript-search"' in section
    row = readers.iloc[0]
    assert _html_escape(row["prompt"].splitlines()[0]) in section  # persona line of the prompt
    assert _html_escape(row["text"]) in section  # generated text
    assert "Scripted policy" in section  # scripted rows say why they have no prompt
    chosen = re.findall(r'<tr class="chosen"><td>(.*?)</td>', section)
    assert len(chosen) == len(events)


def _html_escape(s: str) -> str:
    from html import escape

    return escape(s)


def test_a_long_transcript_is_cut_at_whole_steps_with_a_note(run_result):
    events = run_result.events
    cap = int(events.groupby("step").size().iloc[:2].sum())  # exactly the first two steps
    text = transcript_html(events, {}, max_decisions=cap)
    assert text.count('<details class="turn"') == cap
    assert f"shows the {cap} of steps 1-2" in text


def test_report_can_be_switched_off_and_written_later_from_the_cli(tmp_path, capsys):
    result = tiny_run(tmp_path, overrides={"output.report": False})
    assert result.report is None and not (result.dir / "report.html").exists()
    assert main(["report", str(result.dir)]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == f"report: {(result.dir / 'report.html').resolve()}"
    assert len(list((result.dir / "plots").glob("*.png"))) == len(COMMONS_PLOTS)


def test_normsim_run_prints_the_report_path_last(tmp_path, capsys):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(yaml.safe_dump(SCENARIO | {"run": {"steps": 3, "seed": 0}}))
    assert main(["run", str(scenario), "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr()
    last = out.out.strip().splitlines()[-1]
    assert last.startswith("report: ") and last.endswith("report.html") and Path(last[8:]).exists()
    assert out.err == ""  # --quiet: no progress lines


def test_other_environments_get_generic_trend_and_entropy_plots(run_result, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_result.dir, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["environment"] = {"type": "some_new_env"}  # the report reads the file as written
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    write_report(copy)
    # the generic plots: trends, entropy and a chart of each per-agent metric in metrics.json
    assert {p.stem for p in (copy / "plots").glob("*.png")} == {"step_trends", "entropy", "metric_total_gain_per_agent"}


def test_report_rejects_a_directory_that_is_neither_run_nor_sweep(tmp_path):
    with pytest.raises(ConfigError, match="neither a run directory"):
        write_report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2


# ---------------------------------------------------------------------------- sweeps
@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    from sim.sweep import run_sweep

    root = tmp_path_factory.mktemp("sweep")
    base = yaml.safe_load((REPO / "scenarios" / "commons_grid_base.yaml").read_text())
    base["run"]["steps"] = 5
    spec = {
        "name": "tiny_grid",
        "base": base,
        "grid": {"mechanics.punishment.enabled": [True, False]},
        "zip": {"population.0.policy": ["sustainable", "greedy"]},
        "seeds": 3,
        "backend": {"kind": "local"},
    }
    run_sweep(spec, root / "out")
    return root / "out"


def test_a_sweep_report_shows_distributions_contrasts_and_survival_curves(sweep_dir):
    report = write_report(sweep_dir)
    text = report.read_text()
    sweep = load_sweep_data(sweep_dir)
    assert sweep.params == ["mechanics.punishment.enabled", "population.0.policy"]
    assert sweep.env_type == "commons"
    assert ordered_metrics(sweep)[:2] == ["survival_time", "survived"]  # the spec's headline first
    names = {p.stem for p in (sweep_dir / "plots").glob("*.png")}
    contrast_plots = {"contrast_punishment_enabled", "contrast_majority_policy"}
    assert {"survival", *contrast_plots} <= names
    assert {f"dist_{m.replace('.', '_')}" for m in sweep.metrics} == names - {"survival", *contrast_plots}
    assert len(embedded_pngs(text)) == len(names)
    # The summary table's numbers are summary.csv's: mean, interval and its method, median.
    summary = pd.read_csv(sweep_dir / "summary.csv")
    bounded = summary[summary["ci_method"] != "none"]  # "none": a cell with under 3 runs of the metric
    assert (summary.loc[summary["ci_method"] == "none", "n"] < 3).all()
    assert "fewer than 5 finished runs" in text  # 3 seeds: the report warns
    assert ((bounded["ci95_low"] >= bounded["range_low"]) & (bounded["ci95_high"] <= bounded["range_high"])).all()
    for metric, method in (("survival_time", "hall-t"), ("survived", "wilson")):
        row = summary[summary["metric"] == metric].iloc[0]
        assert row["ci_method"] == method
        shown = (
            f"{row['mean']:.3g} [{row['ci95_low']:.3g}, {row['ci95_high']:.3g}] {method}; median {row['median']:.3g}"
        )
        assert shown in text
    # the last distinct key segments and the group's name, never a list index nor the last part alone
    assert "punishment.enabled=true, majority.policy=sustainable" in text
    assert ">enabled=true, policy=" not in text and "(enabled=" not in text
    assert "population.0" not in text.split("<summary>sweep.yaml")[0]  # only the sweep file shows its keys
    # the contrasts: one table per two-level factor, the numbers of contrasts.csv
    assert "<h3>punishment.enabled: true minus false</h3>" in text
    assert "<h3>majority.policy: greedy minus sustainable</h3>" in text
    diffs = pd.read_csv(sweep_dir / "contrasts.csv")
    row = diffs[(diffs["factor"] == "mechanics.punishment.enabled") & (diffs["metric"] == "survival_time")].iloc[0]
    assert row["paired"] and row["n"] == 3 and row["at"] == "population.0.policy=sustainable"
    assert "<td>majority.policy=sustainable</td><td>survival_time</td>" in text and f"{row['diff']:.4g}" in text
    assert text.count("runs/") >= len(sweep.results)  # every run listed with its directory


def test_survival_fraction_counts_collapses_and_survivors():
    rows = pd.DataFrame({"survival_time": [2, 4, 5, 5], "survived": [False, False, False, True]})
    t = np.arange(0, 6)
    # alive after t steps: collapsed at 2 -> alive for t < 2; at 4 -> t < 4; at 5 -> t < 5; the survivor always
    assert survival_fraction(rows, t, horizon=5).tolist() == [1.0, 1.0, 0.75, 0.75, 0.5, 0.25]


def test_a_run_killed_before_its_first_step_still_gets_a_report(run_result, tmp_path):
    (tmp_path / "config.yaml").write_text((run_result.dir / "config.yaml").read_text())
    for journal in ("events.jsonl", "steps.jsonl"):  # what a killed run leaves behind
        (tmp_path / journal).write_text("")
    text = write_report(tmp_path).read_text()
    assert "Nothing to plot yet" in text and "No decisions were logged" in text
