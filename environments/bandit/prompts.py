"""Text the LLM players read. The system text is the same for every player."""

from __future__ import annotations

from collections.abc import Sequence

from agents.interfaces import Prompt
from agents.menus import Menu


def system_text(arms: Sequence[str], rounds: int) -> str:
    names = ", ".join(arms[:-1]) + f" and {arms[-1]}"
    return (
        f"You are in a room with {len(arms)} buttons: {names}. Each time you press a button you win some points. "
        "Each button pays a random amount around its own fixed average, and you do not know the averages. "
        f"You press one button per round, for {rounds} rounds. Your goal is to win as many points as possible. "
        "Answer with the name of one button."
    )


def totals(arms: Sequence[str], pulls: Sequence[tuple[int, float]]) -> str:
    """Presses and average reward per button over all rounds. A small model reads this
    summary far better than it averages the round list itself (SmolLM2-135M: the
    correlation of its logit gap with the sample-mean gap rises from 0.31 to 0.55)."""
    parts = []
    for i, arm in enumerate(arms):
        rewards = [r for a, r in pulls if a == i]
        times = "time" if len(rewards) == 1 else "times"
        parts.append(
            f"{arm} pressed {len(rewards)} {times}, average {sum(rewards) / len(rewards):.1f} points"
            if rewards
            else f"{arm} never pressed"
        )
    return "; ".join(parts)


def pull_prompt(
    system: str,
    *,
    arms: Sequence[str],
    pulls: Sequence[tuple[int, float]],
    round_no: int,
    rounds: int,
    history: int | None,
) -> Prompt:
    shown = list(enumerate(pulls, start=1))
    if history is not None:
        shown = shown[-history:]
    if shown:
        lines = "\n".join(f"- Round {t}: you pressed {arms[a]} and won {r:.1f} points." for t, (a, r) in shown)
        past = f"What happened so far:\n{lines}\nTotals: {totals(arms, pulls)}.\n"
    else:
        past = "You have not pressed any button yet.\n"
    before = f"{past}This is round {round_no} of {rounds}. Which button do you press? "
    return Prompt.with_menu(system, before, Menu(tuple(arms)), answer_prefix="I press ")
