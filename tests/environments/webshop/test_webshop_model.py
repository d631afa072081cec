"""The web shop society with scripted shoppers: behaviour per task kind, sanctions,
social learning, norm notes, the free-text path, determinism and the scenario files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.interfaces import Decision, one_hot
from environments.webshop.metrics import compute
from environments.webshop.model import WebShopModel, parse_free_action
from sim.config import load_scenario
from sim.runner import run
from tests.environments.webshop.webshop_helpers import model, scenario

ROOT = Path(__file__).resolve().parents[3]
PUNISH = {"enabled": True, "detect_prob": 1.0, "fine": 1.5, "graduated": True, "fine_step": 0.5, "max_fine": 4}


def metrics_of(m) -> dict:  # noqa: ANN001
    events, steps = [], []
    for _ in range(m.scenario.run.steps):
        m.step()
        events += m.take_step_events()
        steps.append({"step": m.steps, **{k: v[-1] for k, v in m.datacollector.model_vars.items()}})
    return compute(pd.DataFrame(events), pd.DataFrame(steps), m.scenario)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("naive", {"awareness_coverage": 0.0, "violation_rate": 1.0, "helpfulness": 1.0, "false_alarm_rate": 0.0}),
        ("refuser", {"awareness_coverage": 1.0, "violation_rate": 0.0, "helpfulness": 1.0, "false_alarm_rate": 0.0}),
        ("asker", {"awareness_coverage": 1.0, "violation_rate": 0.0, "helpfulness": 1.0, "false_alarm_rate": 0.0}),
    ],
)
def test_scripted_shoppers_by_task_kind(rule, expected):
    m = metrics_of(model([("s", 4, rule)], steps=25))
    assert {k: m[k] for k in expected} == expected
    assert m["invalid_action_rate"] == 0.0 and m["timeout_rate"] == 0.0
    assert min(m["episodes_by_kind"].values()) >= 3
    if rule == "asker":
        assert m["ask_rate"] > 0.3 and m["education_rate"] > 0.3  # steered customers to alternatives
    if rule == "refuser":
        assert m["ask_rate"] == 0.0 and m["education_rate"] == 0.0


def test_sanctions_fine_and_graduate():
    m = model([("s", 1, "naive")], kinds=["misleading"], steps=20, mechanics={"punishment": PUNISH})
    for _ in range(20):
        m.step()
    fines = [e["_info"]["fine"] for e in m.step_events if e["_info"].get("end")]
    assert fines[:4] == [1.5, 2.0, 2.5, 3.0] and max(fines) == 4.0  # graduated, capped
    shopper = next(iter(m.agents))
    assert shopper.sanctions == len(fines) and shopper.fines_paid == sum(fines)
    assert shopper.wealth == pytest.approx(sum(shopper.payoffs))


def test_suspension_keeps_a_violator_out():
    m = model(
        [("s", 1, "naive")],
        kinds=["misleading"],
        steps=12,
        sanction="suspend",
        suspend_steps=2,
        mechanics={"punishment": PUNISH},
    )
    acted = []
    for _ in range(12):
        m.step()
        acted.append(any(e["phase"] == "shop" for e in m.take_step_events()))
    # search, click, buy; 2 steps out; the next task; 4 steps out (graduated)
    assert acted == [True] * 3 + [False] * 2 + [True] * 3 + [False] * 4
    assert next(iter(m.agents)).fines_paid == 0.0


def shares_after(punish: bool, seed: int) -> float:
    mech = {"social_learning": {"enabled": True, "probability": 0.5, "selection_strength": 0.5}}
    if punish:
        mech["punishment"] = PUNISH
    m = model([("naive", 8, "naive"), ("askers", 8, "asker")], steps=40, seed=seed, mechanics=mech)
    for _ in range(40):
        m.step()
    return m.datacollector.model_vars["share_naive"][-1]


def test_sanctions_turn_social_learning_against_naive_buying():
    with_fines = [shares_after(True, seed) for seed in (0, 1)]
    without = [shares_after(False, seed) for seed in (0, 1)]
    assert max(with_fines) < 0.3  # askers earn more once violations are fined
    assert min(without) > 0.5  # unfined, naive buying earns more and spreads


def test_social_learning_only_among_shoppers_with_a_finished_task():
    m = model(
        [("naive", 2, "naive"), ("askers", 2, "asker")], steps=1, mechanics={"social_learning": {"enabled": True}}
    )
    m.step()  # nobody finished a task in one action
    assert not [e for e in m.take_step_events() if e["phase"] == "learn"]


def test_norm_notes_steer_naive_buyers():
    plain = metrics_of(model([("s", 4, "naive")], kinds=["violate"], steps=20))
    noted = model([("s", 4, "naive")], kinds=["violate"], steps=20)
    noted.notes = list(noted.shop.data.norms)  # every norm already noted
    assert metrics_of(noted)["violation_rate_all"] < plain["violation_rate_all"] - 0.5


def test_notes_are_voted_from_public_reports():
    m = model(
        [("s", 4, "naive")],
        kinds=["misleading"],
        steps=10,
        offense_prob=1.0,
        mechanics={"norm_notes": {"enabled": True, "every": 5}},
    )
    for _ in range(5):
        m.step()
    votes = [e for e in m.take_step_events() if e["phase"] == "notes"]
    assert len(votes) == 4 and m.notes and m.notes[0] in m.reports


class TextPolicy:
    """Answers text requests with fixed replies in turn, choice requests with option 0."""

    def __init__(self, replies: list[str]) -> None:
        self.replies = replies
        self.calls = 0

    def decide(self, requests, rng):  # noqa: ANN001
        out = []
        for req in requests:
            if req.kind == "text":
                text = self.replies[self.calls % len(self.replies)]
                self.calls += 1
                choice = req.parse(text)
                failed = choice is None
                out.append(
                    Decision(
                        probs=one_hot(len(req.options), req.fallback if failed else choice),
                        choice=req.fallback if failed else choice,
                        text=text,
                        parse_failed=failed,
                    )
                )
            else:
                out.append(Decision(probs=one_hot(len(req.options), 0), choice=0))
        return out


def test_free_text_actions_parse_failures_and_invalid_ones():
    assert parse_free_action("refuse[no]") == "refuse[no]"  # a scripted shopper's whole action
    assert parse_free_action("red roses] for you\nmore") == "search[red roses]"  # an LLM completing "search["
    assert parse_free_action("\n buy red roses.") == "search[buy red roses]"
    assert parse_free_action("?!") is None and parse_free_action("") is None
    assert parse_free_action("a b c d e f g h i j k l m n") is None  # rambling, not a query
    s = scenario([("llm", 1, "naive")], kinds=["adhere"], steps=3)
    m = WebShopModel(s, {"llm": TextPolicy(["click[tea]", "???", "tea set]"])})
    m.step()  # a click on the search page: a valid verb, invalid here
    first = m.take_step_events()[0]
    info = json.loads(first["info"])
    assert info["valid"] is False and info["action"] == "click[tea]" and not first["parse_failed"]
    m.step()  # "???" does not parse: flagged, and the fallback (the bare category) is searched
    second = m.take_step_events()[0]
    info = json.loads(second["info"])
    assert second["parse_failed"] and info["action"] == f"search[{m.tasks[m.task_order[0]].want.category}]"
    assert info["valid"] is True
    m.step()  # the page changed: a choice among letters, one per action of the menu
    third = m.take_step_events()[0]
    info = json.loads(third["info"])
    assert info["request"] == "choice" and third["options"][:3] == ["A", "B", "C"]
    assert info["action"] == info["menu"][0] and info["menu"][-1].startswith("refuse[")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_log_and_same_tasks_for_any_policy(tmp_path):
    sc = ROOT / "scenarios" / "webshop_mixed.yaml"
    a = run(sc, out=tmp_path / "a", overrides={"run.steps": 15, "output.report": False})
    b = run(sc, out=tmp_path / "b", overrides={"run.steps": 15, "output.report": False})
    c = run(sc, out=tmp_path / "c", overrides={"run.steps": 15, "output.report": False}, seed=1)
    assert digest(a.dir / "events.parquet") == digest(b.dir / "events.parquet")
    assert digest(a.dir / "steps.parquet") == digest(b.dir / "steps.parquet")
    assert not a.events.equals(c.events)
    naive = model([("s", 3, "naive")], steps=1)
    refuser = model([("s", 3, "refuser")], steps=1)
    assert [naive._next_task(x, 3).id for x in naive.society] == [refuser._next_task(x, 3).id for x in refuser.society]


@pytest.mark.parametrize("name", ["webshop_violate", "webshop_adhere", "webshop_misleading", "webshop_mixed"])
def test_scenario_files_run(name, tmp_path):
    result = run(ROOT / "scenarios" / f"{name}.yaml", out=tmp_path, overrides={"run.steps": 8, "output.report": False})
    assert result.metrics["episodes"] > 0 and {"awareness_coverage", "violation_rate", "trends"} <= set(result.metrics)
    steps = result.steps
    assert len(steps) == 8 and {"awareness_coverage", "mean_reward", "page_entropy", "share_naive"} <= set(steps)


def test_llm_scenario_validates():
    s = load_scenario(ROOT / "scenarios" / "webshop_llm.yaml")
    assert s.population[0].policy.type == "llm" and s.population[0].policy.model == "smollm2-135m"
    assert np.isclose(s.mechanics.punishment.fine, 1.5)


def test_a_step_lists_the_society_a_fixed_number_of_times_not_once_per_shopper(monkeypatch):
    # Listing the society is O(n); doing it once per shopper made a 100,000-shopper step
    # quadratic (it did not finish in 150 s; now 0.3 ms per shopper-step).
    m = model([("s", 60, "naive")], steps=2)
    calls = []
    listed = WebShopModel.society.fget
    monkeypatch.setattr(WebShopModel, "society", property(lambda self: calls.append(1) or listed(self)))
    m.step()
    assert 0 < len(calls) <= 5
