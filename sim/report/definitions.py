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
    "mean_action_entropy_by_phase": "mean_action_entropy per decision phase (harvest, vote, punish...)",
    "empirical_action_entropy": (
        "entropy (nats) of each agent's histogram of chosen options in the main phase, averaged over "
        "agents: how varied the choices were, where mean_action_entropy says how unsure each decision was"
    ),
    "decisions": (
        "decisions the agents' policies took; rows decided by a mechanic's rule (social learning's keep or "
        "copy, phase learn) are in the transcript but not counted here"
    ),
    "parse_failures": "decisions whose generated answer named no option (the policy fell back to its distribution)",
    "presentation_spread": (
        "per phase: the same measure under each presentation of the prompt (option order, labels...) and "
        "its spread, the largest minus the smallest value; an effect smaller than the spread says more "
        "about prompt layout than about the agents"
    ),
    "expected_value_by_phase": (
        "per phase: the mean over decisions of the expected option value under the policy's distribution "
        "(sum of p_k times option k's value), free of the noise of the sampled choices"
    ),
}

# Families of metrics named by a prefix (server usage: llm_requests, llm_tokens...).
PREFIXES = {
    "llm_": "server usage of the policies that call LLM servers, summed over the run (requests, tokens, cost)",
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


def definition(name: str, known: dict[str, str]) -> str | None:
    """A metric's definition: its own, its family's (``llm_``), or its parent's
    (``total_gain.sum`` -> ``total_gain``); None when it has none."""
    if name in known:
        return known[name]
    head = name.split(".")[0]
    if head in known:
        return known[head]
    return next((text for prefix, text in PREFIXES.items() if name.startswith(prefix)), None)
