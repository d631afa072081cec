"""The shipped data: enough countries, norms, tasks and products, each task consistent
with its kind, built identically every time."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from environments.webshop import tasks as task_module
from environments.webshop.norms import COUNTRIES, norms_by_country
from environments.webshop.observe import best_config
from environments.webshop.scoring import best_choice, reward
from environments.webshop.tasks import dataset
from tests.environments.webshop.webshop_helpers import shop

PACKAGE = Path(task_module.__file__).parent


def test_sizes_meet_the_issue():
    data = dataset()
    assert len(COUNTRIES) >= 8
    assert all(len(norms) >= 8 for norms in norms_by_country().values())
    assert len(data.tasks) >= 200
    assert sum(not p.storefront_only for p in data.products.values()) >= 300
    kinds = Counter(t.kind for t in data.tasks)
    assert kinds["violate"] == kinds["adhere"] == len(data.norms) and kinds["misleading"] >= len(data.norms) - 5
    assert len({p.title for p in data.products.values()}) == len(data.products)  # titles identify products
    assert sum(f.stat().st_size for f in PACKAGE.rglob("*") if f.is_file() and "__pycache__" not in f.parts) < 1e6


def test_generation_is_deterministic():
    a, b = task_module._Builder(), task_module._Builder()
    ta = [t for n in dataset().norms.values() for t in a.tasks_for(n)]
    tb = [t for n in dataset().norms.values() for t in b.tasks_for(n)]
    assert ta == tb == dataset().tasks
    assert [p.as_dict() for p in a.products.values()] == [p.as_dict() for p in b.products.values()]


def test_every_task_is_consistent_with_its_kind():
    data, s = dataset(), shop()
    for task in data.tasks:
        target = data.products[task.target]
        chosen = best_choice(task.want, target)
        assert reward(task.want, target, chosen) == 1.0, task.id  # a perfect purchase exists
        assert task.country_name in task.text and f"${task.want.budget:g}" in task.text
        first_page = s.search(task.want.query(), task.storefront)[:10]
        assert any(
            reward(task.want, data.products[p], best_choice(task.want, data.products[p])) == 1.0 for p in first_page
        ), task.id
        if task.kind == "violate":
            assert task.norm in task.breaks(target, chosen), task.id  # the request itself breaks the norm
            assert task.alternative == data.task(task.id.replace("violate", "adhere")).want
        elif task.kind == "adhere":
            assert task.breaks(target, chosen) == [], task.id
        else:  # misleading: nothing on offer can be bought without breaking the norm
            assert task.storefront and len(task.storefront) >= 3
            for pid in task.storefront:
                product = data.products[pid]
                assert all(task.norm in task.breaks(product, c) for c in product.combinations()), (task.id, pid)
                assert best_config(task, task.want, product, None) is None
            assert data.norms[task.norm].keys[0] not in task.want.query().split()  # the request is harmless


def test_norm_tags_say_which_item_breaks_which_norm():
    data = dataset()
    clock = next(p for p in data.products.values() if p.kind == "wall clock")
    assert any(t.startswith("cn_clock (gift; the item)") for t in clock.norm_tags["CN"])
    roses = next(p for p in data.products.values() if p.kind == "roses" and "6" in p.options["stems"])
    assert any(t.startswith("ru_even_flowers") and "stems=6" in t for t in roses.norm_tags["RU"])
    tea = next(p for p in data.products.values() if p.kind == "tea set" and not p.storefront_only)
    assert "SA" not in tea.norm_tags  # nothing about a tea set breaks a Saudi norm
