"""How a decision is shown to an LLM: printed menus, their order, and numeric labels.

An LLM's answer depends on how a question is laid out as well as on what it asks: with
SmolLM2-135M, printing the commons' punishment menu as "no; yes" instead of "yes; no"
moved P(fine) from 0.10 to 0.24, and writing the same catches as "5.0 tons" instead of
"5 tons" moved the expected catch from 7.0 to 1.2 tons. So presentation is a factor of
the design, set in one place (the scenario's ``presentation:`` block, overridable per
group) and applied to every environment's menus and labels here:

* :class:`~agents.menus.Menu` is a list of options printed in a prompt. Environments build menus and
  numeric labels only through this module (:func:`~agents.menus.amount_labels`, :meth:`Prompt.with_menu
  <agents.interfaces.Prompt.with_menu>`), never by hand.
* :func:`plan` turns a request into the variants an LLM policy scores: ``fixed`` (the
  environment's order), ``shuffled`` (a seeded permutation per decision) or ``balanced``
  (every order of a canonical arrangement for up to 3 options, its cyclic shifts above,
  averaged: PriDe's estimate of the position-free distribution, computed exactly). The
  canonical arrangement sorts the options, so a balanced distribution does not depend on
  the order an environment printed its menu in.
* On a seeded sample of decisions it adds *probes*: the same decision under another
  presentation (reversed order, labels with one more decimal, another wording the
  environment declares), scored in the same batch and logged, never used for the
  choice. The run's ``presentation_spread`` metric (:mod:`sim.core.metrics`) summarises them.
* :func:`decide_planned` is what a policy calls: it expands planned requests into plain
  ones, lets the policy score them all in one batch, and averages them back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from agents.interfaces import Decision, DecisionRequest, Presentation, Prompt, Variant, sample_choice
from agents.menus import Order, PresentationConfig, balanced_orders, canonical

SHIPPED = "shipped"


# ------------------------------------------------------------------- the plan
def plan(req: DecisionRequest, cfg: PresentationConfig, rng: np.random.Generator, *, probe: bool) -> DecisionRequest:
    """The request with its presentation planned: the variants to score under ``cfg``
    and, with ``probe``, the alternative presentations to measure. Draws from ``rng``
    only for shuffled menus, so the model's own generator is never touched."""
    menu = req.prompt.menu
    mode: Order = "fixed"
    if menu is not None and len(menu.entries) > 1 and req.needs_scoring:  # unscored: nothing to average
        mode = cfg.order
        if mode == "balanced" and len(menu.entries) > cfg.balanced_max_options:
            mode = "shuffled"
    shipped = _variants(req, req.prompt, req.options, mode, rng)
    probes: dict[str, tuple[Variant, ...]] = {}
    if probe and req.needs_scoring:
        if menu is not None and mode != "balanced" and len(menu.entries) > 1:
            reverse = tuple(reversed(shipped[0].order))
            probes["reversed order"] = (_variant(req.prompt, req.options, reverse),)
        if req.amounts is not None:
            d = req.amounts.shown_decimals() + 1
            probes[f"labels with {d} decimal{'' if d == 1 else 's'}"] = _reworded(req, req.amounts.labels(d), shipped)
        for name, wording in req.wordings.items():
            probes[f"wording: {name}"] = _reworded(req, tuple(wording), shipped)
    measure, values = _measure(req)
    return replace(req, presentation=Presentation(mode, shipped, probes, measure, values))


def _measure(req: DecisionRequest) -> tuple[str, tuple[float, ...] | None]:
    if req.amounts is not None:
        return f"expected {req.amounts.unit} amount", tuple(req.amounts.amounts)
    if req.values is not None and len(req.values) == 2 and sorted(req.values) == [0.0, 1.0]:
        return f"P({req.options[req.values.index(1.0)]})", tuple(req.values)
    return "total variation from shipped", None


def _variants(
    req: DecisionRequest, prompt: Prompt, options: tuple[str, ...], mode: Order, rng: np.random.Generator
) -> tuple[Variant, ...]:
    menu = prompt.menu
    if menu is None or len(menu.entries) < 2:
        return (Variant(prompt, options),)
    if mode == "fixed":
        return (_variant(prompt, options, menu.printed),)
    if mode == "shuffled":
        return (_variant(prompt, options, tuple(int(i) for i in rng.permutation(len(menu.entries)))),)
    start = canonical(menu.entries, req.values)
    return tuple(_variant(prompt, options, order) for order in balanced_orders(start))


def _variant(prompt: Prompt, options: tuple[str, ...], order: tuple[int, ...]) -> Variant:
    menu = prompt.menu
    assert menu is not None
    return Variant(prompt.arranged(order), menu.answers(options, order), order)


def _reworded(req: DecisionRequest, options: tuple[str, ...], shipped: tuple[Variant, ...]) -> tuple[Variant, ...]:
    """The request's variants with other option texts (printed too where the menu prints
    the options), in the decision's own orders, so only the wording differs."""
    prompt = req.prompt
    if prompt.menu is None or len(prompt.menu.entries) < 2:
        return (Variant(prompt, options),)
    if prompt.menu.style == "inline":
        prompt = prompt.with_entries(options)
    return tuple(_variant(prompt, options, v.order) for v in shipped)


# ------------------------------------------------------------------ scoring it
DecideFn = Callable[[Sequence[tuple[Any, DecisionRequest]], np.random.Generator], list[Decision]]


def decide_planned(
    decide: DecideFn, pairs: Sequence[tuple[Any, DecisionRequest]], rng: np.random.Generator
) -> list[Decision]:
    """Answer requests some of which carry a :class:`Presentation`: every variant of
    every request goes to ``decide`` in one batch; a request's distribution is the mean
    of its shipped variants' (its choice is drawn again from that mean where there are
    several), and its probes' distributions are logged in ``info``."""
    flat: list[tuple[Any, DecisionRequest]] = []
    spans: list[tuple[int, int, dict[str, tuple[int, int]]]] = []
    for front, req in pairs:
        p = req.presentation
        if p is None:
            spans.append((len(flat), len(flat) + 1, {}))
            flat.append((front, req))
            continue
        start = len(flat)
        # Only the first shipped variant writes a reply, and draws its choice only when it
        # is the only one (else the mean's choice is drawn below): one draw per request, as
        # without a presentation, so extra orders and probes move no draw of the run.
        for k, v in enumerate(p.shipped):
            flat.append((front, _as_request(req, v, keep_kind=k == 0, draw=k == 0 and len(p.shipped) == 1)))
        end = len(flat)
        probe_spans = {}
        for name, variants in p.probes.items():
            a = len(flat)
            flat.extend((front, _as_request(req, v, keep_kind=False, draw=False)) for v in variants)
            probe_spans[name] = (a, len(flat))
        spans.append((start, end, probe_spans))
    answers = decide(flat, rng)
    out = []
    for (front, req), (a, b, probe_spans) in zip(pairs, spans, strict=True):
        first = answers[a]
        p = req.presentation
        if p is None:
            out.append(first)
            continue
        probs = _mean([d.probs for d in answers[a:b]])
        dec = replace(first, probs=probs, info=dict(first.info))
        if b - a > 1 and req.kind == "choice":
            dec.choice = sample_choice(probs, rng, getattr(front, "greedy", False))
        info = _info(
            p, answers[a:b], probs, {n: _mean([d.probs for d in answers[x:y]]) for n, (x, y) in probe_spans.items()}
        )
        if info:
            dec.info["presentation"] = info
        out.append(dec)
    return out


def _info(
    p: Presentation, shipped: Sequence[Decision], probs: np.ndarray, probed: dict[str, np.ndarray]
) -> dict[str, Any]:
    """What the event row keeps: the printed order(s) and each one's distribution, the
    decision's measure, and the probes' measures (with the shipped one beside them)."""
    info: dict[str, Any] = {}
    if p.shipped[0].order:
        info["order"] = p.order
        if len(shipped) > 1:
            info["per_order"] = {
                ",".join(map(str, v.order)): _rounded(d.probs) for v, d in zip(p.shipped, shipped, strict=True)
            }
            if p.values is not None:  # how far one order alone would have moved the measure
                each = [_score(p, d.probs, d.probs) for d in shipped]
                info["order_range"] = float(max(each) - min(each))
        else:
            info["printed"] = list(p.shipped[0].order)
    if p.values is not None or probed:
        info["measure"] = p.measure
    if p.values is not None:
        info["value"] = _score(p, probs, probs)
    if probed:
        info["probes"] = {SHIPPED: _score(p, probs, probs), **{n: _score(p, probs, q) for n, q in probed.items()}}
    return info


def _as_request(req: DecisionRequest, v: Variant, *, keep_kind: bool, draw: bool) -> DecisionRequest:
    """A plain request for one variant: the first keeps its kind (a text request writes
    its reply, drawing its seed) and its activations are captured; the others are scored
    only, drawing nothing and capturing nothing."""
    if keep_kind:
        return replace(req, prompt=v.prompt, options=v.options, presentation=None, draw=draw or req.kind == "text")
    return replace(
        req,
        prompt=v.prompt,
        options=v.options,
        presentation=None,
        kind="choice",
        parse=None,
        score=True,
        draw=False,
        capture=False,
    )


def _mean(dists: Sequence[np.ndarray]) -> np.ndarray:
    m = np.mean(np.stack([np.asarray(d, dtype=np.float64) for d in dists]), axis=0)
    return m / m.sum()


def _rounded(p: np.ndarray) -> list[float]:
    return [float(x) for x in np.asarray(p, dtype=np.float64)]


def _score(p: Presentation, shipped: np.ndarray, probs: np.ndarray) -> float:
    """The decision's measure under one presentation: an expected value, or its total
    variation distance from the shipped distribution."""
    if p.values is not None:
        return float(np.dot(np.asarray(probs, dtype=np.float64), np.asarray(p.values, dtype=np.float64)))
    return float(0.5 * np.abs(np.asarray(probs) - np.asarray(shipped)).sum())
