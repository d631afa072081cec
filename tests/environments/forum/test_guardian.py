"""The guardian: keyword rules, an LLM scoring yes/no per rule, both, and what gets logged."""

from __future__ import annotations

import numpy as np
import pytest

from environments.forum import guardian as guardian_module
from environments.forum.config import ForumConfig
from environments.forum.guardian import keyword_match
from tests.environments.forum.helpers import info, make_model, post

RULES = ForumConfig().rules


def guard_rows(model):
    return [r for r in model.step_events if r["phase"] == "guard"]


def test_keyword_match_is_case_insensitive_and_takes_the_first_rule():
    assert keyword_match("You IDIOT", RULES) == "civility"
    assert keyword_match("Use promo code X, idiot", RULES) == "civility"  # rules are checked in order
    assert keyword_match("Call the council's phone number", RULES) == "privacy"
    assert keyword_match("A calm, useful answer.", RULES) is None


def test_keyword_guardian_logs_every_judgement_and_keeps_template_truth():
    model = make_model()
    trap = post(model, 1, "Students get a discount at the repair shop.", violation=None)
    insult = post(model, 2, "What a clown take.", violation="civility")
    clean = post(model, 3, "Compare two shops before buying.")
    model.guardian.judge([trap, insult, clean], generated=set())
    rows = guard_rows(model)
    assert [(info(r)["item"], r["chosen"], r["value"], info(r)["rule"]) for r in rows] == [
        (trap.id, "Yes", 1.0, "spam"),
        (insult.id, "Yes", 1.0, "civility"),
        (clean.id, "No", 0.0, None),
    ]
    assert all(r["agent_id"] == -1 and r["policy"] == "keyword" for r in rows)
    assert trap.guardian_rule == "spam" and trap.violation is None  # a false positive; the label stays the truth
    assert clean.guardian_p == 0.0 and clean.guardian_rule is None


def test_keyword_guardian_labels_generated_text():
    model = make_model()
    own = post(model, 1, "Click here for my referral link", label_source="template")
    model.guardian.judge([own], generated={own.id})
    assert own.violation == "spam" and own.label_source == "guardian" and not own.helpful


class Scores:
    """A stand-in LLM policy: P(yes) per rule number found in the prompt; records requests."""

    def __init__(self, p_by_rule: dict[int, float], helpful: float = 0.9) -> None:
        self.p = p_by_rule
        self.helpful = helpful
        self.requests = []

    def decide(self, requests, rng):
        from agents.interfaces import Decision

        out = []
        for r in requests:
            self.requests.append(r)
            number = next((k for k in self.p if f"rule {k} " in r.prompt.user), None)
            p = self.helpful if number is None else self.p[number]
            out.append(Decision(probs=np.array([1 - p, p]), choice=int(p >= 0.5)))
        return out


@pytest.fixture
def llm_guardian():
    def build(p_by_rule, mode="llm", threshold=0.5, helpful=0.9):
        policy = Scores(p_by_rule, helpful)
        # the guardian's policy is built by the runner like a group's, so `policies` replaces it
        model = make_model(
            {"environment.guardian.mode": mode, "environment.guardian.threshold": threshold},
            policies={guardian_module.GUARDIAN_GROUP: policy},
        )
        return model, policy

    return build


def test_llm_guardian_asks_yes_no_per_rule_with_the_policy_in_the_prompt(llm_guardian):
    model, policy = llm_guardian({1: 0.1, 2: 0.7, 3: 0.3})
    scripted = post(model, 1, "Some scripted text.", violation=None)
    generated = post(model, 2, "Some generated text.")
    model.guardian.judge([scripted, generated], generated={generated.id})
    # 3 rules for each item, plus the helpfulness question for the generated one
    assert len(policy.requests) == 7
    assert all(r.phase == "guard" and r.options == ("No", "Yes") for r in policy.requests)
    assert all("Community rules:\n1. Be civil" in r.prompt.system for r in policy.requests)
    rows = guard_rows(model)
    assert [info(r)["rule"] for r in rows] == ["civility", "spam", "privacy"] * 2 + ["helpful"]
    assert [r["value"] for r in rows[:3]] == pytest.approx([0.1, 0.7, 0.3])
    assert [r["violation"] for r in rows[:3]] == [False, True, False]
    assert all(info(r)["method"] == "llm" and r["policy"] == "llm:smollm2-135m" for r in rows)
    assert scripted.guardian_p == pytest.approx(0.7) and scripted.violation is None  # truth kept
    assert generated.violation == "spam" and generated.label_source == "guardian"


def test_llm_guardian_threshold_and_helpfulness(llm_guardian):
    model, _ = llm_guardian({1: 0.2, 2: 0.3, 3: 0.4}, threshold=0.5, helpful=0.8)
    a = post(model, 1, "Generated and civil.")
    model.guardian.judge([a], generated={a.id})
    assert a.violation is None and a.helpful and a.guardian_p == pytest.approx(0.4)
    model, _ = llm_guardian({1: 0.2, 2: 0.3, 3: 0.4}, helpful=0.1)
    b = post(model, 1, "Generated, civil, useless.")
    model.guardian.judge([b], generated={b.id})
    assert b.violation is None and not b.helpful


def test_both_modes_combine_keyword_and_llm(llm_guardian):
    model, _ = llm_guardian({1: 0.0, 2: 0.0, 3: 0.6}, mode="both")
    item = post(model, 1, "You idiot.")
    model.guardian.judge([item], generated={item.id})
    rows = guard_rows(model)
    assert [(info(r)["method"], r["policy"]) for r in rows] == [("keyword", "keyword")] + [
        ("llm", "llm:smollm2-135m")
    ] * 4
    assert item.guardian_p == 1.0 and item.violation == "civility"  # the keyword hit outranks P = 0.6
