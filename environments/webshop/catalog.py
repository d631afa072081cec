"""The shop's catalogue, generated deterministically by code (no data files, nothing fetched).

A product has a title, a category (the product type WebShop's reward compares), a kind
(roses, wall clock...), attributes (its kind first, then features), options (colour,
stems, pieces, size...) with a default (the first value), a price, a description, a
feature list, reviews, and **norm tags**: for each country, which of its norms the item
breaks, for which use, and whether through the item itself or one of its options.

Tags drive norms (:mod:`.norms`): the kind's tags (``clock``, ``blade``, ``pork``...),
``flower`` / ``garment`` for whole categories, colour values (``white``...) and count
values (``four``, ``nine``, ``thirteen``, ``even``).
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

# The product kinds are data (kinds.json beside this module): kind -> (category, tags,
# features, options "name=v1,v2;name2=...", price range).
_KINDS: dict[str, tuple[str, str, str, str, tuple[int, int]]] = {
    kind: (cat, tags, features, options, (int(price[0]), int(price[1])))
    for kind, (cat, tags, features, options, price) in json.loads(
        resources.files(__package__).joinpath("kinds.json").read_text("utf-8")
    )["kinds"].items()
}

DEPARTMENTS = {
    "flowers": "gifts",
    "home decor": "home",
    "kitchenware": "home",
    "food gifts": "food",
    "drinks": "food",
    "clothing": "fashion",
    "accessories": "fashion",
    "jewelry": "fashion",
    "footwear": "fashion",
    "games and toys": "kids",
    "baby": "kids",
    "stationery": "office",
}

# Tags every item of a category carries.
_CATEGORY_TAGS = {"flowers": {"flower"}, "clothing": {"garment"}}
_COUNT_TAGS = {
    "2": {"even"},
    "4": {"four", "even"},
    "6": {"even"},
    "8": {"even"},
    "9": {"nine"},
    "10": {"even"},
    "12": {"even"},
    "13": {"thirteen"},
}
COUNT_OPTIONS = ("stems", "pieces")

_BRANDS = (
    "Aster",
    "Birch",
    "Cobalt",
    "Dune",
    "Ember",
    "Fable",
    "Grove",
    "Harbor",
    "Iris",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Maple",
    "Nori",
    "Opal",
    "Pine",
    "Quill",
    "Rowan",
    "Sable",
    "Tamar",
)
_PRAISE = (
    "Lovely quality, arrived quickly.",
    "Exactly as described.",
    "Good value for the price.",
    "Nicely packaged, would buy again.",
    "Smaller than I expected but nice.",
    "The recipient loved it.",
    "Solid and well made.",
    "Colour was slightly different from the photo.",
)
_STOREFRONT_PREFIXES = ("Signature", "Classic", "Deluxe", "Premier", "Heritage", "Studio")
ITEMS_PER_KIND = 5
SEED = 20_251_121


@dataclass
class Product:
    id: str
    title: str
    category: str
    kind: str
    attributes: list[str]  # the kind first, then features
    options: dict[str, list[str]]
    price: float
    description: str
    features: list[str]
    reviews: list[str]
    tags: frozenset[str]  # item-level tags (options add theirs when chosen)
    norm_tags: dict[str, list[str]] = field(default_factory=dict)  # country -> ["norm (use, via)"]
    storefront_only: bool = False  # a misleading storefront's listing, not found by ordinary searches

    def purchase_tags(self, chosen: dict[str, str]) -> frozenset[str]:
        return self.tags | option_tags(chosen)

    def default_options(self) -> dict[str, str]:
        return {name: values[0] for name, values in self.options.items()}

    def combinations(self) -> list[dict[str, str]]:
        names = list(self.options)
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*self.options.values())]

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "tags"}
        return {**out, "tags": sorted(self.tags)}


def option_tags(chosen: dict[str, str]) -> frozenset[str]:
    tags: set[str] = set()
    for name, value in chosen.items():
        if name == "color":
            tags.add(value)
        elif name in COUNT_OPTIONS:
            tags |= _COUNT_TAGS.get(value, set())
    return frozenset(tags)


def kind_tags(kind: str) -> frozenset[str]:
    category, tags = _KINDS[kind][0], _KINDS[kind][1]
    return frozenset(tags.split()) | _CATEGORY_TAGS.get(category, set())


def category_of(kind: str) -> str:
    return _KINDS[kind][0]


def kinds() -> list[str]:
    return list(_KINDS)


def _parse_options(text: str) -> dict[str, list[str]]:
    out = {}
    for part in text.split(";"):
        name, _, values = part.partition("=")
        out[name] = values.split(",")
    return out


def _title(words: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in words.replace("-", " ").split())


def generate_products(rng: random.Random) -> list[Product]:
    """ITEMS_PER_KIND products of every kind, with seeded features, option subsets and prices."""
    products: list[Product] = []
    for k, (kind, (_, _, features, options, (lo, hi))) in enumerate(_KINDS.items()):
        pool, opts = features.split(), _parse_options(options)
        for j in range(ITEMS_PER_KIND):
            feats = sorted(rng.sample(pool, 2), key=pool.index)
            chosen = {}
            for name, values in opts.items():
                keep = max(2, len(values) - rng.randrange(0, 3)) if len(values) > 2 else len(values)
                kept = set(rng.sample(values, min(keep, len(values))))
                chosen[name] = [v for v in values if v in kept]
            brand = _BRANDS[(k * 7 + j * 3) % len(_BRANDS)]
            products.append(
                _product(
                    f"p{len(products):04d}",
                    f"{brand} {_title(' '.join(feats))} {_title(kind)}",
                    kind,
                    feats,
                    chosen,
                    round(rng.uniform(lo, hi), 2),
                    rng,
                )
            )
    return products


def _product(
    pid: str, title: str, kind: str, feats: list[str], options: dict[str, list[str]], price: float, rng: random.Random
) -> Product:
    category = category_of(kind)
    words = ", ".join(f.replace("-", " ") for f in feats)
    description = (
        f"{title}: a {words} {kind} from our {category} range. "
        f"Available options: " + "; ".join(f"{n}: {', '.join(v)}" for n, v in options.items()) + "."
    )
    reviews = [f"{rng.randint(3, 5)} stars: {r}" for r in rng.sample(_PRAISE, 2)]
    return Product(
        pid,
        title,
        category,
        kind,
        [kind, *feats],
        options,
        price,
        description,
        [f"{f.replace('-', ' ')}" for f in feats] + [category],
        reviews,
        kind_tags(kind),
    )


def storefront_variant(base: Product, pid: str, options: dict[str, list[str]], n: int) -> Product:
    """A copy of a product whose options are restricted (a seller's only stock)."""
    prefix = _STOREFRONT_PREFIXES[n % len(_STOREFRONT_PREFIXES)]
    rng = random.Random(f"{SEED}-{pid}")
    product = _product(pid, f"{prefix} {base.title}", base.kind, base.attributes[1:], options, base.price, rng)
    product.storefront_only = True
    return product
