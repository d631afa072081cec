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


class FeedIndex:
    """The forum's rankings at one moment, computed once and shared by every viewer.

    Every member's feed is the same ranking with the member's own items left out, so
    ranking all posts (and each shown thread's comments) once makes a feed cost
    O(feed size + own items) instead of a sort of the whole forum per member. Valid
    until the forum changes (votes, new or removed items): build a new one then.
    """

    def __init__(self, forum: Forum, now: int, cfg: FeedConfig) -> None:
        self.forum, self.now, self.cfg = forum, now, cfg
        posts = forum.visible(forum.posts)
        if cfg.ranking == "hot":
            self.ranked = rank_hot(posts, cfg.step_seconds)
        else:
            self.ranked = posts[::-1]  # newest first (ids grow with creation)
            # Posts are created in step order, so the recent ones are the newest.
            self.recent_by_author: dict[int | None, list[Item]] = {}
            for p in self.ranked:
                if now - p.step > cfg.window:
                    break
                self.recent_by_author.setdefault(p.author, []).append(p)
        self._comments: dict[int, list[Item]] = {}

    def comments(self, post_id: int) -> list[Item]:
        """A thread's visible comments, hot-ranked (computed on first use)."""
        if post_id not in self._comments:
            self._comments[post_id] = rank_hot(self.forum.thread_comments(post_id), self.cfg.step_seconds)
        return self._comments[post_id]

    def feed(self, viewer: int, following: set[int]) -> list[Item]:
        cfg = self.cfg
        if cfg.ranking == "hot":
            chosen = _first(self.ranked, cfg.size, lambda p: p.author != viewer)
        else:
            recent = sorted(
                (p for a in following if a != viewer for p in self.recent_by_author.get(a, ())),
                key=lambda p: p.id,
                reverse=True,
            )[: cfg.size]
            taken = {p.id for p in recent}
            chosen = recent + _first(
                self.ranked, cfg.size - len(recent), lambda p: p.author != viewer and p.id not in taken
            )
        feed: list[Item] = []
        for post in chosen:
            feed.append(post)
            if cfg.comments:
                feed.extend(_first(self.comments(post.id), cfg.comments, lambda c: c.author != viewer))
        return feed


def _first(items: Sequence[Item], k: int, keep: Any) -> list[Item]:
    """The first k items that ``keep`` accepts, in order."""
    out: list[Item] = []
    for it in items:
        if len(out) >= k:
            break
        if keep(it):
            out.append(it)
    return out


def build_feed(
    forum: Forum, viewer: int, following: set[int], now: int, cfg: FeedConfig, index: FeedIndex | None = None
) -> list[Item]:
    """The items a member sees: ``size`` posts (never its own), each followed by its top
    ``comments`` comments (ranked hot, its own comments left out). Hot ranking: the
    highest hot scores; followed ranking: recent posts (within ``window`` steps) of the
    members it follows, newest first, then the rest newest first. Pass one
    :class:`FeedIndex` for all viewers of a moment to rank the forum once."""
    return (index or FeedIndex(forum, now, cfg)).feed(viewer, following)


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
