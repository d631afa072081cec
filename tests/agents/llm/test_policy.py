"""The LLM policy front: distributions, sampling, free text and parse failures, mixed groups."""

from __future__ import annotations

import numpy as np
import pytest

from agents.config import LLMPolicyConfig
from agents.factory import llm_policy
from agents.interfaces import DecisionRequest, Prompt, softmax
from agents.llm import get_backend
from agents.llm.policy import LLMPolicy
from agents.llm.testing import tiny_backend
from agents.llm.types import ScoreItem, ScoreResult

SYSTEM = "You are one of 5 fishers sharing a lake."


def _choice(agent: int, user: str = "How much do you catch?") -> DecisionRequest:
    return DecisionRequest(
        agent_id=agent,
        phase="harvest",
        options=("5 tons", "10 tons", "20 tons"),
        prompt=Prompt(SYSTEM, f"Fisher {agent}. {user}", "I catch "),
    )


def _text(agent: int, parse) -> DecisionRequest:
    return DecisionRequest(
        agent_id=agent,
        phase="vote",
        options=("5 tons", "10 tons"),
        kind="text",
        prompt=Prompt(SYSTEM, f"Fisher {agent}, propose a limit.", "I propose "),
        parse=parse,
        fallback=1,
        max_new_tokens=5,
    )


class FakeBackend:
    """Fixed log-probabilities and replies, to test the front alone."""

    key = ("fake", "float32", "cpu")

    def __init__(self, logprobs: list[float], reply: str = "10 tons") -> None:
        self.logprobs, self.reply, self.generated = np.array(logprobs), reply, []

    def score(self, items: list[ScoreItem]) -> list[ScoreResult]:
        self.generated.extend(i.reply for i in items if i.reply is not None)
        return [
            ScoreResult(self.logprobs[: len(i.options)].copy(), text=self.reply if i.reply else None) for i in items
        ]


@pytest.fixture(scope="module")
def backend():
    return tiny_backend(seed=3)


def test_choices_follow_the_distribution():
    front = LLMPolicy(FakeBackend([np.log(0.2), np.log(0.5), np.log(0.3)]))
    rng = np.random.default_rng(0)
    decisions = front.decide([_choice(i) for i in range(3000)], rng)
    np.testing.assert_allclose(decisions[0].probs, [0.2, 0.5, 0.3])
    counts = np.bincount([d.choice for d in decisions], minlength=3) / 3000
    np.testing.assert_allclose(counts, [0.2, 0.5, 0.3], atol=0.03)


def test_temperature_and_greedy():
    fake = FakeBackend([0.0, 1.0, -1.0])
    hot = LLMPolicy(fake, temperature=2.0).decide([_choice(0)], np.random.default_rng(0))[0]
    np.testing.assert_allclose(hot.probs, softmax(np.array([0.0, 1.0, -1.0]), 2.0))
    greedy = LLMPolicy(fake, greedy=True).decide([_choice(0)] * 20, np.random.default_rng(0))
    assert {d.choice for d in greedy} == {1}


def test_text_parse_failure_falls_back_and_never_raises():
    def explode(_text: str) -> int:
        raise ValueError("bad reply")

    reqs = [
        _text(0, lambda t: 0 if "5" in t else None),
        _text(1, lambda t: None),
        _text(2, explode),
        _text(3, lambda t: 7),
    ]
    fake = FakeBackend([-1.0, -2.0], reply="I think 5 tons")
    decisions = LLMPolicy(fake, max_new_tokens=3).decide(reqs, np.random.default_rng(0))
    assert [d.parse_failed for d in decisions] == [False, True, True, True]  # 7 is out of range
    assert [d.choice for d in decisions] == [0, 1, 1, 1]
    assert all(d.text == "I think 5 tons" and abs(d.probs.sum() - 1) < 1e-12 for d in decisions)
    assert [item.max_new_tokens for item in fake.generated] == [3, 3, 3, 3]  # the group's cap wins
    assert len({item.seed for item in fake.generated}) == 4  # seeds drawn from the model's rng


def test_mixed_groups_share_one_batch(backend, monkeypatch):
    calls = []
    score = backend.score
    monkeypatch.setattr(backend, "score", lambda items: calls.append(len(items)) or score(items))
    cold, greedy = LLMPolicy(backend, temperature=0.5), LLMPolicy(backend, greedy=True)
    assert cold.batch_key == greedy.batch_key
    pairs = [(cold, _choice(0)), (greedy, _choice(1)), (cold, _choice(2, "Be careful."))]
    decisions = cold.decide_mixed(pairs, np.random.default_rng(1))
    assert calls == [3]
    alone = [LLMPolicy(backend).decide([req], np.random.default_rng(0))[0] for _, req in pairs]
    for (front, _), mixed, single in zip(pairs, decisions, alone, strict=True):
        raw = np.log(single.probs)  # temperature 1: probs are the normalised option likelihoods
        np.testing.assert_allclose(mixed.probs, softmax(raw, front.temperature), atol=1e-6)
        assert abs(mixed.probs.sum() - 1) < 1e-12 and mixed.entropy > 0
    assert decisions[1].choice == int(np.argmax(decisions[1].probs))


def test_real_text_requests_on_the_tiny_model(backend):
    reqs = [_text(i, lambda t: None if not t else len(t) % 2) for i in range(3)]
    front = LLMPolicy(backend)
    first = front.decide(reqs, np.random.default_rng(5))
    again = front.decide(reqs, np.random.default_rng(5))
    assert [d.text for d in first] == [d.text for d in again]
    assert [d.choice for d in first] == [d.choice for d in again]
    assert all(abs(d.probs.sum() - 1) < 1e-9 and d.entropy > 0 for d in first)


def test_one_backend_per_model_and_dtype():
    a = llm_policy(LLMPolicyConfig(model="tiny-random-llama", temperature=0.5))
    b = llm_policy(LLMPolicyConfig(model="tiny-random-llama", greedy=True))
    assert a.backend is b.backend is get_backend("tiny-random-llama")
    assert a.batch_key == b.batch_key
    with pytest.raises(ValueError, match="capture_layers"):
        llm_policy(LLMPolicyConfig(model="tiny-random-llama", capture_layers=[5]))


def test_mixed_society_batches_per_model(tmp_path):
    """Two groups on one model share a batch; a group on another dtype gets its own model copy."""
    from sim.config import load_scenario
    from sim.runner import build_policies

    scenario = load_scenario(
        "scenarios/commons_llm.yaml",
        {f"population.{i}.policy.model": "tiny-random-llama" for i in range(3)}
        | {"population.2.policy.dtype": "bfloat16", "population.0.policy.temperature": 0.5},
    )
    policies = build_policies(scenario)
    a, b, c = (policies[g.name] for g in scenario.population)
    assert a.backend is b.backend and a.batch_key == b.batch_key and a.temperature != b.temperature
    assert c.backend is not a.backend and c.batch_key != a.batch_key
    assert c.backend.model.dtype.is_floating_point and str(c.backend.model.dtype) == "torch.bfloat16"


def test_requests_whose_choice_needs_no_scores_are_not_scored():
    """A single option (a forum post) or ``score=False``: no option scoring; a reply still
    runs, with the request's stop strings; the choice gets probability 1."""
    fake = FakeBackend([-1.0, -2.0, -3.0], reply="A post.")
    asked: list[ScoreItem] = []
    score = fake.score
    fake.score = lambda items: asked.extend(items) or score(items)
    post = DecisionRequest(0, "write", ("fallback text",), Prompt(SYSTEM, "Write a post."), kind="text", stop=("\n",))
    forced = DecisionRequest(1, "act", ("the only move",), Prompt(SYSTEM, "Move."))
    unscored = DecisionRequest(
        2, "vote", ("5 tons", "10 tons"), Prompt(SYSTEM, "Vote."), kind="text", score=False, fallback=1
    )
    decisions = LLMPolicy(fake).decide([post, forced, unscored, _choice(3)], np.random.default_rng(0))
    assert [item.options for item in asked] == [(), (), _choice(3).options]  # the forced move never ran
    assert asked[0].reply.stop == ("\n",) and asked[1].reply.stop == ()
    assert [d.info.get("probs_from") for d in decisions[:3]] == ["unscored"] * 3
    assert decisions[0].probs.tolist() == [1.0] and decisions[1].choice == 0
    assert decisions[2].probs.tolist() == [0.0, 1.0] and decisions[2].choice == 1  # unparsed: the fallback
    np.testing.assert_allclose(decisions[3].probs, softmax(np.array([-1.0, -2.0, -3.0]), 1.0))
