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
import random
from dataclasses import dataclass, field
from typing import Any

# kind: (category, tags, features, options {name: values}, price range)
_KINDS: dict[str, tuple[str, str, str, str, tuple[int, int]]] = {
    "roses": (
        "flowers",
        "rose",
        "fragrant long-stemmed fresh gift-wrapped garden",
        "color=red,white,yellow,pink;stems=3,4,5,6,7,9,11,12,13",
        (20, 70),
    ),
    "tulips": (
        "flowers",
        "tulip",
        "fresh dutch gift-wrapped spring bright",
        "color=red,yellow,pink,white,purple;stems=3,5,6,7,9,11,12,13",
        (15, 50),
    ),
    "lilies": (
        "flowers",
        "lily",
        "fragrant fresh elegant gift-wrapped tall",
        "color=white,pink,yellow,purple;stems=3,5,6,7,9",
        (20, 60),
    ),
    "chrysanthemums": (
        "flowers",
        "chrysanthemum",
        "fresh hardy gift-wrapped autumn full",
        "color=white,yellow,purple,pink;stems=5,6,7,9,12",
        (15, 45),
    ),
    "carnations": (
        "flowers",
        "carnation",
        "fresh gift-wrapped classic long-lasting",
        "color=red,white,pink,yellow;stems=5,6,7,9,12",
        (12, 40),
    ),
    "marigolds": (
        "flowers",
        "marigold",
        "bright fresh gift-wrapped festive",
        "color=orange,yellow;stems=5,7,9,12",
        (10, 35),
    ),
    "camellias": (
        "flowers",
        "camellia",
        "fresh elegant gift-wrapped glossy",
        "color=red,white,pink;stems=3,5,7,9",
        (20, 55),
    ),
    "orchids": (
        "flowers",
        "orchid",
        "exotic elegant long-lasting gift-wrapped",
        "color=purple,white,pink;stems=3,5,7",
        (25, 80),
    ),
    "potted orchid": (
        "flowers",
        "orchid potted_plant",
        "elegant long-lasting ceramic-pot indoor",
        "color=purple,white,pink",
        (30, 90),
    ),
    "wall clock": ("home decor", "clock", "wooden silent modern vintage large", "color=black,white,brown", (25, 90)),
    "desk clock": ("home decor", "clock", "wooden silent modern compact brass", "color=black,white,brown", (20, 70)),
    "vase": ("home decor", "", "ceramic handmade modern glass large", "color=blue,white,green", (20, 80)),
    "photo frame": ("home decor", "", "wooden modern silver handmade", "color=brown,silver,white", (10, 40)),
    "candle holder": ("home decor", "", "brass glass modern handmade", "color=gold,silver,black", (15, 50)),
    "figurine": ("home decor", "figurine", "porcelain handmade vintage painted", "color=white,blue", (20, 90)),
    "buddha statue": (
        "home decor",
        "buddha_image figurine",
        "bronze wooden handmade serene",
        "color=gold,bronze",
        (30, 120),
    ),
    "scented candle": ("home decor", "", "soy lavender handmade long-burning", "color=white,blue,red", (10, 35)),
    "knife set": (
        "kitchenware",
        "blade knife",
        "stainless japanese-steel gift-boxed sharp wooden-handle",
        "pieces=3,5,7",
        (40, 150),
    ),
    "kitchen scissors": (
        "kitchenware",
        "blade",
        "stainless heavy-duty gift-boxed ergonomic",
        "color=black,red,silver",
        (12, 40),
    ),
    "tea set": (
        "kitchenware",
        "",
        "porcelain ceramic handmade gift-boxed hand-painted",
        "pieces=4,5,6;color=white,blue,green",
        (30, 120),
    ),
    "serving bowl set": (
        "kitchenware",
        "",
        "porcelain ceramic gift-boxed stackable",
        "pieces=4,5,6;color=white,blue,red",
        (25, 90),
    ),
    "cutting board": ("kitchenware", "", "bamboo wooden large engraved", "size=small,medium,large", (15, 60)),
    "mug set": ("kitchenware", "", "ceramic handmade gift-boxed large", "pieces=2,4,6;color=white,red,blue", (15, 50)),
    "ham gift box": (
        "food gifts",
        "pork meat",
        "smoked gift-boxed cured premium",
        "size=small,medium,large",
        (30, 110),
    ),
    "pork sausage box": (
        "food gifts",
        "pork meat",
        "smoked gift-boxed spicy assorted",
        "size=small,medium,large",
        (20, 70),
    ),
    "beef jerky": (
        "food gifts",
        "beef meat",
        "smoked spicy gift-boxed high-protein",
        "size=small,medium,large",
        (15, 50),
    ),
    "smoked chicken box": (
        "food gifts",
        "meat",
        "smoked gift-boxed herb assorted",
        "size=small,medium,large",
        (20, 60),
    ),
    "chocolate box": (
        "food gifts",
        "",
        "dark assorted gift-boxed handmade belgian",
        "size=small,medium,large",
        (12, 60),
    ),
    "dried fruit box": (
        "food gifts",
        "fruit",
        "organic gift-boxed assorted sugar-free",
        "size=small,medium,large",
        (15, 55),
    ),
    "date box": ("food gifts", "fruit", "premium medjool gift-boxed organic", "size=small,medium,large", (15, 70)),
    "pear gift box": (
        "food gifts",
        "pear fruit",
        "fresh premium gift-boxed juicy",
        "size=small,medium,large",
        (20, 60),
    ),
    "apple gift box": ("food gifts", "fruit", "fresh premium gift-boxed crisp", "size=small,medium,large", (18, 55)),
    "mooncake box": (
        "food gifts",
        "",
        "lotus-paste gift-boxed traditional assorted",
        "size=small,medium,large",
        (20, 70),
    ),
    "red wine": (
        "drinks",
        "alcohol wine",
        "aged dry gift-boxed organic french",
        "size=1 bottle,2 bottles,3 bottles",
        (20, 120),
    ),
    "whisky": ("drinks", "alcohol", "aged single-malt gift-boxed smoky", "size=700ml,1l", (40, 160)),
    "craft beer set": ("drinks", "alcohol", "assorted gift-boxed local hoppy", "size=6 bottles,12 bottles", (20, 60)),
    "sparkling grape juice": (
        "drinks",
        "",
        "alcohol-free gift-boxed organic festive",
        "size=1 bottle,2 bottles,3 bottles",
        (10, 40),
    ),
    "premium tea": ("drinks", "", "organic loose-leaf gift-boxed green jasmine", "size=small,medium,large", (15, 70)),
    "coffee beans": ("drinks", "", "organic single-origin gift-boxed dark-roast", "size=250g,500g,1kg", (12, 50)),
    "dress": (
        "clothing",
        "garment",
        "silk cotton elegant long formal",
        "color=white,black,red,navy,blue,green,pink;size=S,M,L",
        (40, 160),
    ),
    "mini skirt": (
        "clothing",
        "garment revealing",
        "cotton denim summer casual",
        "color=black,white,red,blue;size=S,M,L",
        (20, 60),
    ),
    "long skirt": (
        "clothing",
        "garment",
        "cotton linen modest flowing",
        "color=black,navy,blue,green,red;size=S,M,L",
        (25, 70),
    ),
    "swimsuit": (
        "clothing",
        "garment revealing",
        "quick-dry bikini summer sporty",
        "color=black,red,blue,yellow;size=S,M,L",
        (20, 70),
    ),
    "modest swimsuit": (
        "clothing",
        "garment",
        "quick-dry full-coverage sporty",
        "color=black,navy,blue,green;size=S,M,L",
        (30, 90),
    ),
    "t-shirt": (
        "clothing",
        "garment",
        "cotton casual printed organic",
        "color=white,black,blue,green;size=S,M,L",
        (10, 35),
    ),
    "buddha print t-shirt": (
        "clothing",
        "garment buddha_image",
        "cotton casual printed organic",
        "color=white,black,blue;size=S,M,L",
        (12, 40),
    ),
    "sun hat": ("clothing", "hat", "straw wide-brim cotton packable", "color=green,blue,beige,black,white", (15, 50)),
    "leather wallet": (
        "accessories",
        "wallet leather cow_leather",
        "cowhide slim handmade rfid-blocking",
        "color=black,brown,tan",
        (25, 90),
    ),
    "pigskin wallet": (
        "accessories",
        "wallet leather pigskin",
        "slim handmade soft rfid-blocking",
        "color=black,brown,tan",
        (20, 70),
    ),
    "canvas wallet": ("accessories", "wallet", "slim vegan washable rfid-blocking", "color=black,navy,green", (10, 35)),
    "handkerchief set": (
        "accessories",
        "handkerchief",
        "cotton embroidered gift-boxed linen",
        "color=white,blue,pink",
        (10, 40),
    ),
    "umbrella": (
        "accessories",
        "umbrella",
        "windproof compact automatic large",
        "color=black,blue,red,green",
        (15, 60),
    ),
    "comb set": ("accessories", "comb", "wooden handmade sandalwood anti-static", "color=brown,black", (10, 35)),
    "scarf": ("accessories", "", "silk cashmere wool soft", "color=black,red,yellow,purple,white,blue", (20, 90)),
    "silk tie": ("accessories", "silk", "silk handmade classic slim", "color=blue,red,green,grey", (20, 70)),
    "perfume": ("accessories", "perfume", "floral woody long-lasting gift-boxed", "size=30ml,50ml,100ml", (30, 150)),
    "canvas tote": ("accessories", "", "cotton reusable large printed", "color=beige,navy,green", (10, 30)),
    "wristwatch": (
        "accessories",
        "clock watch luxury",
        "stainless automatic waterproof leather-strap",
        "color=silver,gold,black",
        (80, 300),
    ),
    "pearl necklace": (
        "jewelry",
        "pearl luxury",
        "freshwater elegant gift-boxed classic",
        "size=40cm,45cm,50cm",
        (60, 250),
    ),
    "gold cufflinks": ("jewelry", "gold luxury", "18k engraved gift-boxed classic", "size=standard", (80, 260)),
    "silver cufflinks": ("jewelry", "", "sterling engraved gift-boxed classic", "size=standard", (30, 100)),
    "silver pendant": ("jewelry", "", "sterling minimalist gift-boxed dainty", "size=40cm,45cm,50cm", (25, 90)),
    "cross pendant": ("jewelry", "cross", "sterling gold-plated gift-boxed dainty", "size=40cm,45cm,50cm", (25, 90)),
    "leather shoes": (
        "footwear",
        "shoes leather cow_leather",
        "handmade formal oxford comfortable",
        "size=40,41,42,43,44",
        (60, 200),
    ),
    "sneakers": (
        "footwear",
        "shoes",
        "lightweight running breathable casual",
        "color=white,black,blue;size=38,40,42,44",
        (40, 140),
    ),
    "slippers": ("footwear", "shoes", "wool cosy non-slip indoor", "color=grey,brown,blue;size=S,M,L", (15, 45)),
    "playing cards": (
        "games and toys",
        "gambling",
        "plastic-coated casino poker gift-boxed",
        "size=1 deck,2 decks",
        (8, 30),
    ),
    "dice set": ("games and toys", "gambling", "casino wooden gift-boxed polished", "size=5 dice,10 dice", (8, 30)),
    "jigsaw puzzle": (
        "games and toys",
        "",
        "1000-piece landscape wooden family",
        "size=500 pieces,1000 pieces",
        (12, 40),
    ),
    "board game": ("games and toys", "", "family strategy wooden classic", "size=standard,deluxe", (20, 70)),
    "dog plush toy": ("games and toys", "dog", "soft cuddly washable large", "color=brown,white,black", (12, 40)),
    "teddy bear": ("games and toys", "", "soft cuddly washable large", "color=brown,white,pink", (12, 45)),
    "baby blanket": ("baby", "baby", "organic cotton soft knitted", "color=white,blue,pink,yellow", (20, 60)),
    "baby clothes set": (
        "baby",
        "baby",
        "organic cotton soft gift-boxed",
        "color=white,blue,pink;size=0-3m,3-6m",
        (20, 60),
    ),
    "rattle": ("baby", "baby", "wooden organic handmade safe", "color=natural,blue,pink", (8, 25)),
    "red ink pen set": ("stationery", "red_ink", "gift-boxed smooth engraved refillable", "pieces=2,3,5", (12, 45)),
    "fountain pen": ("stationery", "", "engraved gift-boxed brass classic", "color=black,blue,silver", (25, 120)),
    "notebook": ("stationery", "", "leather-bound dotted handmade recycled", "color=black,brown,blue", (10, 35)),
    "calligraphy set": ("stationery", "", "traditional bamboo gift-boxed complete", "size=standard,deluxe", (20, 70)),
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
