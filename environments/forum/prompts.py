"""Text the forum's LLM members, guardian and moderator read. Scripted agents never see it.

Each office has one system text per run (members, guardian, moderator), identical for
all its requests, so an LLM policy prefills it once per batch; the community policy
(the written rules) is part of every system text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from agents.interfaces import Prompt
from agents.menus import Menu
from environments.forum.config import RuleConfig
from environments.forum.feed import Item

YES_NO = ("No", "Yes")  # a guardian's options, in option order (values 0, 1)
# Printed "Answer Yes or No." in the environment's order.
YES_NO_MENU = Menu(YES_NO, printed=(1, 0), intro="Answer ", sep=" or ", end=".")
MODERATE_OPTIONS = ("dismiss", "sanction")
# Another wording of the moderator's decision, for the presentation-sensitivity probes.
MODERATE_WORDINGS = {"keep/remove": ("keep", "remove")}

PERSONAS = {
    "altruistic": "You want the forum to be a helpful, friendly place.",
    "selfish": "You want attention and karma for yourself.",
    "neutral": "You read the forum to pass the time.",
}
STYLES = {
    "civil": "You write civil, helpful posts.",
    "provocative": "You write provocative posts that stir people up.",
}


def policy_text(rules: Sequence[RuleConfig]) -> str:
    return "\n".join(f"{i}. {r.text}" for i, r in enumerate(rules, start=1))


def member_system(rules: Sequence[RuleConfig], topics: Sequence[str]) -> str:
    return (
        "You are a member of an online discussion forum. Members write posts and comments, vote on them, "
        "report content that breaks the rules and follow other members. Upvotes and downvotes on what you "
        "write change your karma. Reported content goes to the moderators, who may warn, remove content or ban.\n"
        f"Community rules:\n{policy_text(rules)}\n"
        f"Topics: {', '.join(topics)}.\n"
        "When asked to choose, answer with exactly one of the listed options."
    )


def guardian_system(rules: Sequence[RuleConfig]) -> str:
    return (
        "You check content on an online forum against its community rules.\n"
        f"Community rules:\n{policy_text(rules)}\n"
        "Answer Yes or No."
    )


def moderator_system(rules: Sequence[RuleConfig], ladder: Sequence[str]) -> str:
    return (
        "You moderate an online forum. Members report content; you review each report and either dismiss it "
        f"or sanction the author. Sanctions escalate with each offence: {' -> '.join(ladder)}.\n"
        f"Community rules:\n{policy_text(rules)}\n"
        "Answer with exactly one of the listed options."
    )


def _who(author: int | None) -> str:
    return "the forum" if author is None else f"@{author}"


def feed_text(feed: Sequence[Item], threshold: int) -> str:
    if not feed:
        return "(your feed is empty)"
    lines = []
    for slot, it in enumerate(feed, start=1):
        flags = ""
        if len(it.reporters) >= threshold:
            flags += " [reported by members]"
        if it.warned:
            flags += " [moderator warning]"
        what = f"post by {_who(it.author)} on {it.topic}" if it.kind == "post" else f"comment by {_who(it.author)}"
        lines.append(f"#{slot} {what} (score {it.score:+d}){flags}: {it.text}")
    return "\n".join(lines)


def _header(persona: str, note: str, stance: float, memory: str, karma: float) -> str:
    lean = "in favour of" if stance >= 0 else "against"
    return (
        f"{PERSONAS[persona]} {note} On most questions you lean {lean} change.\n"
        f"Your karma: {karma:+.0f}.\nWhat you remember:\n{memory}\n"
    )


def act_prompt(
    system: str, *, persona: str, note: str, stance: float, memory: str, karma: float, feed: str, options: Sequence[str]
) -> Prompt:
    # Shared content first: the feed and the options it offers (the same for members who
    # see the same feed, up to the items one of them already voted on or reported) come
    # before the member's own part, so a policy can reuse them as a common prefix. After
    # the member's part, options were a third of a step's tokens, none of them shared.
    after = "\n" + _header(persona, note, stance, memory, karma) + "What do you do now?"
    return Prompt.with_menu(system, f"Your feed:\n{feed}\n", Menu(tuple(options)), after, answer_prefix="I choose to ")


def write_prompt(
    system: str,
    *,
    persona: str,
    note: str,
    stance: float,
    memory: str,
    karma: float,
    topic: str,
    parent: Item | None,
    replies: Sequence[Item],
) -> Prompt:
    # A comment's thread (shared by everyone replying to it) comes before the member's own part.
    header = _header(persona, note, stance, memory, karma)
    if parent is None:
        user = header + f"Write your new post about {topic.replace('_', ' ')}, in one or two sentences."
    else:
        earlier = "".join(f"\n- {_who(c.author)}: {c.text}" for c in replies)
        thread = f"You reply to this post by {_who(parent.author)}: {parent.text}" + (
            f"\nComments so far:{earlier}" if earlier else ""
        )
        user = f"{thread}\n{header}Write your comment, in one or two sentences."
    return Prompt(system=system, user=user, answer_prefix="")


def guard_prompt(system: str, *, text: str, rule_number: int, rule: RuleConfig) -> Prompt:
    # Capitalised Yes/No and no answer prefix: on the default model this wording separated
    # violating from civil templates best of those tried (AUC 0.74 vs 0.71 and 0.66).
    before = f'Content: "{text}"\nDoes this content break rule {rule_number} ("{rule.text}")? '
    return Prompt.with_menu(system, before, YES_NO_MENU)


def helpful_prompt(system: str, *, text: str, topic: str) -> Prompt:
    # Same opening as guard_prompt (the item's text first), so the rule questions and this
    # one share the item as a prefix.
    before = (
        f'Content: "{text}"\nIt was posted under {topic.replace("_", " ")}. Is this a helpful, on-topic contribution? '
    )
    return Prompt.with_menu(system, before, YES_NO_MENU)


def moderate_prompt(system: str, *, text: str, reports: int, author: int | None, offences: int, level: str) -> Prompt:
    before = (
        f'Reported content by {_who(author)} ({reports} reports, {offences} earlier sanctions): "{text}"\n'
        f"If you sanction it, the author gets: {level.replace('_', ' ')}. "
        "Do you dismiss the report or sanction? "
    )
    return Prompt.with_menu(system, before, Menu(MODERATE_OPTIONS), answer_prefix="Decision: ")


_PLAIN = frozenset(string.ascii_letters + string.digits + string.punctuation + " \u2019\u2018\u201c\u201d")
_ROLE = re.compile(r"^(assistant|user|system|post|comment|answer)\s*:\s*", re.IGNORECASE)


def clean_text(reply: str, limit: int = 400) -> str | None:
    """A generated post or comment, tidied; None when the reply is not usable text
    (empty, too short, or echoing the prompt's option list)."""
    line = next((ln.strip() for ln in reply.strip().splitlines() if ln.strip()), "")
    line = _ROLE.sub("", line).strip().strip('"').strip()
    if len(re.findall(r"[A-Za-z]+", line)) < 3 or "Options:" in line:
        return None
    if sum(ch in _PLAIN for ch in line) < 0.9 * len(line):  # mostly stray bytes or symbols: not a post
        return None
    return line[:limit]


def parse_text(reply: str) -> int | None:
    """Parse function of a text request: option 0 (the member's own words) or malformed."""
    return 0 if clean_text(reply) is not None else None
