"""Reports, the threshold, the sanction ladder, bans and the moderator's budget."""

from __future__ import annotations

from environments.forum.agents import PERMANENT
from environments.forum.moderation import queue
from environments.forum.prompts import feed_text
from tests.environments.forum.helpers import Pick, info, make_model, post

IDLE = {"a": Pick()}  # every member always does nothing


def reported(model, author, n_reports=2, violation="spam", guardian_p=1.0, **fields):
    return post(
        model, author, violation=violation, guardian_p=guardian_p, reporters=set(range(90, 90 + n_reports)), **fields
    )


def moderate_rows(model):
    return [r for r in model.step_events if r["phase"] == "moderate"]


def test_report_threshold_queues_and_labels():
    model = make_model()
    once = reported(model, 1, n_reports=1)
    twice = reported(model, 1, n_reports=2)
    assert queue(model.forum, 2) == [twice]
    assert "[reported by members]" not in feed_text([once], 2)
    assert "[reported by members]" in feed_text([twice], 2)
    model3 = make_model({"environment.moderation.report_threshold": 3})
    reported(model3, 1, n_reports=2)
    assert queue(model3.forum, model3.threshold) == []


def test_queue_order_is_most_reported_then_oldest():
    model = make_model()
    a = reported(model, 1, n_reports=2)
    b = reported(model, 2, n_reports=4)
    c = reported(model, 3, n_reports=2)
    assert queue(model.forum, 2) == [b, a, c]


def test_the_sanction_ladder_escalates_to_a_permanent_ban():
    model = make_model()
    items = [reported(model, 1) for _ in range(5)]
    author = model.members[1]
    model.moderation.step()
    levels = [info(r)["level"] for r in moderate_rows(model)]
    assert levels == ["warning", "removal", "temp_ban", "perm_ban", "removal"]  # banned for good: removal only
    assert items[0].warned and not items[0].removed
    assert all(it.removed for it in items[1:])
    assert author.banned_until == PERMANENT and author.sanctions == 4
    assert author.wealth == -(0 + 1 + 3 + 5)  # each rung's sanction_karma
    assert all(r["violation"] for r in moderate_rows(model))
    assert all(it.reviewed for it in items)
    assert model.tally["warning"] == 1 and model.tally["perm_ban"] == 1 and model.tally["removal"] == 2


def test_banned_members_cannot_act_until_a_temporary_ban_ends():
    model = make_model({"environment.activation_prob": 1.0, "environment.moderation.temp_ban_steps": 2}, IDLE)
    author = model.members[1]
    author.sanctions = 2  # next rung: temporary ban
    reported(model, 1)
    acted = []
    for _ in range(5):
        model.step()
        acted.append({r["agent_id"] for r in model.take_step_events() if r["phase"] == "act"})
    # step 1: acts, then is banned for steps 2 and 3; acts again from step 4
    assert [1 in a for a in acted] == [True, False, False, True, True]
    assert all({2, 3, 4} <= a for a in acted)
    assert author.banned_until is None


def test_permanently_banned_members_never_act_again():
    model = make_model({"environment.activation_prob": 1.0}, IDLE)
    model.members[2].sanctions = 3
    reported(model, 2)
    steps = []
    for _ in range(4):
        model.step()
        steps.append({r["agent_id"] for r in model.take_step_events() if r["phase"] == "act"})
    assert 2 in steps[0] and all(2 not in s for s in steps[1:])
    assert model.datacollector.model_vars["banned"][-1] == 1


def test_budget_limits_reviews_per_step():
    model = make_model({"environment.moderation.budget": 2})
    items = [reported(model, 1 + i % 4) for i in range(5)]
    model.moderation.step()
    assert sum(it.reviewed for it in items) == 2
    assert model.tally["queued"] == 5
    model.moderation.step()
    assert sum(it.reviewed for it in items) == 4


def test_guardian_verification_and_false_sanctions():
    model = make_model()
    innocent = reported(model, 1, violation=None, guardian_p=0.0)
    model.moderation.step()
    assert innocent.reviewed and not innocent.removed and not innocent.warned
    assert model.members[1].sanctions == 0
    assert moderate_rows(model)[0]["chosen"] == "dismiss"

    trusting = make_model({"environment.moderation.verify": "reports"})
    innocent = reported(trusting, 1, violation=None, guardian_p=0.0)
    trusting.moderation.step()
    row = moderate_rows(trusting)[0]
    assert row["chosen"] == "sanction" and row["violation"] is False and innocent.warned


def test_no_moderation_reviews_nothing():
    model = make_model({"environment.moderation.mode": "none"})
    item = reported(model, 1, n_reports=5)
    model.moderation.step()
    assert not item.reviewed and moderate_rows(model) == []


def test_agent_moderator_decides_through_the_policy():
    model = make_model({"environment.moderation.mode": "agent"})
    bad = reported(model, 1, n_reports=3)
    fine = reported(model, 2, violation=None, guardian_p=0.2)
    model.moderation.step()
    rows = moderate_rows(model)
    assert [r["agent_id"] for r in rows] == [-2, -2]
    assert rows[0]["policy"] == "scripted:moderator"
    assert [r["chosen"] for r in rows] == ["sanction", "dismiss"]
    assert bad.warned and not fine.warned


def test_seeded_content_is_removed_without_a_sanction():
    model = make_model()
    seeded = reported(model, None)
    model.moderation.step()
    assert seeded.removed
    assert info(moderate_rows(model)[0])["level"] == "removal"
    assert all(m.sanctions == 0 for m in model.members.values())
