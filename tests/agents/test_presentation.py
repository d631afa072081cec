"""The presentation layer: menus, labels, planned variants and their averaging."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from agents import presentation
from agents.interfaces import Decision, DecisionRequest, Prompt
from agents.llm import get_backend
from agents.llm.policy import LLMPolicy
from agents.menus import Amounts, Menu, PresentationConfig, amount_labels, balanced_orders, canonical


def request(printed=(0, 1, 2, 3), style="inline", values=None, amounts=None, wordings=None) -> DecisionRequest:
    entries = ("apples", "bread", "cheese", "dates")
    menu = Menu(entries, printed=printed, style=style, intro="Options: " if style == "inline" else "Menu:\n")
    options = entries if style == "inline" else menu.answers(entries, tuple(range(4)))
    prompt = Prompt.with_menu("You shop.", "Which do you buy? ", menu, "\nThink first.", "I buy ")
    return DecisionRequest(
        agent_id=1,
        phase="buy",
        options=options,
        prompt=prompt,
        values=values,
        amounts=amounts,
        wordings=wordings or {},
    )


def test_a_menu_prints_in_any_order_and_lettered_answers_move_with_it():
    req = request(printed=(2, 0, 1, 3))
    assert req.prompt.user == "Which do you buy? Options: cheese; apples; bread; dates.\nThink first."
    again = req.prompt.arranged((3, 2, 1, 0))
    assert again.user == "Which do you buy? Options: dates; cheese; bread; apples.\nThink first."
    lettered = request(style="lettered")
    shown = lettered.prompt.arranged((1, 0, 2, 3))
    assert "a. bread\nb. apples\n" in shown.user
    assert lettered.prompt.menu.answers(lettered.options, (1, 0, 2, 3)) == ("b", "a", "c", "d")


def test_balanced_orders_put_each_option_once_in_every_place_and_ignore_the_printed_order():
    for n in range(2, 8):
        orders = balanced_orders(tuple(range(n)))
        for place in range(n):
            counts = np.bincount([o[place] for o in orders], minlength=n)
            assert counts.min() == counts.max()  # every option equally often in every place
    assert len(balanced_orders((0, 1, 2))) == 6  # every order of three
    assert canonical(("b", "a", "c"), None) == (1, 0, 2)
    assert canonical(("x", "y"), (5.0, 1.0)) == (1, 0)
    cfg = PresentationConfig(order="balanced", sensitivity=0)
    rng = np.random.default_rng(0)
    a = presentation.plan(request(printed=(0, 1, 2, 3)), cfg, rng, probe=False).presentation
    b = presentation.plan(request(printed=(3, 1, 0, 2)), cfg, rng, probe=False).presentation
    assert [v.prompt.user for v in a.shipped] == [v.prompt.user for v in b.shipped]
    assert len(a.shipped) == 4


def test_shuffled_draws_a_seeded_order_per_decision_and_large_menus_are_shuffled_not_balanced():
    cfg = PresentationConfig(order="shuffled")
    firsts = {
        presentation.plan(request(), cfg, np.random.default_rng(s), probe=False).presentation.shipped[0].order
        for s in range(12)
    }
    assert len(firsts) > 3
    same = [
        presentation.plan(request(), cfg, np.random.default_rng(7), probe=False).presentation.shipped[0].order
        for _ in range(2)
    ]
    assert same[0] == same[1]
    small = PresentationConfig(order="balanced", balanced_max_options=3)
    planned = presentation.plan(request(), small, np.random.default_rng(0), probe=False).presentation
    assert planned.order == "shuffled" and len(planned.shipped) == 1


def test_labels_of_one_menu_share_one_format():
    assert amount_labels([0, 0.6, 1.2, 2.4, 12], "ton") == ("0.0 tons", "0.6 tons", "1.2 tons", "2.4 tons", "12.0 tons")
    assert amount_labels([0, 5, 10], "ton", decimals=1) == ("0.0 tons", "5.0 tons", "10.0 tons")
    assert amount_labels([1, 2], "token") == ("1 token", "2 tokens")
    assert Amounts((0.0, 12.5), "ton", "tons").labels() == ("0 tons", "13 tons")


def test_probes_are_another_order_another_label_format_and_declared_wordings():
    req = request(
        values=(0.0, 1.0, 2.0, 3.0),
        amounts=Amounts((0.0, 1.0, 2.0, 3.0), "kilo", "kilos"),
        wordings={"plain": ("A", "B", "C", "D")},
    )
    planned = presentation.plan(
        req, PresentationConfig(order="fixed"), np.random.default_rng(0), probe=True
    ).presentation
    assert set(planned.probes) == {"reversed order", "labels with 1 decimal", "wording: plain"}
    assert planned.probes["reversed order"][0].order == (3, 2, 1, 0)
    assert planned.probes["labels with 1 decimal"][0].options == ("0.0 kilos", "1.0 kilos", "2.0 kilos", "3.0 kilos")
    assert "Options: A; B; C; D." in planned.probes["wording: plain"][0].prompt.user
    balanced = presentation.plan(
        req, PresentationConfig(order="balanced"), np.random.default_rng(0), probe=True
    ).presentation
    assert "reversed order" not in balanced.probes  # a balanced distribution has no order to reverse
    assert all(len(v) == 4 for v in balanced.probes.values())


class Echo:
    """Scores each option by where it is printed: the first printed gets most."""

    greedy = False

    def decide_mixed(self, pairs, rng):
        out = []
        for _, req in pairs:
            first = req.prompt.menu.printed[0]
            p = np.full(len(req.options), 0.1 / (len(req.options) - 1))
            p[first] = 0.9
            out.append(Decision(probs=p, choice=int(rng.choice(len(p), p=p))))
        return out


def test_a_balanced_decision_is_the_mean_of_its_orders_and_logs_them():
    planned = presentation.plan(request(), PresentationConfig(order="balanced"), np.random.default_rng(0), probe=False)
    (dec,) = presentation.decide_planned(Echo().decide_mixed, [(Echo(), planned)], np.random.default_rng(1))
    np.testing.assert_allclose(dec.probs, [0.25] * 4)  # position bias averaged out exactly
    assert dec.info["presentation"]["order"] == "balanced"
    assert len(dec.info["presentation"]["per_order"]) == 4
    fixed = presentation.plan(
        request(printed=(2, 0, 1, 3)), PresentationConfig(order="fixed"), np.random.default_rng(0), probe=False
    )
    (dec,) = presentation.decide_planned(Echo().decide_mixed, [(Echo(), fixed)], np.random.default_rng(1))
    assert dec.probs[2] == pytest.approx(0.9)


def test_the_llm_policy_scores_every_variant_in_one_backend_call():
    backend = get_backend("tiny-random-llama")
    calls = []
    score = backend.score
    policy = LLMPolicy(backend)
    planned = [
        presentation.plan(
            replace(request(), agent_id=i), PresentationConfig(order="balanced"), np.random.default_rng(i), probe=True
        )
        for i in range(3)
    ]
    try:
        backend.score = lambda items: calls.append(len(items)) or score(items)  # type: ignore[method-assign]
        decisions = policy.decide(planned, np.random.default_rng(0))
    finally:
        del backend.score
    assert calls == [3 * 4]  # one call: each request's 4 cyclic shifts (no probe: no values, wordings or amounts)
    for dec in decisions:
        per_order = np.array(list(dec.info["presentation"]["per_order"].values()))
        np.testing.assert_allclose(dec.probs, per_order.mean(axis=0), atol=1e-12)
