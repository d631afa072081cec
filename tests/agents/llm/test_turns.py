"""What a model reads: the chat template, Gemma's turn markers for a base model, or plain text."""

from __future__ import annotations

from tokenizers import processors

from agents.llm import turns
from agents.llm.engine import Engine
from agents.llm.testing import tiny_llama, tiny_tokenizer
from agents.remote.vllm_engine import VLLMEngine

SYSTEM = "You are one of 5 fishers sharing a lake."
USERS = ("How much do you catch this month?", "Month 2: you caught 9.5 tons. How much do you catch?")


def base_tokenizer(*, gemma_markers: bool, adds_bos: bool = False):
    """The tiny tokenizer as a base model's: no chat template, optionally Gemma's turn
    markers as special tokens, optionally a BOS it adds to every text itself."""
    tok = tiny_tokenizer()
    tok.chat_template = None
    if gemma_markers:
        tok.add_special_tokens({"additional_special_tokens": list(turns.GEMMA_MARKERS)})
    if adds_bos:
        bos = (tok.bos_token, tok.bos_token_id)
        tok._tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos[0]} $A", pair=f"{bos[0]} $A $B", special_tokens=[bos]
        )
    return tok


def test_a_chat_template_is_used_as_it_is():
    tok = tiny_tokenizer()
    fmt = turns.turn_format(tok)
    assert fmt.kind == "chat_template"
    assert fmt.render(tok, SYSTEM, USERS[0], "I catch ") == (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{USERS[0]}<|im_end|>\n"
        "<|im_start|>assistant\nI catch "
    )


def test_a_base_model_with_gemma_markers_reads_gemmas_turns():
    tok = base_tokenizer(gemma_markers=True)
    fmt = turns.turn_format(tok)
    assert fmt.kind == "gemma_turns" and fmt.bos == tok.bos_token
    text = fmt.render(tok, SYSTEM, USERS[0], "I catch ")
    assert text == (
        f"<|im_start|><start_of_turn>user\n{SYSTEM}\n\n{USERS[0]}<end_of_turn>\n<start_of_turn>model\nI catch "
    )
    # The markers stay single tokens in the encoded prompt.
    ids = tok(text, add_special_tokens=False)["input_ids"]
    marker_ids = tok.convert_tokens_to_ids(list(turns.GEMMA_MARKERS))
    assert [ids.count(m) for m in marker_ids] == [2, 1]
    assert (
        fmt.render(tok, "", USERS[0])
        == f"<|im_start|><start_of_turn>user\n{USERS[0]}<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_plain_base_model_gets_bos_only_where_its_tokenizer_adds_one():
    plain = base_tokenizer(gemma_markers=False)
    assert turns.turn_format(plain) == turns.TurnFormat("plain", "")
    assert turns.render(plain, SYSTEM, USERS[0], "I catch ") == f"{SYSTEM}\n\n{USERS[0]}\n\nI catch "
    with_bos = base_tokenizer(gemma_markers=False, adds_bos=True)
    assert turns.turn_format(with_bos) == turns.TurnFormat("plain", with_bos.bos_token)
    assert turns.render(with_bos, "", USERS[0]) == f"{with_bos.bos_token}{USERS[0]}\n\n"


def test_the_system_text_comes_first_so_agents_share_it():
    for tok in (tiny_tokenizer(), base_tokenizer(gemma_markers=True), base_tokenizer(gemma_markers=False)):
        a, b = (tok(turns.render(tok, SYSTEM, u, "I catch "), add_special_tokens=False)["input_ids"] for u in USERS)
        shared = next(i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y)
        system_ids = tok(SYSTEM, add_special_tokens=False)["input_ids"]
        assert shared >= len(system_ids), tok.chat_template  # the whole system text is in the shared prefix
        assert tok.decode(a[:shared]).count(SYSTEM) == 1


def test_the_engine_and_the_vllm_actor_render_a_base_model_alike():
    tok = base_tokenizer(gemma_markers=True)
    engine = Engine(tiny_llama(vocab_size=len(tok)), tok, name="tiny-base")
    assert engine.describe()["turn_format"] == "gemma_turns"
    actor = VLLMEngine.__new__(VLLMEngine)  # the actor's body without vllm.LLM behind it
    actor.tokenizer = tok
    prompts = [(SYSTEM, USERS[0], "I catch "), ("", USERS[1], "")]
    assert actor.render(prompts) == [engine.render(*p) for p in prompts]
    assert engine.render(*prompts[0]).startswith(f"{tok.bos_token}<start_of_turn>user\n{SYSTEM}")


def test_the_jinja_template_for_servers_renders_the_same_text():
    for tok in (base_tokenizer(gemma_markers=True), base_tokenizer(gemma_markers=False, adds_bos=True)):
        fmt = turns.turn_format(tok)
        for system in (SYSTEM, ""):
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": USERS[1]}
            ]
            served = tok.apply_chat_template(
                messages, chat_template=fmt.chat_template(), tokenize=False, add_generation_prompt=True
            )
            assert served + "I catch " == fmt.render(tok, system, USERS[1], "I catch "), fmt.kind
    assert turns.turn_format(tiny_tokenizer()).chat_template() is None  # a template of its own is served as it is
