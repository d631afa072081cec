"""The remote policy front: DecisionRequests in, Decisions out, the model on a server.

Like the built-in engine's front (:class:`agents.llm.policy.LLMPolicy`) it stays with the
simulation and keeps what must not travel: the seeded ``rng`` (choices and generation
seeds are drawn from it in request order), the requests' ``parse`` callables and the
group's sampling settings. Groups naming the same server and model share a
``batch_key``, so one phase's requests of all of them go out together.

Each decision's ``info`` says how its distribution was obtained (``prob_source``:
exact, topk or sampled, see :mod:`agents.remote.options`) and its token counts.
A decision whose distribution cannot be computed (the server's replies stay malformed
after their retries, no log-probabilities, no letter among them) is never filled in:
the run ends with one line, or with ``on_bad_reply: skip`` the decision is logged as
failed (``prob_source: failed``, NaN probabilities, the request's fallback chosen) and
counted (``llm_failed_decisions`` in metrics.json).
Free-text requests (``kind="text"``) are generated with the group's temperature, a
seed from the rng, ``max_new_tokens`` and ``stop`` strings; their option distribution
comes from the same source as the choices'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from agents import presentation
from agents.interfaces import (
    Decision,
    DecisionRequest,
    one_hot,
    sample_choice,
    server_stops,
    softmax,
    stop_at,
    text_decision,
)
from agents.remote.client import Scored, Usage
from agents.remote.options import letter_prompt, sampled_distribution, topk_distribution
from agents.remote.replies import BadReply, Chat
from agents.remote.usage import BadReplyError, ServerError

log = logging.getLogger(__name__)


class Server(Protocol):
    """What a front needs from an engine (:class:`agents.remote.client.OpenAIServer`, or
    :class:`agents.remote.vllm_engine.VLLMServer`)."""

    key: tuple[str, ...]

    def mode(self, preference: str, usage: Usage) -> str: ...

    def map(self, fn: Any, items: Any) -> list[Any]: ...

    def render(self, system: str, user: str, answer_prefix: str, usage: Usage) -> str: ...

    def score(self, contexts: Sequence[str], options: Sequence[Sequence[str]], usage: Usage) -> list[Scored]: ...

    def complete(
        self, text: str, *, max_tokens: int, temperature: float, seed: int, stop: Sequence[str], usage: Usage
    ) -> tuple[str, dict[str, int]]: ...


class RemotePolicy:
    """A population group's view of a served model."""

    def __init__(self, server: Server, cfg: Any, *, usd_per_mtok: tuple[float, float] = (0.0, 0.0)) -> None:
        self.server = server
        self.temperature = float(cfg.temperature)
        self.greedy = bool(cfg.greedy)
        self.max_new_tokens = int(cfg.max_new_tokens)
        self.stop = tuple(cfg.stop)
        self.preference = getattr(cfg, "prob_source", "exact")
        self.top_logprobs = int(getattr(cfg, "top_logprobs", 20))
        self.samples = int(getattr(cfg, "samples", 8))
        self.on_bad_reply = getattr(cfg, "on_bad_reply", "fail")
        self.usd_per_mtok = usd_per_mtok
        self._usage = Usage()  # this front's share of the run; runs build fresh fronts

    @property
    def batch_key(self) -> tuple[Any, ...]:
        return ("remote", *self.server.key)

    def usage(self) -> dict[str, float]:
        """Requests, cache replays, retries, tokens and cost of this front so far (metrics.json)."""
        out: dict[str, float] = dict(self._usage.as_dict())
        prompt_price, completion_price = self.usd_per_mtok
        cost = (self._usage.prompt_tokens * prompt_price + self._usage.completion_tokens * completion_price) / 1e6
        out["cost_usd"] = round(cost, 6)
        return out

    def decide(self, requests: Sequence[DecisionRequest], rng: np.random.Generator) -> list[Decision]:
        return self.decide_mixed([(self, r) for r in requests], rng)

    def decide_mixed(self, pairs: Sequence[tuple[Any, DecisionRequest]], rng: np.random.Generator) -> list[Decision]:
        if not pairs:
            return []
        if any(req.presentation is not None for _, req in pairs):  # every variant in this one batch
            return presentation.decide_planned(self.decide_mixed, pairs, rng)
        usage = Usage()
        # Only requests whose choice depends on the option probabilities are scored; the
        # others (a single option, score=False) report their choice with probability 1.
        scored = [i for i, (_, req) in enumerate(pairs) if req.needs_scoring]
        try:
            mode = self.server.mode(self.preference, usage)
            # Seeds first, in request order, as the built-in front does: the rng's state after
            # a phase does not depend on the server's answers.
            seeds = [
                int(rng.integers(2**31 - 1)) if (req.kind == "text" or mode == "sampled") else 0 for _, req in pairs
            ]
            contexts: list[str | None] | None = None
            if mode == "exact":
                wanted = [i for i, (_, req) in enumerate(pairs) if req.kind == "text" or i in scored]
                contexts = self._render([pairs[i] for i in wanted], usage, into=len(pairs), at=wanted)
                try:
                    dists, infos = self._exact([pairs[i] for i in scored], [contexts[i] for i in scored], usage)
                except (BadReply, BadReplyError) as err:  # the whole batch was scored together
                    failed = [self._failed(err, pairs[i][1], usage) for i in scored]
                    dists, infos = [d for d, _ in failed], [i for _, i in failed]
            else:
                dists, infos = self._letters([pairs[i] for i in scored], mode, [seeds[i] for i in scored], usage)
            texts = self._texts(pairs, seeds, contexts, usage)
        finally:
            self._usage.merge(usage)
        answers = dict(zip(scored, zip(dists, infos, strict=True), strict=True))
        decisions = []
        for i, (front, req) in enumerate(pairs):
            probs, info = answers.get(i, (None, {"probs_from": "unscored"}))
            if i in texts:
                reply, tokens = texts[i]
                info["completion_tokens"] = int(tokens.get("completion_tokens") or 0)
                decisions.append(text_decision(req, reply, probs, info))
            elif info.get("prob_source") == "failed":  # nothing to sample from: the request's fallback
                decisions.append(Decision(probs=probs, choice=int(req.fallback), info=info))
            elif probs is not None:
                choice = sample_choice(probs, rng, front.greedy) if req.draw else int(np.argmax(probs))
                decisions.append(Decision(probs=probs, choice=choice, info=info))
            else:
                decisions.append(Decision(probs=one_hot(len(req.options), 0), choice=0, info=info))
        return decisions

    def _failed(self, err: Exception, req: DecisionRequest, usage: Usage) -> tuple[np.ndarray, dict[str, Any]]:
        """A decision whose distribution cannot be computed: the run ends with one line, or
        (``on_bad_reply: skip``) it is logged and counted as failed; never made up."""
        reason = " ".join(str(err).split())[:300]
        if self.on_bad_reply != "skip":
            if isinstance(err, ServerError):
                raise err
            raise ServerError(
                f"agent {req.agent_id}, phase {req.phase}: no option probabilities: {reason} "
                "(policy.on_bad_reply: skip logs such decisions as failed instead)"
            ) from None
        usage.add("failed_decisions")
        log.warning("agent %s, phase %s: decision failed (%s)", req.agent_id, req.phase, reason)
        return np.full(len(req.options), np.nan), {"prob_source": "failed", "failed": reason}

    # ------------------------------------------------------------------ exact
    def _render(
        self, pairs: Sequence[tuple[Any, DecisionRequest]], usage: Usage, *, into: int, at: Sequence[int]
    ) -> list[str | None]:
        """Each request's chat-templated prompt, answer prefix included, placed at ``at``
        in a list of ``into`` entries (None elsewhere); each distinct prompt rendered once."""
        prompts = [(r.prompt.system, r.prompt.user, r.prompt.answer_prefix) for _, r in pairs]
        unique = list(dict.fromkeys(prompts))
        render_many = getattr(self.server, "render_many", None)  # one call for all (the vLLM actor)
        if not unique:
            texts: list[str] = []
        elif render_many:
            texts = render_many(unique)
        else:
            texts = self.server.map(lambda p: self.server.render(*p, usage), unique)
        rendered = dict(zip(unique, texts, strict=True))
        out: list[str | None] = [None] * into
        for i, p in zip(at, prompts, strict=True):
            out[i] = rendered[p]
        return out

    def _exact(
        self, pairs: Sequence[tuple[Any, DecisionRequest]], contexts: Sequence[str | None], usage: Usage
    ) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        for _, req in pairs:
            if any(not o for o in req.options):
                raise ValueError("options must be non-empty strings")
        if not pairs:
            return [], []
        scored = self.server.score([str(c) for c in contexts], [tuple(r.options) for _, r in pairs], usage)
        dists, infos = [], []
        for (front, _), result in zip(pairs, scored, strict=True):
            dists.append(softmax(result.logprobs, front.temperature))
            infos.append(
                {
                    "prob_source": "exact",
                    "prompt_tokens": int(result.context_tokens),
                    "option_tokens": int(sum(result.option_tokens)),
                }
            )
        return dists, infos

    # ------------------------------------------------------------------ topk / sampled
    def _letters(
        self, pairs: Sequence[tuple[Any, DecisionRequest]], mode: str, seeds: Sequence[int], usage: Usage
    ) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
        chat = getattr(self.server, "chat", None)
        if chat is None:
            raise ValueError(f"prob_source {mode} needs a chat endpoint, which this engine lacks")

        def ask(k: int) -> tuple[np.ndarray, dict[str, Any]] | BadReplyError:
            front, req = pairs[k]
            messages = _messages(
                req.prompt.system, letter_prompt(req.prompt.user, req.prompt.answer_prefix, req.options)
            )
            if mode == "topk":
                params = {"max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": self.top_logprobs}
            else:
                temperature = 0.0 if front.greedy else front.temperature
                params = {"max_tokens": 2, "temperature": temperature, "n": self.samples, "seed": seeds[k]}
            found: list[tuple[np.ndarray, dict[str, Any]]] = []
            try:  # a reply without a distribution in it is retried like any malformed one
                chat(messages, usage, check=_reads(mode, front, req, found), **params)
            except BadReplyError as err:
                return err
            return found[-1]

        dists, infos = [], []
        for (_, req), answer in zip(pairs, self.server.map(ask, range(len(pairs))), strict=True):
            probs, info = self._failed(answer, req, usage) if isinstance(answer, BadReplyError) else answer
            dists.append(probs)
            infos.append(info)
        return dists, infos

    # ------------------------------------------------------------------ free text
    def _texts(
        self,
        pairs: Sequence[tuple[Any, DecisionRequest]],
        seeds: Sequence[int],
        contexts: Sequence[str | None] | None,
        usage: Usage,
    ) -> dict[int, tuple[str, dict[str, int]]]:
        at = [i for i, (_, req) in enumerate(pairs) if req.kind == "text"]

        def one(i: int) -> tuple[str, dict[str, int]]:
            front, req = pairs[i]
            temperature = 0.0 if front.greedy else front.temperature
            cap = min(req.max_new_tokens, front.max_new_tokens)
            # The request's own stop strings end the reply on the server where their
            # meaning survives there; all of them cut the reply here.
            stop = list(dict.fromkeys(front.stop + server_stops(req.stop)))
            if contexts is not None:  # the rendered prompt, answer prefix included, as the built-in engine sees it
                text, counts = self.server.complete(
                    str(contexts[i]), max_tokens=cap, temperature=temperature, seed=seeds[i], stop=stop, usage=usage
                )
                return _cut(text, req.stop), counts
            user = req.prompt.user
            if req.prompt.answer_prefix:
                user += f'\n\nStart your reply with "{req.prompt.answer_prefix}".'
            params: dict[str, Any] = {"max_tokens": cap, "temperature": temperature, "seed": seeds[i]}
            if stop:
                params["stop"] = stop
            reply = self.server.chat(_messages(req.prompt.system, user), usage, **params)  # type: ignore[attr-defined]
            text = reply.choices[0].message.content or ""
            prefix = req.prompt.answer_prefix.strip()
            if prefix and text.lstrip().startswith(prefix):  # the parser reads what follows the prefix
                text = text.lstrip()[len(prefix) :]
            return _cut(text, req.stop), (reply.usage.model_dump(exclude_none=True) if reply.usage else {})

        return dict(zip(at, self.server.map(one, at), strict=True)) if at else {}


def _reads(
    mode: str, front: Any, req: DecisionRequest, found: list[tuple[np.ndarray, dict[str, Any]]]
) -> Callable[[Chat], None]:
    """A check of a letters reply: its distribution goes into ``found``, or :class:`BadReply`."""

    def check(reply: Chat) -> None:
        tokens = reply.usage.prompt_tokens if reply.usage else None
        info: dict[str, Any] = {"prob_source": mode, "prompt_tokens": int(tokens or 0)}
        if mode == "topk":
            logprobs = reply.choices[0].logprobs
            content = logprobs.content if logprobs is not None else None
            if not content:
                raise BadReply("choices[0].logprobs.content: no log-probabilities (asked with logprobs: true)")
            top = [(t.token, t.logprob) for t in content[0].top_logprobs]
            probs, outside = topk_distribution(top, len(req.options), front.temperature)
            if probs is None:
                raise BadReply(f"no option letter among the {len(top)} top tokens {[t for t, _ in top][:8]}")
            info["topk_mass_outside"] = round(outside, 6)
        else:
            replies = [c.message.content or "" for c in reply.choices]
            probs, parsed = sampled_distribution(replies, len(req.options))
            if probs is None:
                raise BadReply(f"none of the {len(replies)} sampled replies names an option: {replies[:4]}")
            info.update(samples=len(replies), samples_parsed=parsed)
        found.append((probs, info))

    return check


def _cut(text: str, stop: Sequence[str]) -> str:
    end = stop_at(text, stop)
    return text if end is None else text[:end]


def _messages(system: str, user: str) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
