"""validate checks what run will need: a loadable model, memory for the society, one cap on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sim import rundir
from sim.cli import main


def scenario(tmp_path: Path, model: str | None = None, sizes: tuple[int, ...] = (2,)) -> str:
    groups = [{"name": f"g{i}", "size": n, "policy": "greedy"} for i, n in enumerate(sizes)]
    if model is not None:
        groups[0]["policy"] = {"type": "llm", "model": model}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "environment": {"type": "commons"}, "population": groups}))
    return str(path)


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def broken_config(folder: Path) -> None:
    folder.mkdir()
    (folder / "config.json").write_text("{not json")


def config_without_tokenizer(folder: Path) -> None:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))


def plain_file(path: Path) -> None:
    path.write_text("weights?")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (Path.mkdir, "has no config.json"),
        (broken_config, "is not a JSON object"),
        (plain_file, "is a file; expected a model folder"),
        (config_without_tokenizer, "its tokenizer does not load"),
    ],
)
def test_validate_refuses_a_model_that_run_cannot_load(tmp_path, capsys, make, message):
    model = tmp_path / "model"
    make(model)
    assert main(["validate", scenario(tmp_path, str(model))]) == 2
    line = error_line(capsys)
    assert "population[0].policy.model" in line and message in line
    assert main(["-q", "run", scenario(tmp_path, str(model)), "--out", str(tmp_path / "runs")]) == 2
    assert message in error_line(capsys) and not (tmp_path / "runs").exists()


def test_one_cap_on_the_whole_population(tmp_path, capsys):
    assert main(["validate", scenario(tmp_path, sizes=(100_000,) * 30)]) == 2
    err = capsys.readouterr().err
    assert "3,000,000 agents in 30 groups" in err and "at most 1,000,000 in all" in err


def test_a_society_larger_than_the_machines_memory_is_refused_with_the_numbers(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(rundir, "machine_memory", lambda: 2**30)  # a 1 GiB machine
    assert main(["validate", scenario(tmp_path, sizes=(100_000, 100_000))]) == 2
    line = error_line(capsys)
    assert "200,000 agents need about 1.4 GiB" in line and "this machine's 1.0 GiB" in line
    assert main(["validate", scenario(tmp_path, sizes=(1_000,))]) == 0  # a small one fits
    agents, weights = rundir.memory_estimate(rundir.load_scenario(scenario(tmp_path, sizes=(10, 20))))
    assert agents == rundir.BASE_BYTES + 30 * rundir.BYTES_PER_AGENT and weights == 0
