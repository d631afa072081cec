"""The few reply shapes normsim reads from an OpenAI-compatible server, validated before use.

A reply that does not fit (an HTML error page, ``/tokenize`` without ``tokens``, a chat
answer without ``choices``, a top log-probability without ``logprob``, NaN or a positive
log-probability) is a :class:`BadReply`: the client counts it, logs it and retries it as
it does a 500, then ends the run with one line. Fields normsim does not read are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# A log-probability is finite and at most 0; servers round a certain token's to a hair above.
Logprob = Annotated[float, Field(le=1e-3, allow_inf_nan=False)]
TokenId = Annotated[int, Field(ge=0, strict=True)]


class BadReply(Exception):
    """A server's answer that normsim cannot use; the message says which field and why."""


class Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class Counts(Reply):
    prompt_tokens: Annotated[int, Field(ge=0)] | None = None
    completion_tokens: Annotated[int, Field(ge=0)] | None = None


class Tokenized(Reply):
    tokens: list[TokenId] = Field(min_length=1)  # normsim tokenises only non-empty texts


class Detokenized(Reply):
    prompt: str


class CompletionLogprobs(Reply):
    tokens: list[str] | None = None
    token_logprobs: list[Logprob | None] | None = None
    text_offset: list[int] | None = None
    top_logprobs: list[dict[str, Logprob] | None] | None = None


class CompletionChoice(Reply):
    index: Annotated[int, Field(ge=0)] = 0
    text: str = ""
    logprobs: CompletionLogprobs | None = None
    prompt_token_ids: list[TokenId] | None = None


class Completions(Reply):
    choices: list[CompletionChoice] = Field(min_length=1)
    usage: Counts | None = None


class TopLogprob(Reply):
    token: str
    logprob: Logprob


class TokenLogprob(Reply):
    token: str = ""
    logprob: Logprob | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChatLogprobs(Reply):
    content: list[TokenLogprob] | None = None


class Message(Reply):
    content: str | None = None


class ChatChoice(Reply):
    index: Annotated[int, Field(ge=0)] = 0
    message: Message = Message()
    logprobs: ChatLogprobs | None = None


class Chat(Reply):
    choices: list[ChatChoice] = Field(min_length=1)
    usage: Counts | None = None


def parse(shape: type[Reply], raw: Any) -> Reply:
    """``raw`` (the decoded JSON body) as ``shape``, or :class:`BadReply` naming the first problem."""
    if not isinstance(raw, dict):
        kind = "text" if isinstance(raw, str) else type(raw).__name__
        raise BadReply(f"expected a JSON object, got {kind} {_clip(raw)}")
    try:
        return shape.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise BadReply(f"{where}: {first['msg']}") from None


def usage_of(reply: Any) -> Counts | None:
    """The token counts a validated reply carries (cache replays count them too)."""
    return getattr(reply, "usage", None)


def accept(shape: type[Reply], raw: Any, check: Callable[[Any], None] | None) -> Any:
    reply = parse(shape, raw)
    if check is not None:
        check(reply)
    return reply


def _indexes_check(reply: Completions, n: int) -> None:
    """One choice per prompt sent, each index once: answers are matched to prompts by it."""
    if sorted(c.index for c in reply.choices) != list(range(n)):
        raise BadReply(f"choices: expected indexes 0..{n - 1}, got {[c.index for c in reply.choices][:10]}")


def next_tokens_check(n: int) -> Callable[[Completions], None]:
    def check(reply: Completions) -> None:
        _indexes_check(reply, n)
        for choice in reply.choices:
            next_token_values(choice)

    return check


def next_token_values(choice: Any) -> dict[int, float]:
    """token id -> log-probability of a choice's first generated token (vLLM names them
    ``token_id:<id>``); empty when the server sent none (it ignored ``logprob_token_ids``)."""
    top = (choice.logprobs.top_logprobs if choice.logprobs else None) or [{}]
    try:
        return {int(k.removeprefix("token_id:")): v for k, v in (top[0] or {}).items()}
    except ValueError:
        raise BadReply(f"top_logprobs: keys are not token ids: {list(top[0])[:5]}") from None


def echo_check(texts: Sequence[str]) -> Callable[[Completions], None]:
    def check(reply: Completions) -> None:
        _indexes_check(reply, len(texts))
        for choice in reply.choices:
            lp = choice.logprobs
            if lp is None or lp.tokens is None or lp.token_logprobs is None:
                raise BadReply("choices.logprobs: no echoed tokens and log-probabilities")
            if len(lp.tokens) != len(lp.token_logprobs):
                raise BadReply("choices.logprobs: tokens and token_logprobs differ in length")

    return check


def _clip(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text[:80] + ("..." if len(text) > 80 else "")
