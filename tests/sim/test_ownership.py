"""A run owns its directory from the first moment; two sweeps on one root never interfere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sim import runner
from sim.core.schema import ConfigError
from sim.logger import OWNER, RunWriter, claim_dir
from sim.runner import run
from sim.sweep_exec import TMP_PREFIX, clean_partial, sweep_lock

REPO = Path(__file__).resolve().parents[2]
SCRIPTED = REPO / "scenarios" / "commons_scripted.yaml"

# Both processes wait at a barrier, then run; loading the policies is made slow (1 s),
# so each checks for its directory while the other is still loading: on a directory
# made only after loading, both pick the same one.
DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import sim.runner as runner
    real = runner.build_policies
    def slow(*a, **k):
        time.sleep(1.0)
        return real(*a, **k)
    runner.build_policies = slow
    barrier, me, n = Path(sys.argv[1]), sys.argv[2], 2
    (barrier / me).touch()
    while len(list(barrier.iterdir())) < n:
        time.sleep(0.01)
    from sim.cli import main
    sys.exit(main(sys.argv[3:]))
    """
)


def start_together(tmp_path: Path, *commands: list[str]) -> list[subprocess.CompletedProcess]:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(barrier), str(i), *cmd],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, cmd in enumerate(commands)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=240), *p.communicate()) for p in procs]


def test_two_runs_started_together_get_two_complete_separate_directories(tmp_path):
    out = tmp_path / "runs"
    cmd = ["run", str(SCRIPTED), "--out", str(out), "--set", "run.steps=2", "--set", "output.report=false", "-q"]
    done = start_together(tmp_path, cmd, cmd)
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    dirs = sorted(p for p in out.iterdir() if p.is_dir())
    assert [d.name for d in dirs] == ["commons_scripted-steps=2-seed0", "commons_scripted-steps=2-seed0-2"]
    events = [pd.read_parquet(d / "events.parquet") for d in dirs]
    for d, ev in zip(dirs, events, strict=True):
        metrics = json.loads((d / "metrics.json").read_text())
        assert metrics["status"] == "finished" and metrics["steps_completed"] == 2
        assert sorted(pd.read_parquet(d / "steps.parquet").step) == [1, 2]  # each step once
        assert set(ev.run_id) == {d.name} and not (d / OWNER).exists()
    assert len(events[0]) == len(events[1])  # same scenario and seed: same events, none mixed in


def test_a_run_started_while_another_loads_gets_its_own_directory(tmp_path, monkeypatch):
    real, inner = runner.build_policies, []

    def nested(scenario, given=None):  # while the first run loads its models, a second one runs
        if not inner:
            inner.append(None)
            inner[0] = run(SCRIPTED, out=tmp_path, report=False)
        return real(scenario, given)

    monkeypatch.setattr(runner, "build_policies", nested)
    outer = run(SCRIPTED, out=tmp_path, report=False)
    assert outer.dir != inner[0].dir and outer.dir.parent == inner[0].dir.parent
    steps = [list(r.steps.step) for r in (outer, inner[0])]
    assert steps[0] == steps[1] == list(range(1, outer.metrics["steps_completed"] + 1))  # each step once
    assert len(outer.events) == len(inner[0].events) and set(outer.events.run_id) == {outer.dir.name}


def test_a_run_never_writes_into_another_runs_directory(tmp_path):
    first = run(SCRIPTED, out=tmp_path, overrides={"run.steps": 1}, report=False)
    before = {p.name: p.read_bytes() for p in first.dir.iterdir()}
    with pytest.raises(ConfigError, match="already holds another run"):
        run(SCRIPTED, run_dir=first.dir, overrides={"run.steps": 1}, report=False)
    assert {p.name: p.read_bytes() for p in first.dir.iterdir()} == before


def test_a_directory_held_by_another_process_is_refused(tmp_path):
    held = tmp_path / "held"
    held.mkdir()
    (held / OWNER).write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(ConfigError, match="process 1 on elsewhere writes it"):
        claim_dir(held, next_free=False)
    with pytest.raises(ConfigError, match="another run"):
        RunWriter(held)
    assert sorted(p.name for p in held.iterdir()) == [OWNER]  # no journal left beside the owner's


def test_journals_are_never_appended_to(tmp_path):
    (tmp_path / "events.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(ConfigError, match="journal events.jsonl"):
        RunWriter(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != OWNER) == ["events.jsonl"]


def test_a_failed_start_leaves_no_directory(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("model will not load")

    monkeypatch.setattr(runner, "build_policies", broken)
    with pytest.raises(RuntimeError):
        run(SCRIPTED, out=tmp_path, report=False)
    assert list(tmp_path.iterdir()) == []


def grid(tmp_path: Path) -> Path:
    base = yaml.safe_load((REPO / "scenarios" / "commons_grid_base.yaml").read_text())
    base["run"]["steps"] = 2
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    sweep = {"base": "base.yaml", "grid": {"mechanics.punishment.enabled": [True, False]}, "seeds": 1}
    sweep |= {"backend": {"kind": "local"}, "report": False}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def test_two_sweeps_on_one_root_one_refuses_with_one_line(tmp_path):
    out = tmp_path / "out"
    cmd = ["sweep", str(grid(tmp_path)), "--out", str(out), "--quiet"]
    done = sorted(start_together(tmp_path, cmd, cmd), key=lambda d: d.returncode)
    assert [d.returncode for d in done] == [0, 2], [d.stderr for d in done]
    refusal = done[1].stderr.strip().splitlines()
    assert len(refusal) == 1 and "another sweep" in refusal[0] and str(out) in refusal[0]
    results = pd.read_parquet(out / "results.parquet")
    assert list(results.status) == ["finished", "finished"]
    assert not (out / "failed").exists() and not list((out / "runs").glob(f"{TMP_PREFIX}*"))


def test_sweep_lock_is_exclusive_and_released(tmp_path):
    with sweep_lock(tmp_path), pytest.raises(ConfigError, match=f"process {os.getpid()}"), sweep_lock(tmp_path):
        pass
    with sweep_lock(tmp_path):  # released when the first ended
        pass


def test_cleaning_leaves_a_live_processs_temporary_run_alone(tmp_path):
    runs = tmp_path / "runs"
    live, dead = runs / f"{TMP_PREFIX}a-1", runs / f"{TMP_PREFIX}b-2"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for path, pid in ((live, sleeper.pid), (dead, 2**22 + 7)):
            path.mkdir(parents=True)
            (path / OWNER).write_text(json.dumps({"pid": pid, "host": os.uname().nodename}))
        clean_partial(tmp_path)
        assert live.exists() and not dead.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_failed_start_leaves_a_callers_own_directory_in_place(tmp_path, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("model will not load")

    monkeypatch.setattr(runner, "build_policies", broken)
    (tmp_path / "mine").mkdir()
    with pytest.raises(RuntimeError):
        run(SCRIPTED, run_dir=tmp_path / "mine", report=False)
    assert (tmp_path / "mine").is_dir() and list((tmp_path / "mine").iterdir()) == []  # no marker left either
