"""Runs under generated file-system faults: a full disk at any write, a journal or the whole
directory removed mid-run. Whatever happens: exit 0 or one error line (never a traceback),
and what is left holds whole steps only."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sim import logger, rundir
from sim.cli import main

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ["commons_scripted", "bandit_scripted", "public_goods_punishment", "forum_moderated", "webshop_adhere"]


class Faulty:
    """A journal whose writes fail as a full disk does once ``budget`` writes are spent."""

    def __init__(self, real, budget: list[int]) -> None:
        self.real, self.budget = real, budget

    def write(self, text: str) -> int:
        self.budget[0] -= 1
        if self.budget[0] < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real.write(text)

    def __enter__(self) -> Faulty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()

    def __iter__(self):
        return iter(self.real)

    def __getattr__(self, name: str):
        return getattr(self.real, name)


FAULT = st.one_of(
    st.tuples(st.just("full disk at write"), st.integers(0, 60)),
    st.tuples(st.just("full disk converting"), st.sampled_from(logger.TABLES)),
    st.tuples(st.just("full disk writing json"), st.integers(0, 3)),
    st.tuples(st.just("journal removed at step"), st.integers(1, 3)),
    st.tuples(st.just("directory removed at step"), st.integers(1, 3)),
)


def _install(mp: pytest.MonkeyPatch, fault: tuple[str, object]) -> None:
    kind, arg = fault
    if kind == "full disk at write":
        budget = [int(arg)]
        mp.setattr(logger, "open", lambda *a, **k: Faulty(open(*a, **k), budget), raising=False)  # noqa: SIM115
    elif kind == "full disk converting":
        real = logger._write_parquet

        def write_parquet(name, rows, path):
            if name == arg:
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real(name, rows, path)

        mp.setattr(logger, "_write_parquet", write_parquet)
    elif kind == "full disk writing json":
        real_json, calls = rundir.write_json, [0]

        def write_json(path, data):
            calls[0] += 1
            if calls[0] > int(arg):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            real_json(path, data)

        for module in ("sim.rundir", "sim.runner"):
            mp.setattr(f"{module}.write_json", write_json)
    else:
        real_step = logger.RunWriter.write_step

        def write_step(self, events, step_row, agents=None):
            real_step(self, events, step_row, agents)
            if step_row.get("step") == arg:
                if kind.startswith("journal"):
                    os.unlink(self.dir / "events.jsonl")
                else:
                    shutil.rmtree(self.dir)

        mp.setattr(logger.RunWriter, "write_step", write_step)


@settings(
    max_examples=int(os.environ.get("NORMSIM_FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(name=st.sampled_from(SCENARIOS), steps=st.integers(1, 4), fault=FAULT)
def test_a_run_under_a_file_system_fault_ends_cleanly_with_whole_steps(tmp_path_factory, capsys, name, steps, fault):
    out = tmp_path_factory.mktemp("fault")
    argv = ["-q", "run", str(REPO / "scenarios" / f"{name}.yaml"), "--out", str(out)]
    argv += ["--set", f"run.steps={steps}", "--set", "output.report=false"]
    with pytest.MonkeyPatch.context() as mp:
        _install(mp, fault)
        code = main(argv)  # raises nothing: a traceback here fails the test
    err = capsys.readouterr().err.strip().splitlines()
    assert code in (0, 2), (fault, err)
    if code == 2:
        assert err and err[-1].startswith("error: ") and not any("Traceback" in line for line in err), err
    for run_dir in (p for p in out.iterdir() if p.is_dir()):
        metrics = run_dir / "metrics.json"
        if metrics.exists():
            json.loads(metrics.read_text())  # never half a file
        if (run_dir / "steps.parquet").exists() and (run_dir / "events.parquet").exists():
            steps, events = (pd.read_parquet(run_dir / f"{t}.parquet") for t in ("steps", "events"))
            done = list(steps["step"]) if "step" in steps else []  # no step at all: a table without columns
            assert done == list(range(1, len(done) + 1)), (fault, done)
            assert set(events["step"]) <= set(done), fault
