"""Sweeps as a researcher runs them: --seeds, --set on grid keys, a missing base named,
contrasts printed, sim.load_sweep's tables, and no report rebuilt when nothing ran."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import sim
from sim.cli import main
from sim.core.schema import ConfigError
from sim.sweep import expand, load_sweep, validate_sweep

BASE = Path(__file__).resolve().parents[2] / "scenarios" / "commons_grid_base.yaml"


def sweep_file(tmp_path: Path, **fields) -> Path:
    base = yaml.safe_load(BASE.read_text())
    base["run"]["steps"] = 4
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    data = {
        "base": "base.yaml",
        "grid": {"mechanics.punishment.enabled": [True, False]},
        "seeds": 1,
        "backend": {"kind": "local"},
        "report": False,
    } | fields
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_seeds_3_prints_contrasts_and_load_sweep_returns_its_tables(tmp_path, capsys):
    path, out = sweep_file(tmp_path), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--seeds", "3", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "contrasts (on minus off, 95 % interval):" in printed
    assert "punishment.enabled: true minus false" in printed
    assert re.search(r"\n    survival_time +-?\d[\d.]* (\[-?[\d.e+-]+, -?[\d.e+-]+\] )?\(3 paired\)", printed)
    tables = sim.load_sweep(out)
    assert sorted(tables.runs["seed"].unique()) == [0, 1, 2] and len(tables.runs) == 6
    assert tables.factors == ["mechanics.punishment.enabled"]
    steps, events = tables.steps, tables.events
    assert {"run", "cell", "seed", "mechanics.punishment.enabled", "step", "stock"} <= set(steps.columns)
    assert steps.groupby("run").size().to_dict() == {
        r: int(s) for r, s in zip(tables.runs["run"], tables.runs["steps_completed"], strict=True)
    }
    assert set(events["mechanics.punishment.enabled"]) == {True, False}
    # punishment off: no punish decisions in those runs
    assert not ((events["mechanics.punishment.enabled"] == False) & (events["phase"] == "punish")).any()  # noqa: E712


def test_set_on_a_grid_key_replaces_its_levels_and_on_others_the_base(tmp_path):
    path = sweep_file(tmp_path, zip={"population.0.persona": ["altruistic", "selfish"]})
    sweep, base_dir = load_sweep(path)
    only_true = expand(sweep, base_dir, ["mechanics.punishment.enabled=true", "run.steps=2"])
    assert {s.params["mechanics.punishment.enabled"] for s in only_true} == {True} and len(only_true) == 2
    assert {s.scenario["run"]["steps"] for s in only_true} == {2}
    both = expand(sweep, base_dir, ["population.0.persona=neutral"])  # one value for every zip row
    assert {s.params["population.0.persona"] for s in both} == {"neutral"}
    assert validate_sweep(path, ["mechanics.punishment.enabled=[true, false]"], seeds=4) == (4, 16)
    with pytest.raises(ConfigError, match="seeds"):
        validate_sweep(path, seeds=0)


def test_a_missing_base_is_named_with_where_it_was_looked_for(tmp_path):
    path = sweep_file(tmp_path)
    (tmp_path / "base.yaml").unlink()
    with pytest.raises(
        ConfigError, match=r"^base: base\.yaml: no such file next to the sweep file \(looked for .*base\.yaml\)"
    ):
        validate_sweep(path)


def test_a_sweep_with_nothing_to_run_keeps_its_report(tmp_path, capsys):
    path, out = sweep_file(tmp_path, report=True), tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    report = out / "report.html"
    written = report.stat().st_mtime_ns
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert report.stat().st_mtime_ns == written  # not rebuilt: nothing ran
    assert f"report: {report}" in capsys.readouterr().out
    # a new run (another seed) makes it stale, and it is rebuilt
    assert main(["sweep", str(path), "--out", str(out), "--quiet", "--seeds", "2"]) == 0
    assert report.stat().st_mtime_ns > written
