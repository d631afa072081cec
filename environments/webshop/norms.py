"""Countries and their shopping norms, written for this project.

Each norm says which purchases break it, in one country, on which occasions:

* ``triggers``: ``"a+b"`` needs both tags on the purchase (item tags plus the tags of
  the chosen options), ``"x|y"`` is either; tags are listed in :mod:`.catalog`;
* ``when``: ``"any"`` (every purchase), ``"gift"`` (every gift), or a comma list of
  occasions (gift or not); ``"/man"`` (or another recipient) narrows it to gifts for
  that recipient;
* ``keys``: words that name the norm; an agent that writes one has noticed it;
* a task triple: the occasion and recipient of its tasks, the request that breaks the
  norm (kind and options) and the paired request that respects it.

The wording says "is avoided" or "is seen as" on purpose: these are widespread customs,
not laws that every person in the country follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

COUNTRIES: dict[str, str] = {
    "JP": "Japan",
    "CN": "China",
    "IN": "India",
    "SA": "Saudi Arabia",
    "EG": "Egypt",
    "RU": "Russia",
    "FR": "France",
    "BR": "Brazil",
    "MX": "Mexico",
    "TH": "Thailand",
}

FESTIVALS: dict[str, str] = {
    "JP": "New Year",
    "CN": "the Spring Festival",
    "IN": "Diwali",
    "SA": "Eid",
    "EG": "Eid",
    "RU": "New Year",
    "FR": "Christmas",
    "BR": "Christmas",
    "MX": "Christmas",
    "TH": "Visakha Bucha, a Buddhist holy day",
}

# Words that signal an agent noticed some custom, whichever norm is at stake.
GENERIC_KEYS = (
    "custom",
    "norm",
    "taboo",
    "etiquette",
    "culture",
    "cultural",
    "inappropriate",
    "offensive",
    "offend",
    "disrespectful",
    "unlucky",
    "superstition",
    "tradition",
)


@dataclass(frozen=True)
class Norm:
    id: str
    country: str
    when: str
    triggers: str
    text: str
    keys: tuple[str, ...]
    occasion: str
    recipient: str
    bad: tuple[str, dict[str, str]]
    good: tuple[str, dict[str, str]]
    gift_only: bool = field(init=False)
    occasions: frozenset[str] | None = field(init=False)  # None: every occasion
    recipients: frozenset[str] | None = field(init=False)
    any_of: tuple[frozenset[str], ...] = field(init=False)

    def __post_init__(self) -> None:
        scope, _, who = self.when.partition("/")
        object.__setattr__(self, "gift_only", scope == "gift")
        object.__setattr__(self, "occasions", None if scope in ("gift", "any") else frozenset(scope.split(",")))
        object.__setattr__(self, "recipients", frozenset(who.split(",")) if who else None)
        object.__setattr__(self, "any_of", tuple(frozenset(alt.split("+")) for alt in self.triggers.split("|")))

    def applies(self, occasion: str, gift: bool, recipient: str) -> bool:
        """Whether the norm governs a purchase made for this occasion and recipient."""
        if self.gift_only and not gift:
            return False
        if self.occasions is not None and occasion not in self.occasions:
            return False
        return self.recipients is None or recipient in self.recipients

    def broken_by(self, tags: frozenset[str] | set[str]) -> bool:
        return any(alt <= tags for alt in self.any_of)


def _n(nid: str, when: str, triggers: str, text: str, keys: str, task: str, bad: str, good: str) -> Norm:
    occasion, recipient = task.split("/")
    return Norm(
        nid, nid[:2].upper(), when, triggers, text, tuple(keys.split()), occasion, recipient, _spec(bad), _spec(good)
    )


def _spec(text: str) -> tuple[str, dict[str, str]]:
    """'roses: color=red, stems=7' -> ('roses', {'color': 'red', 'stems': '7'})."""
    kind, _, opts = text.partition(":")
    pairs = (p.strip().split("=") for p in opts.split(",") if p.strip())
    return kind.strip(), {k: v for k, v in pairs}


# The norms themselves are data (norms.json beside this module): one row per norm with
# id, when, triggers, text, keys, task occasion/recipient, breaking request, respecting request.
_ROWS: list[tuple[str, ...]] = [
    tuple(row) for row in json.loads(resources.files(__package__).joinpath("norms.json").read_text("utf-8"))["rows"]
]


@lru_cache(maxsize=1)
def all_norms() -> tuple[Norm, ...]:
    return tuple(_n(*row) for row in _ROWS)


@lru_cache(maxsize=1)
def norms_by_country() -> dict[str, tuple[Norm, ...]]:
    out: dict[str, list[Norm]] = {c: [] for c in COUNTRIES}
    for norm in all_norms():
        out[norm.country].append(norm)
    return {c: tuple(v) for c, v in out.items()}


def broken_norms(country: str, occasion: str, gift: bool, recipient: str, tags: frozenset[str] | set[str]) -> list[str]:
    """Ids of the country's norms that a purchase with these tags breaks (for this use)."""
    return [n.id for n in norms_by_country()[country] if n.applies(occasion, gift, recipient) and n.broken_by(tags)]
