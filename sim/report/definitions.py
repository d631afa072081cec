"""What each metric of a run means, for the run report's "Metric definitions" section.

The definitions are read from the bullet list in each environment's ``metrics``
module docstring (``* ``name``: definition``), so the report and the code's own
documentation cannot drift apart; the fields every run has are defined here.
"""

from __future__ import annotations

import importlib
import re

COMMON = {
    "status": "finished, failed (an error), interrupted (Ctrl-C) or killed (finalized from its journals)",
    "steps_completed": "steps the run finished (fewer than run.steps when the environment ended it early)",
    "wall_seconds": "wall-clock time of the simulation loop, in seconds",
    "error": "the first error of a failed run",
    "mean_action_entropy": "mean entropy (nats) of the policies' decision distributions over their options",
}

_BULLET = re.compile(r"^\* (.+?)(?=^\* |^\S|\Z)", re.MULTILINE | re.DOTALL)
_OWN = re.compile(r"``(\w+)``(?:\s*\([^)]*\))?\s*:\s*(.+?)(?=;\s*``\w+``|\Z)", re.DOTALL)


def parse(doc: str) -> dict[str, str]:
    """``* ``a``: first; ``b``: second`` -> {'a': 'first', 'b': 'second'}; a name without its
    own colon (``x`` (…), ``y``) gets the whole bullet."""
    found: dict[str, str] = {}
    for match in _BULLET.finditer(doc):
        bullet = " ".join(match.group(1).split())
        for name, text in _OWN.findall(bullet):
            found.setdefault(name, text.strip().rstrip(";").strip())
        for name in re.findall(r"``(\w+)``", bullet):
            found.setdefault(name, bullet.replace("``", ""))
    return {name: text.replace("``", "") for name, text in found.items()}


def definitions(env_type: str) -> dict[str, str]:
    """Every metric name of an environment with its definition (plus the common fields)."""
    try:
        module = importlib.import_module(f"environments.{env_type}.metrics")
    except ImportError:
        return dict(COMMON)
    return {**COMMON, **parse(module.__doc__ or "")}
