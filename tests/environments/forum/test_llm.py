"""LLM members and the LLM guardian through the real policy path.

The first tests use the seeded tiny random Llama built in code (instant, meaningless
text, so replies often fail to parse and fall back to templates); the integration test
runs the default embedded model for two steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.runner import run
from tests.environments.forum.helpers import BASE, info, make_model, post


def llm_scenario(model: str, members: int = 3, steps: int = 2) -> dict:
    llm = {"type": "llm", "model": model, "max_new_tokens": 16}
    return {
        **BASE,
        "environment": {
            **BASE["environment"],
            "activation_prob": 1.0,
            "guardian": {"mode": "both", "policy": {**llm, "greedy": True}},
        },
        "population": [
            {"name": "members", "size": members, "memory": 2, "policy": llm},
            {"name": "trolls", "size": 1, "policy": "troll"},
        ],
        "run": {"steps": steps, "seed": 1},
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return run(llm_scenario("tiny-random-llama"), out=tmp_path_factory.mktemp("tiny"), report=False)


def test_llm_members_act_write_and_are_judged(tiny_run):
    ev = tiny_run.events
    acts = ev[(ev["phase"] == "act") & (ev["group"] == "members")]
    assert len(acts) == 6  # three members, everyone active, two steps
    assert all(
        np.isclose(sum(p), 1.0) and len(p) == len(o) for p, o in zip(acts["probs"], acts["options"], strict=True)
    )
    # the feed's options before the member's own part, the question last
    assert all(
        0 <= p.find("Options: do nothing; post about") < p.find("Your karma") < p.find("What do you do now?")
        for p in acts["prompt"]
    )
    writes = ev[ev["phase"] == "write"]
    items = {info(r)["item"]: r for _, r in writes.iterrows()}
    guard = ev[ev["phase"] == "guard"]
    llm_rows = guard[guard["policy"] == "llm:tiny-random-llama"]
    # every new item: one keyword judgement and one LLM yes/no per rule (+ helpfulness if generated)
    for item, row in items.items():
        rules = [info(r)["rule"] for _, r in llm_rows.iterrows() if info(r)["item"] == item]
        generated = info(row)["label_source"] == "guardian"
        assert rules == ["civility", "spam", "privacy"] + (["helpful"] if generated else [])
        assert generated == (row["group"] == "members" and not row["parse_failed"])
    assert (guard["value"].between(0, 1)).all()
    assert tiny_run.metrics["parse_failures"] == int(writes["parse_failed"].sum())


def test_llm_runs_are_deterministic(tiny_run, tmp_path):
    again = run(llm_scenario("tiny-random-llama"), out=tmp_path, report=False)
    pd.testing.assert_frame_equal(tiny_run.events.drop(columns="run_id"), again.events.drop(columns="run_id"))


@pytest.mark.integration
def test_default_model_smoke(tmp_path):
    result = run(llm_scenario("smollm2-135m", members=2), out=tmp_path, report=False)
    ev = result.events
    assert result.metrics["steps_completed"] == 2
    assert set(ev["phase"]) >= {"act", "guard"}
    member_rows = ev[(ev["group"] == "members") & (ev["phase"] == "act")]
    assert len(member_rows) == 4 and (member_rows["entropy"] >= 0).all()
    assert len(ev[ev["phase"] == "guard"]) > 0


def test_llm_moderator_decides_within_its_budget(tiny_run):
    llm = {"type": "llm", "model": "tiny-random-llama"}
    model = make_model({"environment.moderation": {"mode": "agent", "policy": llm, "budget": 2}})
    items = [post(model, 1 + i, f"Reported post {i}", reporters={7, 8}, guardian_p=1.0) for i in range(3)]
    model.moderation.step()
    rows = [r for r in model.step_events if r["phase"] == "moderate"]
    assert len(rows) == 2 and all(r["policy"] == "llm:tiny-random-llama" for r in rows)
    assert all(r["options"] == ["dismiss", "sanction"] and np.isclose(sum(r["probs"]), 1.0) for r in rows)
    assert "Reported content by @1 (2 reports, 0 earlier sanctions)" in rows[0]["prompt"]
    assert [it.reviewed for it in items] == [True, True, False]
    sanctioned = [r["chosen"] == "sanction" for r in rows]
    assert [items[0].warned, items[1].warned] == sanctioned  # first offence: a warning
