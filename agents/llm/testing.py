"""A tiny, seeded Llama-style model and tokenizer built in code, for tests.

Nothing is downloaded: the tokenizer is a byte-level BPE trained in a few
milliseconds on :data:`CORPUS` (so it merges a leading space into the next word, the
case that makes the context/option token boundary tricky), with a ChatML chat
template like SmolLM2's. The model is a two-layer Llama whose weights are drawn from
a seeded generator at a larger scale than usual, so its next-token distributions
are far from uniform and depend on the context: a scoring bug changes probabilities visibly.

Other packages' tests import these too:

>>> from agents.llm.testing import tiny_backend
>>> backend = tiny_backend()   # an agents.llm.backend.Backend, ready to score
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = (
    "You are one of 5 fishers sharing a lake that holds at most 100 tons of fish. "
    "Each month every fisher decides how much to catch. The agreed limit is 10 tons per fisher. "
    "How much do you catch this month? I catch 10% of the stock (10.0 tons). "
    "Do you fine fisher 3? Answer: yes. Answer: no. I propose 12 tons. "
    "You care about the community. You care about maximising your own income. "
    "Month 2: you caught 9.5 tons; others caught 1: 10.0, 2: 20.0; 80 tons were left.",
    "The shop sells tea, rice, wine and gifts. Search for a present. Click buy. Post a reply in the forum.",
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


@lru_cache(maxsize=1)
def _tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(CORPUS) * 8, trainer)
    return tok.to_str()


def tiny_tokenizer(vocab_size: int = 400) -> Any:
    """A fresh PreTrainedTokenizerFast (byte-level BPE, ChatML template, eos = <|im_end|>)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json(vocab_size)),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_llama(
    seed: int = 0, *, vocab_size: int | None = None, hidden: int = 64, layers: int = 2, scale: float = 0.15
) -> Any:
    """A seeded random LlamaForCausalLM (float32, eval mode); the same seed, the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab = vocab_size or len(tiny_tokenizer())
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tiny_tokenizer().eos_token_id,
        pad_token_id=tiny_tokenizer().pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:  # norms keep their unit weights
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return model.eval()


def tiny_model(
    model_type: str,
    seed: int = 0,
    *,
    drop: tuple[str, ...] = (),
    scale: float = 0.15,
    attn_implementation: str = "eager",
    **overrides: Any,
) -> Any:
    """A seeded random causal LM of any architecture transformers can build from its
    config (``model_type`` as in ``AutoConfig.for_model``): 2 layers, hidden size 64,
    4 query and 2 KV heads of 16, the tiny tokenizer's vocabulary and special tokens.
    ``overrides`` set or replace config fields; ``drop`` leaves base fields out (for
    configs that derive them). Float32, eval mode; the same seed, the same weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = tiny_tokenizer()
    base: dict[str, Any] = {
        "vocab_size": len(tok),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "max_position_embeddings": 512,
        "pad_token_id": tok.pad_token_id,
        "eos_token_id": tok.eos_token_id,
        "bos_token_id": tok.bos_token_id,
        "tie_word_embeddings": False,
    }
    kwargs = {k: v for k, v in base.items() if k not in drop} | overrides
    config = AutoConfig.for_model(model_type, **kwargs)
    config._attn_implementation = attn_implementation
    with torch.random.fork_rng():  # seeded init of what the loop below keeps, global RNG untouched
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:  # norms keep their unit weights
                param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return model.eval()


def tiny_backend(seed: int = 0, **kwargs: Any) -> Any:
    """A Backend around a fresh tiny model (not the process-wide shared one)."""
    from agents.llm.backend import Backend

    return Backend(tiny_llama(seed), tiny_tokenizer(), name=f"tiny-random-llama-{seed}", **kwargs)
