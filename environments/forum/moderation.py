"""Reports, the moderation queue and the graduated sanction ladder.

Content whose reports reach the threshold carries a warning label for every viewer
(as in OASIS) and joins the moderation queue. Each step the moderator reviews up to
``budget`` queued items, most reported first (then oldest), and dismisses or sanctions:

* ``rule``: sanction when the guardian judged the item violating (``verify: guardian``)
  or on the reports alone (``verify: reports``); logged as rule decisions;
* ``agent``: a policy (scripted ``moderator`` or an LLM) answers dismiss/sanction per
  item in one batched decide (phase ``moderate``);
* ``none``: nobody reviews; labels are all reports do.

A sanction moves the author one rung up the ladder (warning -> removal -> temporary ban
-> permanent ban by default; the last rung repeats). Every rung from removal up removes
the item; bans stop the author acting (for ``temp_ban_steps`` steps, or for good).
Each rung costs the author its ``sanction_karma``. Seeded content has no author: a
sanction only removes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.interfaces import DecisionRequest, one_hot
from environments.forum import prompts
from environments.forum.agents import PERMANENT, Member, Official
from environments.forum.config import ForumConfig
from environments.forum.feed import Forum, Item

MODERATOR_GROUP = "__moderator__"


def queue(forum: Forum, threshold: int) -> list[Item]:
    """Items awaiting review: reported at least ``threshold`` times, not removed or reviewed."""
    waiting = [
        it for it in forum.items.values() if not it.removed and not it.reviewed and len(it.reporters) >= threshold
    ]
    return sorted(waiting, key=lambda it: (-len(it.reporters), it.id))


def next_level(author: Member | None, ladder: Sequence[str]) -> str:
    """The rung a sanction would put the author on (plain removal for seeded content and
    for authors already banned for good)."""
    if author is None or author.banned_until == PERMANENT:
        return "removal"
    return ladder[min(author.sanctions, len(ladder) - 1)]


class Moderation:
    def __init__(self, model: Any, cfg: ForumConfig) -> None:
        self.model = model
        self.cfg = cfg.moderation
        self.rules = cfg.rules
        self.official = Official(unique_id=-2, group=MODERATOR_GROUP)
        self.system = prompts.moderator_system(cfg.rules, self.cfg.ladder)
        if self.cfg.mode == "agent":
            pcfg = self.cfg.policy  # its policy was built by the runner (see spec.extra_policies)
            model.policy_names[MODERATOR_GROUP] = (
                f"scripted:{pcfg.rule}" if pcfg.type == "scripted" else f"llm:{pcfg.model}"
            )
        else:
            model.policy_names[MODERATOR_GROUP] = f"rule:{self.cfg.verify}" if self.cfg.mode == "rule" else "none"

    def step(self) -> None:
        if self.cfg.mode == "none":
            return
        waiting = queue(self.model.forum, self.cfg.report_threshold)
        self.model.tally["queued"] += len(waiting)
        batch = waiting[: self.cfg.budget]
        if not batch:
            return
        if self.cfg.mode == "rule":
            for it in batch:
                sanction = self.cfg.verify == "reports" or it.guardian_p >= self.model.guardian.threshold
                level = next_level(self.model.author(it), self.cfg.ladder)
                self.model.record_rule_decision(
                    self.official,
                    "moderate",
                    ("dismiss", "sanction"),
                    one_hot(2, int(sanction)),
                    int(sanction),
                    **self._outcome(it, sanction, level),
                )
            return
        requests = [self._request(it) for it in batch]
        decisions = self.model.decide([self.official] * len(requests), requests)
        for it, dec in zip(batch, decisions, strict=True):
            level = next_level(self.model.author(it), self.cfg.ladder)
            self.model.annotate(dec, **self._outcome(it, dec.choice == 1, level))

    def _request(self, it: Item) -> DecisionRequest:
        author = self.model.author(it)
        level = next_level(author, self.cfg.ladder)
        return DecisionRequest(
            agent_id=self.official.unique_id,
            phase="moderate",
            options=prompts.MODERATE_OPTIONS,
            values=(0.0, 1.0),
            wordings=prompts.MODERATE_WORDINGS,
            observation={
                "rule": getattr(self.cfg.policy, "rule", None),
                "guardian_p": it.guardian_p,
                "threshold": self.model.guardian.threshold,
                "reports": len(it.reporters),
                "level": level,
            },
            prompt=prompts.moderate_prompt(
                self.system,
                text=it.text,
                reports=len(it.reporters),
                author=it.author,
                offences=author.sanctions if author else 0,
                level=level,
            ),
        )

    def _outcome(self, it: Item, sanction: bool, level: str) -> dict[str, Any]:
        """Apply the verdict; return the event fields (violation = the item's label)."""
        it.reviewed = True
        self.model.tally["reviewed"] += 1
        if sanction:
            self.apply(it, level)
        return {
            "target": it.author,
            "violation": it.violation is not None,
            "value": float(self.cfg.ladder.index(level) + 1) if sanction and level in self.cfg.ladder else 0.0,
            "info": {
                "item": it.id,
                "level": level if sanction else None,
                "reports": len(it.reporters),
                "guardian_p": it.guardian_p,
                "label": it.violation,
            },
        }

    def apply(self, it: Item, level: str) -> None:
        """Put the item's author on ``level`` and carry out what that rung means."""
        model, step = self.model, int(self.model.steps)
        author = model.author(it)
        model.tally[level] += 1
        if level != "warning":
            it.removed = True
        else:
            it.warned = True
        if author is None or author.banned_until == PERMANENT:
            return
        cost = self.cfg.sanction_karma[self.cfg.ladder.index(level)]
        author.sanctions += 1
        author.wealth -= cost
        author.last_payoff -= cost
        if level == "temp_ban":
            author.banned_until = max(author.banned_until or 0, step + self.cfg.temp_ban_steps)
        elif level == "perm_ban":
            author.banned_until = PERMANENT
        rule = next((r.text for r in self.rules if r.id == (it.guardian_rule or it.violation)), "the community rules")
        author.remember(f"Step {step}: moderators sanctioned your {it.kind} ({level.replace('_', ' ')}) under: {rule}")
