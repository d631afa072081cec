"""How options are shown to an LLM: printed menus and numeric labels, and their settings.

The bottom of the presentation layer (:mod:`agents.presentation` plans what a policy
scores): environments build every printed menu (:class:`Menu`, placed in a prompt with
:meth:`Prompt.with_menu <agents.interfaces.Prompt.with_menu>`) and every numeric label
(:class:`Amounts`, :func:`amount_labels`) here, never by hand, so one place decides how
an option reads.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import Field

from sim.core.schema import StrictModel

Order = Literal["fixed", "shuffled", "balanced"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ----------------------------------------------------------------------- settings
class PresentationConfig(StrictModel):
    """The ``presentation:`` block of a scenario (and of a group, overriding it)."""

    order: Order = Field(
        "balanced",
        description=(
            "printed menus: fixed (the environment's order), shuffled (a seeded order per decision) or "
            "balanced (the average over every order of up to 3 options, over the cyclic shifts above)"
        ),
    )
    balanced_max_options: int = Field(
        6, ge=2, le=26, description="menus with more options than this are shuffled instead of balanced"
    )
    decimals: Literal["auto", 0, 1, 2, 3] = Field(
        "auto",
        description=(
            "decimals of numeric labels, the same for every option of a menu; auto: the fewest (0-3) that "
            "keep a menu's labels distinct"
        ),
    )
    sensitivity: float = Field(
        0.05,
        ge=0,
        le=1,
        description=(
            "share of LLM decisions (seeded) also scored under other presentations (reversed order, labels "
            "with one more decimal, declared wordings) for the run's presentation_spread; 0: none"
        ),
    )


class GroupPresentation(StrictModel):
    """A group's ``presentation:`` override: the fields it sets replace the scenario's."""

    order: Order | None = None
    balanced_max_options: int | None = Field(None, ge=2, le=26)
    decimals: Literal["auto", 0, 1, 2, 3] | None = None


def merged(base: PresentationConfig, override: GroupPresentation | None) -> PresentationConfig:
    """The settings a group's decisions are presented with."""
    if override is None:
        return base
    return base.model_copy(update=override.model_dump(exclude_none=True))


# ------------------------------------------------------------------------- labels
@dataclass(frozen=True)
class Amounts:
    """Numeric options: option i is ``amounts[i]`` of ``unit`` (``plural`` for != 1),
    labelled with ``decimals`` (see :func:`amount_labels`)."""

    amounts: tuple[float, ...]
    unit: str
    plural: str
    decimals: int | str = "auto"

    def labels(self, decimals: int | str | None = None) -> tuple[str, ...]:
        return amount_labels(self.amounts, self.unit, self.plural, self.decimals if decimals is None else decimals)

    def shown_decimals(self) -> int:
        return int(self.decimals) if self.decimals != "auto" else _fewest_distinct(self.amounts)


def amount_labels(
    amounts: Sequence[float], unit: str, plural: str | None = None, decimals: int | str = "auto"
) -> tuple[str, ...]:
    """Labels of one menu in one format: every amount with the same number of decimals
    and the same unit ("0.0 tons, 0.6 tons, 1.2 tons", never "0 tons, 0.6 tons, 1 ton").

    ``auto`` takes the fewest decimals (0-3) that keep the labels distinct. A label shows
    the amount rounded to that many decimals; the option's value stays exact. The unit is
    singular only for a whole 1 ("1 ton", "1.0 tons").
    """
    plural = plural if plural is not None else unit + "s"
    d = _fewest_distinct(amounts) if decimals == "auto" else int(decimals)
    return tuple(f"{t} {unit if t == '1' else plural}" for t in _numbers(amounts, d))


def _fewest_distinct(amounts: Sequence[float]) -> int:
    return next((d for d in range(4) if len(set(_numbers(amounts, d))) == len(amounts)), 3)


def _numbers(amounts: Sequence[float], decimals: int) -> list[str]:
    """Each amount with ``decimals`` decimals, halves rounded up (12.5 t reads "13", as a
    person rounds), never "-0.0"."""
    step = Decimal(1).scaleb(-decimals)
    out = []
    for a in amounts:
        text = str(Decimal(repr(float(a))).quantize(step, rounding=ROUND_HALF_UP))
        out.append(text[1:] if text.startswith("-") and Decimal(text) == 0 else text)
    return out


# -------------------------------------------------------------------------- menus
@dataclass(frozen=True)
class Menu:
    """Options printed in a prompt. ``entries[i]`` is what is printed for option i;
    ``printed`` the environment's order (option indices, first printed first).

    ``inline``: "<intro>yes; no." and the answer is the entry itself (entries are the
    request's options). ``lettered``: one line per entry, "a. <entry>", under ``intro``,
    and the answer is the letter of the entry's place, so it moves with the order.
    """

    entries: tuple[str, ...]
    printed: tuple[int, ...] = ()
    style: Literal["inline", "lettered"] = "inline"
    intro: str = "Options: "
    sep: str = "; "  # between inline entries
    end: str = "."  # after the last inline entry
    letters: str = LETTERS  # of a lettered menu's places

    def __post_init__(self) -> None:
        if not self.printed:
            object.__setattr__(self, "printed", tuple(range(len(self.entries))))
        if sorted(self.printed) != list(range(len(self.entries))):
            raise ValueError("a menu's printed order must list every option once")

    def text(self, order: Sequence[int] | None = None) -> str:
        order = self.printed if order is None else order
        if self.style == "inline":
            return f"{self.intro}{self.sep.join(self.entries[i] for i in order)}{self.end}"
        lines = "\n".join(f"{self.letters[k]}. {self.entries[i]}" for k, i in enumerate(order))
        return f"{self.intro}{lines}\n"

    def answers(self, options: Sequence[str], order: Sequence[int] | None = None) -> tuple[str, ...]:
        """What each option's answer reads under ``order`` (option-index order)."""
        if self.style == "inline":
            return tuple(options)
        order = self.printed if order is None else order
        place = {i: k for k, i in enumerate(order)}
        return tuple(self.letters[place[i]] for i in range(len(self.entries)))

    def relabelled(self, entries: Sequence[str]) -> Menu:
        return replace(self, entries=tuple(entries))


def canonical(entries: Sequence[str], values: Sequence[float] | None) -> tuple[int, ...]:
    """The arrangement a balanced menu starts from: by value where options have values,
    else by text, so it is the same whatever order the environment printed."""
    if values is not None:
        return tuple(sorted(range(len(entries)), key=lambda i: (values[i], entries[i], i)))
    return tuple(sorted(range(len(entries)), key=lambda i: (entries[i], i)))


def balanced_orders(start: Sequence[int]) -> list[tuple[int, ...]]:
    """Every order of up to 3 options; the cyclic shifts of ``start`` above (each option
    once in every place)."""
    n = len(start)
    if n <= 3:
        return [tuple(start[i] for i in p) for p in itertools.permutations(range(n))]
    return [tuple(start[(k + j) % n] for j in range(n)) for k in range(n)]
