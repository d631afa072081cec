"""The forum's `environment:` block: graph, feed, rules, topics, guardian, moderation.

Policy blocks (the guardian's LLM, an agent moderator's policy) are validated with
the decision layer's policy models (:mod:`agents.config`).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import networkx as nx
from pydantic import Field, ValidationError, field_validator, model_validator

from agents.config import LLMPolicyConfig, PolicyConfig, ScriptedPolicyConfig
from environments.forum.rules import RULES
from environments.mechanics import SocialLearningConfig
from environments.spec import MechanicsBlock
from sim.core.schema import Scalar, StrictModel, format_errors

LADDER = ("warning", "removal", "temp_ban", "perm_ban")


class GraphConfig(StrictModel):
    """The initial follow graph: a networkx generator called with n, the run's seed and ``params``."""

    generator: str = "watts_strogatz_graph"
    params: dict[str, Scalar] = Field(default_factory=lambda: {"k": 4, "p": 0.1}, max_length=20)

    @model_validator(mode="after")
    def _check(self) -> GraphConfig:
        fn = getattr(nx, self.generator, None)
        if fn is None or not callable(fn):
            raise ValueError(f"networkx has no graph generator '{self.generator}'")
        params = inspect.signature(fn).parameters
        if "n" not in params or "seed" not in params:
            raise ValueError(f"'{self.generator}' must take n and seed (every graph is seeded by the run)")
        if {"n", "seed"} & set(self.params):
            raise ValueError("graph.params must not set n or seed: they come from the population and run.seed")
        try:
            inspect.signature(fn).bind(n=2, seed=0, **self.params)
        except TypeError as err:
            raise ValueError(f"graph.params do not fit {self.generator}: {err}") from None
        return self


class FeedConfig(StrictModel):
    ranking: Literal["hot", "followed"] = Field(
        "hot", description="hot: Reddit's hot score over all posts; followed: followed authors' recent posts first"
    )
    size: int = Field(3, ge=1, le=50, description="posts per feed")
    comments: int = Field(1, ge=0, le=20, description="top comments shown under each post")
    window: int = Field(6, ge=1, description="followed ranking: posts from the last `window` steps count as recent")
    step_seconds: float = Field(
        3600.0, gt=0, description="forum seconds per step in the hot score's (t - t0) / 45000; 3600 = one hour"
    )


class RuleConfig(StrictModel):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    text: str
    keywords: list[str] = Field(default_factory=list, description="lower-case phrases the keyword guardian matches")


class TopicConfig(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    invites: str | None = Field(None, description="id of the rule this topic tempts members to break")


class SeedThreadConfig(StrictModel):
    """A misleading thread present from the start: a post whose comments endorse breaking a rule."""

    topic: str
    endorses: str = Field(description="id of the rule the comments say is fine to break")
    comments: int = Field(2, ge=1, le=10)
    score: int = Field(5, ge=0, description="initial upvotes of the post (so the hot ranking shows it)")


class GuardianConfig(StrictModel):
    mode: Literal["keyword", "llm", "both"] = "keyword"
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="P(yes) at or above which content is judged violating")
    judge_helpful: bool = Field(True, description="llm modes: also ask whether generated content is helpful")
    policy: Any = Field(None, description="llm modes: an llm policy block (default: the default model, greedy)")

    @field_validator("policy", mode="after")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if value is None:
            return None

        return _validated(LLMPolicyConfig, value, "guardian.policy")

    @model_validator(mode="after")
    def _default_policy(self) -> GuardianConfig:
        if self.mode != "keyword" and self.policy is None:
            # validate_assignment would re-run the validators; set the field directly.
            object.__setattr__(self, "policy", LLMPolicyConfig(greedy=True))
        return self


class ModerationConfig(StrictModel):
    mode: Literal["none", "rule", "agent"] = Field(
        "rule",
        description="none: reports only label content; rule: the ladder on verified reports; agent: a policy decides",
    )
    report_threshold: int = Field(2, ge=1, description="reports after which content is labelled and queued (OASIS: 2)")
    verify: Literal["guardian", "reports"] = Field(
        "guardian",
        description="rule mode: sanction only content the guardian judged violating, or whatever is reported",
    )
    budget: int = Field(10, ge=0, description="queued items the moderator reviews per step")
    ladder: list[Literal["warning", "removal", "temp_ban", "perm_ban"]] = Field(default_factory=lambda: list(LADDER))
    temp_ban_steps: int = Field(3, ge=1)
    sanction_karma: list[float] = Field(
        default_factory=lambda: [0.0, 1.0, 3.0, 5.0], description="karma each ladder level costs the author"
    )
    policy: Any = Field(None, description="agent mode: a policy block (scripted rule 'moderator', or llm)")

    @field_validator("policy", mode="after")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if value is None:
            return None
        from pydantic import TypeAdapter

        if isinstance(value, str):
            value = {"type": "scripted", "rule": value}
        policy = _validated(TypeAdapter(PolicyConfig), value, "moderation.policy")
        if policy.type == "scripted" and policy.rule not in RULES:
            raise ValueError(
                f"moderation.policy: unknown forum rule '{policy.rule}'; the scripted moderator is 'moderator'"
            )
        return policy

    @model_validator(mode="after")
    def _check(self) -> ModerationConfig:
        if (
            not self.ladder
            or list(self.ladder) != sorted(self.ladder, key=LADDER.index)
            or len(set(self.ladder)) < len(self.ladder)
        ):
            raise ValueError(f"ladder must be a non-empty, increasing subsequence of {', '.join(LADDER)}")
        if len(self.sanction_karma) != len(self.ladder):
            raise ValueError("sanction_karma needs one entry per ladder level")
        if self.mode == "agent" and self.policy is None:
            object.__setattr__(self, "policy", ScriptedPolicyConfig(rule="moderator"))
        return self


DEFAULT_RULES = [
    {
        "id": "civility",
        "text": "Be civil: no insults, name-calling or harassment of other members.",
        "keywords": ["idiot", "moron", "stupid", "shut up", "clown"],
    },
    {
        "id": "spam",
        "text": "No spam, advertising, promo codes or referral links.",
        "keywords": ["promo code", "discount", "click here", "referral", "buy now"],
    },
    {
        "id": "privacy",
        "text": "Never share anyone's personal information, such as a home address or phone number.",
        "keywords": ["home address", "phone number", "lives at", "real name"],
    },
]

DEFAULT_TOPICS = [
    {"name": "gardening"},
    {"name": "local_news", "invites": "privacy"},
    {"name": "deals", "invites": "spam"},
    {"name": "politics", "invites": "civility"},
]


class ForumConfig(StrictModel):
    type: Literal["forum"] = "forum"
    graph: GraphConfig = Field(default_factory=GraphConfig)
    activation_prob: float = Field(0.6, ge=0.0, le=1.0, description="chance each member acts in a step")
    feed: FeedConfig = Field(default_factory=FeedConfig)
    rules: list[RuleConfig] = Field(default_factory=lambda: [RuleConfig(**r) for r in DEFAULT_RULES], min_length=1)
    topics: list[TopicConfig] = Field(default_factory=lambda: [TopicConfig(**t) for t in DEFAULT_TOPICS], min_length=1)
    seed_threads: list[SeedThreadConfig] = Field(default_factory=list)
    guardian: GuardianConfig = Field(default_factory=GuardianConfig)
    moderation: ModerationConfig = Field(default_factory=ModerationConfig)
    initial_stance: Literal["uniform", "two_camps"] = Field(
        "two_camps", description="members' stances in [-1, 1]: uniform, or two camps at +-U(0.3, 1)"
    )
    group_stance: dict[str, float] = Field(default_factory=dict, description="fixed initial stance per group name")
    conform_prob: float = Field(0.6, ge=0.0, le=1.0, description="scripted conformists: chance to follow a bad thread")
    text_tokens: int = Field(48, ge=8, le=512, description="max new tokens of a generated post or comment")

    @model_validator(mode="after")
    def _check(self) -> ForumConfig:
        ids = [r.id for r in self.rules]
        if len(set(ids)) < len(ids):
            raise ValueError("rule ids must be unique")
        names = [t.name for t in self.topics]
        if len(set(names)) < len(names):
            raise ValueError("topic names must be unique")
        for t in self.topics:
            if t.invites is not None and t.invites not in ids:
                raise ValueError(f"topic '{t.name}' invites unknown rule '{t.invites}'; rules: {', '.join(ids)}")
        for s in self.seed_threads:
            if s.topic not in names:
                raise ValueError(f"seed thread topic '{s.topic}' is not a topic; topics: {', '.join(names)}")
            if s.endorses not in ids:
                raise ValueError(f"seed thread endorses unknown rule '{s.endorses}'; rules: {', '.join(ids)}")
        if any(not -1.0 <= v <= 1.0 for v in self.group_stance.values()):
            raise ValueError("group_stance values must lie in [-1, 1]")
        return self

    def rule(self, rule_id: str) -> RuleConfig:
        return next(r for r in self.rules if r.id == rule_id)

    def topic(self, name: str) -> TopicConfig:
        return next(t for t in self.topics if t.name == name)


def _validated(validator: Any, value: Any, label: str) -> Any:
    """Validate a nested policy block, turning its errors into one readable ValueError."""
    if hasattr(value, "model_dump") and not isinstance(value, dict):
        value = value.model_dump()
    try:
        return (
            validator.model_validate(value)
            if hasattr(validator, "model_validate")
            else validator.validate_python(value)
        )
    except ValidationError as err:
        raise ValueError(format_errors(err, label).replace("\n", ";")) from None


class ReportingConfig(StrictModel):
    """Peer sanction of the forum: members report content they take for rule-breaking;
    reports past ``moderation.report_threshold`` label it and queue it for moderation."""

    report_prob: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="scripted members' propensity to report a violation they see (a strategy trait: learned)",
    )


class ForumMechanics(MechanicsBlock):
    social_learning: SocialLearningConfig = Field(default_factory=SocialLearningConfig)
    reporting: ReportingConfig = Field(default_factory=ReportingConfig)


class ForumStrategy(StrictModel):
    """A group's initial strategy; social learning copies it between graph neighbours."""

    report_prob: float | None = Field(None, ge=0.0, le=1.0, description="default mechanics.reporting.report_prob")
