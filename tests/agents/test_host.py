"""Model hosts on Ray: merged batches, identical runs, crash recovery (tiny random model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.cluster import host_resources
from agents.config import BackendConfig, LLMPolicyConfig
from agents.host import RemoteBackend, ensure_hosts, host_names, host_stats, stop_hosts, vector_key
from sim.config import load_scenario
from sim.core.schema import ConfigError
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


def write_sweep(tmp_path, base=BASE, seeds=3, **backend):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    # no sweep report: it is tested in tests/sim/test_sweep.py and costs seconds of plotting
    sweep = {"base": "base.yaml", "seeds": seeds, "backend": {"kind": "ray", **backend}, "report": False}
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
    from agents.llm.types import ScoreItem

    system = "You are one of 5 fishers sharing a lake."
    return [
        ScoreItem(system, f"Month {k}: how much do you catch?", "I catch ", ("10% of the stock", "no fish")),
        ScoreItem(system, f"Do you fine fisher {k}?", "Answer: ", ("yes", "no")),
    ]


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


# ------------------------------------------------------------------------ steering
def save_vector(directory, seed: int = 1):
    """A random two-layer vector for the tiny model, strong enough to move its decisions."""
    import torch

    from steering.vectors import SteeringVector

    gen = torch.Generator().manual_seed(seed)
    dirs = {layer: torch.randn(64, generator=gen) for layer in (0, 1)}
    vector = SteeringVector(
        directions=dirs, model_id="tiny-random-llama", hidden_size=64, num_layers=2, method="random"
    )
    return str(vector.save(directory / f"random{seed}"))


def steer_spec(vector: str, coefficient: float = 6.0):
    from steering.config import SteerSpec

    return SteerSpec(vector=vector, layers=(0, 1), coefficient=coefficient, positions="last_prompt+generated")


def steered(items, spec):
    from dataclasses import replace

    return [replace(item, steer=spec) for item in items]


def logprobs(results):
    return np.concatenate([r.logprobs for r in results])


def test_a_vector_is_registered_once_per_host_by_content_and_again_after_a_restart(ray_cluster, tmp_path):
    from agents.llm import get_backend

    backend = BackendConfig(kind="ray", batch_wait_ms=0, retries=2)
    path = save_vector(tmp_path)
    proxy = RemoteBackend(TINY, backend)
    key = proxy.register_vector(path)
    host = ray_cluster.get_actor(proxy.host)
    tensors, meta = Path(path).read_bytes(), Path(path).with_suffix(".json").read_bytes()
    assert key == vector_key(tensors, meta)
    assert ray_cluster.get(host.register_vector.remote(key, tensors, meta)) is False  # known: a no-op
    # a copy elsewhere (another run's directory) has the same content, hence the same key
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "v.safetensors").write_bytes(tensors)
    (copy / "v.json").write_bytes(meta)
    assert RemoteBackend(TINY, backend).register_vector(str(copy / "v")) == key
    with pytest.raises(ValueError, match="does not match its key"):
        ray_cluster.get(host.register_vector.remote("0" * 64, tensors, meta))

    items = score_items(1)
    local = get_backend("tiny-random-llama")
    want = logprobs(local.score(steered(items, steer_spec(path))))
    assert not np.allclose(want, logprobs(local.score(items)), atol=1e-2)  # the vector matters
    np.testing.assert_array_equal(logprobs(proxy.score(steered(items, steer_spec(path)))), want)
    ray_cluster.kill(host, no_restart=False)  # Ray restarts it, without its vectors
    np.testing.assert_array_equal(logprobs(proxy.score(steered(items, steer_spec(path)))), want)
    assert ray_cluster.get(ray_cluster.get_actor(proxy.host).register_vector.remote(key, tensors, meta)) is False
    # a vector for another model fails when the policy is built, as it does locally
    import torch

    from agents.factory import build_policy
    from steering.config import SteeringConfig
    from steering.vectors import SteeringVector, VectorMismatch

    other = SteeringVector(
        directions={0: torch.ones(32)}, model_id="other", hidden_size=32, num_layers=2, method="random"
    ).save(tmp_path / "other")
    with pytest.raises(VectorMismatch, match="hidden size 32"):
        build_policy(TINY, "commons", backend, SteeringConfig(vector=str(other), coefficient=1.0))
    # the local checks hold on a host too: one builder for both
    with pytest.raises(ValueError, match=r"capture_layers \[2\]: model 'tiny-random-llama' has decoder layers 0..1"):
        build_policy(TINY.model_copy(update={"capture_layers": [2]}), "commons", backend)
    front = build_policy(TINY, "commons", backend)
    assert front.describe() == local.describe() and front.describe()["attention_path"] == "shared_prefix"
    stop_hosts(TINY, backend)


def test_steered_and_unsteered_requests_merged_into_one_call_keep_their_own_rows(ray_cluster, tmp_path):
    from agents.llm import get_backend

    backend = BackendConfig(kind="ray", batch_wait_ms=300)
    path = save_vector(tmp_path)
    proxy = RemoteBackend(TINY, backend)
    key = proxy.register_vector(path)
    host = ray_cluster.get_actor(proxy.host)
    requests = {  # three simulations: one steered, one unsteered, one steered the other way
        "steered": (steer_spec(key), steer_spec(path)),
        "plain": (None, None),
        "negative": (steer_spec(key, -6.0), steer_spec(path, -6.0)),
    }
    before = ray_cluster.get(host.ready.remote())
    refs = {name: host.score.remote(steered(score_items(2), sent)) for name, (sent, _) in requests.items()}
    answers = {name: ray_cluster.get(ref) for name, ref in refs.items()}
    after = ray_cluster.get(host.ready.remote())
    assert after["backend_calls"] - before["backend_calls"] == 1 and after["requests"] - before["requests"] == 3
    local = get_backend("tiny-random-llama")
    for name, (_, spec) in requests.items():  # each as if it had been served alone, in-process
        np.testing.assert_allclose(
            logprobs(answers[name]), logprobs(local.score(steered(score_items(2), spec))), atol=1e-4
        )
    assert not np.allclose(logprobs(answers["steered"]), logprobs(answers["plain"]), atol=1e-2)
    with pytest.raises(LookupError):  # a key the host never saw
        ray_cluster.get(host.score.remote(steered(score_items(2), steer_spec("f" * 64))))
    stop_hosts(TINY, backend)


def assert_same_events(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal event logs, probabilities to float rounding (merged batches pad differently)."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        if column in ("probs", "entropy"):  # probs: one array per row, of its request's option count
            np.testing.assert_allclose(np.hstack(a[column]), np.hstack(b[column]), atol=1e-5)
        else:
            pd.testing.assert_series_equal(a[column], b[column], check_exact=True)


def test_steered_and_unsteered_simulations_sharing_one_host_equal_their_local_runs(ray_cluster, tmp_path):
    path = save_vector(tmp_path)
    grid = {"grid": {"population.0.steering": [None, {"vector": path, "coefficient": 6.0}]}}
    sweep = yaml.safe_load(write_sweep(tmp_path, seeds=1).read_text()) | grid
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    local = run_sweep(tmp_path / "sweep.yaml", tmp_path / "local", backend={"kind": "local"})
    backend = BackendConfig(kind="ray", workers=2)  # merging on: floats may differ from local by rounding
    ensure_hosts(TINY, backend)  # started here, so its counters outlive the sweep
    on_ray = run_sweep(tmp_path / "sweep.yaml", tmp_path / "ray", backend=backend.model_dump())
    (stats,) = host_stats(TINY, backend)
    stop_hosts(TINY, backend)
    assert not local.failed and not on_ray.failed and len(on_ray.results) == 2
    logs = []
    for run in on_ray.results["run"]:
        logs.append(events(tmp_path / "ray", run))
        assert_same_events(logs[-1], events(tmp_path / "local", run))
    # Every batch of both simulations went to the one host (one request per step and phase;
    # in the steered run each holds group a's steered rows and group b's plain ones).
    # Whether two simulations' batches meet in one call depends on timing, so merging
    # across simulations is asserted deterministically in the test above.
    assert stats["requests"] == sum(len(log[["step", "phase"]].drop_duplicates()) for log in logs)
    plain, steered_run = sorted(logs, key=lambda log: log["steer_vector"].notna().any())
    assert plain["steer_vector"].isna().all()
    a, b = steered_run[steered_run["group"] == "a"], steered_run[steered_run["group"] == "b"]
    assert (a["steer_vector"] == "random1@0,1:add").all() and (a["steer_coef"] == 6.0).all()
    assert b["steer_vector"].isna().all()
    # the vector changed group a's first decisions, and not group b's
    first = {
        name: log[(log["step"] == 1) & (log["phase"] == "harvest")] for name, log in (("p", plain), ("s", steered_run))
    }
    probs = {
        name: {g: np.stack(rows[rows["group"] == g]["probs"].tolist()) for g in "ab"} for name, rows in first.items()
    }
    assert not np.allclose(probs["s"]["a"], probs["p"]["a"], atol=1e-3)
    np.testing.assert_allclose(probs["s"]["b"], probs["p"]["b"], atol=1e-5)


def test_forum_guardian_and_moderator_are_served_by_hosts_under_a_ray_backend(ray_cluster):
    from environments.forum.guardian import GUARDIAN_GROUP
    from environments.forum.model import ForumModel
    from environments.forum.moderation import MODERATOR_GROUP
    from sim.runner import build_policies
    from tests.environments.forum.helpers import BASE as FORUM

    llm = {"type": "llm", "model": "tiny-random-llama"}
    environment = {
        **FORUM["environment"],
        "guardian": {"mode": "llm", "policy": llm},
        "moderation": {"mode": "agent", "policy": llm},
    }
    for kind, proxied in (("ray", True), ("local", False)):
        scenario = load_scenario({**FORUM, "environment": environment, "backend": {"kind": kind}})
        model = ForumModel(scenario, build_policies(scenario))
        for office in (GUARDIAN_GROUP, MODERATOR_GROUP):
            assert isinstance(model.policies[office].backend, RemoteBackend) is proxied, (kind, office)
