"""Text the LLM agents of the commons read. Scripted agents never see it.

Every prompt opens with what all fishers share: the system text (the rules, the same
for a whole run), then the public record and the stock (the same for every fisher of a
step). An LLM policy prefills that prefix once per step and reuses its KV cache for the
whole batch; only the agent's own part (who it is, its persona, its memory, its belief)
and the question follow, so the per-agent work is a short suffix.
"""

from __future__ import annotations

from collections.abc import Sequence

from agents.interfaces import Prompt
from agents.menus import Menu

PERSONAS = {
    "altruistic": "You care about the community and about the lake's future as much as about your own income.",
    "selfish": "You care about maximising your own income.",
    "neutral": "You make a living from the lake.",
}


PUNISH_OPTIONS = ("no", "yes")
# Another wording of the punishment decision, for the presentation-sensitivity probes.
PUNISH_WORDINGS = {"spare/fine": ("spare", "fine")}


def system_text(
    *,
    n_agents: int,
    capacity: float,
    regrowth: str,
    collapse: float,
    consumption: float,
    punishment: bool,
    group_norm: bool,
    discussion: bool = False,
    whole_tons: bool = False,
) -> str:
    growth = (
        "After the harvest the remaining fish double, up to the lake's capacity."
        if regrowth == "doubling"
        else "After the harvest the remaining fish regrow, fastest at half the capacity."
    )
    lines = [
        f"You are one of {n_agents} fishers sharing a lake that holds at most {capacity:g} tons of fish.",
        "Each month every fisher decides how much to catch; all decide at the same time.",
        growth,
        f"If fewer than {collapse:g} tons remain after a harvest, the lake collapses for good and nobody can fish again.",
    ]
    if consumption > 0:
        lines.append(f"Every fisher must spend {consumption:g} tons' worth of income each month to live.")
    if whole_tons:
        lines.append("Fish are caught in whole tons.")
    if punishment:
        lines.append(
            "Fishers may watch a neighbour's catch and fine a neighbour who takes more than the limit; fining costs the fisher who fines."
        )
    if group_norm:
        lines.append(
            "Every few months the fishers vote on a catch limit per fisher; the median proposal becomes the limit."
        )
    if discussion:
        lines.append("After the catches are made public, the fishers meet and talk.")
    lines.append("Answer with exactly one of the listed options.")
    return " ".join(lines)


def shared_text(record: str, stock: float) -> str:
    """The part of the user turn that is the same for every fisher of a step."""
    return f"What everyone saw:\n{record}\nThe lake now holds {stock:.0f} tons."


def own_text(fisher: int, persona: str, memory: str) -> str:
    return f"You are fisher {fisher}. {PERSONAS[persona]}\nWhat you remember:\n{memory}"


def harvest_prompt(
    system: str,
    *,
    record: str,
    fisher: int,
    persona: str,
    memory: str,
    stock: float,
    norm: float | None,
    own_norm: float | None,
    note: str,
    threshold: float | None = None,
) -> Prompt:
    limit = f"The agreed limit is {norm:g} tons per fisher." if norm is not None else "There is no agreed limit yet."
    if threshold is not None:  # GovSim's sustainability hint, the same for every fisher (shared prefix)
        limit += f" If every fisher catches more than {threshold:g} tons, the lake will shrink next month."
    belief = f"You think a fair catch is about {own_norm:g} tons. " if own_norm is not None else ""
    # The options are not listed: an LLM policy scores each one as a continuation, and a
    # listed menu made SmolLM2-135M put 72-84% on the last-listed option whatever the
    # persona or belief (unlisted, its catch follows the belief and the stock).
    user = (
        f"{shared_text(record, stock)} {limit}\n\n{own_text(fisher, persona, memory)}\n"
        f"{belief}{(note + ' ') if note else ''}How many tons do you catch this month?"
    )
    return Prompt(system=system, user=user, answer_prefix="I catch ")


def punish_prompt(
    system: str,
    *,
    record: str,
    fisher: int,
    persona: str,
    memory: str,
    peer: int,
    peer_catch: float,
    norm: float,
    fine: float,
    cost: float,
    stock: float,
) -> Prompt:
    """Printed "yes; no" in the environment's order (options are ``PUNISH_OPTIONS``)."""
    before = (
        f"{shared_text(record, stock)} The limit is {norm:.1f} tons per fisher.\n\n{own_text(fisher, persona, memory)}\n"
        f"You watched fisher {peer}, who caught {peer_catch:.1f} tons. Fining them takes {fine:g} tons from them "
        f"and costs you {cost:g}. Do you fine fisher {peer}? "
    )
    return Prompt.with_menu(system, before, Menu(PUNISH_OPTIONS, printed=(1, 0)), answer_prefix="Answer: ")


def vote_prompt(
    system: str,
    *,
    record: str,
    fisher: int,
    persona: str,
    memory: str,
    stock: float,
    n_agents: int,
    options: Sequence[str],
    free_text: bool,
) -> Prompt:
    before = f"{shared_text(record, stock)} {n_agents} fishers share it.\n\n{own_text(fisher, persona, memory)}\n"
    if free_text:
        user = before + "Write the catch limit per fisher you propose, as a number of tons."
        return Prompt(system=system, user=user, answer_prefix="I propose ")
    ask = "Which catch limit per fisher do you propose? "
    return Prompt.with_menu(system, before + ask, Menu(tuple(options)), answer_prefix="I propose ")
