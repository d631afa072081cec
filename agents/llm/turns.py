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
server renders with its chat template, so a base model is served with
:meth:`TurnFormat.chat_template` (``python -m agents.llm.turns MODEL > FILE``, then
``vllm serve ... --chat-template FILE``) to read the same text (docs/models.md).

No torch here: the vLLM actor imports this module beside vLLM's own transformers.
"""

from __future__ import annotations

import sys
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

    def chat_template(self) -> str | None:
        """The same format as a Jinja chat template, for a server that renders prompts
        itself (``vllm serve --chat-template FILE``); None for ``chat_template`` (the
        tokenizer's own). Renders normsim's messages (an optional system message, one user
        message) to exactly :meth:`render`'s text."""
        if self.kind == "chat_template":
            return None
        system = (
            "{% for m in messages %}{% if m['role'] == 'system' and m['content'] %}"
            "{{ m['content'] }}\n\n{% endif %}{% endfor %}"
        )
        user = "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}{% endif %}{% endfor %}"
        bos = "{{ bos_token }}" if self.bos else ""
        if self.kind == "gemma_turns":
            start, end = GEMMA_MARKERS
            prompt = f"{start}model\n"
            return f"{bos}{start}user\n{system}{user}{end}\n{{% if add_generation_prompt %}}{prompt}{{% endif %}}"
        return f"{bos}{system}{user}{{{{ '\\n\\n' }}}}"  # an expression: Jinja drops a trailing newline


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


def main(argv: list[str] | None = None) -> int:
    """Print a model's turn format as a Jinja chat template (for ``vllm serve --chat-template``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m agents.llm.turns", description=main.__doc__)
    parser.add_argument("model", help="a model name normsim loads (gemma3-270m) or a checkpoint folder")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    from agents.llm.embedded import EMBEDDED, convert_embedded

    source = str(convert_embedded(args.model)) if args.model in EMBEDDED else args.model
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    fmt = turn_format(tokenizer)
    template = fmt.chat_template()
    if template is None:
        print(f"{args.model} has its own chat template: serve it as it is", file=sys.stderr)
        return 1
    print(template, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
