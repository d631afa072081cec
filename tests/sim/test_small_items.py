"""The small items: sweep -q, control characters escaped, progress lines with rate and ETA."""

from __future__ import annotations

import yaml

from sim import progress
from sim.cli import main
from tests.sim.test_ownership import grid


def test_sweep_takes_q_as_every_command_does(tmp_path, capsys):
    assert main(["sweep", str(grid(tmp_path)), "--out", str(tmp_path / "out"), "--local", "-q"]) == 0
    captured = capsys.readouterr()
    assert "[1/2]" not in captured.err and "2 runs: 2 finished" in captured.out


def test_a_nul_or_an_escape_in_run_id_is_shown_escaped(tmp_path, capsys):
    data = {
        "name": "t",
        "environment": {"type": "commons"},
        "population": [{"name": "a", "size": 2, "policy": "greedy"}],
    }
    data["output"] = {"run_id": "a\0b\x1b[31mred"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "\0" not in err and "\x1b" not in err and "a\\x00b\\x1b[31mred" in err


def test_progress_lines_off_a_terminal_have_rate_and_eta(capsys, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    bar = progress.Progress(total=10, label="run", every_seconds=0.0)
    now[0] = 102.0
    bar.update()  # 1 step in 2 s, 9 left: 18 s
    now[0] = 103.0
    bar.update()  # 2 steps in 3 s: 0.667 steps/s, 8 left: 12 s
    now[0] = 200.0
    bar.update(n=8)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "[run] 1/10 steps (2 s/step, ETA 00:18)",
        "[run] 2/10 steps (1.5 s/step, ETA 00:12)",
        "[run] 10/10 steps (10 s/step)",  # done: the pace, no time left
    ]
