"""Text the LLM members read. Scripted members never see it.

Every prompt opens with what all members share: the system text (the rules, the same for
the whole run), then the round number; then what the agent's group shares (its last
rounds, this round's contributions); only then the member's own part (its persona, its
memory) and the question. An LLM policy prefills the common prefix once per batch.

Options are not listed in the question: each whole number is scored as a continuation
("I contribute " + "7 tokens"), which gives the exact distribution over 0..endowment. The
unit after the number ends each option, so "1 token" does not also collect the mass of
"10 tokens".. "19 tokens".
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.interfaces import Prompt

PERSONAS = {
    "altruistic": "You care about the group's earnings as much as about your own.",
    "selfish": "You care about maximising your own earnings.",
    "neutral": "You take part in this game.",
}


def tokens(n: float) -> str:
    return f"{n:g} token" if n == 1 else f"{n:g} tokens"


def points(n: int) -> str:
    return f"{n} point" if n == 1 else f"{n} points"


def system_text(
    *,
    group_size: int,
    endowment: int,
    mpcr: float,
    rounds: int,
    matching: str,
    punishment: bool,
    cost: float,
    impact: float,
    max_points: int,
) -> str:
    together = (
        f"You stay in the same group of {group_size} for all {rounds} rounds."
        if matching == "partner"
        else f"The groups of {group_size} are drawn anew every round, so you rarely meet the same people twice."
    )
    lines = [
        f"You play a game with real earnings for {rounds} rounds. {together}",
        f"Every round each member of a group receives {endowment} tokens and decides how many of them to put "
        "into a group project; the tokens not put in are kept. All members decide at the same time.",
        f"Every token put into the project earns {mpcr:g} tokens for each of the {group_size} members, "
        "including the one who put it in.",
        "After each round every member sees what each member of the group put in.",
    ]
    if punishment:
        lines.append(
            f"Then each member may give each other member of the group 0 to {max_points} punishment points: "
            f"each point costs the giver {tokens(cost)} and takes {tokens(impact)} from the member who receives it."
        )
    lines.append("Answer with a whole number.")
    return " ".join(lines)


def group_line(round_no: int, contributions: Sequence[int], me: int, earned: float | None = None) -> str:
    """'Round 3: you put in 5, the others 10, 0 and 20 (you earned 27.0).'"""
    others = [c for k, c in enumerate(contributions) if k != me]
    listed = ", ".join(str(c) for c in others[:-1]) + f" and {others[-1]}" if len(others) > 1 else str(others[0])
    tail = f" (you earned {earned:.1f} tokens)" if earned is not None else ""
    return f"Round {round_no}: you put in {contributions[me]}, the others {listed}{tail}."


def contribute_prompt(
    system: str,
    *,
    round_no: int,
    rounds: int,
    history: str,
    persona: str,
    memory: str,
    endowment: int,
) -> Prompt:
    user = (
        f"This is round {round_no} of {rounds}.\nYour group's last rounds:\n{history}\n\n"
        f"{PERSONAS[persona]}\nWhat you remember:\n{memory}\n"
        f"You have {endowment} tokens. How many tokens do you put into the project?"
    )
    return Prompt(system=system, user=user, answer_prefix="I put in ")


def punish_prompt(
    system: str,
    *,
    round_no: int,
    rounds: int,
    contributions: Sequence[int],
    me: int,
    target: int,
    persona: str,
    memory: str,
    max_points: int,
    cost: float,
    impact: float,
) -> Prompt:
    # Members are named by their place in this round's group (A, B, C...): anonymous, as in the papers.
    # The group's list comes first and is the same for its members (who is "you" is said after
    # it), so a group's requests share it as one prefix, and a member's requests share its own
    # part up to the target.
    names = [chr(ord("A") + k) for k in range(len(contributions))]
    put = "; ".join(f"member {names[k]}: {tokens(c)}" for k, c in enumerate(contributions))
    user = (
        f"This is round {round_no} of {rounds}. This round your group put in: {put}.\n\n"
        f"You are member {names[me]}. {PERSONAS[persona]}\nWhat you remember:\n{memory}\n"
        f"How many punishment points (0 to {max_points}) do you give member {names[target]}, who put in "
        f"{tokens(contributions[target])}? Each point costs you {tokens(cost)} and takes {tokens(impact)} "
        f"from member {names[target]}."
    )
    return Prompt(system=system, user=user, answer_prefix="I give ")
