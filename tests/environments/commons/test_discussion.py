"""Talk (mechanics.discussion): speaking rounds, the agreement rule, where words go."""

from __future__ import annotations

import pytest

from environments.discussion import agreed_limit, proposal_in
from sim.runner import run


def test_a_proposal_is_the_last_quantity_said():
    assert proposal_in("I caught 12 tons, so I propose 10 tons each.") == 10.0
    assert proposal_in("Let us keep it to 7.5 ton") == 7.5
    assert proposal_in("No more than 3 tonnes, fisher 4 said in month 2") == 3.0
    # echoed prompt text is not a proposal (SmolLM2-135M does echo it)
    assert proposal_in("You are fisher 3. You make a living from the lake. Month 1") is None
    assert proposal_in("We should be careful.") is None
    assert proposal_in("4 tonsils") is None


@pytest.mark.parametrize(
    ("proposals", "rule", "expected"),
    [
        ([10, 10, 10, 20, 20], "majority", 10.0),
        ([10, 10, 20, 20, None], "majority", None),  # 2 of 5 is no majority
        ([10, 10, 10, None, None], "majority", 10.0),  # silence counts as no support
        ([10, 10, 10, 10, 20], "unanimous", None),
        ([8, 8.04, 8], "unanimous", 8.0),  # equal to 0.1
        ([], "majority", None),
    ],
)
def test_agreement_rule(proposals, rule, expected):
    assert agreed_limit(proposals, rule) == expected


def scenario(talk: bool, rounds: int = 2):
    return {
        "name": "talk",
        "environment": {"type": "commons", "preset": "govsim"},
        "population": [
            {"name": "fair", "size": 3, "policy": "sustainable"},
            {"name": "greedy", "size": 2, "policy": "share", "strategy": {"factor": 2}},
        ],
        "mechanics": {"discussion": {"enabled": talk, "rounds": rounds}},
        "run": {"steps": 4, "seed": 1},
        "output": {"report": False},
    }


def test_scripted_meeting_agrees_logs_and_binds(tmp_path):
    with_talk = run(scenario(True, rounds=2), out=tmp_path / "a")
    talk = with_talk.events[with_talk.events["phase"] == "discuss"]
    assert len(talk) == 4 * 5 * 2  # every month, every fisher, every speaking round
    first = talk[talk["step"] == 1]
    # scripted speakers state their catch, then propose: fair fishers the share (10 t), greedy ones twice it
    said = dict(zip(first["agent_id"], first["text"], strict=False))
    assert any(t.startswith("I caught 10 tons.") and t.endswith("at most 10 tons each.") for t in said.values())
    assert sorted(first["value"].tolist()) == [10.0] * 6 + [20.0] * 4
    steps = with_talk.steps
    assert steps["agreed_limit"].iloc[0] == 10.0  # 3 of 5 proposed 10
    # the agreed limit binds the `share` fishers from month 2: nobody exceeds the share shown
    harvest = with_talk.events[(with_talk.events["phase"] == "harvest") & (with_talk.events["step"] >= 2)]
    assert harvest["violation"].sum() == 0
    without = run(scenario(False), out=tmp_path / "b")
    assert (without.events["phase"] == "discuss").sum() == 0

    # month 2 (60 t, share shown 6): the greedy fishers want 12 t; with talk the agreed 10 t caps them
    def greedy_month2(result):
        ev = result.events
        rows = ev[(ev["phase"] == "harvest") & (ev["step"] == 2) & (ev["group"] == "greedy")]
        return sorted(rows["value"].tolist())

    assert greedy_month2(without) == [12.0, 12.0]
    assert greedy_month2(with_talk) == [10.0, 10.0]


def test_everyone_hears_everything(tmp_path):
    from environments.commons.model import CommonsModel
    from sim.config import load_scenario
    from sim.runner import build_policies

    sc = load_scenario(scenario(True, rounds=2))
    seen = []
    policies = build_policies(sc)
    inner = policies["fair"]

    class Spy:
        def decide(self, requests, rng):
            seen.extend(requests)
            return inner.decide(requests, rng)

    model = CommonsModel(sc, {"fair": Spy(), "greedy": policies["greedy"]})
    model.step()
    second_round = [r for r in seen if r.phase == "discuss" and "round 2 of 2" in r.prompt.user]
    assert second_round
    for req in second_round:  # the round-1 words of every fisher, the greedy ones included
        assert req.prompt.user.count("I propose at most") == 5
    assert any("at the meeting you said" in line for a in model.society for line in a.memory)
    assert "meeting" in model.public_record[-1] and "agreed limit: 10" in model.public_record[-1]
