"""Talk as a shared mechanic: a meeting in speaking rounds, and the limit it agreed on.

After an environment makes the round's outcomes public, :func:`meeting` lets every agent
speak ``rounds`` times. Within a speaking round all agents speak at once (one batched
``kind="text"`` request per agent, so an LLM backend generates the whole round in one
call); each round's prompt carries everything said in earlier rounds, in the shared
part of the prompt, so everyone hears everything and the batch still shares a prefix.

Each request also carries the environment's proposal options ("I propose at most X
tons each."), so an LLM's exact distribution over the proposals is logged beside its
free text; a scripted agent "says" the option its rule picks, after an opening the
environment writes (e.g. its own catch), so scripted runs exercise the mechanic.

**The agreement rule** (:func:`agreed_limit`): a speaker's proposal is the *last*
quantity in its latest utterance that states one, a number followed by the unit
(``unit="ton"`` matches "10 tons", "7.5 ton", "3 tonnes"; people close with their
proposal: "I caught 12 tons, so I propose 10 tons" -> 10). Bare numbers ("fisher 3",
"month 1") are not proposals: SmolLM2-135M echoes such prompt text, and the first
version of this rule read it as a one-ton agreement. A limit is agreed when more than half
of the speakers (``agreement: majority``) or all of them (``unanimous``) last proposed
the same value (to 0.1). Otherwise there is no agreement.

Each utterance is one event row (phase ``discuss``: the text, the proposal as ``value``,
the speaking round in ``info``), so it appears in the report's transcript; the whole
meeting goes into every speaker's memory.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.agent import SocietyAgent
from agents.interfaces import DecisionRequest, Prompt, nearest_option
from environments.mechanics import DiscussionConfig

_NUMBER = r"(\d+(?:\.\d+)?)"
MAX_CHARS = 240  # an utterance kept in prompts and memory; the event log keeps it whole


@dataclass
class Meeting:
    """What was said (round, agent id, text, proposal) and the limit agreed, if any."""

    speaker: str = "agent"
    utterances: list[tuple[int, int, str, float | None]] = field(default_factory=list)
    agreed: float | None = None

    def transcript(self) -> str:
        lines = [f"- {self.speaker} {a}: {_clip(t)}" for _, a, t, _ in self.utterances]
        return "\n".join(lines) or "- (nobody has spoken yet)"

    def summary(self) -> str:
        """The meeting in one line, for a shared record every agent reads."""
        said = "; ".join(f"{self.speaker} {a} said: {_clip(t)}" for _, a, t, _ in self.utterances)
        outcome = f"agreed limit: {self.agreed:g}" if self.agreed is not None else "no agreed limit"
        return f"{said} ({outcome})"


def proposal_in(text: str | None, unit: str = "ton") -> float | None:
    """The speaker's proposal: the last "<number> <unit>(s)" its utterance states, or None."""
    pattern = _NUMBER + r"\s*" + re.escape(unit) + r"(?:ne)?s?\b"
    numbers = re.findall(pattern, text or "", flags=re.IGNORECASE)
    return float(numbers[-1]) if numbers else None


def agreed_limit(proposals: Sequence[float | None], rule: str = "majority") -> float | None:
    """The value more than half (``majority``) or all (``unanimous``) of the speakers
    proposed, to 0.1; None when no value has that support or nobody spoke."""
    if not proposals:
        return None
    counts = Counter(round(p, 1) for p in proposals if p is not None)
    if not counts:
        return None
    value, support = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))  # ties: the smaller limit
    needed = len(proposals) if rule == "unanimous" else len(proposals) // 2 + 1
    return float(value) if support >= needed else None


def meeting(
    model: Any,
    agents: Sequence[SocietyAgent],
    cfg: DiscussionConfig,
    *,
    system: str,
    shared: str,
    own: Callable[[SocietyAgent], str],
    opening: Callable[[SocietyAgent], str],
    observation: Callable[[SocietyAgent], dict[str, Any]],
    proposals: Sequence[float],
    proposal_text: Callable[[float], str],
    speaker: str = "agent",
    unit: str = "ton",
    when: str = "",
) -> Meeting:
    """Run one meeting of ``agents`` through ``model.decide`` (a SocietyModel).

    ``shared``: what every speaker knows (the public record), placed first in every
    prompt; ``own(agent)``: the speaker's own part (persona, memory); ``opening(agent)``:
    what a scripted speaker says before its proposal; ``observation(agent)``: the
    structured view scripted rules read; ``proposals``: the values an agent may propose
    and ``proposal_text`` their wording (it must state the value with ``unit``);
    ``when`` opens each speaker's memory line.
    Every speaker remembers what it said; the environment stores the whole meeting
    (:meth:`Meeting.summary`) where everyone reads it, e.g. a public record.
    """
    result = Meeting(speaker=speaker)
    options = tuple(proposal_text(v) for v in proposals)
    latest: dict[int, float | None] = {a.unique_id: None for a in agents}
    for r in range(1, cfg.rounds + 1):
        heard = result.transcript()
        requests = []
        for agent in agents:
            obs = observation(agent)
            user = (
                f"{shared}\nAt the meeting so far:\n{heard}\n\n{own(agent)}\n"
                f"It is your turn to speak (round {r} of {cfg.rounds}). What do you say to the other {speaker}s?"
            )
            requests.append(
                DecisionRequest(
                    agent_id=agent.unique_id,
                    phase="discuss",
                    options=options,
                    values=tuple(float(v) for v in proposals),
                    observation=obs,
                    prompt=Prompt(system=system, user=user, answer_prefix=""),
                    kind="text",
                    parse=lambda text: _nearest(proposals, proposal_in(text, unit)),
                    fallback=nearest_option(proposals, obs.get("sustainable_share", proposals[0])),
                    max_new_tokens=cfg.max_new_tokens,
                )
            )
        decisions = model.decide(agents, requests)
        for agent, dec in zip(agents, decisions, strict=True):
            text = (dec.text or "").strip()
            if text == options[dec.choice]:  # a scripted speaker: its opening, then the option
                text = f"{opening(agent)} {text}".strip()
            said = proposal_in(text, unit)
            if said is not None:
                latest[agent.unique_id] = said
            result.utterances.append((r, int(agent.unique_id), text, said))
            model.annotate(dec, text=text, value=said, info={"round": r})
    result.agreed = agreed_limit(list(latest.values()), cfg.agreement)
    own_words = {a: t for _, a, t, _ in result.utterances}  # each speaker's last utterance
    for agent in agents:
        agent.remember(f"{when}at the meeting you said: {_clip(own_words[int(agent.unique_id)])}")
    return result


def _nearest(values: Sequence[float], target: float | None) -> int | None:
    return None if target is None else nearest_option(values, target)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."
