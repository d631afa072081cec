"""What a model reads: one prompt (system text, user text, answer prefix) as the model's turns.

Three formats, chosen from the tokenizer once (:func:`turn_format`):

* ``chat_template``: the tokenizer has a chat template (instruct models: SmolLM2). The
  system text is the system turn; a template that refuses a system role gets it folded
  into the user turn ("<system>\\n\\n<user>"), as Gemma's instruct template does itself.
* ``gemma_turns``: no template, but the vocabulary has Gemma's turn markers
  ``<start_of_turn>`` and ``<end_of_turn>`` as single special tokens (Gemma 3 base: it was
  pretrained with them in the vocabulary). The prompt is exactly what Gemma's instruct
  template writes for a system + user message::

      <bos><start_of_turn>user
      {system}

      {user}<end_of_turn>
      <start_of_turn>model
      {answer_prefix}

* ``plain``: neither (other base models)::

      [<bos>]{system}

      {user}

      {answer_prefix}

  where ``<bos>`` is written only if the tokenizer adds a BOS token to text itself (the
  engine tokenises rendered prompts without added special tokens, so the format carries
  the BOS the model was trained with).

In every format the system text, shared by all agents of a phase, comes first (after
fixed markers only), so the engine's prefix cache computes it once for all of them. The
built-in engine (:class:`agents.llm.engine.Engine`) and vLLM's actor
(:mod:`agents.remote.vllm_engine`) both render through :func:`turn_format`; an OpenAI
server renders with its own chat template (docs/models.md).

No torch here: the vLLM actor imports this module beside vLLM's own transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["chat_template", "gemma_turns", "plain"]
GEMMA_MARKERS = ("<start_of_turn>", "<end_of_turn>")


@dataclass(frozen=True)
class TurnFormat:
    kind: Kind
    bos: str = ""  # text the prompt starts with (the BOS token) in the template-less formats

    def render(self, tokenizer: Any, system: str, user: str, answer_prefix: str = "") -> str:
        """The prompt text the model reads, ending with the answer prefix."""
        if self.kind == "chat_template":
            return _chat(tokenizer, system, user) + answer_prefix
        body = f"{system}\n\n{user}" if system else user
        if self.kind == "gemma_turns":
            start, end = GEMMA_MARKERS
            return f"{self.bos}{start}user\n{body}{end}\n{start}model\n{answer_prefix}"
        return f"{self.bos}{body}\n\n{answer_prefix}"


def turn_format(tokenizer: Any) -> TurnFormat:
    """The format this tokenizer's model reads (see the module docstring)."""
    if getattr(tokenizer, "chat_template", None):
        return TurnFormat("chat_template")
    bos = getattr(tokenizer, "bos_token", None) or ""
    if all(_is_special_token(tokenizer, m) for m in GEMMA_MARKERS):
        return TurnFormat("gemma_turns", bos)
    return TurnFormat("plain", bos if bos and _adds_bos(tokenizer) else "")


def render(tokenizer: Any, system: str, user: str, answer_prefix: str = "") -> str:
    """One prompt rendered in the tokenizer's format (:func:`turn_format`)."""
    return turn_format(tokenizer).render(tokenizer, system, user, answer_prefix)


def _chat(tokenizer: Any, system: str, user: str) -> str:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception:  # templates without a system role: fold it into the user turn
        merged = [{"role": "user", "content": f"{system}\n\n{user}" if system else user}]
        return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)


def _is_special_token(tokenizer: Any, text: str) -> bool:
    """``text`` is one token of the vocabulary, kept whole when it appears in a prompt."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return len(ids) == 1 and tokenizer.convert_ids_to_tokens(ids[0]) == text


def _adds_bos(tokenizer: Any) -> bool:
    bos_id = getattr(tokenizer, "bos_token_id", None)
    ids = tokenizer("a")["input_ids"]
    return bos_id is not None and bool(ids) and ids[0] == bos_id
