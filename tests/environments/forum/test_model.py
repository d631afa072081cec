"""The forum model end to end: graph, acting, writing, learning, scenarios, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.interfaces import Decision, one_hot
from environments.forum.model import ForumModel, build_graph
from sim.config import load_scenario
from sim.core.schema import ConfigError
from sim.runner import run
from tests.environments.forum.helpers import Pick, info, make_model, make_scenario, post

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
LLM_GROUP = [{"name": "a", "size": 3, "policy": {"type": "llm"}}]


def test_graph_is_seeded_and_uses_member_ids():
    g1 = build_graph("barabasi_albert_graph", {"m": 2}, [10, 11, 12, 13, 14, 15], seed=3)
    g2 = build_graph("barabasi_albert_graph", {"m": 2}, [10, 11, 12, 13, 14, 15], seed=3)
    g3 = build_graph("barabasi_albert_graph", {"m": 2}, [10, 11, 12, 13, 14, 15], seed=4)
    assert sorted(g1.edges) == sorted(g2.edges) and sorted(g1.edges) != sorted(g3.edges)
    assert set(g1.nodes) == set(range(10, 16))
    assert all(g1.has_edge(b, a) for a, b in g1.edges)  # undirected generators: mutual follows
    model = make_model()
    assert set(model.graph.nodes) == set(model.members)
    assert sorted(model.graph.successors(1)) == [2, 4]  # a ring with k=2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"environment.graph.generator": "no_such_graph"}, "no graph generator"),
        ({"environment.graph.generator": "complete_graph", "environment.graph.params": {}}, "must take n and seed"),
        ({"environment.graph.params": {"k": 2, "q": 1}}, "do not fit"),
        ({"environment.graph.params": {"k": 2, "p": 0.1, "seed": 1}}, "must not set n or seed"),
        ({"environment.topics": [{"name": "x", "invites": "nope"}]}, "unknown rule 'nope'"),
        ({"environment.seed_threads": [{"topic": "zzz", "endorses": "spam"}]}, "not a topic"),
        ({"environment.moderation.ladder": ["removal", "warning"]}, "increasing subsequence"),
        ({"environment.moderation.sanction_karma": [1, 2]}, "one entry per ladder level"),
        ({"environment.guardian": {"mode": "llm", "policy": {"type": "llm", "modle": "x"}}}, "did you mean 'model'"),
        ({"environment.moderation.policy": "no_such_rule"}, "no_such_rule"),
        ({"environment.group_stance": {"nobody": 0.5}}, "no population group named nobody"),
    ],
)
def test_config_errors_name_the_problem(change, message):
    with pytest.raises(ConfigError, match=message):
        make_model(change)


def test_llm_defaults_and_config_round_trip():
    scenario = make_scenario({"environment.guardian.mode": "llm", "environment.moderation.mode": "agent"})
    env = scenario.environment
    assert env.guardian.policy.type == "llm" and env.guardian.policy.greedy
    assert env.moderation.policy.rule == "moderator"
    again = load_scenario(scenario.model_dump(mode="json"))
    assert again.environment.guardian.policy == env.guardian.policy


def test_votes_reports_and_follows_take_effect():
    model = make_model({"environment.activation_prob": 1.0}, {"a": Pick(act="upvote #1")})
    target = post(model, 1)
    model.step()
    assert target.up == {2, 3, 4} and model.members[1].wealth == 3 and model.members[1].last_payoff == 3
    assert all(target.id in model.members[i].voted for i in (2, 3, 4))
    model = make_model({"environment.activation_prob": 1.0}, {"a": Pick(act="report #1")})
    target = post(model, 1)
    model.step()
    # queued past 2 reports and reviewed; the guardian saw nothing wrong, so no sanction
    assert target.reporters == {2, 3, 4} and target.reviewed and not target.warned
    model = make_model({"environment.activation_prob": 1.0}, {"a": Pick(act="follow")})
    post(model, 3)
    assert not model.graph.has_edge(1, 3)
    model.step()
    assert model.graph.has_edge(1, 3)
    rows = [r for r in model.take_step_events() if r["phase"] == "act" and r["agent_id"] == 1]
    assert rows[0]["chosen"] == "follow @3" and rows[0]["target"] == 3 and info(rows[0])["type"] == "follow"


def test_scripted_members_write_labelled_templates():
    model = make_model({"environment.activation_prob": 1.0}, population=[{"name": "t", "size": 4, "policy": "troll"}])
    pick = Pick(act="post about deals", write="")
    model.policies["t"] = pick
    model.step()
    writes = [r for r in model.take_step_events() if r["phase"] == "write"]
    requests = [r for r in pick.seen if r.phase == "write"]
    assert len(writes) == 4 and requests[0].observation["labels"] == ["helpful", "chatter", "violation"]
    assert all(r["violation"] is False and info(r)["label_source"] == "template" for r in writes)  # option 0
    items = list(model.forum.items.values())
    assert all(it.kind == "post" and it.topic == "deals" and it.helpful for it in items)


class Writer:
    """An LLM-like stand-in: posts, then replies with the given text (parsed like an LLM policy)."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def decide(self, requests, rng):
        out = []
        for r in requests:
            if r.phase == "act":
                k = r.options.index("post about deals")
                out.append(Decision(probs=one_hot(len(r.options), k), choice=k))
                continue
            parsed = r.parse(self.reply)
            out.append(
                Decision(
                    probs=one_hot(1, 0),
                    choice=parsed if parsed is not None else r.fallback,
                    text=self.reply,
                    parse_failed=parsed is None,
                )
            )
        return out


def test_generated_text_is_judged_by_the_guardian_and_malformed_replies_fall_back():
    model = make_model(
        {"environment.activation_prob": 1.0}, {"a": Writer("Post: Use promo code X for 20% off")}, population=LLM_GROUP
    )
    model.step()
    items = list(model.forum.items.values())
    assert [it.text for it in items] == ["Use promo code X for 20% off"] * 3
    assert all(it.violation == "spam" and it.label_source == "guardian" for it in items)
    model = make_model({"environment.activation_prob": 1.0}, {"a": Writer("ok")}, population=LLM_GROUP)
    model.step()
    rows = [r for r in model.take_step_events() if r["phase"] == "write"]
    assert all(r["parse_failed"] for r in rows)
    assert all(
        it.label_source == "template" and "buying refurbished phones" in it.text for it in model.forum.items.values()
    )


def test_social_learning_copies_only_graph_neighbours():
    model = make_model(
        {"environment.activation_prob": 1.0, "mechanics.social_learning": {"enabled": True, "payoff": "wealth"}},
        population=[{"name": "a", "size": 8, "policy": "civil"}],
    )
    for _ in range(4):
        model.step()
    learn = [r for r in model.take_step_events() if r["phase"] == "learn"]
    assert learn
    neighbours = {a: set(model.graph.successors(a)) | set(model.graph.predecessors(a)) for a in model.members}
    assert all(r["target"] in neighbours[r["agent_id"]] for r in learn)


def test_social_learning_spreads_the_richer_neighbours_style():
    model = make_model(
        {
            "mechanics.social_learning": {"enabled": True, "payoff": "wealth", "selection_strength": 0.01},
            "environment.activation_prob": 0.0,
        },
        population=[{"name": "a", "size": 4, "policy": "civil"}, {"name": "t", "size": 1, "policy": "troll"}],
    )
    troll = model.members[5]
    troll.wealth = 100.0
    model.step()
    copied = [a for a in model.members.values() if a.strategy.rule == "troll" and a is not troll]
    assert copied and all(a.style == "provocative" and a.stance == troll.stance for a in copied)
    assert all(a.unique_id in set(model.graph.predecessors(5)) for a in copied)


def test_misleading_threads_are_seeded():
    model = make_model({"environment.seed_threads": [{"topic": "deals", "endorses": "spam", "comments": 2}]})
    items = list(model.forum.items.values())
    assert [it.kind for it in items] == ["post", "comment", "comment"]
    assert items[0].misleading == "spam" and all(it.endorses == "spam" for it in items[1:])
    assert all(it.author is None and it.violation is None for it in items)


@pytest.mark.parametrize("name", ["forum_moderated", "forum_unmoderated", "forum_misleading"])
def test_scenarios_run(tmp_path, name):
    result = run(SCENARIOS / f"{name}.yaml", out=tmp_path, overrides={"run.steps": 6}, report=False)
    m = result.metrics
    assert m["steps_completed"] == 6 and m["contributions"] > 0
    assert 0.0 <= m["violation_rate"] <= 1.0 and 0.0 <= m["cooperation"] <= 1.0
    assert len(m["violation_rate_by_step"]) == 6


def test_counterfactual_pair_starts_from_the_same_forum():
    pair = [load_scenario(SCENARIOS / f"forum_{k}.yaml") for k in ("moderated", "unmoderated")]
    models = [ForumModel(s, {g.name: Pick() for g in s.population}) for s in pair]
    assert sorted(models[0].graph.edges) == sorted(models[1].graph.edges)
    assert [a.stance for a in models[0].society] == [a.stance for a in models[1].society]
    a, b = pair
    assert a.model_dump(exclude={"name", "environment"}) == b.model_dump(exclude={"name", "environment"})
    assert a.environment.model_dump(exclude={"moderation"}) == b.environment.model_dump(exclude={"moderation"})


def test_runs_are_deterministic(tmp_path):
    def events(seed, sub):
        r = run(
            SCENARIOS / "forum_moderated.yaml", out=tmp_path / sub, seed=seed, overrides={"run.steps": 8}, report=False
        )
        return r.events.drop(columns=["run_id"])

    first, again, other = events(5, "a"), events(5, "b"), events(6, "c")
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert np.isclose([sum(p) for p in first["probs"]], 1.0).all()


def test_initial_stances_and_the_followed_feed():
    model = make_model(
        {
            "environment.group_stance": {"t": -0.5},
            "environment.initial_stance": "uniform",
            "environment.feed.ranking": "followed",
            "environment.activation_prob": 1.0,
        },
        population=[{"name": "a", "size": 5, "policy": "civil"}, {"name": "t", "size": 2, "policy": "troll"}],
    )
    assert [a.stance for a in model.society if a.group == "t"] == [-0.5, -0.5]
    assert all(-1 <= a.stance <= 1 for a in model.society)
    assert {a.style for a in model.society} == {"civil", "provocative"}
    for _ in range(4):
        model.step()
    assert model.datacollector.model_vars["items"][-1] > 0
