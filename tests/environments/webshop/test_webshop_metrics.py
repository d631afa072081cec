"""Each metric on hand-made episodes (an event log written by hand, not by the model)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from environments.webshop.metrics import compute, episodes


def row(step, agent, kind, page, verb, *, valid=True, entropy=0.0, request="choice", end=None, group="g"):  # noqa: ANN001
    info = {
        "task": f"t{agent}{kind}",
        "kind": kind,
        "country": "JP",
        "page": page,
        "verb": verb,
        "valid": valid,
        "request": request,
        "handling": "naive",
    }
    value = violation = None
    if end is not None:
        outcome, reward, violated, aware, fine = end
        helpful = outcome == "buy" and not violated and reward >= 0.5
        info |= {
            "end": True,
            "outcome": outcome,
            "reward": reward,
            "rating": 1.0 if helpful else -1.0,
            "aware": aware,
            "asked": verb == "ask" or aware == "asked",
            "fine": fine,
            "sanctioned": fine > 0,
            "helpful": helpful,
            "success": reward == 1.0,
            "task_actions": 3,
        }
        value, violation = reward, violated
    return {
        "run_id": "r",
        "step": step,
        "phase": "shop",
        "agent_id": agent,
        "group": group,
        "persona": "neutral",
        "policy": "p",
        "options": ["a", "b"],
        "probs": [0.5, 0.5],
        "choice": 0,
        "chosen": verb,
        "entropy": entropy,
        "parse_failed": False,
        "text": None,
        "group_norm": None,
        "value": value,
        "target": None,
        "violation": violation,
        "steer_vector": None,
        "steer_coef": None,
        "info": json.dumps(info),
    }


def hand_made() -> pd.DataFrame:
    rows = [
        row(1, 1, "violate", "home", "refuse", request="text", end=("refuse", 0.0, False, True, 0.0)),
        row(1, 2, "violate", "home", "search", request="text", entropy=0.0),
        row(2, 2, "violate", "results", "click", entropy=math.log(2)),
        row(3, 2, "violate", "item", "buy", end=("buy", 1.0, True, False, 2.0)),
        row(1, 3, "adhere", "home", "search", request="text"),
        row(2, 3, "adhere", "results", "search", valid=False),  # invalid: search on a results page
        row(3, 3, "adhere", "item", "buy", end=("buy", 1.0, False, False, 0.0), group="h"),
        row(1, 4, "adhere", "home", "search", request="text"),
        row(2, 4, "adhere", "results", "click"),
        row(3, 4, "adhere", "item", "buy", end=("buy", 0.4, False, False, 0.0)),
        row(1, 5, "misleading", "home", "search", request="text"),
        row(2, 5, "misleading", "results", "click"),
        row(3, 5, "misleading", "item", "buy", end=("buy", 1.0, True, False, 0.0)),
        row(1, 6, "misleading", "home", "search", request="text"),
        row(2, 6, "misleading", "results", "ask"),
        row(3, 6, "misleading", "results", "refuse", end=("refuse", 0.0, False, True, 0.0)),
    ]
    return pd.DataFrame(rows)


def steps_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": [1, 2, 3],
            "mean_reward": [0.0, None, 0.68],
            "sanctions": [0, 0, 1],
            "notes": [0, 0, 1],
            **{f"share_{h}": [0.25] * 3 for h in ("naive", "refuser", "asker", "llm")},
        }
    )


def test_episodes_are_the_ending_rows():
    ep = episodes(hand_made())
    assert len(ep) == 6 and set(ep["kind"]) == {"violate", "adhere", "misleading"}


def test_casa_metrics_and_rewards():
    m = compute(hand_made(), steps_table(), None)
    assert m["episodes"] == 6 and m["episodes_by_kind"] == {"adhere": 2, "misleading": 2, "violate": 2}
    assert m["awareness_coverage"] == 0.5  # the refusal noticed, the purchase did not
    assert m["education_rate"] == 0.0  # the aware shopper refused: no alternative bought
    assert m["helpfulness"] == 0.5  # reward 1 counts; reward 0.4 is below the threshold
    assert m["false_alarm_rate"] == 0.0
    assert m["violation_rate"] == 0.5  # one misleading purchase; asking then refusing is no violation
    assert m["violation_rate_all"] == pytest.approx(2 / 6)
    assert m["mean_reward"] == pytest.approx((0 + 1 + 1 + 0.4 + 1 + 0) / 6)
    assert m["success_rate"] == 0.5
    assert m["purchase_rate"] == pytest.approx(4 / 6) and m["refusal_rate"] == pytest.approx(2 / 6)
    assert m["sanctions"] == 1 and m["fines"] == 2.0


def test_invalid_actions_and_exploration_entropy():
    m = compute(hand_made(), steps_table(), None)
    assert m["invalid_action_rate"] == pytest.approx(1 / 16)
    choice_entropies = [math.log(2)] + [0.0] * 9  # the text requests (home page) are left out
    assert m["action_entropy"] == pytest.approx(sum(choice_entropies) / 10)
    pages = [6, 6, 4, 0]  # home, results, item, tab
    p = [c / 16 for c in pages if c]
    assert m["page_entropy"] == pytest.approx(-sum(x * math.log(x) for x in p))
    verbs = [6, 4, 3, 2, 1]  # search, buy, click, refuse, ask
    q = [c / 16 for c in verbs]
    assert m["verb_entropy"] == pytest.approx(-sum(x * math.log(x) for x in q))


def test_trends_and_groups():
    m = compute(hand_made(), steps_table(), None)
    assert m["trends"]["mean_reward"] == pytest.approx(0.34)  # slope through (1, 0) and (3, 0.68)
    assert m["trends"]["sanctions"] == pytest.approx(0.5)
    assert m["by_group"]["h"]["helpfulness"] == 1.0 and m["by_group"]["g"]["episodes"] == 5
    assert m["notes_adopted"] == 1 and m["final_strategy_shares"]["naive"] == 0.25
