"""Shared content first (feed, thread, item), and the forum's per-step work linear in members."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agents.interfaces import DecisionRequest, Prompt
from environments import mechanics
from environments.forum import prompts
from environments.forum.config import FeedConfig
from environments.forum.feed import FeedIndex, Forum, rank_hot
from environments.forum.model import polarisation
from tests.environments.forum.helpers import Pick, make_model


def test_members_with_the_same_feed_share_it_as_a_prefix():
    def act(persona, memory, karma):
        return prompts.act_prompt(
            "sys", persona=persona, note="", stance=0.5, memory=memory, karma=karma, feed="#1 post", options=("a", "b")
        ).user

    one, two = act("altruistic", "- step 1: you posted", 3.0), act("selfish", "- (nothing yet)", -2.0)
    shared = "Your feed:\n#1 post\nOptions: a; b.\n"  # the feed and what it offers
    assert one.startswith(shared) and two.startswith(shared)
    # the member's own part after it, the question last
    assert one.endswith("What do you do now?") and "Your karma: +3." in one


def test_comments_on_a_thread_share_it_and_the_item_leads_every_guardian_question():
    model = make_model()
    parent = model.forum.add(kind="post", author=1, step=0, topic="gardening", thread=1, text="Parent text here.")
    users = [
        prompts.write_prompt(
            "s", persona=p, note="", stance=s, memory=m, karma=0.0, topic="gardening", parent=parent, replies=[]
        ).user
        for p, s, m in (("neutral", 1.0, "- a"), ("selfish", -1.0, "- b"))
    ]
    head = "You reply to this post by @1: Parent text here.\n"
    assert all(u.startswith(head) and u.endswith("Write your comment, in one or two sentences.") for u in users)
    rule = model.cfg.rules[0]
    guard = prompts.guard_prompt("s", text="Some text.", rule_number=1, rule=rule).user
    helpful = prompts.helpful_prompt("s", text="Some text.", topic="gardening").user
    assert guard.startswith('Content: "Some text."\n') and helpful.startswith('Content: "Some text."\n')
    assert "posted under gardening" in helpful


def test_write_requests_stop_at_the_first_line_and_need_no_scoring_for_one_option():
    picker = Pick(act="post about")
    model = make_model(
        {"environment.activation_prob": 1.0},
        policies={"a": picker},
    )
    model.step()
    writes = [r for r in picker.seen if r.phase == "write"]
    assert writes and all(r.stop == ("\n",) for r in writes)
    one = DecisionRequest(agent_id=0, phase="write", options=("x",), prompt=Prompt("s", "u"), kind="text")
    assert not one.needs_scoring and DecisionRequest(0, "act", ("a", "b"), Prompt("s", "u")).needs_scoring
    with pytest.raises(ValueError, match="stop strings"):
        DecisionRequest(0, "write", ("x",), Prompt("s", "u"), stop=("",))


def _naive_feed(forum, viewer, following, now, cfg):
    """The feed as defined (a full ranking per viewer), to hold the shared index to."""
    posts = [p for p in forum.visible(forum.posts) if p.author != viewer]
    if cfg.ranking == "hot":
        chosen = rank_hot(posts, cfg.step_seconds)[: cfg.size]
    else:
        recent = [p for p in posts if p.author in following and now - p.step <= cfg.window]
        recent.sort(key=lambda p: p.id, reverse=True)
        rest = sorted((p for p in posts if p not in recent), key=lambda p: p.id, reverse=True)
        chosen = (recent + rest)[: cfg.size]
    feed = []
    for post in chosen:
        feed.append(post)
        replies = [c for c in forum.thread_comments(post.id) if c.author != viewer]
        feed.extend(rank_hot(replies, cfg.step_seconds)[: cfg.comments])
    return feed


@pytest.mark.parametrize("ranking", ["hot", "followed"])
def test_one_shared_ranking_gives_every_member_the_feed_a_full_ranking_gives(ranking):
    rng = np.random.default_rng(3)
    forum = Forum()
    for step, author in itertools.product(range(8), range(6)):
        if rng.random() < 0.5:
            p = forum.add(kind="post", author=author, step=step, topic="t", thread=0, text="p")
            p.thread, p.up = p.id, set(rng.choice(50, int(rng.integers(0, 6)), replace=False).tolist())
            p.removed = bool(rng.random() < 0.1)
            for _ in range(int(rng.integers(0, 4))):
                forum.add(kind="comment", author=int(rng.integers(0, 6)), step=step, topic="t", thread=p.id, text="c")
    cfg = FeedConfig(ranking=ranking, size=3, comments=2, window=3)
    index = FeedIndex(forum, 8, cfg)
    for viewer in range(6):
        following = {a for a in range(6) if a != viewer and rng.random() < 0.5}
        got = [it.id for it in index.feed(viewer, following)]
        assert got == [it.id for it in _naive_feed(forum, viewer, following, 8, cfg)]


def test_sorted_polarisation_equals_the_pairwise_mean():
    s = np.random.default_rng(0).uniform(-1, 1, 200)
    pairwise = np.abs(s[:, None] - s[None, :]).sum() / (200 * 199) / 2.0
    assert polarisation(s) == pytest.approx(pairwise, rel=1e-12)


def test_pick_peer_with_a_known_position_picks_the_same_peer_from_the_same_draw():
    class A:
        pass

    agents = [A() for _ in range(7)]
    for i, agent in enumerate(agents):
        a, b = np.random.default_rng(i), np.random.default_rng(i)
        for _ in range(20):
            assert mechanics.pick_peer(agent, agents, a) is mechanics.pick_peer(agent, agents, b, position=i)
    assert mechanics.pick_peer(agents[0], agents[:1], np.random.default_rng(0), position=0) is None
