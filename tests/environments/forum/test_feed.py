"""Reddit's hot score, the two feed rankings and the action menu."""

from __future__ import annotations

import pytest

from environments.forum.config import FeedConfig
from environments.forum.feed import ACTION_TYPES, Forum, action_menu, action_type, build_feed, hot_score, rank_hot


def add_post(forum: Forum, author, step, ups=0, downs=0, removed=False):
    item = forum.add(kind="post", author=author, step=step, topic="t", thread=0, text=f"post by {author}")
    item.thread = item.id
    item.up = set(range(100, 100 + ups))
    item.down = set(range(200, 200 + downs))
    item.removed = removed
    return item


def add_comment(forum: Forum, post, author, ups=0):
    item = forum.add(kind="comment", author=author, step=post.step, topic="t", thread=post.id, text="c")
    item.up = set(range(100, 100 + ups))
    return item


def test_hot_score_matches_reddit():
    assert hot_score(10, 0, 0, 3600) == pytest.approx(1.0)
    assert hot_score(0, 10, 0, 3600) == pytest.approx(-1.0)
    assert hot_score(5, 5, 0, 3600) == 0.0  # log10(max(0, 1)) = 0 and sign 0
    assert hot_score(101, 1, 0, 3600) == pytest.approx(2.0)
    # 45000 s of recency are worth a factor of ten in net votes: 12.5 one-hour steps.
    assert hot_score(1, 0, 25, 1800) == pytest.approx(hot_score(10, 0, 0, 1800))
    assert hot_score(1, 0, 10, 3600) > hot_score(1, 0, 9, 3600)


def test_rank_hot_orders_by_votes_and_recency():
    forum = Forum()
    old_popular = add_post(forum, 1, step=0, ups=20)
    new_plain = add_post(forum, 2, step=5)
    old_plain = add_post(forum, 3, step=0)
    buried = add_post(forum, 4, step=5, downs=5)
    assert [p.id for p in rank_hot([old_plain, buried, new_plain, old_popular], 3600)] == [
        old_popular.id,
        new_plain.id,
        old_plain.id,
        buried.id,
    ]
    # a tie in score goes to the newer item
    twin = add_post(forum, 5, step=5)
    assert rank_hot([new_plain, twin], 3600)[0] is twin


def test_hot_feed_skips_own_and_removed_posts_and_caps_comments():
    forum = Forum()
    mine = add_post(forum, 0, step=3, ups=50)
    gone = add_post(forum, 1, step=3, ups=40, removed=True)
    a = add_post(forum, 1, step=1, ups=3)
    b = add_post(forum, 2, step=2)
    c = add_post(forum, 3, step=0)
    weak = add_comment(forum, a, 2)
    strong = add_comment(forum, a, 3, ups=4)
    add_comment(forum, a, 0, ups=9)  # the viewer's own comment is never shown to it
    feed = build_feed(forum, viewer=0, following=set(), now=3, cfg=FeedConfig(size=2, comments=1))
    assert mine not in feed and gone not in feed
    assert [it.id for it in feed] == [a.id, strong.id, b.id]
    feed = build_feed(forum, viewer=0, following=set(), now=3, cfg=FeedConfig(size=3, comments=2))
    assert [it.id for it in feed] == [a.id, strong.id, weak.id, b.id, c.id]


def test_followed_feed_puts_recent_followed_posts_first():
    forum = Forum()
    f_old = add_post(forum, 1, step=0)  # followed but outside the window
    other_new = add_post(forum, 2, step=9, ups=30)
    f_new = add_post(forum, 1, step=8)
    f_newer = add_post(forum, 3, step=9)
    cfg = FeedConfig(ranking="followed", size=4, comments=0, window=3)
    feed = build_feed(forum, viewer=0, following={1, 3}, now=10, cfg=cfg)
    assert [p.id for p in feed] == [f_newer.id, f_new.id, other_new.id, f_old.id]


def test_action_menu_offers_only_open_actions():
    forum = Forum()
    p = add_post(forum, 1, step=0)
    c = add_comment(forum, p, 2)
    q = add_post(forum, 1, step=0)
    menu = action_menu(viewer=0, feed=[p, c, q], topics=["a", "b"], following={2}, voted={c.id}, reported={q.id})
    labels = [m.label for m in menu]
    assert labels == [
        "do nothing",
        "post about a",
        "post about b",
        "comment on #1",
        "upvote #1",
        "downvote #1",
        "report #1",
        "report #2",  # already voted on #2: no vote options
        "comment on #3",
        "upvote #3",
        "downvote #3",  # already reported #3
        "follow @1",  # @2 is followed already, @1 offered once
    ]
    assert [action_type(m.label) for m in menu] == [m.type for m in menu]
    assert {m.type for m in menu} == set(ACTION_TYPES)
    assert menu[3].item == p.id and menu[3].author == 1 and menu[7].item == c.id
