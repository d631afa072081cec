"""Shared content first in the shoppers' prompts, stop rules, and per-shopper work that does not grow with the society."""

from __future__ import annotations

from agents.interfaces import Decision, one_hot
from environments.webshop import prompts
from environments.webshop.model import WebShopModel
from environments.webshop.shop import Shop
from environments.webshop.tasks import dataset
from tests.environments.webshop.webshop_helpers import model, scenario


def _shop(persona: str, memory: str, page: str, labels=("A", "B")) -> str:
    return prompts.shop_prompt(
        "sys",
        persona=persona,
        note="",
        memory=memory,
        notes=["In Japan: no white flowers."],
        request="buy tea",
        reply="",
        page=page,
        menu=("click[x]", "back"),
        labels=labels,
    ).user


def test_notes_and_page_come_before_the_shoppers_own_part():
    one = _shop("selfish", "- task 1: bought a vase", "Search page: type a search query.")
    two = _shop("altruistic", "- (nothing yet)", "Search page: type a search query.")
    shared = "Shared notes:\n- In Japan: no white flowers.\nCurrent page:\nSearch page: type a search query.\n"
    assert one.startswith(shared) and two.startswith(shared)
    assert one.index(prompts.PERSONAS["selfish"]) < one.index("Customer's request: buy tea") < one.index("What you")
    assert one.endswith("Answer with the letter of your next action.")
    vote = prompts.vote_prompt("sys", persona="neutral", memory="- m", options=("no new note", "x")).user
    assert vote.startswith("Customers reported these problems.") and "Options: no new note; x." in vote


class Recorder:
    def __init__(self) -> None:
        self.seen = []

    def decide(self, requests, rng):  # noqa: ANN001
        self.seen.extend(requests)
        return [Decision(probs=one_hot(len(r.options), 0), choice=0, text="tea]") for r in requests]


def test_search_requests_stop_at_the_closing_bracket_and_scripted_shoppers_get_no_text():
    rec = Recorder()
    s = scenario([("llm", 2, "naive")], kinds=["adhere"], steps=2)
    m = WebShopModel(s, {"llm": rec})
    m.step()
    assert all(r.kind == "text" and r.stop == ("]", "\n") and r.prompt.user for r in rec.seen)
    scripted = model([("naive", 3, "naive")], kinds=["adhere"], steps=2)
    scripted.step()
    assert not any(e["prompt"] for e in scripted.take_step_events())


def test_the_search_memo_gives_what_a_fresh_ranking_gives():
    data = dataset()
    memo, fresh = Shop(data), Shop(data)
    for task in data.tasks[:20]:
        for query in (task.want.query(), task.want.category):
            first = memo.search(query, task.storefront)
            first.append("mutated")  # a caller's copy: the memo keeps its own
            if task.storefront is not None:
                expected = fresh.index.rank(query, among=task.storefront, keep_zero=True)
            else:
                expected = fresh.index.rank(query, among=fresh.public)
            assert memo.search(query, task.storefront) == expected
