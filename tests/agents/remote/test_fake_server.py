"""engine: openai against a small fake HTTP server: the top-k and sampled paths (which vLLM,
scoring exactly, never takes), retries, refusals, the API key and the cache.

The exact path and whole runs are tested against the real vLLM server (test_vllm_server.py).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from agents.config import LLMPolicyConfig
from agents.interfaces import DecisionRequest, Prompt
from agents.remote import policy_for
from agents.remote.client import ServerError


def _request(kind: str = "choice", agent: int = 1) -> DecisionRequest:
    return DecisionRequest(
        agent_id=agent,
        phase="harvest",
        options=("5 tons", "10 tons", "20 tons"),
        prompt=Prompt("You fish.", f"Fisher {agent}: how many tons?", "I catch "),
        kind=kind,  # type: ignore[arg-type]
        parse=lambda text: {"5": 0, "10": 1, "20": 2}.get(text.strip().split(" ")[0]),
    )


def _chat(content: str, top: list[tuple[str, float]] | None = None, n: int = 1) -> dict:
    logprobs = (
        {
            "content": [
                {"token": content, "logprob": -0.1, "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}
            ]
        }
        if top
        else None
    )
    choices = [
        {"index": i, "message": {"role": "assistant", "content": content}, "logprobs": logprobs} for i in range(n)
    ]
    return {"choices": choices, "usage": {"prompt_tokens": 40, "completion_tokens": n}}


def _policy(url: str, **fields) -> object:
    return policy_for(LLMPolicyConfig(engine="openai", base_url=url, model="m", **{"max_retries": 2, **fields}))


def test_topk_letters_give_the_distribution_and_the_mass_outside(fake_server):
    top = [("B", math.log(0.6)), ("A", math.log(0.2)), (" B", math.log(0.1))]
    server = fake_server(lambda path, body: (200, _chat("B", top)))
    policy = _policy(server.url, prob_source="topk", top_logprobs=5)
    [d] = policy.decide([_request()], np.random.default_rng(0))
    assert d.probs == pytest.approx([0.2 / 0.9, 0.7 / 0.9, 0.0])
    assert d.info == {"prob_source": "topk", "prompt_tokens": 40, "topk_mass_outside": pytest.approx(0.1)}
    path, body = server.requests[0]
    assert path == "/v1/chat/completions" and body["top_logprobs"] == 5 and body["max_tokens"] == 1
    assert "A. I catch 5 tons" in body["messages"][-1]["content"]
    assert policy.usage()["prompt_tokens"] == 40


def test_sampled_counts_k_seeded_answers_and_text_is_generated_with_stop_strings(fake_server):
    def answer(path, body):
        if body.get("n"):
            return 200, {
                "choices": [{"index": i, "message": {"content": c}} for i, c in enumerate("AACB")],
                "usage": {},
            }
        return 200, _chat("I catch 10 tons")

    server = fake_server(answer)
    policy = _policy(server.url, prob_source="sampled", samples=4, stop=["\n"], usd_per_mtok_prompt=2.0)
    rng = np.random.default_rng(7)
    choice, text = policy.decide([_request(), _request("text", 2)], rng)
    assert choice.probs.tolist() == [0.5, 0.25, 0.25] and choice.info["samples_parsed"] == 4
    assert text.text == " 10 tons" and text.choice == 1 and not text.parse_failed  # the answer prefix is stripped
    bodies = [b for _, b in server.requests]
    expected = np.random.default_rng(7).integers(2**31 - 1, size=2).tolist()  # one seed per request, in order
    sampled = {b["messages"][-1]["content"].split(":")[0]: b["seed"] for b in bodies if "n" in b}
    assert sampled == {"Fisher 1": expected[0], "Fisher 2": expected[1]}
    assert [b["seed"] for b in bodies if "n" not in b] == [expected[1]]  # the reply: its request's seed
    assert [b for b in bodies if "n" not in b][0]["stop"] == ["\n"]
    assert policy.usage()["cost_usd"] == pytest.approx(40 * 2.0 / 1e6)  # only the reply reported tokens


def test_stop_strings_reach_the_server_where_their_meaning_survives_and_cut_the_reply(fake_server):
    # The server cuts at any match; the request means "after the first non-blank
    # character". "]" keeps its meaning there, "\n" would empty a reply that opens with
    # a blank line, so it is applied to the reply instead.
    server = fake_server(lambda path, body: (200, _chat("\n roses] and\nmore")))
    policy = _policy(server.url, stop=["END"], prob_source="sampled")
    base = _request("text", 3)
    req = DecisionRequest(**{**base.__dict__, "stop": ("\n", "]"), "parse": lambda text: 1, "score": False})
    [d] = policy.decide([req], np.random.default_rng(0))
    [(_, body)] = server.requests  # the reply alone decides: nothing is scored
    assert body["stop"] == ["END", "]"]
    assert d.text == "\n roses" and d.choice == 1
    assert d.probs.tolist() == [0.0, 1.0, 0.0] and d.info["probs_from"] == "unscored"


def test_a_single_option_request_is_answered_without_the_server(fake_server):
    server = fake_server(lambda path, body: (500, {}))
    policy = _policy(server.url, prob_source="sampled")
    base = _request()
    [d] = policy.decide([DecisionRequest(**{**base.__dict__, "options": ("post",)})], np.random.default_rng(0))
    assert server.requests == [] and d.choice == 0 and d.probs.tolist() == [1.0]


def test_429_and_5xx_are_retried_with_backoff(fake_server, caplog):
    failures = [429, 503]

    def flaky(path, body):
        return (failures.pop(0), {"error": {"message": "busy"}}) if failures else (200, _chat("A", [("A", -0.1)]))

    server = fake_server(flaky)
    caplog.set_level(logging.WARNING, logger="agents.remote.client")
    policy = _policy(server.url, prob_source="topk")
    [d] = policy.decide([_request()], np.random.default_rng(0))
    assert d.probs.tolist() == [1.0, 0.0, 0.0]
    assert len(server.requests) == 3 and policy.usage()["retries"] == 2
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


def test_refusals_and_exhausted_retries_are_one_line_errors(fake_server):
    server = fake_server(lambda path, body: (400, {"error": {"message": "bad request: unknown model"}}))
    with pytest.raises(ServerError, match=r"answered 400 for /chat/completions"):
        _policy(server.url, prob_source="topk").decide([_request()], np.random.default_rng(0))
    down = fake_server(lambda path, body: (503, {"error": {"message": "overloaded"}}))
    with pytest.raises(ServerError) as err:
        _policy(down.url, prob_source="topk", max_retries=1).decide([_request()], np.random.default_rng(0))
    assert "answered 503" in str(err.value) and "after 1 retries" in str(err.value) and "\n" not in str(err.value)


def test_a_missing_key_and_an_unreachable_server_are_clean_cli_errors(tmp_path, capsys, monkeypatch):
    import socket

    import yaml

    from sim.cli import main

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    policy = {"type": "llm", "engine": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "max_retries": 1}
    scenario = {
        "name": "t",
        "environment": {"type": "commons"},
        "population": [{"name": "g", "size": 2, "policy": policy}],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**scenario, "run": {"steps": 1}}))
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: server http://127.0.0.1:") and "unreachable after 1 retries" in err[-1]
    assert not any("Traceback" in line for line in err)

    monkeypatch.delenv("NORMSIM_TEST_KEY", raising=False)
    policy["api_key_env"] = "NORMSIM_TEST_KEY"
    path.write_text(yaml.safe_dump({**scenario, "run": {"steps": 1}}))
    assert main(["-q", "run", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "error: policy.api_key_env: the environment variable NORMSIM_TEST_KEY is not set" in err
    assert "Traceback" not in err


def test_the_key_is_sent_from_the_environment_and_never_stored(fake_server, tmp_path, monkeypatch):
    seen = []
    server = fake_server(lambda path, body: (200, _chat("A", [("A", -0.1)])))
    orig = server.handler

    def capture(path, body):
        seen.append(path)
        return orig(path, body)

    server.handler = capture
    monkeypatch.setenv("NORMSIM_TEST_KEY", "sk-secret-123")
    policy = _policy(server.url, prob_source="topk", api_key_env="NORMSIM_TEST_KEY", cache=str(tmp_path / "c"))
    policy.decide([_request()], np.random.default_rng(0))
    assert seen and not any("sk-secret-123" in p.read_text() for p in (tmp_path / "c").rglob("*.json"))


def test_the_cache_replays_answers_without_the_server(fake_server, tmp_path):
    calls = []

    def answer(path, body):
        calls.append(body["seed"])
        return 200, {
            "choices": [{"index": i, "message": {"content": "BBA"[i % 3]}} for i in range(body["n"])],
            "usage": {},
        }

    server = fake_server(answer)
    cfg = {"prob_source": "sampled", "samples": 3, "cache": str(tmp_path / "cache")}
    first = _policy(server.url, **cfg).decide([_request(agent=a) for a in (1, 2)], np.random.default_rng(3))
    server.close()
    policy = _policy(server.url, **cfg, concurrency=2)  # another server object: only the disk cache is shared
    again = policy.decide([_request(agent=a) for a in (1, 2)], np.random.default_rng(3))
    assert [d.probs.tolist() for d in first] == [d.probs.tolist() for d in again]
    assert [d.choice for d in first] == [d.choice for d in again]
    assert policy.usage()["requests"] == 0 and policy.usage()["cached"] == 2 and len(calls) == 2
    with pytest.raises(ServerError, match="unreachable"):  # another seed is another request: not cached
        policy.decide([_request()], np.random.default_rng(4))


def test_auto_falls_back_to_topk_and_replays_offline(fake_server, tmp_path):
    def chat_only(path, body):
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": "not found"}}
        return 200, _chat("B", [("B", math.log(0.7)), ("A", math.log(0.3))])

    server = fake_server(chat_only)
    cfg = {"cache": str(tmp_path / "cache")}
    [first] = _policy(server.url, **cfg).decide([_request()], np.random.default_rng(1))
    assert first.info["prob_source"] == "topk" and first.probs == pytest.approx([0.3, 0.7, 0.0])
    assert {p for p, _ in server.requests} == {"/tokenize", "/v1/chat/completions"}  # no chat template there
    server.close()
    policy = _policy(server.url, **cfg, concurrency=3)  # a new process's view: probes again, from the cache
    [again] = policy.decide([_request()], np.random.default_rng(1))
    assert again.probs.tolist() == first.probs.tolist() and again.choice == first.choice
    assert policy.usage()["requests"] == 0
