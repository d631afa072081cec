"""engine: vllm without vllm: its requests are built and its answers read as the actor would.

vllm itself cannot be imported beside this project's transformers, so the actor does not
run in this suite; the exact path it shares with engine: openai (scores from prompt
log-probabilities) is tested against the real server in test_vllm_server.py.
"""

from __future__ import annotations

from types import SimpleNamespace

from agents.remote.options import exact_scores
from agents.remote.vllm_engine import (
    VLLMEngine,
    actor_name,
    echo_from_output,
    engine_args,
    generate_params,
    score_params,
)


def test_scoring_asks_for_the_prompts_own_log_probabilities():
    params = score_params()
    assert params["prompt_logprobs"] == 0 and params["max_tokens"] == 1 and params["temperature"] == 0.0


def test_generation_is_seeded_with_stop_strings():
    p = generate_params(max_tokens=12, temperature=0.7, seed=2**40, stop=["\n"])
    assert p == {"max_tokens": 12, "temperature": 0.7, "seed": 2**40, "stop": ["\n"]}
    assert "stop" not in generate_params(max_tokens=1, temperature=0.0, seed=1, stop=[])


def test_engine_args_turn_on_prefix_caching_and_vllms_ray_executor_for_several_gpus():
    one = engine_args("/m", dtype="float32", tensor_parallel_size=1, trust_remote_code=False)
    assert one["enable_prefix_caching"] and "distributed_executor_backend" not in one
    four = engine_args("/m", dtype="bfloat16", tensor_parallel_size=4, trust_remote_code=False)
    assert four["tensor_parallel_size"] == 4 and four["distributed_executor_backend"] == "ray"
    assert actor_name(one) == actor_name(dict(one)) != actor_name(four)  # one shared actor per engine config


def _output(ids: list[int], logprobs: list[float | None]) -> SimpleNamespace:
    lp = [None if v is None else {t: SimpleNamespace(logprob=v, rank=1)} for t, v in zip(ids, logprobs, strict=True)]
    return SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=lp)


def test_request_outputs_become_exact_option_scores():
    ctx = echo_from_output(_output([1, 2, 3], [None, -1.0, -2.0]))
    a = echo_from_output(_output([1, 2, 3, 7], [None, -1.0, -2.0, -0.5]))
    b = echo_from_output(_output([1, 2, 4, 8], [None, -1.0, -3.0, -0.25]))  # merged the context's last token
    scores, lengths = exact_scores(ctx, [a, b])
    assert scores.tolist() == [-2.5, -3.25] and lengths == (2, 2)


class _Tokenizer:
    """Characters as tokens, and a chat template like SmolLM2's."""

    chat_template = "(stands for SmolLM2's ChatML template)"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        body = "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages)
        return body + ("<|assistant|>" if add_generation_prompt else "")

    def __call__(self, texts, add_special_tokens):
        assert add_special_tokens is False  # the template holds the special tokens
        return {"input_ids": [[ord(c) for c in t] for t in texts]}


class _LLM:
    def __init__(self) -> None:
        self.calls: list[tuple[list, object]] = []

    def generate(self, prompts, params, use_tqdm=False):
        self.calls.append((prompts, params))
        return [
            _output(p["prompt_token_ids"], [None] + [-0.1 * (i + 1) for i in range(len(p["prompt_token_ids"]) - 1)])
            for p in prompts
        ]


def test_the_actor_body_renders_tokenises_and_scores(monkeypatch):
    engine = VLLMEngine.__new__(VLLMEngine)  # the body without vllm.LLM behind it
    engine.tokenizer, engine.llm = _Tokenizer(), _LLM()
    [text] = engine.render([("rules", "how many?", "I catch ")])
    assert text == "<|system|>rules\n<|user|>how many?\n<|assistant|>I catch "
    assert engine.render([("", "hi", "")]) == ["<|user|>hi\n<|assistant|>"]
    import sys

    monkeypatch.setitem(sys.modules, "vllm", SimpleNamespace(SamplingParams=lambda **kw: kw))
    answers = engine.echo(["ab", "abc"])
    prompts, params = engine.llm.calls[0]
    assert prompts == [{"prompt_token_ids": [97, 98]}, {"prompt_token_ids": [97, 98, 99]}]
    assert params == score_params()
    assert answers[1] == ([97, 98, 99], [None, -0.1, -0.2])
