"""The docs: the scenario reference matches the models, and every link in docs/ resolves."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sim.docgen import render

DOCS = Path(__file__).resolve().parents[2] / "docs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_scenario_reference_is_generated_from_the_current_models():
    # A fresh interpreter: other tests add scripted rules to environments (as a user's
    # `imports:` module would), which must not leak into the reference.
    fresh = subprocess.run(
        [sys.executable, "-m", "sim.docgen", "-"], cwd=DOCS.parent, capture_output=True, text=True, timeout=120
    )
    assert fresh.returncode == 0, fresh.stderr
    committed = (DOCS / "scenario-reference.md").read_text()
    assert committed == fresh.stdout, (
        "docs/scenario-reference.md is stale: run `python -m sim.docgen docs/scenario-reference.md`"
    )


def test_the_reference_covers_every_block_and_field():
    from sim.config import Scenario

    text = render()
    for name in Scenario.model_fields:
        assert f"| `{name}` |" in text
    assert "## `mechanics.punishment`" in text and "| `fine` | number | `4` | paid by the punished (>= 0.0) |" in text
    assert "## `population[].policy` with `type: llm`" in text


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_in_the_docs_resolve(page):
    text = (DOCS / page).read_text()
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://")):
            continue
        file, _, anchor = target.partition("#")
        linked = (DOCS / file) if file else DOCS / page
        assert linked.exists(), f"{page}: link to missing {file}"
        if anchor:
            body = linked.read_text()
            headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", body, re.M)}
            assert f'<a id="{anchor}">' in body or anchor in headings, f"{page}: no anchor #{anchor} in {linked.name}"


def _slug(heading: str) -> str:
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_scenarios_shown_in_the_docs_are_valid():
    import yaml

    from sim.config import load_scenario

    checked = 0
    for page in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and "population" in data and "environment" in data:
                load_scenario(data)
                checked += 1
    assert checked >= 2  # the quickstart's own scenario and the reference's example
