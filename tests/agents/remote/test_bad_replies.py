"""A server that lies: malformed replies are counted, retried and end in one line; a decision
whose probabilities cannot be computed is never filled in; generated replies never crash."""

from __future__ import annotations

import json
import logging
import math
import os

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agents.config import LLMPolicyConfig
from agents.interfaces import DecisionRequest, Prompt
from agents.remote import client, policy_for
from agents.remote.client import ServerError


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr(client, "_backoff", lambda attempt, err: 0.0)


def request(kind: str = "choice", agent: int = 1, fallback: int = 2) -> DecisionRequest:
    return DecisionRequest(
        agent_id=agent,
        phase="harvest",
        options=("5 tons", "10 tons", "20 tons"),
        prompt=Prompt("You fish.", f"Fisher {agent}: how many tons?", "I catch "),
        kind=kind,  # type: ignore[arg-type]
        parse=lambda text: {"5": 0, "10": 1, "20": 2}.get(text.strip().split(" ")[0]),
        fallback=fallback,
    )


def chat(content: str = "B", top: list[tuple[str, float]] | None = None) -> dict:
    logprobs = {"content": [{"token": content, "logprob": -0.1, "top_logprobs": [
        {"token": t, "logprob": lp} for t, lp in top]}]} if top else None  # fmt: skip
    return {"choices": [{"index": 0, "message": {"content": content}, "logprobs": logprobs}], "usage": {}}


GOOD_TOPK = chat("B", [("B", math.log(0.6)), ("A", math.log(0.4))])


def exact_server(path: str, body: dict) -> tuple[int, object]:
    """A well-behaved vLLM: characters are tokens, every named next token has log-probability -1."""
    if path == "/tokenize":
        text = body.get("prompt") or "".join(m["content"] for m in body["messages"])
        return 200, {"tokens": [ord(c) for c in text]}
    if path == "/detokenize":
        return 200, {"prompt": "".join(chr(t) for t in body["tokens"])}
    targets = body["logprob_token_ids"]
    top = {f"token_id:{t}": -1.0 for t in targets}
    choices = [{"index": i, "text": "", "logprobs": {"top_logprobs": [top]}} for i in range(len(body["prompt"]))]
    return 200, {"choices": choices, "usage": {"prompt_tokens": 3}}


def make(url: str, **fields) -> object:
    return policy_for(LLMPolicyConfig(engine="openai", base_url=url, model="m", **{"max_retries": 1, **fields}))


def decide(policy, *requests):
    return policy.decide(list(requests) or [request()], np.random.default_rng(0))


MALFORMED = {
    "html body": ("exact", lambda p, b: (200, b"<html><body>502 Bad Gateway</body></html>")),
    "tokenize without tokens": ("exact", lambda p, b: (200, {"count": 3}) if p == "/tokenize" else exact_server(p, b)),
    "chat without choices": ("topk", lambda p, b: (200, {"id": "x", "object": "chat.completion"})),
    "top logprob without logprob": (
        "topk",
        lambda p, b: (
            200,
            {
                "choices": [
                    {
                        "message": {"content": "B"},
                        "logprobs": {"content": [{"token": "B", "logprob": -0.1, "top_logprobs": [{"token": "B"}]}]},
                    }
                ]
            },
        ),  # fmt: skip
    ),
    "NaN log-probability": ("topk", lambda p, b: (200, chat("B", [("B", float("nan")), ("A", -1.0)]))),
    "zero choices": ("sampled", lambda p, b: (200, {"choices": [], "usage": {}})),
    "no log-probabilities": ("topk", lambda p, b: (200, chat("B"))),
    "no letter among the top tokens": ("topk", lambda p, b: (200, chat("The", [("The", -0.1), ("I", -2.0)]))),
    "next tokens missing": (
        "exact",
        lambda p, b: (200, {"choices": []}) if p == "/v1/completions" else exact_server(p, b),
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_reply_is_counted_retried_and_ends_in_one_line(fake_server, case, caplog):
    source, handler = MALFORMED[case]
    server = fake_server(handler)
    caplog.set_level(logging.WARNING, logger="agents.remote.client")
    policy = make(server.url, prob_source=source)
    with pytest.raises(ServerError) as err:
        decide(policy)
    line = str(err.value)
    assert "\n" not in line and "malformed reply" in line and "after 1 retries" in line
    usage = policy.usage()
    assert usage["bad_replies"] == 2 and usage["retries"] == 1  # the first answer and its one retry
    assert any("malformed reply" in r.getMessage() and "retry 1/1" in r.getMessage() for r in caplog.records)


def test_a_bad_reply_followed_by_a_good_one_is_just_a_retry(fake_server):
    answers = [(200, b"<html>busy</html>"), (200, {"choices": []})]
    server = fake_server(lambda p, b: answers.pop(0) if answers else (200, GOOD_TOPK))
    policy = make(server.url, prob_source="topk", max_retries=2)
    [d] = decide(policy)
    assert d.probs == pytest.approx([0.4, 0.6, 0.0]) and d.info["prob_source"] == "topk"
    assert policy.usage()["bad_replies"] == 2 and policy.usage()["retries"] == 2


def test_the_exact_path_scores_from_validated_replies(fake_server):
    server = fake_server(exact_server)
    [d] = decide(make(server.url, prob_source="exact"))
    assert d.info["prob_source"] == "exact" and np.isfinite(d.probs).all() and d.probs.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("source", ["topk", "sampled"])
def test_skip_logs_a_failed_decision_and_counts_it_never_a_uniform_one(fake_server, source, caplog):
    server = fake_server(lambda p, b: (200, {"choices": []}))
    policy = make(server.url, prob_source=source, on_bad_reply="skip", max_retries=0)
    caplog.set_level(logging.WARNING, logger="agents.remote.policy")
    [d] = decide(policy, request(fallback=2))
    assert d.info["prob_source"] == "failed" and "min_length" in d.info["failed"] or "at least 1" in d.info["failed"]
    assert np.isnan(d.probs).all() and math.isnan(d.entropy) and d.choice == 2  # the request's fallback
    assert policy.usage()["failed_decisions"] == 1
    assert any("decision failed" in r.getMessage() for r in caplog.records)


def test_an_unscorable_exact_batch_fails_in_one_line_or_is_skipped(fake_server):
    def short_echo(path, body):  # the server tokenises the option into nothing of its own
        if path == "/tokenize":
            return 200, {"tokens": [1]}
        return exact_server(path, body)

    server = fake_server(short_echo)
    with pytest.raises(ServerError, match="no option probabilities.*on_bad_reply: skip"):
        decide(make(server.url, prob_source="exact"))
    skipped = make(server.url, prob_source="exact", on_bad_reply="skip")
    decisions = decide(skipped, request(agent=1), request(agent=2))
    assert [d.info["prob_source"] for d in decisions] == ["failed", "failed"]
    assert skipped.usage()["failed_decisions"] == 2


def scenario(tmp_path, url: str, **policy) -> str:
    block = {"type": "llm", "engine": "openai", "base_url": url, "prob_source": "topk", "max_retries": 0, **policy}
    data = {"name": "t", "environment": {"type": "commons"}, "population": [{"name": "g", "size": 2, "policy": block}]}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**data, "run": {"steps": 1}, "output": {"report": False}}))
    return str(path)


def test_a_run_fails_in_one_line_or_counts_skipped_decisions_in_metrics(fake_server, tmp_path, capsys):
    from sim.cli import main

    server = fake_server(lambda p, b: (200, chat("B")))  # top-k asked for, no log-probabilities given
    assert main(["-q", "run", scenario(tmp_path, server.url), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: server") and "no log-probabilities" in err[0]
    assert main(["-q", "run", scenario(tmp_path, server.url, on_bad_reply="skip"), "--out", str(tmp_path / "b")]) == 0
    [run_dir] = (tmp_path / "b").iterdir()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["llm_failed_decisions"] == metrics["decisions"] > 0
    assert metrics["mean_action_entropy"] is None  # no made-up entropy: there was none to measure


# ------------------------------------------------------------------ generated replies
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
LOGPROB = st.floats(allow_nan=True, allow_infinity=True) | st.none() | st.text(max_size=3)
TOP = st.lists(st.fixed_dictionaries({}, optional={"token": st.sampled_from(["A", "B", " C", "x", ""]) | JSON,
                                                    "logprob": LOGPROB}), max_size=4)  # fmt: skip
CHOICE = st.fixed_dictionaries(
    {},
    optional={
        "index": st.integers(-1, 3) | JSON,
        "message": st.fixed_dictionaries({}, optional={"content": st.sampled_from(["A", "B", "zz", ""]) | JSON}),
        "logprobs": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "content": st.lists(
                    st.fixed_dictionaries({"token": st.just("B")}, optional={"logprob": LOGPROB, "top_logprobs": TOP}),
                    max_size=2,
                )
                | JSON
            },
        ),  # fmt: skip
    },
)
CHAT = st.fixed_dictionaries({}, optional={"choices": st.lists(CHOICE, max_size=3) | JSON, "usage": JSON})
TOKENIZE = st.fixed_dictionaries({}, optional={"tokens": st.lists(st.integers(-2, 300) | JSON, max_size=6) | JSON})
COMPLETION = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": st.integers(-1, 3),
                    "logprobs": st.fixed_dictionaries(
                        {},
                        optional={
                            "top_logprobs": st.lists(
                                st.dictionaries(
                                    st.sampled_from(["token_id:65", "token_id:66", "65", "x"]), LOGPROB, max_size=3
                                ),
                                max_size=2,
                            )
                        },
                    ),
                },
            ),
            max_size=3,
        )
        | JSON,  # fmt: skip
    },
)
BODY = st.binary(max_size=40) | JSON
REPLY = st.tuples(st.sampled_from([200, 200, 200, 404, 408, 500]), BODY)


def _fuzz_once(fake_server, source: str, replies: dict[str, object], fixed: dict[str, object]) -> None:
    def answer(path, body):
        reply = replies.get(path, fixed.get(path))
        if reply is None:
            return exact_server(path, body)
        return reply if isinstance(reply, tuple) else (200, reply)

    server = fake_server(answer)
    try:
        policy = make(server.url, prob_source=source, max_retries=0)
        try:
            decisions = decide(policy, request(), request("text", 2))
        except ServerError as err:  # a clean, one-line refusal
            assert "\n" not in str(err)
            return
        for d in decisions:
            if d.info.get("prob_source") in ("topk", "sampled", "exact"):
                assert np.isfinite(d.probs).all() and d.probs.sum() == pytest.approx(1.0)
            assert 0 <= d.choice < 3
    finally:
        server.close()


# Each example starts a server and a client (~0.5 s on a busy machine): a modest count per
# test in the suite; NORMSIM_FUZZ_EXAMPLES raises it for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("NORMSIM_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


@FUZZ
@given(reply=CHAT | REPLY)
def test_generated_chat_replies_never_crash_or_make_up_a_distribution(fake_server, reply):
    _fuzz_once(fake_server, "topk", {"/v1/chat/completions": reply}, {})


@FUZZ
@given(reply=CHAT | REPLY)
def test_generated_sampled_replies_never_crash(fake_server, reply):
    _fuzz_once(fake_server, "sampled", {"/v1/chat/completions": reply}, {})


@FUZZ
@given(tokenize=TOKENIZE | REPLY, completion=COMPLETION | REPLY, which=st.sampled_from(["tok", "comp", "both"]))
def test_generated_exact_replies_never_crash(fake_server, tokenize, completion, which):
    replies = {"/tokenize": tokenize} if which != "comp" else {}
    if which != "tok":
        replies["/v1/completions"] = completion
    _fuzz_once(fake_server, "exact", replies, {})


# ------------------------------------------------------------------ small items
def test_retry_lines_name_the_address_really_asked(fake_server, caplog):
    answers = [(503, {"error": {"message": "busy"}})]
    server = fake_server(lambda p, b: answers.pop(0) if answers else exact_server(p, b))
    caplog.set_level(logging.WARNING, logger="agents.remote.client")
    decide(make(server.url, prob_source="exact"))
    [line] = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    root = server.url.removesuffix("/v1")
    assert line.startswith(f"{root}/tokenize: ") and "root:" not in line


def test_408_is_retried_as_documented(fake_server):
    answers = [(408, {"error": {"message": "request timeout"}})]
    server = fake_server(lambda p, b: answers.pop(0) if answers else (200, GOOD_TOPK))
    policy = make(server.url, prob_source="topk")
    [d] = decide(policy)
    assert d.info["prob_source"] == "topk" and len(server.requests) == 2 and policy.usage()["retries"] == 1


def test_a_vllm_actor_that_never_answers_ends_in_one_line(ray_cluster):
    from agents.remote.vllm_engine import VLLMServer

    @ray_cluster.remote
    def stalled() -> None:
        import time

        time.sleep(60)

    server = VLLMServer.__new__(VLLMServer)  # the actor's handle without a model behind it
    server.timeout = 0.5
    with pytest.raises(ServerError, match=r"engine vllm: no answer for 40 texts within 1 s \(policy.timeout: 0.5 s"):
        server._get(stalled.remote(), 40)
