"""Reports write only what they own: no symbolic link followed, no stranger's file overwritten."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sim import safe_write
from sim.cli import main
from sim.core.schema import ConfigError
from sim.runner import run

SCRIPTED = Path(__file__).resolve().parents[2] / "scenarios" / "commons_scripted.yaml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return run(SCRIPTED, out=tmp_path_factory.mktemp("runs"), overrides={"run.steps": 2}, report=False).dir


@pytest.fixture(scope="module")
def plot_names(run_dir, tmp_path_factory) -> list[str]:
    out = tmp_path_factory.mktemp("first") / "r.html"
    assert main(["-q", "report", str(run_dir), "--out", str(out)]) == 0
    names = sorted(p.name for p in (out.parent / "plots").glob("*.png"))
    assert names  # the scripted commons has plots
    return names


def report(run_dir: Path, out: Path, *extra: str) -> int:
    return main(["-q", "report", str(run_dir), "--out", str(out), *extra])


def one_line(capsys, *parts: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(p in err[0] for p in parts), err
    return err[0]


def test_a_file_the_report_did_not_write_is_not_overwritten_without_force(run_dir, tmp_path, capsys):
    out = tmp_path / "x.html"
    out.write_text("my notes")
    assert report(run_dir, out) == 2
    one_line(capsys, str(out), "not written by normsim", "--force")
    assert out.read_text() == "my notes" and not (tmp_path / "plots").exists()  # nothing written at all
    assert report(run_dir, out, "--force") == 0 and "<html" in out.read_text().lower()
    assert report(run_dir, out) == 0  # written by a report now: rewriting it needs no force


def test_neighbours_are_left_alone(run_dir, tmp_path):
    neighbours = {"x.html.tmp": "a", "notes.txt": "b", ".x.html.tmp": "c"}
    for name, text in neighbours.items():
        (tmp_path / name).write_text(text)
    assert report(run_dir, tmp_path / "x.html") == 0
    assert {n: (tmp_path / n).read_text() for n in neighbours} == neighbours
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*neighbours, "x.html", "plots", ".normsim-reports.json"]
    )


def test_a_symbolic_link_is_never_followed(run_dir, plot_names, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("user data")
    d = tmp_path / "d"
    (d / "plots").mkdir(parents=True)
    (d / "plots" / plot_names[0]).symlink_to(precious)
    assert report(run_dir, d / "x.html") == 2
    one_line(capsys, plot_names[0], "symbolic link")
    (d / "x.html").symlink_to(precious)
    assert report(run_dir, d / "x.html") == 2
    one_line(capsys, "x.html", "symbolic link")
    assert report(run_dir, d / "x.html", "--force") == 0  # the links are replaced, not written through
    assert precious.read_text() == "user data"
    assert not (d / "x.html").is_symlink() and not (d / "plots" / plot_names[0]).is_symlink()


def test_a_plots_folder_that_is_a_link_is_refused_even_with_force(run_dir, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "plots").symlink_to(elsewhere, target_is_directory=True)
    assert report(run_dir, tmp_path / "d" / "x.html", "--force") == 2
    one_line(capsys, "plots", "symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_fixed_name_plots_of_a_stranger_are_not_overwritten(run_dir, plot_names, tmp_path, capsys):
    (tmp_path / "plots").mkdir()
    mine = tmp_path / "plots" / plot_names[-1]
    mine.write_bytes(b"my own figure")
    assert report(run_dir, tmp_path / "x.html") == 2
    one_line(capsys, str(mine), "not written by normsim")
    assert mine.read_bytes() == b"my own figure" and not (tmp_path / "x.html").exists()


def test_the_run_directorys_own_report_is_rewritten_freely(run_dir):
    assert main(["-q", "report", str(run_dir)]) == 0 and main(["-q", "report", str(run_dir)]) == 0
    assert (run_dir / "report.html").stat().st_size > 0


def test_safe_write_replaces_a_link_without_touching_its_target(tmp_path):
    target = tmp_path / "t"
    target.write_text("keep")
    (tmp_path / "l").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        safe_write.check(tmp_path / "l", owned=True)
    safe_write.check(tmp_path / "l", owned=True, force=True)
    safe_write.write(tmp_path / "l", b"new")
    assert target.read_text() == "keep" and (tmp_path / "l").read_bytes() == b"new"
    assert not os.path.islink(tmp_path / "l") and sorted(p.name for p in tmp_path.iterdir()) == ["l", "t"]


# ------------------------------------------------------------------ generated folders
NAMES = ["x.html", "x.html.tmp", ".x.html.tmp", "notes.txt", "plots", ".normsim-reports.json"]
KINDS = ["file", "link to a file", "link to a folder", "folder"]


def snapshot(root: Path) -> dict[str, object]:
    """Every path under root (links not followed) with what it holds."""
    out: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            out[key] = ("link", os.readlink(path))
        elif path.is_file():
            out[key] = path.read_bytes()
        else:
            out[key] = "dir"
    return out


# A report takes seconds to draw here: a few cases in the suite, NORMSIM_FUZZ_EXAMPLES for a hunt.
@settings(max_examples=int(os.environ.get("NORMSIM_FUZZ_EXAMPLES", "8")), deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])  # fmt: skip
@given(
    present=st.dictionaries(
        st.sampled_from(NAMES) | st.sampled_from(["plots/a.png", "plots/stock.png"]), st.sampled_from(KINDS), max_size=4
    ),  # fmt: skip
    force=st.booleans(),
)
def test_a_report_into_a_generated_folder_never_writes_through_a_link_or_over_a_strangers_file(
    run_dir, tmp_path_factory, capsys, present, force
):
    base = tmp_path_factory.mktemp("gen")
    elsewhere, d = base / "elsewhere", base / "d"
    (elsewhere / "dir").mkdir(parents=True)
    (elsewhere / "file").write_text("precious")
    d.mkdir()
    for name, kind in present.items():
        path = d / name
        if path.parent != d and (path.parent.is_symlink() or path.parent.is_file()):
            continue
        path.parent.mkdir(exist_ok=True)
        if path.exists() or path.is_symlink():
            continue
        if kind == "file":
            path.write_text(f"user {name}")
        elif kind == "folder":
            path.mkdir()
        else:
            path.symlink_to(elsewhere / ("file" if kind == "link to a file" else "dir"))
    outside, before = snapshot(elsewhere), snapshot(d)
    code = report(run_dir, d / "x.html", *(["--force"] if force else []))
    err = capsys.readouterr().err.strip().splitlines()
    assert snapshot(elsewhere) == outside  # nothing is ever written through a link
    if code == 2:
        assert len(err) == 1 and err[0].startswith("error: ") and snapshot(d) == before, err  # refused: untouched
        return
    assert code == 0, err
    after = snapshot(d)
    for name, held in before.items():  # a user's file survives unless --force named it
        if isinstance(held, bytes) and after.get(name) != held:
            assert force and (name in ("x.html", ".normsim-reports.json") or name.startswith("plots/")), name
