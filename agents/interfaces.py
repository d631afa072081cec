"""The decision interface every policy implements and every environment uses.

An environment never talks to a model directly. Each phase of a step it builds one
:class:`DecisionRequest` per acting agent and hands the whole list to
``model.decide`` (see :mod:`environments.base`), which groups the requests by policy
and calls each policy **once** with its batch. A policy answers with one
:class:`Decision` per request: the full probability distribution over the
request's options, the chosen index and the distribution's entropy.

Free-text requests (``kind="text"``: norm proposals, posts, search queries) carry a
``parse`` function that turns the reply into an option index or value; a reply that
does not parse falls back to ``fallback`` and is flagged ``parse_failed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from agents.menus import Amounts, Menu, Order


def stop_at(text: str, stop: Sequence[str]) -> int | None:
    """Where a reply ends: the earliest stop string after its first non-blank character
    (a post that opens with a blank line is not empty)."""
    if not stop:
        return None
    begin = len(text) - len(text.lstrip())
    found = [i for i in (text.find(s, begin) for s in stop) if i >= 0]
    return min(found) if found else None


def server_stops(stop: Sequence[str]) -> tuple[str, ...]:
    """The stop strings a server that cuts at any match (vLLM, OpenAI) may be given with
    :func:`stop_at`'s meaning: those opening with a non-blank character, which cannot
    match inside a reply's leading blanks. The others are applied after the reply."""
    return tuple(s for s in stop if s[:1].strip())


@dataclass(frozen=True)
class Prompt:
    """The text an LLM policy sees, split so the shared part can be cached.

    ``system`` is identical for every agent of an environment (rules, setting), so an
    LLM policy prefills it once per batch and reuses its KV cache. ``user`` holds the
    agent-specific part (persona, memory, observation, question). Options are not
    part of the prompt: they are scored as continuations of it.
    """

    system: str
    user: str
    answer_prefix: str = ""  # text the assistant turn starts with, e.g. "Answer: "
    # A menu printed in ``user`` (as ``menu.text()``, starting at character ``menu_at``),
    # so a presentation can print it in another order (agents.presentation).
    menu: Menu | None = None
    menu_at: int = -1

    @classmethod
    def with_menu(cls, system: str, before: str, menu: Menu, after: str = "", answer_prefix: str = "") -> Prompt:
        """A prompt whose user text is ``before``, the menu in its printed order, ``after``."""
        return cls(system, before + menu.text() + after, answer_prefix, menu, len(before))

    def _split(self) -> tuple[str, str]:
        assert self.menu is not None
        return self.user[: self.menu_at], self.user[self.menu_at + len(self.menu.text()) :]

    def arranged(self, order: Sequence[int]) -> Prompt:
        """This prompt with its menu printed in ``order`` (option indices)."""
        if self.menu is None:
            return self
        before, after = self._split()
        menu = replace(self.menu, printed=tuple(order))
        return Prompt(self.system, before + menu.text() + after, self.answer_prefix, menu, self.menu_at)

    def with_entries(self, entries: Sequence[str]) -> Prompt:
        """This prompt with other texts printed for the menu's options."""
        assert self.menu is not None
        before, after = self._split()
        menu = self.menu.relabelled(entries)
        return Prompt(self.system, before + menu.text() + after, self.answer_prefix, menu, self.menu_at)


@dataclass(frozen=True)
class Variant:
    """One way of showing a request (agents.presentation): its prompt and the answer scored for each option."""

    prompt: Prompt
    options: tuple[str, ...]
    order: tuple[int, ...] = ()  # the printed order (empty: no printed menu)


@dataclass(frozen=True)
class Presentation:
    """What a policy scores for one request: ``shipped`` variants, whose distributions are
    averaged into the decision, and probes (name -> variants, each averaged likewise)
    scored only to measure how much the presentation moves the answer."""

    order: Order
    shipped: tuple[Variant, ...]
    probes: Mapping[str, tuple[Variant, ...]] = field(default_factory=dict)
    measure: str = "total variation from shipped"
    values: tuple[float, ...] | None = None  # what the measure averages, for "expected ..." measures


@dataclass(frozen=True)
class DecisionRequest:
    """One agent's decision in one phase of one step."""

    agent_id: int
    phase: str
    options: tuple[str, ...]
    prompt: Prompt
    # Structured view of the same situation, for scripted policies (they never parse
    # text). Keys are environment-specific and documented by each environment.
    observation: Mapping[str, Any] = field(default_factory=dict)
    # Numeric meaning of each option (catch fraction, vote value...), if any.
    values: tuple[float, ...] | None = None
    kind: Literal["choice", "text"] = "choice"
    # For kind="text": reply -> option index (or None when the reply is malformed).
    parse: Callable[[str], int | None] | None = None
    fallback: int = 0
    max_new_tokens: int = 32
    # For kind="text": the reply is complete once it contains one of these strings after
    # its first non-blank character (forum posts keep their first line, search queries
    # close their "]"), so a policy may end generation there and cut the reply before it.
    stop: tuple[str, ...] = ()
    # False: the choice does not depend on the option probabilities (a single option, or a
    # text request whose reply alone decides), so a policy may skip scoring and report
    # the choice's one-hot distribution (see ``needs_scoring``).
    score: bool = True
    # Numeric options (amounts with a unit), so a presentation can label them in another
    # format; and other wordings of the options the environment declares (name -> texts).
    amounts: Amounts | None = None
    wordings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Set by the model for text-reading policies (agents.presentation.plan): the variants to score.
    presentation: Presentation | None = None
    # False: score only, draw nothing; the caller draws the choice (agents.presentation
    # scores extra orders and probes this way, so they move no random draw of the run).
    draw: bool = True
    # False: capture no activations for this request (an extra order or a probe of a
    # decision whose first variant is captured).
    capture: bool = True

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError(f"decision request for agent {self.agent_id} has no options")
        if self.values is not None and len(self.values) != len(self.options):
            raise ValueError("values must have one entry per option")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")

    @property
    def needs_scoring(self) -> bool:
        """Whether a policy has to score the options: never for a single option (its
        probability is 1) nor when ``score`` is False."""
        return self.score and len(self.options) > 1


@dataclass
class Decision:
    """A policy's answer to one request."""

    probs: np.ndarray  # shape (len(options),), sums to 1
    choice: int
    text: str | None = None  # raw generated text for kind="text"
    parse_failed: bool = False
    # Free-form per-decision facts a policy wants logged (steering vector, coefficient...).
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def entropy(self) -> float:
        return entropy(self.probs)


@runtime_checkable
class Policy(Protocol):
    """Anything that answers a batch of decision requests.

    ``rng`` is the model's seeded generator: a policy draws every random number it
    needs from it, so a run is reproducible from its seed.
    """

    def decide(self, requests: Sequence[DecisionRequest], rng: np.random.Generator) -> list[Decision]: ...


def entropy(probs: np.ndarray) -> float:
    """Shannon entropy in nats; zero-probability options contribute nothing; NaN for a
    distribution that could not be computed (NaN probabilities), never a made-up number."""
    p = np.asarray(probs, dtype=np.float64)
    if np.isnan(p).any():
        return math.nan
    p = p[p > 0]
    return float(-(p * np.log(p)).sum()) if p.size else 0.0


def sample_choice(probs: np.ndarray, rng: np.random.Generator, greedy: bool = False) -> int:
    """Seeded draw (or argmax) from a distribution over options."""
    if greedy:
        return int(np.argmax(probs))
    return int(rng.choice(len(probs), p=probs))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    if temperature <= 0:
        out = np.zeros_like(z)
        out[int(np.argmax(z))] = 1.0
        return out
    z = z / temperature
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def one_hot(n: int, index: int) -> np.ndarray:
    p = np.zeros(n)
    p[index] = 1.0
    return p


def text_decision(
    req: DecisionRequest, text: str, probs: np.ndarray | None, info: dict[str, Any] | None = None
) -> Decision:
    """The decision of a free-text reply: its parsed option, or ``req.fallback`` flagged
    ``parse_failed`` when it does not parse (a parser that raises counts as not parsing).
    ``probs`` None: the options were not scored, so the choice has probability 1 (the
    reply alone decides) and ``info`` says ``probs_from: unscored``."""
    parsed: int | None
    try:
        parsed = req.parse(text) if req.parse is not None else None
    except Exception:  # a parser choking on odd text is a malformed reply, not a crashed run
        parsed = None
    failed = parsed is None or not 0 <= int(parsed) < len(req.options)
    choice = int(req.fallback) if failed else int(parsed)  # type: ignore[arg-type]
    info = dict(info or {})
    if probs is None:
        probs = one_hot(len(req.options), choice)
        info["probs_from"] = "unscored"
    return Decision(probs=probs, choice=choice, text=text, parse_failed=failed, info=info)


def normalise(weights: Sequence[float]) -> np.ndarray:
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = w.sum()
    if not math.isfinite(total) or total <= 0:
        return np.full(len(w), 1.0 / len(w))
    return w / total


def nearest_option(values: Sequence[float], target: float) -> int:
    """Index of the option whose value is closest to target (ties: the smaller value)."""
    arr = np.asarray(values, dtype=np.float64)
    return int(np.argmin(np.abs(arr - target) + 1e-12 * arr))


__all__ = [
    "Decision",
    "DecisionRequest",
    "Policy",
    "Prompt",
    "entropy",
    "nearest_option",
    "normalise",
    "one_hot",
    "sample_choice",
    "softmax",
]
