"""An OpenAI-compatible HTTP server (vLLM, SGLang, llama.cpp, Ollama, hosted APIs) as the
primitives a remote policy needs, with concurrency, retries, a disk cache and accounting.

Every request goes through :meth:`OpenAIServer.call`: answered from the request cache
when the same request (endpoint + body, seed included) was answered before, else sent
with the ``openai`` client; 429, 408, 5xx and lost connections are retried with
exponential backoff (``Retry-After`` honoured), up to ``max_retries`` times; then, or on
any other refusal, one :class:`ServerError` line. Every answer is validated into its
typed shape (:mod:`agents.remote.replies`) before use: one that does not fit is counted
(``bad_replies``), logged and retried like a 500, then a :class:`BadReplyError` line.

The primitives: :meth:`render` (the chat template applied by the server: vLLM's
``/tokenize`` + ``/detokenize``), :meth:`score` (exact option log-probabilities: the
texts tokenised by the server, then next-token questions with ``logprob_token_ids``, or
``echo`` + ``logprobs`` where that is missing), :meth:`complete` (seeded text after a
rendered prompt, with stop strings) and :meth:`chat` (chat completions, for servers
that only offer that).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from agents.config import LLMPolicyConfig
from agents.remote.cache import RequestCache, request_key
from agents.remote.options import (
    Echo,
    echo_from_completion,
    exact_scores,
    split_tails,
    tail_queries,
    tail_scores,
)
from agents.remote.replies import (
    BadReply,
    Chat,
    Completions,
    Detokenized,
    Reply,
    Tokenized,
    accept,
    echo_check,
    next_token_values,
    next_tokens_check,
    usage_of,
)
from agents.remote.usage import BadReplyError, ServerError, Usage

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

UNSUPPORTED = (400, 404, 405, 422, 501)  # answers meaning "no such endpoint or parameter here"
ECHO_CHUNK = 32  # texts per completions request when scoring: several requests run at once


@dataclass(frozen=True)
class Scored:
    """One item's exact option scores: log P(option | context), tokens per option, and the
    number of context tokens the options were scored after."""

    logprobs: np.ndarray
    option_tokens: tuple[int, ...]
    context_tokens: int


def api_key(cfg: LLMPolicyConfig) -> str:
    """The key from the environment variable the scenario names; servers without
    authentication (a local vLLM) get a placeholder, as the openai client needs one."""
    if cfg.api_key_env is None:
        return "EMPTY"
    value = os.environ.get(cfg.api_key_env, "")
    if not value:
        raise ServerError(
            f"policy.api_key_env: the environment variable {cfg.api_key_env} is not set (it holds the API key)"
        )
    return value


class OpenAIServer:
    """One server and model, shared by every group and simulation of the process that uses it."""

    def __init__(self, cfg: LLMPolicyConfig) -> None:
        import openai  # deferred: only runs with engine: openai pay for the import

        assert cfg.base_url is not None  # the config requires it for engine openai
        self.base_url = cfg.base_url.rstrip("/")
        self.root = self.base_url.removesuffix("/v1")  # vLLM serves /tokenize beside /v1
        self.model = cfg.model
        self.max_retries = cfg.max_retries
        self.key = ("openai", self.base_url, cfg.model)
        self.cache = RequestCache(cfg.cache) if cfg.cache else None
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key(cfg), max_retries=0, timeout=cfg.timeout)
        self._retryable = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        self._status_error = openai.APIStatusError
        self._pool = ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="normsim-openai")
        self._modes: dict[str, str] = {}

    # ------------------------------------------------------------------ transport
    def call(
        self,
        endpoint: str,
        body: dict[str, Any],
        usage: Usage,
        shape: type[Reply],
        check: Callable[[Any], None] | None = None,
    ) -> Any:
        """POST ``body`` to ``endpoint`` (under /v1, or the server root when it starts with
        ``root:``); the cache answers first. The answer comes back validated as ``shape``
        and passed by ``check`` (which raises :class:`BadReply`), else it is retried."""
        key = request_key(endpoint, body)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                try:
                    reply = accept(shape, hit, check)
                except BadReply:  # cached before replies were checked: asked again
                    pass
                else:
                    usage.record(usage_of(reply), cached=True)
                    return reply
        url = self.root + endpoint.removeprefix("root:") if endpoint.startswith("root:") else endpoint
        retries = 0
        while True:
            try:
                raw = self._client.post(url, cast_to=object, body=body)
                reply = accept(shape, raw, check)
                break
            except (BadReply, ValueError) as err:  # ValueError: a body that is not JSON at all
                usage.add("bad_replies")
                reason = f"malformed reply ({' '.join(str(err).split())[:200]})"
                if retries >= self.max_retries:
                    usage.add_retries(retries)
                    where = f"server {self.base_url} (policy.base_url)"
                    raise BadReplyError(f"{where} sent a {reason} for {endpoint} after {retries} retries") from None
                retries = self._wait(url, reason, retries, None)
            except self._retryable as err:
                if retries >= self.max_retries:
                    usage.add_retries(retries)
                    raise ServerError(
                        self._describe(err, endpoint, retries), getattr(err, "status_code", None)
                    ) from None
                retries = self._wait(url, _reason(err), retries, err)
            except self._status_error as err:
                if err.status_code != 408 or retries >= self.max_retries:  # 408: the server timed out, retried
                    usage.add_retries(retries)
                    raise ServerError(self._describe(err, endpoint, retries), err.status_code) from None
                retries = self._wait(url, _reason(err), retries, err)
        usage.record(usage_of(reply), retries=retries)
        if self.cache is not None:
            self.cache.put(key, raw)
        return reply

    def _wait(self, url: str, reason: str, retries: int, err: Exception | None) -> int:
        delay = _backoff(retries, err)
        full = url if url.startswith("http") else self.base_url + url  # the address really asked
        log.warning("%s: %s; retry %d/%d in %.1fs", full, reason, retries + 1, self.max_retries, delay)
        time.sleep(delay)
        return retries + 1

    def _describe(self, err: Exception, endpoint: str, retries: int) -> str:
        where = f"server {self.base_url} (policy.base_url)"
        status = getattr(err, "status_code", None)
        if status is None:
            return f"{where} is unreachable after {retries} retries: {_reason(err)}; is it running?"
        if status in (401, 403):
            return f"{where} refused the API key ({status}); check the variable named by policy.api_key_env"
        if status == 404 and endpoint.startswith("/"):
            return f"{where} answered 404 for {endpoint}: model '{self.model}' (policy.model) or the endpoint is unknown there"
        return f"{where} answered {status} for {endpoint} after {retries} retries: {_reason(err)}"

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``fn`` over ``items`` with at most ``concurrency`` requests in flight, in order."""
        return list(self._pool.map(fn, items))

    # ------------------------------------------------------------------ primitives
    def render(self, system: str, user: str, answer_prefix: str, usage: Usage) -> str:
        """The chat-templated prompt text, as the server's tokenizer renders it, + answer prefix."""
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
        body = {"model": self.model, "messages": messages, "add_generation_prompt": True}
        ids = self.call("root:/tokenize", body, usage, Tokenized).tokens
        text = self.call("root:/detokenize", {"model": self.model, "tokens": ids}, usage, Detokenized).prompt
        return text + answer_prefix

    def tokenize(self, text: str, usage: Usage) -> list[int]:
        body = {"model": self.model, "prompt": text, "add_special_tokens": False}
        return list(self.call("root:/tokenize", body, usage, Tokenized).tokens)

    def score(self, contexts: Sequence[str], options: Sequence[Sequence[str]], usage: Usage) -> list[Scored]:
        """Exact log P(option | context) of every option of every item, by the scoring method
        the probe found (next-token questions, else echo)."""
        if self._scoring(usage) == "echo":
            return self._score_echo(contexts, options, usage)
        texts = list(
            dict.fromkeys(
                t for ctx, opts in zip(contexts, options, strict=True) for t in (ctx, *(ctx + o for o in opts))
            )
        )
        ids = dict(zip(texts, self.map(lambda t: self.tokenize(t, usage), texts), strict=True))
        try:
            plans = [
                split_tails(ids[ctx], [ids[ctx + o] for o in opts]) for ctx, opts in zip(contexts, options, strict=True)
            ]
        except ValueError as err:  # the server's tokens leave an option nothing to score
            raise BadReply(str(err)) from None
        questions: dict[tuple[int, ...], set[int]] = {}
        for prefix, tails in plans:
            for prompt, targets in tail_queries(prefix, tails).items():
                questions.setdefault(prompt, set()).update(targets)
        # Contexts first: once the server has computed (and cached) each context, the deeper
        # questions (context + an option's first tokens) reuse it; sent together, they would
        # all compute the whole context again, as none of it is cached yet.
        roots = {tuple(prefix) for prefix, _ in plans}
        answers = self.next_token_logprobs({q: t for q, t in questions.items() if q in roots}, usage)
        answers.update(self.next_token_logprobs({q: t for q, t in questions.items() if q not in roots}, usage))
        return [
            Scored(tail_scores(prefix, tails, answers), tuple(len(t) for t in tails), len(prefix))
            for prefix, tails in plans
        ]

    def next_token_logprobs(
        self, questions: dict[tuple[int, ...], set[int]], usage: Usage
    ) -> dict[tuple[int, ...], dict[int, float]]:
        """log P(token | prompt) for each prompt's tokens: one greedy token generated per
        prompt, with vLLM's ``logprob_token_ids``; the prompts share their prefix, which the
        server computes once (prefix caching)."""
        if not questions:
            return {}
        prompts = sorted(questions)
        chunks = [prompts[i : i + ECHO_CHUNK] for i in range(0, len(prompts), ECHO_CHUNK)]

        def one(chunk: list[tuple[int, ...]]) -> list[dict[int, float]]:
            targets = sorted(set().union(*(questions[p] for p in chunk)))
            body = {
                "model": self.model,
                "prompt": [list(p) for p in chunk],
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": 0,
                "logprob_token_ids": targets,
                "return_tokens_as_token_ids": True,
            }
            reply = self.call("/completions", body, usage, Completions, next_tokens_check(len(chunk)))
            out = []
            for choice in sorted(reply.choices, key=lambda c: c.index):
                values = next_token_values(choice)
                if not set(targets) <= values.keys():
                    raise ServerError(
                        f"server {self.base_url} ignored logprob_token_ids; set policy.prob_source: auto", 400
                    )
                out.append(values)
            return out

        answers = [a for part in self.map(one, chunks) for a in part]
        return dict(zip(prompts, answers, strict=True))

    def _score_echo(self, contexts: Sequence[str], options: Sequence[Sequence[str]], usage: Usage) -> list[Scored]:
        texts = list(
            dict.fromkeys(
                t for ctx, opts in zip(contexts, options, strict=True) for t in (ctx, *(ctx + o for o in opts))
            )
        )
        echoes = dict(zip(texts, self.echo(texts, usage), strict=True))
        out = []
        for ctx, opts in zip(contexts, options, strict=True):
            try:
                logprobs, lengths = exact_scores(echoes[ctx], [echoes[ctx + o] for o in opts])
            except ValueError as err:  # the echoes do not cover the options: nothing to score
                raise BadReply(str(err)) from None
            out.append(Scored(logprobs, lengths, len(echoes[ctx].tokens) - 1))
        return out

    def echo(self, texts: Sequence[str], usage: Usage) -> list[Echo]:
        """Each text's tokens and their log-probabilities, nothing generated."""
        chunks = [list(texts[i : i + ECHO_CHUNK]) for i in range(0, len(texts), ECHO_CHUNK)]

        def one(chunk: list[str]) -> list[Echo]:
            body = {
                "model": self.model,
                "prompt": chunk,
                "echo": True,
                "logprobs": 0,
                "max_tokens": 0,
                "temperature": 0.0,
                "add_special_tokens": False,  # the rendered template holds its special tokens
                "return_token_ids": True,
            }
            reply = self.call("/completions", body, usage, Completions, echo_check(chunk))
            choices = sorted(reply.choices, key=lambda c: c.index)
            return [echo_from_completion(c.model_dump(), t) for c, t in zip(choices, chunk, strict=True)]

        return [e for part in self.map(one, chunks) for e in part]

    def complete(
        self, text: str, *, max_tokens: int, temperature: float, seed: int, stop: Sequence[str], usage: Usage
    ) -> tuple[str, dict[str, int]]:
        body = {
            "model": self.model,
            "prompt": text,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
            "add_special_tokens": False,
        }
        if stop:
            body["stop"] = list(stop)
        reply = self.call("/completions", body, usage, Completions)
        return reply.choices[0].text, (reply.usage.model_dump(exclude_none=True) if reply.usage else {})

    def chat(
        self, messages: list[dict[str, str]], usage: Usage, check: Callable[[Any], None] | None = None, **params: Any
    ) -> Chat:
        return self.call("/chat/completions", {"model": self.model, "messages": messages, **params}, usage, Chat, check)

    # ------------------------------------------------------------------ capabilities
    def mode(self, preference: str, usage: Usage) -> str:
        """The prob_source this server gives: ``preference`` unless it is auto, then the best
        one the server answers (probed once; the probe's answers are cached like any other)."""
        if preference != "auto":
            return preference
        if preference not in self._modes:
            self._modes[preference] = self._probe(usage)
        return self._modes[preference]

    def _scoring(self, usage: Usage) -> str:
        """How exact scores are obtained: "tokens" (next-token questions) or "echo"."""
        if "scoring" not in self._modes:
            self._modes["scoring"] = self._probe_scoring(usage)
        return self._modes["scoring"]

    def _probe_scoring(self, usage: Usage) -> str:
        def tokens() -> None:
            ids = self.tokenize(self.render("", "Hi", "", usage), usage)
            self.next_token_logprobs({tuple(ids): {ids[-1]}}, usage)

        if self._supports("tokens", tokens):
            return "tokens"
        if self._supports("echo", lambda: self.echo([self.render("", "Hi", "", usage)], usage)):
            return "echo"
        return "none"

    def _supports(self, method: str, attempt: Callable[[], None]) -> bool:
        """Whether the server answers ``attempt``; a refusal is remembered in the cache, so an
        offline replay of a server without that method does not ask again."""
        key = request_key("unsupported", {"model": self.model, "method": method})
        if self.cache is not None and self.cache.get(key) is not None:
            return False
        try:
            attempt()
            return True
        except ServerError as err:
            if err.status not in UNSUPPORTED:
                raise  # unreachable or failing: say so, do not fall back
            if self.cache is not None:
                self.cache.put(key, {"status": err.status})
            return False

    def _probe(self, usage: Usage) -> str:
        if self._scoring(usage) != "none":
            return "exact"
        msg = [{"role": "user", "content": "Reply A."}]
        reply = self.chat(msg, usage, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=2)
        logprobs = reply.choices[0].logprobs
        return "topk" if logprobs is not None and logprobs.content else "sampled"


def _backoff(attempt: int, err: Exception | None) -> float:
    response = getattr(err, "response", None)
    after = response.headers.get("retry-after") if response is not None else None
    try:
        if after is not None:
            return min(60.0, float(after))
    except ValueError:
        pass
    delay = min(8.0, 0.5 * 2**attempt)
    return delay + random.uniform(0.0, 0.1 * delay)  # jitter: concurrent runs do not retry in lockstep


def _reason(err: Exception) -> str:
    cause = err.__cause__ or err.__context__
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"{text} ({type(cause).__name__})" if cause is not None and str(err) == "Connection error." else text
