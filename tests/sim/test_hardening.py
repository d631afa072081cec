"""Issue 17's bugs: each case here failed (a traceback, an escape, a deletion) before the fix.

Every user mistake must end as one ``error:`` line naming the field or file, exit code 2,
and nothing written outside the output root.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from sim.cli import main
from sim.config import ScenarioLoader, load_scenario, read_yaml, safe_yaml
from sim.core.schema import ConfigError
from sim.runner import run

ROOT = Path(__file__).resolve().parents[2]
SCRIPTED = ROOT / "scenarios" / "commons_scripted.yaml"
FORUM = ROOT / "scenarios" / "forum_unmoderated.yaml"


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:  # a validation error lists its fields on the lines below its `error:` line
        assert needle in err, err
    return err


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def scripted(**changes) -> dict:
    data = yaml.safe_load(SCRIPTED.read_text())
    data["run"]["steps"] = 3
    data.setdefault("output", {})["report"] = False
    for key, value in changes.items():
        data[key] = value
    return data


# ------------------------------------------------------------- 1. alias expansion
BOMB = "\n".join(
    ["b0: &b0 [x, x, x, x, x, x, x, x, x]"] + [f"b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, 9)]
)


def test_alias_bomb_in_forum_graph_params_is_refused_at_validate_and_run(tmp_path, capsys):
    text = FORUM.read_text().replace("params: {k: 4, p: 0.1}", "params: {k: 4, p: 0.1, x: *b8}")
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + "\n" + text)
    started = time.perf_counter()
    assert main(["validate", str(path)]) == 2
    one_error_line(capsys, str(path), "aliases")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    one_error_line(capsys, "aliases")
    assert time.perf_counter() - started < 10 and not (tmp_path / "out").exists()


def test_alias_bomb_in_a_sweep_grid_is_refused(tmp_path, capsys):
    write(tmp_path / "base.yaml", scripted())
    path = tmp_path / "sweep.yaml"
    path.write_text(BOMB + "\nbase: base.yaml\ngrid: {run.steps: *b8}\nseeds: 1\nbackend: {kind: local}\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "aliases")
    assert main(["validate", str(path)]) == 2
    one_error_line(capsys, "aliases")


def test_free_form_fields_are_typed(tmp_path):
    data = yaml.safe_load(FORUM.read_text())
    data["environment"]["graph"]["params"] = {"k": 4, "p": {"nested": [1, 2]}}
    with pytest.raises(ConfigError, match=r"environment\.graph\.params\.p"):
        load_scenario(data)


# ------------------------------------------------------------- 2. run_id escapes
@pytest.mark.parametrize("run_id", ["../../X", "ABSOLUTE", "a/b", "..", ".hidden", ""])
def test_run_id_must_be_a_plain_name(tmp_path, capsys, run_id):
    out = tmp_path / "o1" / "sub"
    run_id = str(tmp_path / "abs") if run_id == "ABSOLUTE" else run_id
    code = main(["run", str(SCRIPTED), "--out", str(out), "--set", f"output.run_id={run_id}", "-q"])
    assert code == 2
    one_error_line(capsys, "output.run_id")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, inside --out or outside


def test_run_directory_lies_under_out(tmp_path):
    result = run(SCRIPTED, out=tmp_path / "o", overrides={"output.run_id": "mine", "run.steps": 2}, report=False)
    assert result.dir == tmp_path / "o" / "mine"


# ------------------------------------------------------ 3. report --out and plots
def test_report_out_never_deletes_files_it_did_not_write(tmp_path, capsys):
    result = run(SCRIPTED, out=tmp_path, overrides={"run.steps": 4}, report=False)
    elsewhere = tmp_path / "site"
    (elsewhere / "plots").mkdir(parents=True)
    theirs = elsewhere / "plots" / "logo.png"
    theirs.write_bytes(b"not ours")
    assert main(["report", str(result.dir), "--out", str(elsewhere / "x.html")]) == 0
    assert theirs.read_bytes() == b"not ours"
    ours = {p.name for p in (elsewhere / "plots").glob("*.png")} - {"logo.png"}
    assert ours, "the report wrote its plots"
    # A later report removes its own stale plots, and still nothing else.
    stale = elsewhere / "plots" / sorted(ours)[0]
    manifest = elsewhere / "plots" / ".normsim-plots.json"
    manifest.write_text(json.dumps([*json.loads(manifest.read_text()), "gone.png"]))
    (elsewhere / "plots" / "gone.png").write_bytes(b"stale")
    assert main(["report", str(result.dir), "--out", str(elsewhere / "x.html")]) == 0
    assert theirs.exists() and stale.exists() and not (elsewhere / "plots" / "gone.png").exists()


# ------------------------------------------------------- 4. user text is data
def test_forum_rule_text_with_braces_runs(tmp_path):
    data = yaml.safe_load(FORUM.read_text())
    data["run"]["steps"] = 4
    data["environment"]["rules"] = [{"id": "house", "text": "No {secret} and no {0} and no {"}]
    data["environment"]["topics"] = [{"name": "pets", "invites": "house"}]
    result = run(data, out=tmp_path, report=False)
    texts = " ".join(t for t in result.events["text"].dropna())
    assert "{secret}" in texts  # the rule text reached the content verbatim


def test_dollar_signs_in_group_names_and_texts_do_not_crash_the_report(tmp_path, capsys):
    data = scripted(description="costs $5 and $\\frac{a}{$")
    data["population"][0]["name"] = "$\\frac{x$"
    path = write(tmp_path / "s.yaml", data)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--set", "output.report=true", "-q"]) == 0
    report = next((tmp_path / "o").glob("*/report.html")).read_text()
    assert "$\\frac{x$" in report


# ------------------------------------------------------- 5. one-line errors
def test_non_utf8_scenario(tmp_path, capsys):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(SCRIPTED.read_text().replace("# ", "# caf\xe9 ", 1).encode("latin-1"))
    assert main(["validate", str(path)]) == 2
    one_error_line(capsys, str(path), "UTF-8")


def test_directory_as_scenario(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    one_error_line(capsys, str(tmp_path), "directory")


def test_out_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert main(["run", str(SCRIPTED), "--out", str(target), "-q"]) == 2
    one_error_line(capsys, "--out", "is a file")
    assert main(["run", str(SCRIPTED), "--out", str(target / "below"), "-q"]) == 2
    one_error_line(capsys, "--out", "is a file")
    assert target.read_text() == "x"


def test_full_disk_keeps_the_first_error_and_writes_metrics(tmp_path, capsys, monkeypatch):
    import errno

    from sim.logger import RunWriter

    calls = {"n": 0}
    real_write_step, real_close = RunWriter.write_step, RunWriter.close

    def full_after_one(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.dir / "events.jsonl"))
        return real_write_step(self, *args, **kwargs)

    def close_also_fails(self):
        real_close(self)
        raise OSError(errno.EIO, "second error that must not hide the first")

    monkeypatch.setattr(RunWriter, "write_step", full_after_one)
    monkeypatch.setattr(RunWriter, "close", close_also_fails)
    out = tmp_path / "o"
    assert main(["run", str(SCRIPTED), "--out", str(out), "--set", "output.report=false", "-q"]) == 2
    line = one_error_line(capsys, "No space left on device", "events.jsonl")
    assert "second error" not in line
    metrics = json.loads(next(out.glob("*/metrics.json")).read_text())
    assert metrics["status"] == "failed" and metrics["steps_completed"] == 1
    assert "No space left" in metrics["error"]


def test_read_only_output(tmp_path, capsys, monkeypatch):
    import errno

    from sim import logger

    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr(logger.RunWriter, "__init__", refuse)
    assert main(["run", str(SCRIPTED), "--out", str(tmp_path / "ro"), "-q"]) == 2
    one_error_line(capsys, "Permission denied")


def test_missing_model_is_caught_by_validate_and_run_leaves_no_directory(tmp_path, capsys):
    data = scripted()
    data["population"][0]["policy"] = {"type": "llm", "model": "no-such-org/no-such-model-xyz"}
    path = write(tmp_path / "s.yaml", data)
    assert main(["validate", str(path)]) == 2
    one_error_line(capsys, "population[0].policy.model", "no-such-org/no-such-model-xyz", "hf download")
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "-q"]) == 2
    one_error_line(capsys, "population[0].policy.model")
    assert not (tmp_path / "o").exists()


def test_missing_model_in_a_sweep_cell_stops_the_sweep_before_any_run(tmp_path, capsys):
    data = scripted()
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(data))
    missing = {"type": "llm", "model": "no-such-org/no-such-model-xyz"}
    sweep = {"base": "base.yaml", "seeds": 1, "backend": {"kind": "local"}, "report": False}
    path = write(tmp_path / "sweep.yaml", sweep | {"grid": {"population.0.policy": ["sustainable", missing]}})
    assert main(["validate", str(path)]) == 2
    one_error_line(capsys, "cell", "no-such-model-xyz")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    one_error_line(capsys, "population[0].policy.model")
    assert not (tmp_path / "o").exists()


def test_trust_remote_code_refusal_says_so(tmp_path, capsys):
    model = tmp_path / "custom-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"auto_map": {"AutoModelForCausalLM": "modeling.Model"}}))
    data = scripted()
    data["population"][0]["policy"] = {"type": "llm", "model": str(model)}
    path = write(tmp_path / "s.yaml", data)
    assert main(["validate", str(path)]) == 2
    line = one_error_line(capsys, "population[0].policy.model", "trust_remote_code: true")
    assert "hf download" not in line


def test_code_executing_settings_are_pointed_out_at_validate(tmp_path, capsys):
    model = tmp_path / "custom-model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"auto_map": {}}))
    data = scripted()
    data["population"][0]["policy"] = {"type": "llm", "model": str(model), "trust_remote_code": True}
    assert main(["validate", str(write(tmp_path / "s.yaml", data))]) == 0
    assert "trust_remote_code: true runs Python code" in capsys.readouterr().err
    write(tmp_path / "base.yaml", scripted())
    sweep = write(tmp_path / "sweep.yaml", {"base": "base.yaml", "seeds": 1, "imports": ["json"]})
    assert main(["validate", str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "valid sweep (1 cells, 1 runs)" in captured.out and "'json' is imported" in captured.err


# ------------------------------------------------------- 6. senseless values
@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("environment.capacity", ".inf", "environment.capacity"),
        ("environment.capacity", "1e308", "capacity"),
        ("mechanics.punishment.fine", ".inf", "mechanics.punishment.fine"),
        ("mechanics.punishment.fine", "1e300", "fine"),
        ("environment.norm_options", "[1, .inf]", "environment.norm_options"),
        ("environment.norm_options", "[1, .nan]", "environment.norm_options"),
        ("environment.norm_options", "[-3, 5]", "environment.norm_options"),
    ],
)
def test_senseless_numbers_are_refused(capsys, key, value, field):
    assert main(["validate", str(SCRIPTED), "--set", f"{key}={value}"]) == 2
    one_error_line(capsys, field)


# ------------------------------------------------------------- 7. large files
def test_the_c_loader_is_used_and_large_files_are_capped(tmp_path, capsys):
    if yaml.__with_libyaml__:
        # libyaml's parser (a wall-clock comparison is left to the report: on a shared
        # machine it is too noisy for a test).
        assert issubclass(ScenarioLoader, yaml.CSafeLoader)
        assert yaml.cyaml.CParser in ScenarioLoader.__mro__
    huge = tmp_path / "huge.yaml"
    huge.write_text("a: " + "x" * 5_000_000)
    started = time.perf_counter()
    assert main(["validate", str(huge)]) == 2
    one_error_line(capsys, str(huge), "at most")
    assert time.perf_counter() - started < 2
    assert read_yaml(SCRIPTED)["name"] == "commons_scripted"
    assert safe_yaml("a: [1, 2]", "x") == {"a": [1, 2]}


def _seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


# ------------------------------------------------------------- 8. leftovers
def test_host_vectors_go_to_a_private_folder_not_a_fixed_shared_path():
    import stat
    import tempfile

    from agents.host import private_vector_dir

    folder, other = private_vector_dir(), private_vector_dir()
    try:
        assert folder != Path(tempfile.gettempdir()) / "normsim-host-vectors" and folder != other
        assert folder.name.startswith("normsim-host-vectors-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700  # no other user reads or plants vectors
    finally:
        folder.rmdir()
        other.rmdir()


def test_a_wrapup_error_after_good_steps_is_raised_and_recorded(tmp_path, capsys, monkeypatch):
    import errno

    from sim.logger import RunWriter

    real_close = RunWriter.close

    def close_fails(self):
        real_close(self)
        raise OSError(errno.EROFS, "Read-only file system", str(self.dir / "events.parquet"))

    monkeypatch.setattr(RunWriter, "close", close_fails)
    out = tmp_path / "o"
    assert main(["run", str(SCRIPTED), "--out", str(out), "--set", "output.report=false", "-q"]) == 2
    one_error_line(capsys, "Read-only file system", "events.parquet")
    metrics = json.loads(next(out.glob("*/metrics.json")).read_text())
    assert metrics["status"] == "failed" and metrics["steps_completed"] == 2
