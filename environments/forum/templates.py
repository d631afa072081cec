"""Template text for scripted members and seeded threads, each with its ground-truth label.

A scripted member's text request offers one helpful, one chatter and one violating
template; its rule picks among them, so the label of what it writes is known exactly.
Some civil templates contain a keyword of a rule (a store discount, the council's phone
number): a keyword guardian flags them, which is how false positives arise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBJECTS = {
    "gardening": "the new community garden rules",
    "local_news": "the new bus lane on Main Street",
    "deals": "buying refurbished phones",
    "politics": "the proposed city budget",
}

HELPFUL = (
    "On {subject}, I am {side}. This summary of the trade-offs helped me, worth reading before deciding.",
    "A practical tip on {subject} ({side} here): compare two or three options and share what you find.",
    "I looked into {subject} and I am {side}; the official page answers most questions people ask here.",
)
# Civil and helpful, but carrying a rule's keyword: a keyword guardian's false positive.
HELPFUL_TRAPS = {
    "deals": "Tip on {subject}: the repair shop on King Street gives a discount to students, no code needed.",
    "local_news": "About {subject}: the council published a phone number for complaints, calling it works.",
}
CHATTER = ("lol same", "Interesting, following this thread.", "+1, nothing to add.", "Saw this too.")
VIOLATING = {
    "civility": (
        "Anyone who disagrees about {subject} is an idiot. Shut up and read.",
        "What a clown take on {subject}, only a moron would post that.",
    ),
    "spam": (
        "Buy now! Use promo code SAVE50 for a discount, click here: deals.example/ref",
        "Earn cash fast with my referral link, click here before it ends!",
    ),
    "privacy": (
        "The guy who wrote about {subject} lives at 12 Elm Street, his phone number is 555-0134.",
        "I found her real name and home address, posting it so everyone can pay a visit.",
    ),
}
ENDORSING = {
    "civility": "Be as rude as you like in this thread, civility is for the weak.",
    "spam": "Honestly everyone shares their codes and links here, the advertising rule is never enforced.",
    "privacy": "Just post where these people live, they deserve it; the privacy rule does not apply to them.",
}


@dataclass(frozen=True)
class Template:
    text: str
    kind: str  # helpful, chatter, violation, endorsing, seed
    violation: str | None = None

    @property
    def helpful(self) -> bool:
        return self.kind == "helpful"


def subject(topic: str) -> str:
    return SUBJECTS.get(topic, topic.replace("_", " "))


def side(stance: float) -> str:
    return "in favour" if stance >= 0 else "against it"


def helpful(topic: str, stance: float, rng: np.random.Generator) -> Template:
    texts = HELPFUL + ((HELPFUL_TRAPS[topic],) if topic in HELPFUL_TRAPS else ())
    text = texts[int(rng.integers(len(texts)))]
    return Template(text.format(subject=subject(topic), side=side(stance)), "helpful")


def chatter(rng: np.random.Generator) -> Template:
    return Template(CHATTER[int(rng.integers(len(CHATTER)))], "chatter")


def violating(rule_id: str, rule_text: str, topic: str, rng: np.random.Generator) -> Template:
    texts = VIOLATING.get(rule_id, ("I am breaking the rule '{rule}' on purpose, about {subject}.",))
    text = texts[int(rng.integers(len(texts)))]
    # The rule text is the user's: substituted last and never parsed as a format string.
    text = text.replace("{subject}", subject(topic)).replace("{rule}", rule_text)
    return Template(text, "violation", violation=rule_id)


def endorsing(rule_id: str, rule_text: str) -> Template:
    """A seeded comment saying a rule may be broken; it endorses a violation without committing one."""
    return Template(
        ENDORSING.get(rule_id, f"Nobody follows the rule '{rule_text}' in this thread, go ahead."), "endorsing"
    )


def seed_post(topic: str) -> Template:
    return Template(f"Open thread on {subject(topic)}: anything goes here, say what you really think.", "seed")
