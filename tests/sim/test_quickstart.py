"""The quickstart's example outputs are what the code prints.

Every ```text block of docs/quickstart.md that starts with ``$ normsim ...`` is run (in a
temporary folder holding the repository's scenarios) and must print exactly the rest of
the block. ``python tests/sim/test_quickstart.py --write`` rewrites the blocks.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "quickstart.md"
BLOCK = re.compile(r"```text\n\$ (normsim [^\n]*)\n(.*?)```", re.S)
PACE = re.compile(r"\((?:[\d.e+]+ (\w+)s/s|[\d.e+]+ s/(\w+))(, ETA [\d:]+)?\)")
HOME = "/home/you/normsim"  # how the docs show the folder the commands ran in


def run_command(command: str, where: Path) -> str:
    """stdout then stderr of one `normsim ...` line run in ``where``, with paths shown as in the docs."""
    from sim import progress
    from sim.cli import main

    out, err = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(where)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(shlex.split(command)[1:])
    finally:
        os.chdir(before)
        progress.configure()
    text = err.getvalue() + out.getvalue()  # progress comes first on a terminal
    # A progress line's rate and time left differ from run to run: the docs show one example.
    text = PACE.sub(lambda m: f"(90 {m.group(1) or m.group(2)}s/s" + (", ETA 00:00)" if m.group(3) else ")"), text)
    return text.replace(str(where.resolve()), HOME).replace(str(where), HOME)


def expected_blocks(page: str, where: Path) -> list[tuple[str, str, str]]:
    """(command, shown output, real output) for every runnable block."""
    return [(cmd, shown, run_command(cmd, where)) for cmd, shown in BLOCK.findall(page)]


def _workdir() -> tempfile.TemporaryDirectory:
    tmp = tempfile.TemporaryDirectory()
    (Path(tmp.name) / "scenarios").symlink_to(ROOT / "scenarios")
    return tmp


def test_quickstart_outputs_are_generated_by_the_code():
    page = PAGE.read_text()
    with _workdir() as where:
        blocks = expected_blocks(page, Path(where))
    assert len(blocks) >= 2
    for command, shown, real in blocks:
        assert shown == real, f"docs/quickstart.md shows stale output for `{command}`: run {__file__} --write"


if __name__ == "__main__" and "--write" in sys.argv:
    text = PAGE.read_text()
    with _workdir() as where:
        for command, shown, real in expected_blocks(text, Path(where)):
            text = text.replace(f"$ {command}\n{shown}```", f"$ {command}\n{real}```", 1)
    PAGE.write_text(text)
    print(f"rewrote {PAGE}")
