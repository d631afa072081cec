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

from dataclasses import dataclass, field
from functools import lru_cache

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


# id, when, triggers, text, keys, task occasion/recipient, breaking request, respecting request
_ROWS = [
    # Japan
    (
        "jp_four",
        "gift",
        "four",
        "Gifts in sets of four are avoided: shi (four) sounds like death.",
        "four death",
        "birthday/friend",
        "tea set: pieces=4",
        "tea set: pieces=5",
    ),
    (
        "jp_nine",
        "gift",
        "nine",
        "Nine (ku) sounds like suffering, so gifts in nines are avoided.",
        "nine suffering",
        "housewarming/friend",
        "tulips: stems=9, color=pink",
        "tulips: stems=7, color=pink",
    ),
    (
        "jp_chrysanthemum",
        "wedding,birthday,housewarming,hospital,dinner",
        "chrysanthemum",
        "Chrysanthemums, white ones above all, are funeral flowers and stay away from happy occasions and sickrooms.",
        "chrysanthemum chrysanthemums funeral",
        "birthday/friend",
        "chrysanthemums: color=white",
        "roses: color=pink, stems=5",
    ),
    (
        "jp_potted",
        "hospital",
        "potted_plant",
        "Potted plants are not brought to the sick: roots suggest the illness will take root.",
        "potted roots",
        "hospital/colleague",
        "potted orchid",
        "tulips: color=yellow, stems=5",
    ),
    (
        "jp_camellia",
        "hospital",
        "camellia",
        "Camellias are avoided for the sick: the blossom drops off whole, like a falling head.",
        "camellia camellias",
        "hospital/friend",
        "camellias: color=red, stems=5",
        "tulips: color=red, stems=5",
    ),
    (
        "jp_blade",
        "wedding",
        "blade",
        "Knives and scissors are not wedding gifts: they suggest cutting the couple's bond.",
        "knife knives scissors cut",
        "wedding/couple",
        "knife set",
        "tea set: pieces=5",
    ),
    (
        "jp_comb",
        "gift",
        "comb",
        "Combs are avoided as gifts: kushi sounds like suffering and death.",
        "comb combs",
        "birthday/woman",
        "comb set",
        "scarf: color=blue",
    ),
    (
        "jp_white_guest",
        "wedding",
        "white+garment",
        "Wedding guests do not wear white, the bride's colour.",
        "white bride",
        "wedding/self",
        "dress: color=white",
        "dress: color=navy",
    ),
    # China
    (
        "cn_clock",
        "gift",
        "clock",
        "Clocks are not given: giving a clock sounds like attending a deathbed.",
        "clock clocks deathbed",
        "housewarming/friend",
        "wall clock",
        "vase",
    ),
    (
        "cn_umbrella",
        "gift",
        "umbrella",
        "Umbrellas are not given: san (umbrella) sounds like separation.",
        "umbrella separation",
        "birthday/friend",
        "umbrella",
        "canvas tote",
    ),
    (
        "cn_green_hat",
        "any",
        "hat+green",
        "A green hat says that a man's wife is unfaithful, so men do not wear one.",
        "green hat unfaithful",
        "birthday/man",
        "sun hat: color=green",
        "sun hat: color=blue",
    ),
    (
        "cn_four",
        "gift",
        "four",
        "Four (si) sounds like death; sets of four are avoided in gifts.",
        "four death",
        "wedding/couple",
        "serving bowl set: pieces=4",
        "serving bowl set: pieces=6",
    ),
    (
        "cn_pear",
        "gift",
        "pear",
        "Pears are not given: li (pear) sounds like separation.",
        "pear pears separation",
        "hospital/friend",
        "pear gift box",
        "apple gift box",
    ),
    (
        "cn_shoes",
        "gift",
        "shoes",
        "Shoes are not given to a partner: xie sounds like evil and suggests walking away.",
        "shoes evil",
        "birthday/partner",
        "sneakers",
        "scarf: color=red",
    ),
    (
        "cn_white_wedding",
        "wedding",
        "white",
        "White is the colour of mourning and is kept away from weddings.",
        "white mourning",
        "wedding/couple",
        "roses: color=white, stems=9",
        "roses: color=red, stems=9",
    ),
    (
        "cn_blade",
        "gift",
        "blade",
        "Knives and scissors are not given: they cut the relationship.",
        "knife knives scissors cut",
        "housewarming/friend",
        "kitchen scissors",
        "cutting board",
    ),
    # India
    (
        "in_beef",
        "any",
        "beef",
        "Beef is avoided: most Hindus hold the cow sacred.",
        "beef cow sacred",
        "dinner/host",
        "beef jerky",
        "dried fruit box",
    ),
    (
        "in_leather",
        "festival",
        "cow_leather",
        "Cow leather gifts are avoided for Hindu festivals such as Diwali.",
        "leather cow",
        "festival/friend",
        "leather wallet: color=brown",
        "canvas wallet: color=navy",
    ),
    (
        "in_white_wedding",
        "wedding",
        "white+garment",
        "White is worn in mourning, so it is not worn to a wedding.",
        "white mourning",
        "wedding/self",
        "dress: color=white",
        "dress: color=red",
    ),
    (
        "in_black",
        "wedding,festival",
        "black",
        "Black is thought inauspicious at weddings and festivals.",
        "black inauspicious",
        "festival/friend",
        "scarf: color=black",
        "scarf: color=red",
    ),
    (
        "in_alcohol",
        "gift",
        "alcohol",
        "Alcohol is an unwelcome gift in many traditional households.",
        "alcohol wine",
        "dinner/host",
        "red wine",
        "premium tea",
    ),
    (
        "in_meat",
        "gift",
        "meat",
        "Many households are vegetarian; gifts of meat offend them.",
        "meat vegetarian",
        "festival/family",
        "smoked chicken box",
        "chocolate box",
    ),
    (
        "in_revealing",
        "temple",
        "revealing",
        "Revealing clothes are not worn to a temple.",
        "revealing modest temple",
        "temple/self",
        "mini skirt",
        "long skirt",
    ),
    (
        "in_white_flowers",
        "wedding",
        "flower+white",
        "White flowers belong to funerals, not weddings.",
        "white funeral",
        "wedding/couple",
        "lilies: color=white",
        "lilies: color=pink",
    ),
    # Saudi Arabia
    (
        "sa_alcohol",
        "any",
        "alcohol",
        "Alcohol is prohibited.",
        "alcohol wine prohibited",
        "dinner/host",
        "red wine",
        "sparkling grape juice",
    ),
    (
        "sa_pork",
        "any",
        "pork",
        "Pork is forbidden to Muslims.",
        "pork haram forbidden",
        "dinner/host",
        "ham gift box",
        "date box",
    ),
    (
        "sa_revealing",
        "any",
        "revealing",
        "Revealing clothing is not worn in public.",
        "revealing modest",
        "personal/self",
        "swimsuit",
        "modest swimsuit",
    ),
    (
        "sa_gambling",
        "any",
        "gambling",
        "Gambling is prohibited, so betting games are not given.",
        "gambling betting cards",
        "birthday/friend",
        "playing cards",
        "jigsaw puzzle",
    ),
    (
        "sa_idols",
        "any",
        "figurine",
        "Statues of people or deities are avoided as decoration.",
        "statue figurine idol",
        "housewarming/friend",
        "figurine",
        "vase",
    ),
    (
        "sa_gold_men",
        "any/man",
        "gold",
        "Men do not wear gold in Islamic tradition.",
        "gold",
        "birthday/man",
        "gold cufflinks",
        "silver cufflinks",
    ),
    (
        "sa_dog",
        "gift",
        "dog",
        "Dogs are seen as unclean; dog-themed gifts are unwelcome.",
        "dog unclean",
        "birthday/child",
        "dog plush toy",
        "teddy bear",
    ),
    (
        "sa_cross",
        "any",
        "cross",
        "Religious symbols of other faiths are not worn in public.",
        "cross religious symbol",
        "personal/self",
        "cross pendant",
        "silver pendant",
    ),
    # Egypt
    (
        "eg_alcohol",
        "gift",
        "alcohol",
        "Alcohol is not brought to a Muslim host.",
        "alcohol whisky",
        "dinner/host",
        "whisky",
        "premium tea",
    ),
    (
        "eg_pork",
        "any",
        "pork",
        "Pork is forbidden to Muslims.",
        "pork haram forbidden",
        "festival/family",
        "pork sausage box",
        "date box",
    ),
    (
        "eg_flowers_host",
        "dinner",
        "flower",
        "Flowers are for weddings and the sick; a dinner host is brought sweets instead.",
        "flowers host sweets",
        "dinner/host",
        "roses: color=red, stems=7",
        "chocolate box",
    ),
    (
        "eg_revealing",
        "temple",
        "revealing",
        "Revealing clothes are not worn to a mosque.",
        "revealing modest mosque",
        "temple/self",
        "mini skirt",
        "long skirt",
    ),
    (
        "eg_pigskin",
        "any",
        "pigskin",
        "Pigskin leather is avoided by Muslims.",
        "pigskin pig",
        "birthday/man",
        "pigskin wallet",
        "canvas wallet",
    ),
    (
        "eg_gold_men",
        "any/man",
        "gold",
        "Men do not wear gold in Islamic tradition.",
        "gold",
        "wedding/man",
        "gold cufflinks",
        "silver cufflinks",
    ),
    (
        "eg_dog",
        "gift",
        "dog",
        "Dogs are seen as unclean; dog-themed gifts are unwelcome.",
        "dog unclean",
        "birthday/child",
        "dog plush toy",
        "teddy bear",
    ),
    (
        "eg_gambling",
        "gift",
        "gambling",
        "Gambling is forbidden; betting games make poor gifts.",
        "gambling betting dice",
        "birthday/friend",
        "dice set",
        "board game",
    ),
    # Russia
    (
        "ru_even_flowers",
        "gift",
        "flower+even",
        "Even numbers of flowers are for funerals; the living get an odd number.",
        "even funeral odd",
        "birthday/woman",
        "roses: stems=6, color=red",
        "roses: stems=7, color=red",
    ),
    (
        "ru_yellow",
        "gift",
        "flower+yellow",
        "Yellow flowers signal separation or infidelity.",
        "yellow separation infidelity",
        "birthday/friend",
        "tulips: color=yellow, stems=5",
        "tulips: color=red, stems=5",
    ),
    (
        "ru_knife",
        "gift",
        "blade",
        "Knives given as gifts invite quarrels.",
        "knife knives quarrel",
        "housewarming/friend",
        "knife set",
        "serving bowl set: pieces=6",
    ),
    (
        "ru_wallet",
        "gift",
        "wallet",
        "An empty wallet given as a gift brings poverty.",
        "wallet empty poverty",
        "birthday/man",
        "leather wallet",
        "silk tie",
    ),
    (
        "ru_handkerchief",
        "gift",
        "handkerchief",
        "Handkerchiefs given as gifts bring tears.",
        "handkerchief handkerchiefs tears",
        "birthday/woman",
        "handkerchief set",
        "scarf: color=red",
    ),
    (
        "ru_watch",
        "gift",
        "clock",
        "Watches and clocks given as gifts foretell separation.",
        "watch clock separation",
        "birthday/man",
        "wristwatch",
        "fountain pen",
    ),
    (
        "ru_pearls",
        "wedding",
        "pearl",
        "Pearls stand for tears and are not given to a bride.",
        "pearl pearls tears",
        "wedding/woman",
        "pearl necklace",
        "silver pendant",
    ),
    (
        "ru_baby",
        "baby_shower",
        "baby",
        "Gifts for a baby are not given before it is born.",
        "baby born before",
        "baby_shower/woman",
        "baby blanket",
        "chocolate box",
    ),
    # France
    (
        "fr_chrysanthemum",
        "gift",
        "chrysanthemum",
        "Chrysanthemums are laid on graves on All Saints' Day, not given as gifts.",
        "chrysanthemum chrysanthemums grave graves",
        "dinner/host",
        "chrysanthemums: color=white",
        "tulips: color=pink, stems=7",
    ),
    (
        "fr_red_roses",
        "dinner,business",
        "rose+red",
        "Red roses declare love; they are not for a host or a colleague.",
        "red roses love romantic",
        "dinner/host",
        "roses: color=red, stems=7",
        "roses: color=pink, stems=7",
    ),
    (
        "fr_carnation",
        "gift",
        "carnation",
        "Carnations are associated with bad luck and funerals.",
        "carnation carnations",
        "birthday/friend",
        "carnations: color=pink, stems=7",
        "tulips: color=pink, stems=7",
    ),
    (
        "fr_thirteen",
        "gift",
        "thirteen",
        "Thirteen is unlucky; bouquets of thirteen are avoided.",
        "thirteen 13",
        "birthday/woman",
        "roses: stems=13, color=pink",
        "roses: stems=11, color=pink",
    ),
    (
        "fr_wine_host",
        "dinner",
        "wine",
        "Wine brought to a dinner host suggests the host's cellar is lacking.",
        "wine cellar",
        "dinner/host",
        "red wine",
        "chocolate box",
    ),
    (
        "fr_perfume",
        "business",
        "perfume",
        "Perfume is too personal a gift for a business contact.",
        "perfume personal intimate",
        "business/colleague",
        "perfume",
        "fountain pen",
    ),
    (
        "fr_yellow",
        "gift",
        "flower+yellow",
        "Yellow flowers hint at infidelity.",
        "yellow infidelity",
        "housewarming/friend",
        "lilies: color=yellow",
        "lilies: color=pink",
    ),
    (
        "fr_knife",
        "gift",
        "blade",
        "Knives given as gifts sever a friendship.",
        "knife knives sever",
        "wedding/couple",
        "knife set",
        "serving bowl set: pieces=6",
    ),
    # Brazil
    (
        "br_purple_flowers",
        "gift",
        "flower+purple",
        "Purple flowers are funeral flowers.",
        "purple funeral",
        "birthday/woman",
        "orchids: color=purple",
        "orchids: color=pink",
    ),
    (
        "br_mourning",
        "gift",
        "black|purple",
        "Black and purple are mourning colours, avoided in gifts.",
        "black purple mourning",
        "birthday/friend",
        "scarf: color=black",
        "scarf: color=red",
    ),
    (
        "br_blade",
        "gift",
        "blade",
        "Knives and scissors given as gifts cut the friendship.",
        "knife knives scissors cut",
        "housewarming/friend",
        "kitchen scissors",
        "cutting board",
    ),
    (
        "br_handkerchief",
        "gift",
        "handkerchief",
        "Handkerchiefs given as gifts bring tears.",
        "handkerchief handkerchiefs tears",
        "birthday/woman",
        "handkerchief set",
        "canvas tote",
    ),
    (
        "br_wallet",
        "gift",
        "wallet",
        "An empty wallet given as a gift brings poverty.",
        "wallet empty",
        "birthday/man",
        "canvas wallet",
        "silk tie: color=blue",
    ),
    (
        "br_black_guest",
        "wedding",
        "black+garment",
        "Guests do not wear black to a wedding: it is for mourning.",
        "black mourning",
        "wedding/self",
        "dress: color=black",
        "dress: color=blue",
    ),
    (
        "br_luxury",
        "business",
        "luxury",
        "Lavish gifts at a first business meeting look like a bribe.",
        "lavish bribe expensive",
        "business/colleague",
        "wristwatch",
        "fountain pen",
    ),
    (
        "br_chrysanthemum",
        "gift",
        "chrysanthemum",
        "Chrysanthemums are funeral flowers.",
        "chrysanthemum chrysanthemums funeral",
        "dinner/host",
        "chrysanthemums: color=white",
        "roses: color=pink, stems=7",
    ),
    # Mexico
    (
        "mx_marigold",
        "gift",
        "marigold",
        "Marigolds (cempasuchil) are the flowers of the dead.",
        "marigold marigolds cempasuchil dead",
        "birthday/friend",
        "marigolds",
        "roses: color=red, stems=7",
    ),
    (
        "mx_yellow",
        "gift",
        "flower+yellow",
        "Yellow flowers are associated with death.",
        "yellow death",
        "hospital/friend",
        "roses: color=yellow, stems=7",
        "roses: color=pink, stems=7",
    ),
    (
        "mx_purple",
        "gift",
        "flower+purple",
        "Purple flowers are associated with mourning.",
        "purple mourning",
        "dinner/host",
        "lilies: color=purple",
        "lilies: color=pink",
    ),
    (
        "mx_blade",
        "gift",
        "blade",
        "Knives given as gifts cut the friendship.",
        "knife knives cut",
        "wedding/couple",
        "knife set",
        "tea set: pieces=6",
    ),
    (
        "mx_white_guest",
        "wedding",
        "white+garment",
        "Guests do not wear white to a wedding.",
        "white bride",
        "wedding/self",
        "dress: color=white",
        "dress: color=green",
    ),
    (
        "mx_handkerchief",
        "gift",
        "handkerchief",
        "Handkerchiefs given as gifts bring tears.",
        "handkerchief handkerchiefs tears",
        "birthday/woman",
        "handkerchief set",
        "scarf: color=blue",
    ),
    (
        "mx_wallet",
        "gift",
        "wallet",
        "An empty wallet given as a gift brings poverty.",
        "wallet empty",
        "birthday/man",
        "leather wallet",
        "silk tie",
    ),
    (
        "mx_thirteen",
        "gift",
        "thirteen",
        "Thirteen is unlucky.",
        "thirteen 13 unlucky",
        "birthday/woman",
        "tulips: stems=13, color=pink",
        "tulips: stems=11, color=pink",
    ),
    # Thailand
    (
        "th_buddha",
        "any",
        "buddha_image",
        "Buddha images are sacred; using them as decoration or on clothing is disrespectful.",
        "buddha sacred",
        "housewarming/friend",
        "buddha statue",
        "vase",
    ),
    (
        "th_black",
        "wedding,birthday,housewarming",
        "black",
        "Black is for funerals and is avoided at celebrations.",
        "black funeral",
        "birthday/friend",
        "scarf: color=black",
        "scarf: color=yellow",
    ),
    (
        "th_red_ink",
        "gift",
        "red_ink",
        "A name written in red suggests death.",
        "red ink name",
        "business/colleague",
        "red ink pen set",
        "fountain pen",
    ),
    (
        "th_shoes",
        "gift/elder",
        "shoes",
        "Feet are the lowliest part of the body; shoes are not given to elders.",
        "shoes feet",
        "birthday/elder",
        "slippers",
        "premium tea",
    ),
    (
        "th_blade",
        "gift",
        "blade",
        "Sharp objects given as gifts sever the relationship.",
        "knife knives sharp",
        "housewarming/friend",
        "knife set",
        "tea set: pieces=5",
    ),
    (
        "th_handkerchief",
        "gift",
        "handkerchief",
        "Handkerchiefs are linked with tears and funerals.",
        "handkerchief handkerchiefs tears",
        "birthday/woman",
        "handkerchief set",
        "canvas tote",
    ),
    (
        "th_revealing",
        "temple",
        "revealing",
        "Revealing clothes are not worn to a temple.",
        "revealing modest temple",
        "temple/self",
        "mini skirt",
        "long skirt",
    ),
    (
        "th_alcohol",
        "festival",
        "alcohol",
        "Alcohol is not sold or given on Buddhist holy days.",
        "alcohol beer holy",
        "festival/family",
        "craft beer set",
        "premium tea",
    ),
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
