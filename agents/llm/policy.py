"""The LLM policy front: DecisionRequests in, Decisions out, one backend call per kind.

The front is thin and stays with the simulation: it turns requests into
:class:`ScoreItem`/:class:`GenerateItem` batches for its :class:`Backend` (which may live
in another process), and keeps everything that must not travel: the seeded ``rng``
(choices and generation seeds are drawn from it, in request order), the requests'
``parse`` callables, and the group's sampling settings.

Every decision, free text included, carries the model's exact distribution over the
request's options (softmax of the options' log-probabilities at the group's
temperature), so every event row has a distribution and an entropy; a request whose
choice does not depend on them (a single option, ``score=False``) is not scored and
reports its choice with probability 1 (``info["probs_from"] == "unscored"``).
A text request's reply is sampled in the same backend call, continuing from the
prompt the scoring pass prefilled, and ends at the request's stop strings. For ``kind="text"``
the choice comes from parsing the generated reply; a reply that does not parse takes
the request's ``fallback`` and is flagged ``parse_failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from agents import presentation
from agents.interfaces import Decision, DecisionRequest, one_hot, sample_choice, softmax, text_decision
from agents.llm.types import GenerateItem, Reply, ScoreItem, ScoreResult
from steering.resolve import ModelInfo


class BatchBackend(Protocol):
    """What a front needs: a local :class:`Backend` or a proxy to one in another process."""

    key: tuple[str, ...]

    def info(self) -> ModelInfo: ...

    def describe(self) -> dict[str, Any]: ...

    def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]: ...

    def generate(self, items: Sequence[GenerateItem]) -> list[str]: ...


class LLMPolicy:
    """A population group's view of a shared model: its temperature, greedy flag,
    length cap and capture layers. Fronts of the same backend share a ``batch_key``, so
    ``SocietyModel.decide`` sends all their requests of a phase to :meth:`decide_mixed`
    as one batch."""

    def __init__(
        self,
        backend: BatchBackend,
        *,
        temperature: float = 1.0,
        greedy: bool = False,
        max_new_tokens: int = 24,
        capture_layers: Sequence[int] = (),
        steer: Any = None,
    ) -> None:
        self.backend = backend
        self.steer = steer  # steering.config.SteerSpec of this group, travelling with each of its items
        self.temperature = temperature
        self.greedy = greedy
        self.max_new_tokens = max_new_tokens
        self.capture_layers = tuple(capture_layers)
        self._captures: list[dict[str, Any]] = []

    @classmethod
    def from_config(cls, backend: BatchBackend, cfg: Any, steer: Any = None) -> LLMPolicy:
        """The front of a population group's ``policy: {type: llm, ...}`` block, local or on a host."""
        return cls(
            backend,
            temperature=cfg.temperature,
            greedy=cfg.greedy,
            max_new_tokens=cfg.max_new_tokens,
            capture_layers=cfg.capture_layers,
            steer=steer,
        )

    def describe(self) -> dict[str, Any]:
        """Which attention path the model runs and why (``attention_path``, ``fallback_reason``,
        the layers' kinds): for the run's records, local or on a host."""
        return self.backend.describe()

    @property
    def batch_key(self) -> tuple[Any, ...]:
        return ("llm", *self.backend.key)

    def decide(self, requests: Sequence[DecisionRequest], rng: np.random.Generator) -> list[Decision]:
        return self.decide_mixed([(self, r) for r in requests], rng)

    def decide_mixed(self, pairs: Sequence[tuple[Any, DecisionRequest]], rng: np.random.Generator) -> list[Decision]:
        """Answer requests of several fronts sharing this backend in one batch per kind."""
        if not pairs:
            return []
        if any(req.presentation is not None for _, req in pairs):  # every variant in this one batch
            return presentation.decide_planned(self.decide_mixed, pairs, rng)
        # One backend call: every request's options scored where its choice depends on
        # them, and every text request's reply sampled from the same prefilled prompt.
        # Seeds are drawn in request order, before the call, as they always were.
        items: list[ScoreItem | None] = []
        for front, req in pairs:
            reply = None
            if req.kind == "text":
                temperature = 0.0 if front.greedy else front.temperature
                cap = min(req.max_new_tokens, front.max_new_tokens)
                reply = Reply(cap, temperature, int(rng.integers(2**63 - 1)), tuple(req.stop))
            options = tuple(req.options) if req.needs_scoring else ()
            if not options and reply is None:
                items.append(None)  # a single option: nothing to run
                continue
            p = req.prompt
            items.append(
                ScoreItem(
                    p.system,
                    p.user,
                    p.answer_prefix,
                    options,
                    front.capture_layers if req.capture else (),
                    front.steer,
                    reply,
                )
            )
        asked = [item for item in items if item is not None]
        answers = iter(self.backend.score(asked) if asked else [])
        decisions = []
        for (front, req), item in zip(pairs, items, strict=True):
            result = next(answers) if item is not None else None
            if req.kind == "text":
                assert result is not None and result.text is not None
                probs = softmax(result.logprobs, front.temperature) if item.options else None  # type: ignore[union-attr]
                decisions.append(text_decision(req, result.text, probs, {"probs_from": "option_scores"}))
            elif item is not None and item.options:
                probs = softmax(result.logprobs, front.temperature)  # type: ignore[union-attr]
                choice = sample_choice(probs, rng, front.greedy) if req.draw else int(np.argmax(probs))
                decisions.append(Decision(probs=probs, choice=choice))
            else:
                decisions.append(
                    Decision(probs=one_hot(len(req.options), 0), choice=0, info={"probs_from": "unscored"})
                )
            if front.steer is not None:  # the event log records each decision's vector and coefficient
                decisions[-1].info.update(steer_vector=front.steer.label, steer_coef=front.steer.coefficient)
            for layer, vector in (result.activations if result is not None else {}).items():
                front._captures.append(
                    {"phase": req.phase, "agent_id": int(req.agent_id), "layer": int(layer), "vector": vector}
                )
        return decisions

    def drain_captures(self) -> list[dict[str, Any]]:
        """Activations captured since the last call: dicts of phase, agent_id, layer, vector."""
        rows, self._captures = self._captures, []
        return rows
