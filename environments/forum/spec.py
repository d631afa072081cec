"""The forum's spec: everything the rest of normsim needs to know about it."""

from __future__ import annotations

from typing import Any

from agents.config import PolicyConfig
from environments.forum import metrics
from environments.forum.config import ForumConfig, ForumMechanics, ForumStrategy
from environments.forum.guardian import GUARDIAN_GROUP
from environments.forum.model import ForumModel
from environments.forum.moderation import MODERATOR_GROUP
from environments.forum.rules import RULES
from environments.spec import EnvironmentSpec, NormSpec, SanctionSpec


def extra_policies(cfg: ForumConfig) -> dict[str, PolicyConfig]:
    """The guardian's LLM (llm and both modes) and an agent moderator's policy."""
    roles: dict[str, Any] = {}
    if cfg.guardian.mode != "keyword":
        roles[GUARDIAN_GROUP] = cfg.guardian.policy
    if cfg.moderation.mode == "agent":
        roles[MODERATOR_GROUP] = cfg.moderation.policy
    return roles


def check(scenario: Any) -> None:
    """Checks across blocks: every group_stance key names a population group."""
    unknown = sorted(set(scenario.environment.group_stance) - {g.name for g in scenario.population})
    if unknown:
        groups = ", ".join(g.name for g in scenario.population)
        raise ValueError(f"environment.group_stance: no population group named {', '.join(unknown)}; groups: {groups}")


SPEC = EnvironmentSpec(
    name="forum",
    summary="a social forum on a follow graph: posts, votes, reports, a guardian and moderation under written rules",
    config=ForumConfig,
    mechanics=ForumMechanics,
    strategy=ForumStrategy,
    model=ForumModel,
    rules=RULES,
    metrics=metrics.compute,
    headline=("violation_rate", "cooperation", "mean_action_entropy"),
    example="forum_moderated.yaml",
    metric_ranges={"cooperation": (0.0, 1.0), "report_recall": (0.0, 1.0), "flag_recall": (0.0, 1.0)},
    progress=("violations", "violation_rate", "banned"),
    extra_policies=extra_policies,
    check=check,
    norm=NormSpec(
        kind="rule",
        unit="the community's written rules",
        meaning="a post or comment that breaks a rule (judged by the guardian) violates it",
    ),
    sanctions=SanctionSpec(
        by="members (reports) and the moderator",
        target="the author of reported content",
        cost="reporting is free; the moderator's ladder costs the author karma, content or access",
        meaning="OASIS-style reports feeding a graduated moderation ladder",
    ),
    mechanic_notes={
        "social_learning": "copy a graph neighbour's rule, style and stance when it gained more karma",
        "reporting": "members report content they take for rule-breaking with their report probability",
    },
)
