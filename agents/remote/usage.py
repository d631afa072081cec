"""What a run asked of its servers (:class:`Usage`), and the errors that end a run on a server.

Kept apart from the client so the front (:mod:`agents.remote.policy`) and the in-process
vLLM engine count and raise the same way without importing the HTTP client.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

from agents.remote.replies import Counts
from sim.core.schema import ConfigError


class ServerError(ConfigError):
    """The server cannot be used (unreachable after retries, refused a request, no key).

    A :class:`ConfigError` so the CLI prints it as one ``error:`` line (exit code 2): like a
    wrong field, it is fixed outside the run, and the steps finished before it are kept.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BadReplyError(ServerError):
    """The server kept answering with replies normsim cannot use (``on_bad_reply`` decides)."""


@dataclass
class Usage:
    """What a run asked of its servers: requests sent, answers replayed from the cache,
    retries, and the tokens the server reported (replays count their recorded tokens)."""

    requests: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    bad_replies: int = 0  # answers that did not fit their shape (each retried)
    failed_decisions: int = 0  # decisions logged as failed (on_bad_reply: skip)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def record(self, tokens: Counts | None, *, cached: bool = False, retries: int = 0) -> None:
        with self._lock:
            self.retries += retries
            if cached:
                self.cached += 1
            else:
                self.requests += 1
            if tokens is not None:
                self.prompt_tokens += tokens.prompt_tokens or 0
                self.completion_tokens += tokens.completion_tokens or 0

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def add_retries(self, n: int) -> None:
        self.add("retries", n)

    def merge(self, other: Usage) -> None:
        with self._lock:
            for name in self.as_dict():
                setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}
