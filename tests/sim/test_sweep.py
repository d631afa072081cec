"""Sweeps: expansion, resumable runs on Ray, failure recording, aggregation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim.cli import main
from sim.core.schema import ConfigError
from sim.core.stats import describe
from sim.sweep import expand, is_finished, load_sweep, run_sweep

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "scenarios" / "commons_grid_base.yaml"


def sweep_file(tmp_path: Path, **fields) -> Path:
    """A small sweep (2 cells x 2 seeds, 6 steps) written next to a copy of the grid base.
    No report unless asked (``report=True``): plotting costs seconds per sweep."""
    base = yaml.safe_load(BASE.read_text())
    base["run"]["steps"] = 6
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    data = {
        "base": "base.yaml",
        "grid": {"mechanics.punishment.enabled": [True, False]},
        "seeds": 2,
        "backend": {"kind": "ray", "workers": 2},
        "report": False,
    } | fields
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def without_timing(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["wall_seconds"]).reset_index(drop=True)


# ------------------------------------------------------------------ file and expansion
def test_expansion_is_the_grid_times_zip_times_seeds_with_stable_names(tmp_path):
    path = sweep_file(
        tmp_path,
        grid={"environment.preset": ["rich", "scarce"], "mechanics.punishment.enabled": [True, False]},
        zip={"population.0.persona": ["altruistic", "selfish"], "population.0.policy": ["sustainable", "greedy"]},
        seeds=[3, 7],
    )
    specs = expand(*load_sweep(path))
    assert len(specs) == 2 * 2 * 2 * 2 and len({s.name for s in specs}) == 16
    assert {s.seed for s in specs} == {3, 7}
    first = specs[0]
    assert first.params["population.0.persona"] == "altruistic" and first.params["population.0.policy"] == "sustainable"
    assert first.scenario["population"][0]["persona"] == "altruistic" and first.scenario["run"]["seed"] == 3
    # the group's name, never its list index; the last distinct key segments
    assert first.name.startswith(
        "preset=rich_punishment.enabled=true_majority.persona=altruistic_majority.policy=sustainable-"
    )
    assert [s.name for s in expand(*load_sweep(path))] == [s.name for s in specs]  # deterministic
    # Editing the base scenario renames the cells, so old runs are not mistaken for new ones.
    base = yaml.safe_load((tmp_path / "base.yaml").read_text())
    base["run"]["steps"] = 7
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    assert not {s.name for s in expand(*load_sweep(path))} & {s.name for s in specs}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"zip": {"population.0.persona": ["altruistic", "selfish"], "population.0.policy": ["greedy"]}},
            "same length",
        ),
        ({"seeds": 0}, "positive count"),
        ({"grd": {}}, "did you mean 'grid'"),
        ({"grid": {"population.0.size": [2, 0]}}, "population.0.size"),
        ({"grid": {"mechanics.punishment.enabled": []}}, "has no values"),
    ],
)
def test_sweep_file_mistakes_are_reported_before_anything_runs(tmp_path, fields, message):
    with pytest.raises(ConfigError, match=message):
        run_sweep(sweep_file(tmp_path, **fields), tmp_path / "out")
    assert not (tmp_path / "out" / "runs").exists()


# ---------------------------------------------------------------------------- on Ray
def test_sweep_completes_and_aggregates(ray_cluster, tmp_path):
    result = run_sweep(sweep_file(tmp_path), tmp_path / "out")
    res = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(res) == 4 and set(res["status"]) == {"finished"} and not result.failed
    assert {"mechanics.punishment.enabled", "seed", "survival_time", "efficiency", "total_gain.sum"} <= set(res.columns)
    assert all(is_finished(tmp_path / "out" / d) for d in res["dir"])
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert set(summary["cell"]) == set(res["cell"])
    for cell, runs in res.groupby("cell"):
        row = summary[(summary["cell"] == cell) & (summary["metric"] == "efficiency")].iloc[0]
        expected = describe(runs["efficiency"].tolist(), bounds=(0.0, 1.0))
        assert row["n"] == 2 and row["mean"] == pytest.approx(expected.mean)
        assert (row["ci95_low"], row["ci95_high"]) == pytest.approx((expected.ci_low, expected.ci_high), nan_ok=True)
    survived = summary[summary["metric"] == "survived"]  # booleans aggregate as rates
    assert survived["mean"].between(0, 1).all() and set(survived["ci_method"]) == {"none"}  # 2 seeds: no interval


def test_rerun_resumes_and_skips_finished_runs(ray_cluster, tmp_path):
    path, out = sweep_file(tmp_path), tmp_path / "out"
    first = run_sweep(path, out)
    runs = sorted((out / "runs").iterdir())
    kept_mtime = (runs[0] / "metrics.json").stat().st_mtime_ns
    for victim in runs[1:3]:
        (victim / "metrics.json").unlink()  # no longer counts as finished
    (out / "runs" / ".tmp-leftover").mkdir()  # a run interrupted earlier
    again = run_sweep(path, out)
    assert sorted(again.ran) == [r.name for r in runs[1:3]] and len(again.skipped) == 2
    assert (runs[0] / "metrics.json").stat().st_mtime_ns == kept_mtime
    assert not (out / "runs" / ".tmp-leftover").exists()
    pd.testing.assert_frame_equal(without_timing(again.results), without_timing(first.results))


def test_failing_run_is_recorded_while_the_others_finish(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))  # the fault module, importable as in the workers
    path = sweep_file(
        tmp_path,
        zip={"population.0.policy": ["sustainable", "faulty"]},
        imports=["tests.sim.sweep_faults"],
        report=True,
    )
    result = run_sweep(path, tmp_path / "out")
    # the report is written, failed runs included with their errors
    assert result.report == tmp_path / "out" / "report.html"
    page = result.report.read_text()
    assert "4 failed" in page and page.count("RuntimeError: faulty rule: deliberate failure") == 4
    res = result.results.set_index("run")
    failed = res[res["status"] == "failed"]
    assert len(failed) == 4 and sorted(result.failed) == sorted(failed.index)
    assert failed["cell"].str.contains("policy=faulty").all()
    assert failed["error"].str.contains("deliberate failure").all()
    assert (res["status"] == "finished").sum() == 4
    for name in failed.index:
        assert "deliberate failure" in (tmp_path / "out" / "failed" / name / "error.txt").read_text()
        assert not (tmp_path / "out" / "runs" / name).exists()
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert not summary["cell"].str.contains("faulty").any()
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 1  # retried, fails again


def test_local_and_ray_give_identical_runs(ray_cluster, tmp_path):
    path = sweep_file(tmp_path)
    on_ray = run_sweep(path, tmp_path / "ray")
    local = run_sweep(path, tmp_path / "local", backend={"kind": "local"})
    pd.testing.assert_frame_equal(without_timing(local.results), without_timing(on_ray.results))
    for name in on_ray.results["run"]:
        for table in ("events", "steps"):
            a = pd.read_parquet(tmp_path / "ray" / "runs" / name / f"{table}.parquet")
            b = pd.read_parquet(tmp_path / "local" / "runs" / name / f"{table}.parquet")
            pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------------- in-process
def test_interrupted_sweep_leaves_nothing_that_counts_as_finished(tmp_path, monkeypatch, capsys):
    from environments.commons.model import CommonsModel

    path, out = sweep_file(tmp_path, backend={"kind": "local"}, report=True), tmp_path / "out"
    real_step, models = CommonsModel.step, []

    def step(self):  # Ctrl-C in the second step of the second run
        models.append(id(self))
        if len(set(models)) == 2 and models.count(id(self)) == 2:
            raise KeyboardInterrupt
        real_step(self)

    monkeypatch.setattr(CommonsModel, "step", step)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, out)
    left = list((out / "runs").iterdir())
    assert len(left) == 1 and is_finished(left[0])  # the first run; no partial directory
    res = pd.read_parquet(out / "results.parquet")
    assert list(res["status"]) == ["finished", "pending", "pending", "pending"]
    assert not (out / "report.html").exists()  # a report is written only once every run has ended
    monkeypatch.setattr(CommonsModel, "step", real_step)
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 runs: 4 finished (1 already done), 0 failed" in printed
    assert f"report: {out / 'report.html'}" in printed
    page = (out / "report.html").read_text()
    assert "normsim sweep report" in page and "2 cells" in page and "4 finished" in page
    assert json.loads((out / "runs" / left[0].name / "metrics.json").read_text())["status"] == "finished"


def test_report_false_writes_no_report(tmp_path, capsys):
    path, out = sweep_file(tmp_path, backend={"kind": "local"}, seeds=1, report=False), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "report:" not in printed and not (out / "report.html").exists()
    # the summary per cell: readable factor names, each headline metric with its interval's method
    # one seed per cell: a warning that intervals need more runs, then the summary per cell
    assert printed.startswith("warning: 2 of 2 cells have fewer than 5 finished runs")
    assert "\npunishment.enabled=true (1 runs, 0 failed)" in printed
    # one run: its value, and no interval
    assert re.search(r"\n  survived +[01], n=1: too few runs for an interval\n", printed)
    assert re.search(r"\n  survival_time +\d+, n=1: too few runs for an interval\n", printed)
    assert f"contrasts: {out / 'contrasts.csv'}" in printed and (out / "contrasts.csv").exists()
    assert (out / "summary.csv").exists() and yaml.safe_load((out / "sweep.yaml").read_text())["report"] is False
    data = yaml.safe_load(path.read_text())
    del data["report"]
    assert load_sweep(data)[0].report is True  # without the key, a sweep writes its report


def test_interrupted_ray_sweep_cancels_runs_in_flight(ray_cluster, tmp_path):
    path, out = sweep_file(tmp_path, seeds=3), tmp_path / "out"  # 6 runs, 2 at a time

    def ctrl_c(row, done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(path, out, on_run=ctrl_c)
    left = list((out / "runs").iterdir())
    assert left and all(is_finished(d) for d in left)  # no partial directory, none half-renamed
    res = pd.read_parquet(out / "results.parquet")
    assert (res["status"] == "finished").sum() == len(left) and (res["status"] == "pending").sum() == 6 - len(left)
