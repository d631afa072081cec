"""The forum's content store, Reddit's hot score, feeds and the action menu.

Time in the hot score is forum seconds: step t is ``t * step_seconds`` seconds after
the forum opened (t0 = 0), so with the default hour per step a post 12.5 steps newer
outranks one with ten times its net votes, as 45000 s (12.5 h) do on Reddit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from environments.forum.config import FeedConfig

HOT_SECONDS = 45000.0  # Reddit: a factor of ten in net votes is worth 12.5 hours of recency


@dataclass
class Item:
    """A post or a comment. ``violation`` is the item's label: the broken rule's id or None
    (the template's ground truth for scripted content, the guardian's judgement for
    generated text, see ``label_source``)."""

    id: int
    kind: str  # "post" or "comment"
    author: int | None  # None: seeded by the scenario, not by a member
    step: int
    topic: str
    thread: int  # id of the post this item belongs to (its own id for a post)
    text: str
    stance: float = 0.0  # the author's stance when writing; 0: none (seeded content)
    violation: str | None = None
    helpful: bool = False
    label_source: str = "template"
    guardian_p: float = 0.0  # the guardian's highest P(breaks a rule) over the rules
    guardian_rule: str | None = None  # the rule the guardian judged broken, if any
    misleading: str | None = None  # on a seeded post: the rule its comments say is fine to break
    endorses: str | None = None  # on a seeded comment: the rule it endorses breaking
    up: set[int] = field(default_factory=set)
    down: set[int] = field(default_factory=set)
    reporters: set[int] = field(default_factory=set)
    base_score: int = 0  # seeded votes
    removed: bool = False
    warned: bool = False
    reviewed: bool = False

    @property
    def score(self) -> int:
        return self.base_score + len(self.up) - len(self.down)


def hot_score(ups: int, downs: int, step: int, step_seconds: float) -> float:
    """Reddit's hot: sign(u - d) * log10(max(|u - d|, 1)) + (t - t0) / 45000, t in seconds."""
    s = ups - downs
    sign = (s > 0) - (s < 0)
    return sign * math.log10(max(abs(s), 1)) + step * step_seconds / HOT_SECONDS


class Forum:
    """Every item ever created, by id; posts in creation order, comments per thread."""

    def __init__(self) -> None:
        self.items: dict[int, Item] = {}
        self.posts: list[int] = []
        self.comments: dict[int, list[int]] = {}
        self._next = 1

    def add(self, **fields: Any) -> Item:
        """A new item with the next id (fields: Item's, except id)."""
        item = Item(id=self._next, **fields)
        self._next += 1
        self.items[item.id] = item
        if item.kind == "post":
            self.posts.append(item.id)
            self.comments[item.id] = []
        else:
            self.comments[item.thread].append(item.id)
        return item

    def visible(self, ids: Iterable[int]) -> list[Item]:
        return [self.items[i] for i in ids if not self.items[i].removed]

    def thread_comments(self, post_id: int) -> list[Item]:
        return self.visible(self.comments.get(post_id, []))


def item_hot(item: Item, step_seconds: float) -> float:
    return hot_score(item.base_score + len(item.up), len(item.down), item.step, step_seconds)


def rank_hot(items: Sequence[Item], step_seconds: float) -> list[Item]:
    """Highest hot score first; ties go to the newer item (higher id)."""
    return sorted(items, key=lambda it: (item_hot(it, step_seconds), it.id), reverse=True)


def build_feed(forum: Forum, viewer: int, following: set[int], now: int, cfg: FeedConfig) -> list[Item]:
    """The items a member sees: ``size`` posts (never its own), each followed by its top
    ``comments`` comments (ranked hot, its own comments left out)."""
    posts = [p for p in forum.visible(forum.posts) if p.author != viewer]
    if cfg.ranking == "hot":
        chosen = rank_hot(posts, cfg.step_seconds)[: cfg.size]
    else:
        recent = [p for p in posts if p.author in following and now - p.step <= cfg.window]
        recent.sort(key=lambda p: p.id, reverse=True)
        rest = sorted((p for p in posts if p not in recent), key=lambda p: p.id, reverse=True)
        chosen = (recent + rest)[: cfg.size]
    feed: list[Item] = []
    for post in chosen:
        feed.append(post)
        replies = [c for c in forum.thread_comments(post.id) if c.author != viewer]
        feed.extend(rank_hot(replies, cfg.step_seconds)[: cfg.comments])
    return feed


@dataclass(frozen=True)
class Action:
    """One option of the act phase: ``label`` is what an LLM scores, the rest what it means."""

    type: str  # nothing, post, comment, upvote, downvote, report, follow
    label: str
    item: int | None = None  # the item acted on
    slot: int | None = None  # its 1-based position in the feed
    topic: str | None = None  # post: the topic; other actions: the item's topic
    author: int | None = None  # the member acted on (item author, or the member followed)


ACTION_TYPES = ("nothing", "post", "comment", "upvote", "downvote", "report", "follow")


def action_type(label: str) -> str:
    """The action type of an option label (the inverse of :func:`action_menu`'s labels)."""
    word = label.split(" ", 1)[0]
    return "nothing" if word == "do" else word


def action_menu(
    viewer: int, feed: Sequence[Item], topics: Sequence[str], following: set[int], voted: set[int], reported: set[int]
) -> list[Action]:
    """Every action open to a member, in a fixed order: nothing, a post per topic, then per
    feed item comment (posts only), upvote, downvote, report; then following each new author."""
    menu = [Action("nothing", "do nothing")]
    menu += [Action("post", f"post about {t}", topic=t) for t in topics]
    authors: list[int] = []
    for slot, it in enumerate(feed, start=1):
        common = {"item": it.id, "slot": slot, "topic": it.topic, "author": it.author}
        if it.kind == "post":
            menu.append(Action("comment", f"comment on #{slot}", **common))
        if it.id not in voted:
            menu.append(Action("upvote", f"upvote #{slot}", **common))
            menu.append(Action("downvote", f"downvote #{slot}", **common))
        if it.id not in reported:
            menu.append(Action("report", f"report #{slot}", **common))
        if it.author is not None and it.author != viewer and it.author not in following and it.author not in authors:
            authors.append(it.author)
    menu += [Action("follow", f"follow @{a}", author=a) for a in authors]
    return menu
