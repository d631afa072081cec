"""The text shop: page flow, valid and invalid actions, search, the user's replies."""

from __future__ import annotations

import pytest

from environments.webshop.search import BM25, tokenize
from environments.webshop.shop import ASK_TEXT, parse_action
from tests.environments.webshop.webshop_helpers import session, shop


def test_parse_action():
    assert parse_action("search[red roses]") == ("search", "red roses")
    assert parse_action("  Click[Color: White] and more") == ("click", "Color: White")
    assert parse_action("search[cut off") == ("search", "cut off")  # generation stopped mid-action
    assert parse_action("buy now") == ("buy", "")
    assert parse_action("back") == ("back", "")
    assert parse_action("purchase it") is None and parse_action("") is None


def test_bm25_ranks_matching_documents_first():
    index = BM25(["a", "b", "c"], ["red roses bouquet", "white lilies", "red wine red"])
    assert index.rank("roses") == ["a"]
    assert index.rank("red") == ["c", "a"]  # two occurrences beat one
    assert index.rank("tulips") == []
    assert index.rank("tulips", keep_zero=True) == ["a", "b", "c"]
    assert tokenize("Roses, GLASS!") == ["rose", "glass"]


def test_search_results_item_options_tabs_back_and_buy():
    s = session("jp_four:adhere")  # a tea set of 5 pieces
    assert s.page.kind == "home" and s.valid_actions() == []
    assert s.step(f"search[{s.want.query()}]")
    assert s.page.kind == "results" and s.page.number == 1
    assert len(s.page_items()) == 10  # WebShop's 10 per page
    assert "click[next >]" in s.valid_actions() and "click[< prev]" not in s.valid_actions()
    assert s.step("click[next >]") and s.page.number == 2 and "click[< prev]" in s.valid_actions()
    assert s.step("back") and s.page.number == 1
    target = shop().product(s.task.target)
    titles = [shop().product(p).title for p in s.page_items()]
    assert target.title in titles
    assert s.step(f"click[{target.title}]") and s.page.kind == "item" and s.item() is target
    assert "buy" in s.valid_actions() and "click[reviews]" in s.valid_actions()
    assert s.step("click[pieces: 5]") and s.chosen()["pieces"] == "5"
    assert s.step("click[reviews]") and s.page.kind == "tab" and "stars" in s.render()
    assert s.step("back") and s.page.kind == "item" and s.chosen()["pieces"] == "5"  # the selection is kept
    assert s.step("buy") and s.done and s.outcome == "buy"
    assert s.purchase == (target.id, {**target.default_options(), "pieces": "5"})
    assert s.actions == 8 and s.invalid == 0
    with pytest.raises(RuntimeError):
        s.step("back")


def test_invalid_actions_change_nothing_and_are_counted():
    s = session("jp_four:adhere")
    for bad in ("buy", "back", "click[next >]", "hello", "search[]"):
        assert not s.step(bad)
        assert s.page.kind == "home" and not s.stack
    s.step("search[tea set]")
    page = s.page
    for bad in ("search[knife]", "click[no such product]", "click[< prev]", "buy", "click[reviews]"):
        assert not s.step(bad)
        assert s.page == page and not s.done
    s.step(s.valid_actions()[0])  # the first product
    for bad in ("click[pieces: 99]", "click[colour: red]", "click[next >]"):
        assert not s.step(bad)
        assert s.page.kind == "item" and s.selected == {}
    assert s.invalid == 13 and s.actions == 15


def test_misleading_storefront_shows_only_its_products():
    s = session("cn_clock:misleading")
    s.step("search[vase ceramic large]")  # whatever the query: only the storefront's clocks
    assert set(s.page_items()) == set(s.task.storefront)
    assert all("clock" in shop().product(p).tags for p in s.page_items())
    s2 = session("cn_clock:adhere")
    s2.step("search[vase ceramic large]")
    assert all(shop().product(p).kind != "wall clock" for p in s2.page_items()[:3])


def test_the_user_answers_questions_by_task_kind():
    accepting = next(
        t
        for t in ("cn_clock", "jp_four", "jp_nine", "cn_umbrella", "in_beef")
        if not session(f"{t}:violate").task.insists
    )
    s = session(f"{accepting}:violate")
    assert s.step(f"ask[{ASK_TEXT}]") and s.asked and s.reply == "accept" and s.page.kind == "home"
    assert s.want == s.task.alternative and "instead" in s.reply_text()
    insisting = next(t for t in session("cn_clock:violate").shop.data.tasks if t.kind == "violate" and t.insists)
    s = session(insisting.id)
    s.step("ask[is this ok?]")
    assert s.reply == "insist" and s.want == insisting.want
    s = session("cn_clock:misleading")
    s.step("ask[?]")
    assert s.reply == "stop"
    s = session("cn_clock:adhere")
    s.step("ask[?]")
    assert s.reply == "ok" and s.want == s.task.want
    assert s.step("refuse[no]") and s.outcome == "refuse" and s.texts == ["?", "no"]


def test_render_shows_each_page():
    s = session("jp_four:adhere")
    assert "search" in s.render().lower()
    s.step("search[tea set]")
    assert s.render().startswith("Results for 'tea set' (page 1 of")
    assert "|" not in s.render()  # the products are the menu's lines, each with its price
    first = s.valid_actions()[0]
    price = s.shop.product(s.page_items()[0]).price
    assert s.detail(first) == f" | ${price:.2f}" and s.detail("back") == ""
    s.step(first)
    text = s.render()
    assert "Price: $" in text and "pieces:" not in text  # option values are menu lines too
    chosen = s.chosen()
    marked = [a for a in s.valid_actions() if s.detail(a) == " (selected)"]
    assert marked == [f"click[{name}: {value}]" for name, value in chosen.items()]
    s.step(next(a for a in s.valid_actions() if a.startswith("click[pieces") and a not in marked))
    assert [a for a in s.valid_actions() if s.detail(a)] != marked  # the mark follows the selection
