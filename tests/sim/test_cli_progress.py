"""The command line's help, --quiet/--verbose, and progress output off a terminal."""

from __future__ import annotations

import re

import pytest

from sim import progress
from sim.cli import build_parser, main
from sim.progress import Progress


@pytest.fixture(autouse=True)
def normal_verbosity():
    progress.configure()
    yield
    progress.configure()


def _commands(parser, prefix="normsim"):
    """(name, parser) of every command and nested sub-command."""
    for action in parser._subparsers._group_actions if parser._subparsers else ():  # argparse has no public accessor
        for name, command in action.choices.items():
            yield f"{prefix} {name}", command
            yield from _commands(command, f"{prefix} {name}")


def test_every_command_has_help_with_an_example_and_verbosity_flags(capsys):
    commands = dict(_commands(build_parser()))
    assert {"normsim run", "normsim validate", "normsim report", "normsim sweep"} <= set(commands)
    missing = [name for name, command in commands.items() if "example" not in command.format_help()]
    assert missing == [], f"--help shows no example: {missing}"
    for name, command in commands.items():
        text = command.format_help()
        assert "--quiet" in text and "--verbose" in text, f"{name} lacks --quiet/--verbose"
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "examples:" in top and "normsim run scenarios/commons_scripted.yaml" in top


@pytest.mark.parametrize("argv", [["-q", "validate", "X"], ["validate", "X", "--quiet"]])
def test_quiet_is_accepted_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert bool(getattr(args, "quiet", False) or args.global_quiet)


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["-q", "validate", "scenarios/commons_scripted.yaml", "--verbose"])
    assert "exclude each other" in capsys.readouterr().err


def without_pace(line: str) -> str:
    """A progress line without its rate and ETA ("(2 s/step, ETA 0:18)"), which depend on the clock."""
    return re.sub(r" \([^)]*\)", "", line)


def test_progress_off_a_terminal_prints_plain_lines_and_a_last_one(capsys):
    with Progress(total=10, label="sweep", unit="run", show=("status",), every_seconds=3600) as bar:
        for _ in range(4):  # stops early, like a run whose lake collapsed
            bar.update({"status": "finished", "ignored": 1})
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    # done/total, the rate and the time left (none once done), then the shown fields
    pace = r"\((\d[\d.e+]* runs/s|\d[\d.e+]* s/run), ETA \d\d:\d\d\)"
    assert re.fullmatch(rf"\[sweep\] 1/10 runs {pace} status=finished", err[0]), err[0]
    assert re.fullmatch(rf"\[sweep\] 4/10 runs {pace} status=finished", err[1]), err[1]


def test_quiet_silences_progress_and_verbose_prints_every_update(capsys):
    progress.configure(quiet=True)
    with Progress(total=3, label="fit", unit="layer") as bar:
        for _ in range(3):
            bar.update()
        bar.write("a line")
    assert capsys.readouterr().err == ""
    progress.configure(verbose=True)
    with Progress(total=3, label="fit", unit="layer") as bar:
        for _ in range(3):
            bar.update()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"[fit] {k}/3 layers" for k in (1, 2, 3)]
    assert "ETA" in lines[0] and "ETA" not in lines[2]  # nothing left at the end


def test_sim_run_shows_progress_by_default_only_when_someone_watches(tmp_path, capsys, monkeypatch):
    import sim
    from sim import runner

    scenario = "scenarios/commons_scripted.yaml"
    monkeypatch.setattr(runner, "interactive", lambda: False)  # a script in a pipe, a test
    sim.run(scenario, out=tmp_path, overrides={"run.steps": 2}, report=False)
    assert "[commons_scripted]" not in capsys.readouterr().err
    monkeypatch.setattr(runner, "interactive", lambda: True)  # a terminal or a notebook
    sim.run(scenario, out=tmp_path, overrides={"run.steps": 2}, report=False)
    assert re.search(r"\[commons_scripted\] 2/2 steps \(", capsys.readouterr().err)


def test_a_jupyter_kernel_counts_as_watching(monkeypatch):
    import sys
    import types

    class ZMQInteractiveShell:  # the class name IPython's kernel shell has
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()  # type: ignore[attr-defined]
    assert not progress.in_notebook() or "ipykernel" in sys.modules
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert progress.in_notebook() and progress.interactive()
    fake.get_ipython = lambda: None  # type: ignore[attr-defined]  # plain IPython imported, no kernel
    assert not progress.in_notebook()
