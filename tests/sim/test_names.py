"""Readable names: the last distinct key segments, a group's name for its index, no paths."""

from __future__ import annotations

from sim.names import key_labels, params_slug

GROUPS = ["cooperators", "free_riders"]


def test_labels_are_the_last_distinct_segments_with_group_names():
    labels = key_labels(
        [
            "mechanics.punishment.enabled",
            "mechanics.social_learning.enabled",
            "environment.preset",
            "population.1.persona",
            "population.0.policy.temperature",
        ],
        GROUPS,
    )
    assert labels == {
        "mechanics.punishment.enabled": "punishment.enabled",
        "mechanics.social_learning.enabled": "social_learning.enabled",
        "environment.preset": "preset",
        "population.1.persona": "free_riders.persona",
        "population.0.policy.temperature": "cooperators.temperature",
    }


def test_labels_that_would_clash_grow_until_they_differ():
    labels = key_labels(["mechanics.a.x.enabled", "mechanics.b.x.enabled", "run.steps"])
    assert labels["mechanics.a.x.enabled"] == "a.x.enabled" and labels["mechanics.b.x.enabled"] == "b.x.enabled"
    assert labels["run.steps"] == "steps"


def test_run_names_read_as_the_overrides_and_keep_paths_out():
    both = {"mechanics.punishment.enabled": False, "mechanics.social_learning.enabled": False, "run.steps": 4}
    assert params_slug(both, GROUPS) == "punishment.enabled=false_social_learning.enabled=false_steps=4"
    cached = params_slug({"backend.cache": "/tmp/eval/cache_r", "run.steps": 4}, GROUPS)
    other = params_slug({"backend.cache": "/tmp/other", "run.steps": 4}, GROUPS)
    assert "tmp" not in cached and "cache" not in cached and cached.startswith("steps=4-h")
    assert cached != other  # the path is out of the name, its hash keeps the names apart


def test_a_name_cut_short_gets_a_hash_so_two_long_ones_differ():
    a = {f"mechanics.m{i}.enabled": True for i in range(12)}
    b = a | {"mechanics.m11.enabled": False}
    assert params_slug(a) != params_slug(b) and len(params_slug(a)) <= 130
    assert params_slug(a).split("-h")[0].endswith("=true")  # cut between parts, never inside a value
    assert "-h" not in params_slug({"environment.preset": "rich"})  # a short, exact name needs no hash
