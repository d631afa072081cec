"""Inputs are read with a bound, repeated keys are refused, a misspelt top-level key is named."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from sim.cli import main
from sim.config import MAX_YAML_BYTES, load_scenario, read_yaml
from sim.core.schema import ConfigError

GOOD = "name: t\nenvironment: {type: commons}\npopulation:\n  - {name: a, size: 3, policy: greedy}\nrun: {steps: 2}\n"


def one_error(capsys) -> list[str]:
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[0].startswith("error: ") and "Traceback" not in "\n".join(err)
    return err


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_an_endless_file_is_read_only_to_the_cap(capsys):
    assert main(["validate", "/dev/zero"]) == 2
    [line] = one_error(capsys)
    assert "/dev/zero" in line and f"more than {MAX_YAML_BYTES} bytes" in line


def test_a_fifo_is_read_once_and_with_a_bound(tmp_path, capsys):
    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)

    def feed(text: bytes) -> threading.Thread:
        def write() -> None:
            with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as f:  # the reader may stop at its cap
                f.write(text)

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        return thread

    writer = feed(GOOD.encode())
    assert main(["validate", str(fifo)]) == 0  # read once: the pipe holds no second copy
    writer.join(5)
    assert "valid (commons, 3 agents, 2 steps)" in capsys.readouterr().out
    writer = feed(b"#" * (MAX_YAML_BYTES + 4096))
    with pytest.raises(ConfigError, match=f"more than {MAX_YAML_BYTES} bytes"):
        read_yaml(fifo)
    writer.join(5)


def test_a_repeated_key_names_the_key_and_both_lines(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("size: 3, policy: greedy}", "size: 3, policy: greedy}\n    size: 50").replace(
        "  - {name: a, size: 3, policy: greedy}\n    size: 50", "  - name: a\n    size: 3\n    policy: greedy\n    size: 50"
    ))  # fmt: skip
    assert main(["validate", str(path)]) == 2
    [line] = one_error(capsys)
    assert "duplicate key 'size' on line 5 and line 7" in line and str(path) in line


def test_a_repeated_top_level_key_is_refused_and_merges_still_work(tmp_path):
    with pytest.raises(ConfigError, match="duplicate key 'run' on line 5 and line 6"):
        path = tmp_path / "a.yaml"
        path.write_text(GOOD + "run: {steps: 9}\n")
        load_scenario(path)
    path = tmp_path / "b.yaml"
    path.write_text(
        "name: t\nenvironment: {type: commons}\nbase: &g {name: a, size: 3, policy: greedy}\n"
        "population:\n  - {<<: *g, size: 4}\n"
    )
    data = read_yaml(path)  # a merged key overridden is what << is for: not a duplicate
    assert data["population"][0]["size"] == 4


def test_a_misspelt_top_level_key_gets_the_did_you_mean_line(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("environment:", "enviroment:"))
    assert main(["validate", str(path)]) == 2
    err = one_error(capsys)
    assert "unknown key 'enviroment' (did you mean 'environment'?)" in "\n".join(err)
    assert "required field is missing" not in "\n".join(err)
