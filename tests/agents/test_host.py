"""Model hosts on Ray: merged batches, identical runs, crash recovery (tiny random model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.host import RemoteBackend, ensure_hosts, host_names, stop_hosts
from sim.backend import BackendConfig, host_resources
from sim.config import LLMPolicyConfig, load_scenario
from sim.schema import ConfigError
from sim.sweep import run_sweep

TINY = LLMPolicyConfig(model="tiny-random-llama")
BASE = {
    "name": "tiny_llm",
    "environment": {"type": "commons", "preset": "rich"},
    "population": [
        {"name": "a", "size": 2, "persona": "altruistic", "policy": {"type": "llm", "model": "tiny-random-llama"}},
        {
            "name": "b",
            "size": 1,
            "persona": "selfish",
            "policy": {"type": "llm", "model": "tiny-random-llama", "temperature": 0.7},
        },
    ],
    "mechanics": {"punishment": {"enabled": True}, "group_norm": {"enabled": True, "every": 2}},
    "run": {"steps": 2},
}


def write_sweep(tmp_path, **backend):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    sweep = {"base": "base.yaml", "seeds": 3, "backend": {"kind": "ray", **backend}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    return tmp_path / "sweep.yaml"


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    """The reference: the same sweep run in this process, without Ray."""
    root = tmp_path_factory.mktemp("local")
    result = run_sweep(write_sweep(root), root / "out", backend={"kind": "local"})
    assert not result.failed
    return root / "out"


def events(root, name):
    return pd.read_parquet(root / "runs" / name / "events.parquet")


def score_items(k: int):
    from agents.llm.backend import ScoreItem

    system = "You are one of 5 fishers sharing a lake."
    return [ScoreItem(system, f"Month {k}: how much do you catch?", "I catch ", ("10% of the stock", "no fish")),
            ScoreItem(system, f"Do you fine fisher {k}?", "Answer: ", ("yes", "no"))]  # fmt: skip


def test_backend_block_is_validated_and_sizes_hosts(ray_cluster):
    scenario = load_scenario({**BASE, "backend": {"kind": "ray", "hosts": 2, "num_gpus": 0.25}})
    assert scenario.backend.hosts == 2 and scenario.backend.num_gpus == 0.25
    with pytest.raises(ConfigError, match="did you mean 'num_gpus'"):
        load_scenario({**BASE, "backend": {"kind": "ray", "num_gpu": 1}})
    # On CPU a host claims its share of the cores (so torch keeps its threads); with a GPU, one core.
    assert host_resources(BackendConfig(kind="ray")) == {"num_cpus": 2.0, "num_gpus": 0.0}
    assert host_resources(BackendConfig(kind="ray", hosts=4)) == {"num_cpus": 0.5, "num_gpus": 0.0}
    assert host_resources(BackendConfig(kind="ray", num_gpus=0.5)) == {"num_cpus": 1.0, "num_gpus": 0.5}


def test_host_merges_concurrent_batches_into_one_call(ray_cluster):
    from agents.llm import get_backend

    backend = BackendConfig(kind="ray", batch_wait_ms=300)
    host = ensure_hosts(TINY, backend)[0]
    before = ray_cluster.get(host.ready.remote())
    answers = ray_cluster.get([host.score.remote(score_items(k)) for k in range(3)])  # sent together
    stats = ray_cluster.get(host.ready.remote())
    assert stats["backend_calls"] - before["backend_calls"] == 1
    assert stats["requests"] - before["requests"] == 3 and stats["items"] - before["items"] == 6
    assert stats["threads"] == 2  # the host claimed both cores, and torch uses them
    local = get_backend("tiny-random-llama")
    for k, answer in enumerate(answers):
        for got, want in zip(answer, local.score(score_items(k)), strict=True):
            np.testing.assert_allclose(got.logprobs, want.logprobs, atol=1e-4)


def test_proxy_starts_a_fresh_host_when_its_host_is_gone(ray_cluster):
    backend = BackendConfig(kind="ray", batch_wait_ms=300)
    proxy = RemoteBackend(TINY, backend)
    first = proxy.score(score_items(0))
    ray_cluster.kill(ray_cluster.get_actor(proxy.host), no_restart=True)  # dead for good
    again = proxy.score(score_items(0))  # retried: the lookup fails, a new host starts
    np.testing.assert_array_equal(first[0].logprobs, again[0].logprobs)
    stop_hosts(TINY, backend)


def test_llm_sweep_on_a_host_matches_local_exactly_even_when_the_host_is_killed(ray_cluster, local_runs, tmp_path):
    # Exact mode (no merging across simulations) makes every run bit-identical to local.
    backend = BackendConfig(kind="ray", workers=2, merge_batches=False)
    (name,) = host_names(TINY, backend)
    kills, alive = [], []

    def kill_host(row, done, total):
        if done == 1:  # the other simulation is still running
            ray_cluster.kill(ray_cluster.get_actor(name), no_restart=False)
            kills.append(row["run"])
        elif done == 2:  # restarted and serving again
            alive.append(ray_cluster.get(ray_cluster.get_actor(name).ready.remote()))

    result = run_sweep(write_sweep(tmp_path, workers=2, merge_batches=False), tmp_path / "out", on_run=kill_host)
    assert kills and alive and not result.failed and set(result.results["status"]) == {"finished"}
    assert len(result.results) == 3
    for run in result.results["run"]:  # nothing lost, nothing changed
        pd.testing.assert_frame_equal(events(tmp_path / "out", run), events(local_runs, run), check_exact=True)
    with pytest.raises(ValueError):  # the sweep stopped its host, freeing its CPUs
        ray_cluster.get_actor(name)
