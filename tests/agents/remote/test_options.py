"""Option distributions from server answers (pure functions), and the engine fields of the config."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from agents.remote.options import (
    Echo,
    echo_from_completion,
    echo_from_prompt_logprobs,
    exact_scores,
    letter_prompt,
    parse_letter,
    sampled_distribution,
    split_tails,
    tail_queries,
    tail_scores,
    topk_distribution,
)


def test_exact_scores_start_where_the_options_part_from_the_context():
    # "I catch " + "10": the tokenizer merged the context's trailing space into " 1".
    context = Echo(("<s>", "I", " catch", " "), (None, -1.0, -2.0, -3.0))
    ten = Echo(("<s>", "I", " catch", " 1", "0"), (None, -1.0, -2.0, -0.5, -0.25))
    five = Echo(("<s>", "I", " catch", " 5"), (None, -1.0, -2.0, -1.5))
    scores, lengths = exact_scores(context, [ten, five])
    assert scores.tolist() == [-0.75, -1.5] and lengths == (2, 1)


def test_token_questions_form_a_trie_and_sum_back_to_whole_sequence_scores():
    prefix, tails = split_tails([1, 2, 3], [[1, 2, 7, 8], [1, 2, 7, 9, 4], [1, 2, 5]])
    assert prefix == [1, 2] and tails == [[7, 8], [7, 9, 4], [5]]
    questions = tail_queries(prefix, tails)
    assert questions == {(1, 2): {7, 5}, (1, 2, 7): {8, 9}, (1, 2, 7, 9): {4}}
    answers = {(1, 2): {7: -1.0, 5: -2.0}, (1, 2, 7): {8: -0.5, 9: -0.25}, (1, 2, 7, 9): {4: -0.125}}
    assert tail_scores(prefix, tails, answers).tolist() == [-1.5, -1.375, -2.0]


def test_a_prompt_with_no_tokens_of_its_own_is_refused():
    with pytest.raises(ValueError, match="no tokens of its own"):
        split_tails([1], [[2], [3]])


def test_echo_parsers_read_completions_and_prompt_logprobs():
    choice = {
        "logprobs": {"tokens": ["Hi", " there", "!"], "token_logprobs": [None, -1.0, -2.0], "text_offset": [0, 2, 8]},
    }
    echo = echo_from_completion(choice, "Hi there")  # "!" was generated, not part of the prompt
    assert echo.tokens == ("Hi", " there") and echo.logprobs == (None, -1.0)
    with_ids = {**choice, "prompt_token_ids": [5, 6]}
    assert echo_from_completion(with_ids, "Hi there").tokens == (5, 6)
    lp = [None, {6: SimpleNamespace(logprob=-0.5), 9: SimpleNamespace(logprob=-3.0)}, {"7": {"logprob": -0.25}}]
    assert echo_from_prompt_logprobs([5, 6, 7], lp) == Echo((5, 6, 7), (None, -0.5, -0.25))


def test_letters_label_options_and_parse_replies():
    text = letter_prompt("How many?", "I catch ", ["5 tons", "10 tons"])
    assert "A. I catch 5 tons\nB. I catch 10 tons" in text and text.startswith("How many?")
    assert [parse_letter(t, 3) for t in ("B", " b.", "(C)", "**A**", "D", "Bob", "")] == [1, 1, 2, 0, None, None, None]
    with pytest.raises(ValueError, match="at most 26"):
        letter_prompt("x", "", [str(i) for i in range(27)])


def test_topk_distribution_merges_tokens_of_a_letter_and_reports_the_mass_outside():
    top = [
        ("A", math.log(0.5)),
        (" A", math.log(0.1)),
        ("B", math.log(0.2)),
        ("The", math.log(0.1)),
        ("A", math.log(0.5)),
    ]
    probs, outside = topk_distribution(top, 3, temperature=1.0)
    assert probs == pytest.approx([0.75, 0.25, 0.0])
    assert outside == pytest.approx(0.1)  # the repeated "A" is not counted twice
    cooler, _ = topk_distribution(top, 3, temperature=0.5)
    assert cooler == pytest.approx([0.9, 0.1, 0.0])  # softmax(log p / T) over the options found
    greedy, _ = topk_distribution(top, 3, temperature=0.0)
    assert greedy.tolist() == [1.0, 0.0, 0.0]
    none, _ = topk_distribution([("The", -0.1)], 2, 1.0)
    assert none is None  # no letter among the top tokens: no distribution, never a uniform one


def test_sampled_distribution_counts_parsed_letters():
    probs, parsed = sampled_distribution(["A", "B.", "a", "nonsense"], 3)
    assert np.allclose(probs, [2 / 3, 1 / 3, 0]) and parsed == 3
    none, parsed = sampled_distribution(["?"], 2)
    assert none is None and parsed == 0  # nothing parsed: no distribution, never a uniform one


# ------------------------------------------------------------------ config
def _scenario(policy: dict, steering: dict | None = None) -> dict:
    group = {"name": "fishers", "size": 2, "policy": {"type": "llm", **policy}}
    if steering is not None:
        group["steering"] = steering
    return {"name": "t", "environment": {"type": "commons"}, "population": [group], "run": {"steps": 1}}


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (
            {"engine": "openai", "base_url": "http://x/v1", "capture_layers": [3]},
            "policy.capture_layers needs engine hf",
        ),
        ({"engine": "openai"}, "policy.base_url is required for engine openai"),
        (
            {"engine": "openai", "base_url": "http://x/v1", "api_key_env": "sk-abc123"},
            "NAME of an environment variable",
        ),
        ({"base_url": "http://x/v1"}, "policy.base_url applies to engine openai, not 'hf'"),
        ({"engine": "openai", "base_url": "http://x/v1", "device": "cuda"}, "policy.device applies to engine hf"),
        ({"engine": "vllm"}, "vllm package, which is not installed"),
    ],
)
def test_engine_fields_are_checked_at_validate(policy, message):
    from sim.config import load_scenario
    from sim.core.schema import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_scenario(_scenario(policy))


def test_a_steered_group_needs_the_builtin_engine(tmp_path, capsys):
    import yaml

    from sim.cli import main

    steering = {"vector": "honesty.safetensors", "coefficient": 2.0}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_scenario({"engine": "openai", "base_url": "http://x/v1"}, steering)))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "steering needs policy.engine hf" in err and "Traceback" not in err


def test_a_runs_full_config_dump_loads_again_for_every_engine():
    import yaml

    from sim.config import dump_scenario, load_scenario

    for policy in ({"engine": "hf"}, {"engine": "openai", "base_url": "http://x/v1", "cache": "c", "stop": ["\n"]}):
        scenario = load_scenario(_scenario(policy))
        again = load_scenario(yaml.safe_load(dump_scenario(scenario)))
        assert again == scenario
