"""Option distributions from what a server returns: pure functions, no I/O.

Three sources, best first (``prob_source`` in each decision's info):

* ``exact``: the server scores given tokens: vLLM's completions with
  ``logprob_token_ids`` (the log-probabilities of named next tokens, after a prompt
  whose prefix the server has cached), else ``echo`` + ``logprobs`` (every prompt
  token's log-probability, recomputed for each option: slower). Each option's score is the whole-sequence
  log-probability of its tokens after the context, as the built-in engine computes it
  (:mod:`agents.llm.scoring`): context and option are tokenised jointly, and the scored
  tail starts where every option's tokens part from the context's own.
* ``topk``: the server returns the top log-probabilities of the first generated token
  only (chat APIs). Options are listed with letters and the model answers one letter;
  the letters found among the top-k tokens are the distribution, and the probability
  mass the top-k leaves to other tokens is reported (``topk_mass_outside``).
* ``sampled``: no log-probabilities at all; ``k`` answers are drawn and counted.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class Echo:
    """A scored prompt: its tokens (ids or strings) and each token's log-probability
    given the tokens before it (None for the first)."""

    tokens: tuple[int | str, ...]
    logprobs: tuple[float | None, ...]


def common_prefix(a: Sequence[object], b: Sequence[object]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def exact_scores(context: Echo, fulls: Sequence[Echo]) -> tuple[np.ndarray, tuple[int, ...]]:
    """log P(option | context) per option, and the number of tokens scored per option.

    ``context`` is the echo of the context alone, ``fulls`` of context + each option.
    """
    boundary = min(common_prefix(context.tokens, full.tokens) for full in fulls)
    if boundary == 0:
        raise ValueError("the prompt scores to no tokens of its own; cannot score options after it")
    scores, lengths = [], []
    for full in fulls:
        tail = full.logprobs[boundary:]
        if not tail:  # scoring nothing would give it log P = 0: a made-up 1
            raise ValueError("an option tokenises to no tokens after the prompt; cannot score it")
        if any(lp is None for lp in tail):
            raise ValueError("the server returned no log-probability for an option token")
        scores.append(math.fsum(tail))  # type: ignore[arg-type]
        lengths.append(len(tail))
    return np.array(scores, dtype=np.float64), tuple(lengths)


def split_tails(context: Sequence[int], fulls: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """The tokens every option is scored after, and each option's own tokens (see
    :func:`exact_scores` for why the boundary may fall before the context's end)."""
    boundary = min(common_prefix(context, full) for full in fulls)
    if boundary == 0:
        raise ValueError("the prompt tokenises to no tokens of its own; cannot score options after it")
    tails = [list(full[boundary:]) for full in fulls]
    if any(not tail for tail in tails):  # scoring nothing would give it log P = 0: a made-up 1
        raise ValueError("an option tokenises to no tokens after the prompt; cannot score it")
    return list(context[:boundary]), tails


def tail_queries(prefix: Sequence[int], tails: Sequence[Sequence[int]]) -> dict[tuple[int, ...], set[int]]:
    """Next-token questions that score every tail: prompt (prefix + the tail's first j
    tokens) -> the token ids whose log-probability is needed there. Options sharing
    leading tokens share questions (a token trie)."""
    queries: dict[tuple[int, ...], set[int]] = {}
    for tail in tails:
        for j, token in enumerate(tail):
            queries.setdefault((*prefix, *tail[:j]), set()).add(int(token))
    return queries


def tail_scores(
    prefix: Sequence[int], tails: Sequence[Sequence[int]], answers: dict[tuple[int, ...], dict[int, float]]
) -> np.ndarray:
    """Whole-sequence log-probability of each tail from the answered questions."""
    out = []
    for tail in tails:
        out.append(math.fsum(answers[(*prefix, *tail[:j])][int(t)] for j, t in enumerate(tail)))
    return np.array(out, dtype=np.float64)


def echo_from_completion(choice: dict, prompt: str) -> Echo:
    """An :class:`Echo` from one choice of an OpenAI completions response made with
    ``echo`` and ``logprobs``. Prompt tokens are those starting inside the prompt text
    (``text_offset``); with vLLM's ``return_token_ids`` their ids are used, else their
    strings (equal strings, equal tokens, for the joint tokenisations compared here)."""
    lp = choice.get("logprobs") or {}
    tokens, values, offsets = lp.get("tokens"), lp.get("token_logprobs"), lp.get("text_offset")
    if tokens is None or values is None:
        raise ValueError("the completions response has no echoed log-probabilities")
    ids = choice.get("prompt_token_ids")
    n = len(ids) if ids else sum(1 for off in (offsets or []) if off < len(prompt)) or len(tokens)
    keys: Sequence[int | str] = ids if ids else tokens[:n]
    return Echo(tuple(keys), tuple(values[:n]))


def echo_from_prompt_logprobs(token_ids: Sequence[int], prompt_logprobs: Sequence[dict | None]) -> Echo:
    """An :class:`Echo` from vLLM's ``prompt_logprobs`` (one ``{token_id: logprob}`` dict per
    prompt token, None first). Values may be floats or objects with ``.logprob``, or dicts
    with a ``logprob`` key (the HTTP form)."""
    values: list[float | None] = []
    for tok, entry in zip(token_ids, prompt_logprobs, strict=True):
        if entry is None:
            values.append(None)
            continue
        value = entry.get(tok, entry.get(str(tok)))
        if value is None:
            raise ValueError(f"prompt_logprobs lack the prompt's own token {tok}")
        if isinstance(value, dict):
            value = value["logprob"]
        values.append(float(getattr(value, "logprob", value)))
    return Echo(tuple(int(t) for t in token_ids), tuple(values))


# ------------------------------------------------------------------ letters (topk, sampled)
def letter_prompt(user: str, answer_prefix: str, options: Sequence[str]) -> str:
    """The user turn for servers that cannot score continuations: the options listed with
    letters, the answer a single letter."""
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options can be labelled by letters, got {len(options)}")
    listed = "\n".join(f"{LETTERS[i]}. {answer_prefix}{opt}".rstrip() for i, opt in enumerate(options))
    return f"{user}\n\nOptions:\n{listed}\n\nReply with the letter of one option only."


_LETTER = re.compile(r"^[\s\"'(\[*]*([A-Za-z])(?:[\s.):\]*]|$)")


def parse_letter(text: str, n_options: int) -> int | None:
    """Option index of a reply starting with a letter label ("B", " b.", "(C)"), else None."""
    m = _LETTER.match(text or "")
    if not m:
        return None
    index = LETTERS.index(m.group(1).upper())
    return index if index < n_options else None


def topk_distribution(
    top: Sequence[tuple[str, float]], n_options: int, temperature: float
) -> tuple[np.ndarray | None, float]:
    """Option distribution from a first token's top log-probabilities, and the mass outside
    the top-k (1 - the top-k tokens' total probability).

    Tokens that read as the same letter (" B", "B") add up. Options whose letter is not among
    the top-k get probability 0; when no letter is there at all there is no distribution
    (None): it is never made up.
    """
    mass = np.zeros(n_options)
    seen: set[str] = set()
    total = 0.0
    for token, logprob in top:
        if token in seen:  # some servers list the sampled token again beside the top-k
            continue
        seen.add(token)
        p = math.exp(logprob)
        total += p
        index = parse_letter(token, n_options)
        if index is not None:
            mass[index] += p
    outside = max(0.0, 1.0 - total)
    if not mass.sum() > 0:
        return None, outside
    if temperature <= 0:
        out = np.zeros(n_options)
        out[int(np.argmax(mass))] = 1.0
        return out, outside
    # Scale as the built-in engine does: softmax(log p / T) over the options found.
    with np.errstate(divide="ignore"):
        logp = np.log(mass) / temperature
    logp -= logp[np.isfinite(logp)].max()
    weights = np.where(np.isfinite(logp), np.exp(logp), 0.0)
    return weights / weights.sum(), outside


def sampled_distribution(replies: Sequence[str], n_options: int) -> tuple[np.ndarray | None, int]:
    """Empirical distribution of k replies' letters (None when none parsed), and how many parsed."""
    counts = np.zeros(n_options)
    for reply in replies:
        index = parse_letter(reply, n_options)
        if index is not None:
            counts[index] += 1
    parsed = int(counts.sum())
    if parsed == 0:
        return None, 0
    return counts / parsed, parsed
