"""The public-goods game: payoffs by hand, matching, punishment accounting, rules, metrics."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from agents.interfaces import DecisionRequest, Prompt
from environments.public_goods import metrics as pg_metrics
from environments.public_goods.model import draw_groups, first_stage, others_mean, punish_payoff
from environments.public_goods.rules import RULES
from sim.config import load_scenario
from sim.core.schema import ConfigError
from sim.runner import run


def scenario(*groups: tuple[str, int], punishment: bool = False, steps: int = 3, **env) -> dict:
    return {
        "name": "pg_test",
        "environment": {"type": "public_goods", **env},
        "population": [{"name": rule, "size": size, "policy": rule} for rule, size in groups],
        "mechanics": {"punishment": {"enabled": punishment}},
        "run": {"steps": steps, "seed": 1},
        "output": {"report": False},
    }


def contributions(result) -> pd.DataFrame:
    ev = result.events
    c = ev[ev["phase"] == "contribute"].copy()
    info = pd.DataFrame(list(c["info"].map(json.loads)), index=c.index).rename(columns={"group": "match"})
    return pd.concat([c, info], axis=1)


# ------------------------------------------------------------------- payoffs by hand
def test_first_stage_payoff_is_the_mpcr_formula():
    # endowment 20, MPCR 0.4, contributions 20, 10, 0, 10: the project pays 0.4 * 40 = 16 each
    stage = first_stage(20, 0.4, np.array([20, 10, 0, 10]))
    assert stage.tolist() == pytest.approx([16.0, 26.0, 36.0, 26.0])
    assert others_mean(np.array([20, 10, 0, 10])).tolist() == pytest.approx([20 / 3, 10.0, 40 / 3, 10.0])


def test_punishment_costs_the_giver_and_takes_three_per_point_with_a_floor():
    stage = np.array([16.0, 26.0, 36.0, 26.0])
    # member 0 gives member 2 five points, member 1 gives member 2 seven points, member 3 gives member 0 one
    pts = np.zeros((4, 4))
    pts[0, 2], pts[1, 2], pts[3, 0] = 5, 7, 1
    payoff, deduction, paid = punish_payoff(
        stage, pts.sum(axis=0), pts.sum(axis=1), cost=1.0, impact=3.0, floor="round_income"
    )
    # member 2 received 12 points = 36 tokens: all of its 36, not more
    assert deduction.tolist() == pytest.approx([3.0, 0.0, 36.0, 0.0])
    assert paid.tolist() == pytest.approx([5.0, 7.0, 0.0, 1.0])
    assert payoff.tolist() == pytest.approx([16 - 3 - 5, 26 - 7, 0.0, 26 - 1])
    pts[3, 2] = 1  # one more point: capped at 36 with the floor, 39 without
    _, capped, _ = punish_payoff(stage, pts.sum(axis=0), pts.sum(axis=1), cost=1.0, impact=3.0, floor="round_income")
    payoff, free, _ = punish_payoff(stage, pts.sum(axis=0), pts.sum(axis=1), cost=1.0, impact=3.0, floor="none")
    assert capped[2] == 36.0 and free[2] == 39.0 and payoff[2] == pytest.approx(-3.0)


def test_logged_payoffs_match_the_formula_in_a_run(tmp_path):
    res = run(scenario(("full", 2), ("free_rider", 2), ("punisher", 4), punishment=True, steps=4), out=tmp_path)
    c = contributions(res)
    punish = res.events[res.events["phase"] == "punish"]
    for (step, _match), rows in c.groupby(["step", "match"]):
        total = rows["value"].sum()
        stage = 20 - rows["value"] + 0.4 * total
        assert rows["first_stage"].to_numpy() == pytest.approx(stage.to_numpy())
        for _, row in rows.iterrows():
            given = punish[(punish["step"] == step) & (punish["agent_id"] == row["agent_id"])]["value"].sum()
            received = punish[(punish["step"] == step) & (punish["target"] == row["agent_id"])]["value"].sum()
            assert row["points_given"] == given and row["points_received"] == received
            deduction = min(3 * received, max(row["first_stage"], 0.0))
            assert row["payoff"] == pytest.approx(row["first_stage"] - deduction - given)
    # wealth: the mean payoff per round is the step row's, and efficiency divides by 0.4 * 4 * 20
    per_step = c.groupby("step")["payoff"].mean()
    assert res.steps["mean_payoff"].to_numpy() == pytest.approx(per_step.to_numpy())
    assert res.metrics["efficiency"] == pytest.approx(c["payoff"].mean() / 32.0)


def test_without_punishment_nobody_is_asked_to_punish(tmp_path):
    res = run(scenario(("punisher", 4), ("free_rider", 4)), out=tmp_path)
    assert set(res.events["phase"]) == {"contribute"}
    assert res.metrics["punishment_points_per_member"] is None
    c = contributions(res)
    assert (c["payoff"] == c["first_stage"]).all()


# ------------------------------------------------------------------------- matching
def _groups_by_step(res) -> dict[int, set[frozenset[int]]]:
    c = contributions(res)
    return {
        int(step): {frozenset(rows[rows["match"] == g]["agent_id"]) for g in rows["match"].unique()}
        for step, rows in c.groupby("step")
    }


def test_partner_groups_stay_and_stranger_groups_are_redrawn(tmp_path):
    partner = _groups_by_step(run(scenario(("conditional", 16), steps=5), out=tmp_path / "p"))
    assert all(groups == partner[1] for groups in partner.values())
    assert all(len(g) == 4 for g in partner[1]) and len(partner[1]) == 4
    stranger = _groups_by_step(run(scenario(("conditional", 16), steps=5, matching="stranger"), out=tmp_path / "s"))
    assert len({frozenset(g) for g in stranger.values()}) > 1  # re-drawn (16 members: 2.6M partitions)
    assert all(sorted(len(g) for g in groups) == [4, 4, 4, 4] for groups in stranger.values())
    again = _groups_by_step(run(scenario(("conditional", 16), steps=5, matching="stranger"), out=tmp_path / "s2"))
    assert again == stranger  # seeded


def test_draw_groups_is_a_partition():
    groups = draw_groups(12, 4, np.random.default_rng(0))
    assert sorted(i for g in groups for i in g) == list(range(12)) and all(len(g) == 4 for g in groups)


def test_population_must_split_into_groups():
    with pytest.raises(ConfigError, match="group_size"):
        load_scenario(scenario(("conditional", 6)))
    with pytest.raises(ConfigError, match="mechanics: 'group_norm'"):
        load_scenario({**scenario(("conditional", 4)), "mechanics": {"group_norm": {"enabled": True}}})


# ---------------------------------------------------------------------------- rules
def _request(phase: str, n: int, **obs) -> DecisionRequest:
    base = {
        "endowment": 20,
        "start": 0.5,
        "reciprocity": 1.0,
        "last_others_mean": None,
        "last_contribution": None,
        "last_points_received": 0,
        "times_punished": 0,
    }
    return DecisionRequest(
        agent_id=0,
        phase=phase,
        options=tuple(str(k) for k in range(n)),
        values=tuple(float(k) for k in range(n)),
        prompt=Prompt("", ""),
        observation={**base, **obs},
    )


def _mean(probs) -> float:
    p = np.asarray(probs, dtype=float)
    return float((p / p.sum()) @ np.arange(len(p)))


def test_conditional_starts_at_half_then_matches_the_others_mean():
    assert _mean(RULES["conditional"](_request("contribute", 21))) == pytest.approx(10.0)
    probs = RULES["conditional"](_request("contribute", 21, last_others_mean=7.25))
    assert _mean(probs) == pytest.approx(7.25) and probs[7] == pytest.approx(0.75) and probs[8] == pytest.approx(0.25)
    half = RULES["conditional"](_request("contribute", 21, last_others_mean=12.0, reciprocity=0.5))
    assert _mean(half) == pytest.approx(6.0)
    # punished last round: above the others' mean by a token per point received
    punished = RULES["conditional"](
        _request("contribute", 21, last_others_mean=12.0, reciprocity=0.5, times_punished=1, last_points_received=3)
    )
    assert _mean(punished) == pytest.approx(15.0)
    assert RULES["conditional"](_request("punish", 11, target_contribution=0, target_others_mean=20))[0] == 1.0


def test_fixed_rules_and_opportunist():
    assert np.argmax(RULES["free_rider"](_request("contribute", 21))) == 0
    assert np.argmax(RULES["full"](_request("contribute", 21))) == 20
    assert np.argmax(RULES["opportunist"](_request("contribute", 21, last_others_mean=9.2))) == 0
    deterred = RULES["opportunist"](
        _request("contribute", 21, last_others_mean=9.2, last_contribution=0, times_punished=1)
    )
    assert np.argmax(deterred) == 10  # the others' mean, rounded up


def test_punishers_punish_in_proportion_to_the_gap_below_the_others_mean():
    def points(rule: str, target: int, mean: float) -> float:
        return _mean(RULES[rule](_request("punish", 11, target_contribution=target, target_others_mean=mean)))

    assert points("punisher", 10, 10.0) == 0.0 and points("punisher", 15, 10.0) == 0.0
    assert points("punisher", 2, 10.0) == pytest.approx(2.0)  # 0.25 per token of an 8-token gap
    assert points("punisher", 0, 20.0) == pytest.approx(5.0)
    assert points("strict_punisher", 0, 20.0) == pytest.approx(10.0)
    assert points("strict_punisher", 0, 60.0) == pytest.approx(10.0)  # capped at max_points
    assert np.argmax(RULES["strict_punisher"](_request("contribute", 21))) == 20


def test_random_is_uniform_and_rarely_punishes():
    assert np.allclose(RULES["random"](_request("contribute", 21)), 1 / 21)
    probs = RULES["random"](_request("punish", 11, target_contribution=0, target_others_mean=20))
    assert probs[0] == pytest.approx(0.9) and probs.sum() == pytest.approx(1.0)


# -------------------------------------------------------------------------- metrics
def _events(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        info = {k: r[k] for k in ("group", "gap", "payoff", "points_given", "points_received") if k in r}
        out.append(
            {
                "step": r["step"],
                "phase": r["phase"],
                "agent_id": r["agent"],
                "value": float(r["value"]),
                "target": r.get("target"),
                "violation": r.get("violation", False),
                "entropy": 0.0,
                "parse_failed": False,
                "chosen": str(r["value"]),
                "probs": r.get("probs", [1.0 if k == r["value"] else 0.0 for k in range(21)]),
                "info": json.dumps(info if r["phase"] == "contribute" else {"target_gap": r["target_gap"]}),
            }
        )
    return pd.DataFrame(out)


def test_metrics_on_a_hand_case():
    sc = load_scenario({**scenario(("conditional", 4), punishment=True), "run": {"steps": 2, "seed": 0}})
    # round 1: 20, 20, 20, 0 -> the free rider's gap -20 (bin [-20,-14)), the others +20/3 (bin (2,8]).
    # Member 0 gives member 3 four points; round 2: everyone 10.
    rows = []
    for a, c in enumerate([20, 20, 20, 0]):
        gap = c - (60 - c) / 3
        rows.append(
            dict(
                step=1,
                phase="contribute",
                agent=a,
                value=c,
                gap=gap,
                payoff=0.0,
                points_given=4 if a == 0 else 0,
                points_received=4 if a == 3 else 0,
                violation=c < 15,
            )
        )
    rows[3]["probs"] = [0.5] + [0.0] * 19 + [0.5]  # drew 0 from a coin flip between 0 and 20
    rows.append(dict(step=1, phase="punish", agent=0, value=4, target=3, target_gap=-20.0))
    rows.append(dict(step=1, phase="punish", agent=1, value=0, target=3, target_gap=-20.0))
    for a in range(4):
        rows.append(
            dict(step=2, phase="contribute", agent=a, value=10, gap=0.0, payoff=0.0, points_given=0, points_received=0)
        )
    m = pg_metrics.compute(_events(rows), pd.DataFrame({"step": [1, 2]}), sc)
    assert m["mean_contribution_by_round"] == [15.0, 10.0]
    assert m["contribution_share_by_round"] == [0.75, 0.5]
    assert m["mean_contribution"] == 12.5 and m["contribution_share"] == 0.625
    assert m["expected_share_by_round"] == pytest.approx([(60 + 10) / 80, 0.5])
    assert m["expected_contribution_share"] == pytest.approx((70 / 80 + 0.5) / 2)
    assert m["punishment_points_per_member"] == pytest.approx(4 / 8)
    assert m["punishment_rate"] == 0.5 and m["punishment_on_below"] == 1.0
    assert m["punishment_received_by_gap"]["[-20,-14)"] == {"mean_points": 4.0, "n": 1}
    assert m["punishment_received_by_gap"]["(2,8]"] == {"mean_points": 0.0, "n": 3}
    assert m["punishment_given_by_gap"]["(2,8]"]["mean_points"] == pytest.approx(4 / 3)
    assert m["punishment_received_by_gap"]["[-2,2]"] == {"mean_points": 0.0, "n": 4}
    # humans with punishment (partner): first round 40-60 %, last round 80-90 %
    assert m["human_reference"]["condition"] == "punishment"
    assert m["human_gap_first"] == pytest.approx(0.15) and m["human_gap"] == pytest.approx(-0.3)
    assert m["human_trend_match"] is False


def test_human_band_distance_and_condition():
    assert pg_metrics.band_distance(0.15, (0.1, 0.2)) == 0.0
    assert pg_metrics.band_distance(0.05, (0.1, 0.2)) == pytest.approx(-0.05)
    assert pg_metrics.band_distance(0.5, (0.1, 0.2)) == pytest.approx(0.3)
    stranger = load_scenario(scenario(("conditional", 4), punishment=True, matching="stranger"))
    assert pg_metrics.human_condition(stranger) is None
    assert pg_metrics.human_condition(load_scenario(scenario(("conditional", 4)))) == "no_punishment"


def test_scripted_pair_decays_without_punishment_and_holds_with_it(tmp_path):
    """The shipped scripted society: without punishment the mean contribution falls by more than
    half over 10 rounds; with punishment the last round stays above the no-punishment one."""
    off = run("scenarios/public_goods_no_punishment.yaml", out=tmp_path / "off", report=False)
    on = run("scenarios/public_goods_punishment.yaml", out=tmp_path / "on", report=False)
    a, b = off.metrics["contribution_share_by_round"], on.metrics["contribution_share_by_round"]
    assert len(a) == len(b) == 10 and a[0] == b[0]  # same society, same first round
    assert a[-1] < a[0] / 2
    assert b[-1] > 2 * a[-1]
    assert on.metrics["punishment_on_below"] > 0.8
    received = on.metrics["punishment_received_by_gap"]
    assert received["[-20,-14)"]["mean_points"] > received["[-2,2]"]["mean_points"]


# -------------------------------------------------------------------------- prompts
class _Recorder:
    """A policy that records every request and always answers the option at index ``pick``."""

    def __init__(self, pick: int) -> None:
        self.pick, self.requests = pick, []

    def decide(self, requests, rng):
        from agents.interfaces import Decision, one_hot

        self.requests.extend(requests)
        return [Decision(probs=one_hot(len(r.options), min(self.pick, len(r.options) - 1)), choice=0) for r in requests]


def test_llm_members_get_whole_numbers_as_options_and_the_group_in_the_prompt(tmp_path):
    rec = _Recorder(pick=0)
    data = scenario(("conditional", 4), punishment=True, steps=2)
    run(data, out=tmp_path, policies={"conditional": rec})
    contribute = [r for r in rec.requests if r.phase == "contribute"]
    punish = [r for r in rec.requests if r.phase == "punish"]
    assert len(contribute) == 8 and len(punish) == 2 * 4 * 3
    assert contribute[0].options[:3] == ("0 tokens", "1 token", "2 tokens") and len(contribute[0].options) == 21
    assert punish[0].options[0] == "0 points" and punish[0].options[-1] == "10 points"
    assert "3 tokens from the member who receives it" in contribute[0].prompt.system
    assert contribute[0].prompt.user.startswith("This is round 1 of 2.")
    # round 2 shows round 1 of the member's group; everyone put in 0 tokens
    assert "Round 1: you put in 0, the others 0, 0 and 0 (you earned 20.0 tokens)." in contribute[4].prompt.user
    assert "member A: 0 tokens" in punish[0].prompt.user and "do you give member B" in punish[0].prompt.user
    assert "You are member A." in punish[0].prompt.user and "You are member B." in punish[3].prompt.user
    # the group's list is a prefix shared by its members; a member's own part by its requests
    group_text = punish[0].prompt.user.split("\n\n")[0]
    assert all(r.prompt.user.startswith(group_text + "\n\n") for r in punish[:12])
    assert os.path.commonprefix([punish[0].prompt.user, punish[1].prompt.user]).endswith("do you give member ")
    no_punish = _Recorder(pick=0)
    run(scenario(("conditional", 4), steps=1), out=tmp_path / "off", policies={"conditional": no_punish})
    assert "punishment" not in no_punish.requests[0].prompt.system


def test_plots_show_contributions_and_punishment_by_gap(tmp_path):
    from environments.public_goods.plots import plots
    from sim.report.data import load_run_data

    res = run(scenario(("punisher", 4), ("free_rider", 4), punishment=True, steps=3), out=tmp_path)
    names = [p.name for p in plots(load_run_data(res.dir))]
    assert names == ["contributions", "punishment_by_gap"]
    off = run(scenario(("punisher", 4), steps=2), out=tmp_path / "off")
    shown = plots(load_run_data(off.dir))
    assert [p.name for p in shown] == ["contributions"] and shown[0].png.startswith(b"\x89PNG")
