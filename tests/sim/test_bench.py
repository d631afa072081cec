"""`normsim bench` machinery on the tiny random model: files, keys, table, and ratios taken from measured numbers.

No timing is asserted: only that what the report says is computed from what was measured.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sim.bench import SECTIONS, envbench, plan_for, run_bench
from sim.bench import report as bench_report
from sim.bench.envs import trie_keys, trie_nodes
from sim.bench.throughput import agreement

TINY = plan_for(
    True,
    model="tiny-random-llama",
    agents=(3,),
    prompt_warmup=0,
    repeats=1,
    max_new_tokens=3,
    samples=4,
    entropy_decisions=2,
    hf_entropy_decisions=1,
    peak_seconds=0.05,
    peak_size=128,
    steer_batch=2,
    steer_prompt_len=6,
    steer_repeats=1,
    steer_rounds=2,
    env_agents=(5,),
    env_repeats=2,
    env_warmup=0,
    scale_agents=(8, 16),
    sections=("throughput", "entropy", "hardware", "environments", "scale", "steering", "cuda"),
)


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    results = run_bench(True, "cpu", out, plan=TINY, progress=False)
    return out, results


def test_bench_writes_json_and_markdown_with_every_section(tiny_bench):
    out, results = tiny_bench
    data = json.loads((out / "bench.json").read_text())
    for name in TINY.sections:
        if name == "environments":
            continue
        assert name in data and "error" not in data[name], data[name].get("traceback")
    assert set(data["targets"]) == set(bench_report.TARGETS)
    variants = data["throughput"]["sizes"]["3"]["variants"]
    assert set(variants) == {"naive_generate", "per_agent_scoring", "batched_scoring", "batched_prefix"}
    # All scorers give the same distributions (the check itself is recorded).
    agree = data["throughput"]["sizes"]["3"]["agreement"]
    assert (
        agree["ok"] and agree["worst"] < 1e-4 and set(agree["max_abs_diff"]) == {"per_agent_scoring", "batched_scoring"}
    )
    assert data["cuda"]["skipped"] or data["cuda"]["gpu"]
    md = (out / "bench.md").read_text()
    assert "| figure | value | ratio | target | met? |" in md
    assert "| Decisions/s, 3 agents: batched + shared-prefix reuse |" in md
    assert "## Targets" in md and "memory growth from 10 to 100 agents ≤ 10 %: **not measured**" in md


def test_every_registered_environment_has_its_own_section_with_spreads(tiny_bench):
    import environments
    from sim.bench.measure import reference_environment

    out, _ = tiny_bench
    data = json.loads((out / "bench.json").read_text())
    ref = reference_environment()
    reference = data[f"env:{ref}"]["sizes"]["5"]["steps"]

    def row_of(figure):
        return next((r for r in data["table"] if r["figure"] == figure), None)

    for name in environments.names():
        sec = data[f"env:{name}"]
        size = sec["sizes"]["5"]
        assert size["reference"] == ref
        assert "error" not in size, size
        steps = size["steps"]
        assert len(steps) == TINY.env_repeats and all(s["decisions"] > 0 for s in steps)
        # the spread is the min / median / max of the per-step values
        ratios = sorted(s["tokens_ratio"] for s in steps)
        assert size["tokens_ratio"]["min"] == ratios[0] and size["tokens_ratio"]["max"] == ratios[-1]
        assert all(s["tokens_ratio"] == pytest.approx(s["computed"] / s["distinct"], abs=1e-3) for s in steps)
        assert all(s["padded"] >= s["computed"] > 0 for s in steps)
        ratios = [s["decisions_per_second"] / r["decisions_per_second"] for s, r in zip(steps, reference, strict=True)]
        assert size["vs_reference"]["min"] == pytest.approx(min(ratios), rel=1e-2, abs=2e-3)
        assert (row_of(f"{name}, 5 agents: decisions/s vs {ref}") is None) == (name == ref)
        row = next(r for r in data["table"] if r["figure"] == f"{name}, 5 agents: tokens computed / distinct")
        assert row["met"] == envbench.standing(size["tokens_ratio"], lambda v: v <= 1.3)
    # some environment is the fastest in each repeat
    for r in range(TINY.env_repeats):
        best = max(data[f"env:{n}"]["sizes"]["5"]["steps"][r]["decisions_per_second"] for n in environments.names())
        assert best > 0
    scale = data["scale"]["environments"]
    assert scale and all(set(res["seconds_per_agent_step"]) == {"8", "16"} for res in scale.values())
    assert data["steering"]["rounds"] == 2 and set(data["steering"]["worst_overhead_pct_spread"]) == {"1", "4"}


def test_a_target_is_missed_only_when_the_whole_spread_misses_it():
    below = lambda v: v <= 1.3  # noqa: E731
    assert envbench.standing({"min": 1.0, "median": 1.1, "max": 1.2}, below) is True
    assert envbench.standing({"min": 1.2, "median": 1.4, "max": 1.6}, below) == "within spread"
    assert envbench.standing({"min": 1.4, "median": 1.5, "max": 1.6}, below) is False
    assert envbench.standing(None, below) is None


def test_an_interrupted_bench_keeps_the_sections_it_finished(tmp_path, monkeypatch):
    import sim.bench as bench_mod

    def interrupted(bench):
        raise KeyboardInterrupt

    monkeypatch.setitem(bench_mod._SECTION_FUNCS, "scale", interrupted)
    plan = dataclasses.replace(TINY, sections=("hardware", "scale"))
    with pytest.raises(KeyboardInterrupt):
        run_bench(True, "cpu", tmp_path, plan=plan, progress=False)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert "hardware" in data and "error" not in data["hardware"] and "scale" not in data


def test_prefix_tree_counts_each_distinct_token_once():
    assert trie_nodes([[1, 2, 3], [1, 2, 4], [5], [1, 2, 3]]) == 5
    assert trie_nodes([]) == 0
    # keys attended: positions 0, 1, 2 of [1, 2, 3], position 2 of [1, 2, 4], position 0 of [5]
    assert trie_keys([[1, 2, 3], [1, 2, 4], [5], [1, 2, 3]]) == 1 + 2 + 3 + 3 + 1


def test_the_hardware_count_is_what_an_engine_sharing_every_run_computes():
    """With every shared run in the prefix tree, the engine computes each distinct token
    once: the count of needed tokens and kept logits equals what its forwards ran."""
    from agents.llm.backend import ScoreItem
    from agents.llm.scoring import score_items
    from agents.llm.testing import tiny_backend
    from sim.bench.hardware import decision_tokens

    backend = tiny_backend(seed=2, tree_min_tokens=1, tree_depth=64)
    engine = backend.engine
    feed = "Your feed:\n#1 @3: the council should fund the park.\n"
    users = [feed + "You lean in favour.", feed + "You are new here.", "Nothing in your feed.", feed + "Hi."]
    items = [
        ScoreItem("Be civil.", u, "I choose to ", ("do nothing", "upvote #1", "upvote #2", "report #1")) for u in users
    ]
    ran, kept = 0, 0

    def counting(ctx, ids, *args, **kwargs):
        nonlocal ran, kept
        ran += int(ctx.valid.sum())
        if ctx.stage == "context":
            cont = ctx.continuation
            kept += ids.shape[0] + (0 if cont is None else int(cont.sum()))
        return inner(ctx, ids, *args, **kwargs)

    inner = engine.forward
    engine.forward = counting
    try:
        engine.clear_prefix_cache()
        score_items(engine, items)
    finally:
        del engine.forward
    tokens = decision_tokens(backend, items)
    assert tokens["options"] > 0 and tokens["needed"] == ran and tokens["logits"] == kept


def test_ratios_come_from_the_measured_seconds(tiny_bench):
    out, _ = tiny_bench
    data = json.loads((out / "bench.json").read_text())
    size = data["throughput"]["sizes"]["3"]
    naive = size["variants"]["naive_generate"]["seconds"]
    prefix = size["variants"]["batched_prefix"]["seconds"]
    for v in size["variants"].values():
        assert v["seconds"] == min(v["all_seconds"])
        assert v["ratio"] == pytest.approx(naive / v["seconds"], rel=0.01, abs=0.01)
    stand = data["targets"]["prefix_vs_generate"]
    assert stand["value"] == pytest.approx(naive / prefix, rel=0.01) and stand["met"] == (naive / prefix >= 5)
    row = next(r for r in data["table"] if r["figure"] == "Decisions/s, 3 agents: batched + shared-prefix reuse")
    assert row["ratio"] == f"{naive / prefix:.2f}×"
    ways = data["entropy"]["ways"]
    ratio = ways["sampled_hf"]["seconds_per_decision"] / ways["exact"]["seconds_per_decision"]
    assert data["targets"]["exact_entropy"]["value"] == pytest.approx(ratio, rel=0.01)
    hw = data["hardware"]["sizes"]["3"]
    assert hw["fraction_of_peak"] == pytest.approx(
        hw["flops"] / hw["seconds"] / data["hardware"]["matmul_peak_flops_per_second"], rel=0.01
    )
    assert hw["tokens"]["needed"] == hw["tokens"]["prefix"] + hw["tokens"]["context"] + hw["tokens"]["options"]
    assert hw["tokens"]["padded"] >= hw["tokens"]["needed"]
    assert data["hardware"]["profile"]["seconds"]["matmul"] > 0


def test_table_and_targets_from_synthetic_numbers():
    def size(naive, prefix):
        variants = {
            name: {"seconds": s, "all_seconds": [s]}
            for name, s in (
                ("naive_generate", naive),
                ("per_agent_scoring", 4.0),
                ("batched_scoring", 3.0),
                ("batched_prefix", prefix),
            )
        }
        return {"agents": 16, "variants": variants, "agreement": {"worst": 1e-7, "tolerance": 1e-4, "ok": True}}

    results = {
        "throughput": {"sizes": {"16": size(10.0, 2.0)}},
        "memory": {"rows": [{"agents": 10, "peak_rss_mb": 1000.0}, {"agents": 100, "peak_rss_mb": 1101.0}]},
        "steering": {"batch": 16, "worst_overhead_pct": {"1": 4.9, "4": 12.0}},
        "entropy": {
            "samples": 25,
            "ways": {
                "exact": {"seconds_per_decision": 0.1},
                "sampled_hf": {"seconds_per_decision": 2.4, "mean_abs_error": 0.2, "max_abs_error": 0.5},
            },
        },
        "sweep": {"error": "RuntimeError: no Ray"},
    }
    rows, standings = bench_report.table(results)
    assert standings["prefix_vs_generate"] == {
        "target": bench_report.TARGETS["prefix_vs_generate"],
        "value": 5.0,
        "met": True,
        "at": "16 agents",
    }
    assert standings["memory_growth"]["met"] is False and standings["memory_growth"]["value"] == pytest.approx(10.1)
    assert standings["steering_overhead"]["met"] is True
    assert standings["exact_entropy"]["value"] == pytest.approx(24.0) and standings["exact_entropy"]["met"] is False
    assert standings["hardware_fraction"]["met"] is None  # not measured
    assert any(r["figure"] == "sweep: not measured" and "no Ray" in r["value"] for r in rows)
    md = bench_report.markdown({"meta": {}}, rows, standings)
    assert (
        "| Peak RSS, 100 agents deciding | 1101 MB | +10.1 % (+10.1 to +10.1) | ≤ 10 % over 10 agents | **no** |" in md
    )
    # with a spread that straddles the target, it is not missed
    results["memory"]["growth_pct_spread"] = {"min": 8.0, "median": 10.1, "max": 12.0}
    results["steering"]["worst_overhead_pct_spread"] = {"1": {"min": 6.0, "median": 7.0, "max": 9.0}}
    _, standings = bench_report.table(results)
    assert standings["memory_growth"]["met"] == "within spread" and standings["steering_overhead"]["met"] is False


def test_agreement_flags_scorers_that_disagree():
    p = np.array([0.2, 0.8])
    assert agreement({"batched_prefix": [p], "batched_scoring": [p + 1e-6]})["ok"]
    bad = agreement({"batched_prefix": [p], "batched_scoring": [p], "per_agent_scoring": [p + [1e-3, -1e-3]]})
    assert not bad["ok"] and bad["max_abs_diff"]["per_agent_scoring"] == pytest.approx(1e-3)


def test_memory_child_reports_its_peak():
    from sim.bench.memory import growth, run_child

    row = run_child("tiny-random-llama", 3, environment="bandit")
    assert row["agents"] == 3 and row["peak_rss_mb"] >= row["rss_before_mb"] * 0.9 > 0
    assert growth([{"peak_rss_mb": 100.0}, {"peak_rss_mb": 105.0}]) == 5.0


def test_gpu_model_has_about_a_billion_parameters_and_cpu_skips_it():
    from sim.bench import Bench, cuda

    assert 0.9e9 < cuda.parameter_count(cuda.llama_config(49152)) < 1.3e9
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        assert "no CUDA device" in cuda.section(Bench(TINY, "cpu", TINY.model))["skipped"]


def test_cli_has_the_bench_command():
    from sim.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--device", "cpu", "--out", "x"])
    assert args.quick and args.device == "cpu" and args.out == "x"
    assert set(SECTIONS) >= set(TINY.sections)


def test_sweep_section_runs_the_same_simulations_on_one_shared_host_and_on_one_host_each(ray_cluster):
    from sim.bench import Bench
    from sim.bench import sweep as bench_sweep

    plan = plan_for(True, model="tiny-random-llama", sweep_sims=2, sweep_agents=2, sweep_steps=1, sweep_repeats=1)
    sec = bench_sweep.section(Bench(plan, "cpu", "tiny-random-llama"))
    shared, each = sec["settings"]["shared_host"], sec["settings"]["host_each"]
    assert (shared["hosts"], each["hosts"]) == (1, 2)
    assert shared["decisions"] == each["decisions"] > 0  # the same seeds decide the same number of times
    assert shared["failed"] == each["failed"] == 0
    assert sec["ratio"] == round(each["seconds"] / shared["seconds"], 2)
    rows = bench_report.sweep_rows(sec, {})
    assert [r["figure"] for r in rows] == [
        "Sweep, 2 simulations: one host each",
        "Sweep, 2 simulations: one shared host",
    ]


def test_recorded_requests_carry_the_prompts_an_llm_would_read():
    from sim.bench.measure import env_requests

    requests = env_requests("bandit", 4, warmup=1)
    assert len(requests) == 4 and all(r.prompt.user and r.prompt.system for r in requests)


def test_a_scale_step_hands_over_its_event_rows_as_a_run_does():
    """Rows left on the model would pile up step after step (a run writes them out), and
    collecting over them would make large societies look dearer per agent."""
    from sim.bench import scale

    model = scale.build("public_goods", 48)
    for _ in range(2):
        scale._step(model)
        assert model.step_events == []
    assert int(model.steps) == 2


def test_the_scale_bench_compares_steps_of_running_societies(monkeypatch):
    """Each round times a fresh society of each size; a step that ended a society is
    left out, and each ratio pairs the same step of the same round."""
    from sim.bench import scale

    stepped: list[tuple[int, bool]] = []
    real_step = scale._step

    def step(model):
        stepped.append((len(model.agents), bool(model.running)))
        real_step(model)
        if len(model.agents) == 16 and int(model.steps) == 2:
            model.running = False  # the larger society ends in its second step

    monkeypatch.setattr(scale, "_step", step)
    res = scale.measure("bandit", [8, 16], steps=3, warmup=0, rounds=2)
    assert all(running for _, running in stepped)
    assert [n for n, _ in stepped] == [8, 8, 8, 16, 16] * 2
    assert res["ended"] == {"8": 0, "16": 2}
    ratio = res["ratio"]
    assert ratio is not None and ratio["min"] <= ratio["median"] <= ratio["max"]


# ---------------------------------------------------------------- live decisions only
def _degenerate(n=3):
    """Live commons requests with every option rewritten to read "0 tons" (a fished-out lake)."""
    from sim.bench.measure import env_requests

    return [dataclasses.replace(r, options=("0 tons",) * 7) for r in env_requests("commons", n, warmup=0)]


def test_the_bench_takes_the_latest_live_step_not_a_fished_out_one():
    """At 16 scripted agents the example commons is fished out within three steps: the
    step after the warm-up has only "0 tons" options; the bench takes the latest live one."""
    from sim.bench.live import same_options
    from sim.bench.measure import env_requests

    dead = env_requests("commons", 16, warmup=3, live=False)
    assert all(same_options(r) for r in dead)  # the input the bench measured before
    live = env_requests("commons", 16, warmup=3)
    assert len(live) == 16 and not any(same_options(r) for r in live)


def test_engine_sections_fail_on_requests_whose_options_read_the_same(tmp_path, monkeypatch):
    from sim.bench import Bench, failed_section
    from sim.bench.live import DegenerateRequests
    from sim.bench.server import compare

    degenerate = _degenerate()
    monkeypatch.setattr(Bench, "requests", lambda self, n: degenerate)
    plan = dataclasses.replace(TINY, sections=("throughput", "entropy", "hardware"), profile=False)
    results = run_bench(True, "cpu", tmp_path, plan=plan, progress=False)
    for name in plan.sections:
        assert failed_section(results[name])
        assert "DegenerateRequests" in results[name]["error"] and "'0 tons'" in results[name]["error"]
        assert "\n" not in results[name]["error"]  # one line
    # The server comparison refuses them before it asks any server.
    with pytest.raises(DegenerateRequests, match="server, 3 agents"):
        compare(degenerate, None, "http://127.0.0.1:9/v1")


def test_a_section_fails_when_its_decisions_are_near_uniform(monkeypatch):
    """Distinct options, but every scorer returns the uniform distribution: every scorer
    agrees, and that proves nothing, so the throughput section refuses it."""
    from agents.llm import get_backend
    from sim.bench import throughput
    from sim.bench.live import DegenerateRequests, check_distributions
    from sim.bench.measure import env_requests

    requests = env_requests("commons", 3, warmup=0)

    def uniform(backend, max_new_tokens, last_replies=None):
        flat = lambda reqs: [np.full(len(r.options), 1 / len(r.options)) for r in reqs]  # noqa: E731
        return {
            name: (lambda reqs: [None] * len(reqs)) if name == "naive_generate" else flat
            for name in throughput.VARIANTS
        }

    monkeypatch.setattr(throughput, "variants", uniform)
    with pytest.raises(DegenerateRequests, match="near uniform"):
        throughput.measure(get_backend("tiny-random-llama"), requests, repeats=1)
    stats = check_distributions([np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.3, 0.2])], "x")
    assert stats["max_minus_min"] == {"min": 0.3, "median": 0.45, "max": 0.6}


def test_a_disagreeing_scorer_fails_the_throughput_section(tmp_path, monkeypatch):
    from sim.bench import failed_section, throughput

    real = throughput.variants

    def skewed(backend, max_new_tokens, last_replies=None):
        fns = real(backend, max_new_tokens, last_replies)
        inner = fns["per_agent_scoring"]

        def off(reqs):
            return [p + np.eye(len(p))[0] * 1e-3 - np.eye(len(p))[1] * 1e-3 for p in inner(reqs)]

        return {**fns, "per_agent_scoring": off}

    monkeypatch.setattr(throughput, "variants", skewed)
    plan = dataclasses.replace(TINY, sections=("throughput",))
    results = run_bench(True, "cpu", tmp_path, plan=plan, progress=False)
    sec = results["throughput"]
    assert failed_section(sec) and "error" not in sec
    agree = sec["sizes"]["3"]["agreement"]
    assert agree["max_abs_diff"]["per_agent_scoring"] == pytest.approx(1e-3, rel=1e-3)
    assert agree["per_decision"]["per_agent_scoring"]["min"] <= agree["per_decision"]["per_agent_scoring"]["max"]
    assert "scorers disagree" in sec["failed_checks"][0]
    rows = json.loads((tmp_path / "bench.json").read_text())["table"]
    assert any(r["figure"] == "throughput: check failed" and r["met"] is False for r in rows)
    live = sec["sizes"]["3"]["live"]["max_minus_min"]
    assert live["median"] >= 0.05  # the tiny model's live decisions are far from uniform


def test_server_agreement_beyond_tolerance_is_a_failed_check():
    from sim.bench.server import TOLERANCE, check_agreement

    assert check_agreement(TOLERANCE / 10, 16) == []
    assert "differ from the built-in engine's by up to" in check_agreement(TOLERANCE * 2, 16)[0]


# ------------------------------------------------------------------------ the GPU check
def _tiny_check_plan():
    from sim.bench import gpucheck

    small = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
    return dataclasses.replace(
        gpucheck.DRY,
        model="tiny-random-llama",
        agents=(3, 5),
        exact_agents=2,
        big_shape={**gpucheck.DRY.big_shape, **small, "num_key_value_heads": 2},
        peak_size=64,
        peak_seconds=0.05,
        steer_batch=2,
        steer_prompt_len=6,
        steer_repeats=1,
    )


def test_the_gpu_check_script_runs_end_to_end_on_cpu(tmp_path):
    from sim.bench import gpucheck

    printed: list[str] = []
    results = gpucheck.run(_tiny_check_plan(), tmp_path, echo=printed.append)
    assert gpucheck.failed(results) == [], [results[p].get("traceback") for p in gpucheck.PARTS]
    data = json.loads((tmp_path / "gpu-check.json").read_text())
    ex = data["exactness"]
    assert set(ex) == {"tiny-random-llama", "random-llama-small", "ok", "seconds"} and ex["ok"] is True
    for model in ("tiny-random-llama", "random-llama-small"):
        for dt in ("float32", "bfloat16"):
            row = ex[model][dt]
            assert set(row["paths"]) == {"shared_prefix", "no_prefix_reuse"}
            worst = max(p["max_abs_logprob_diff"]["max"] for p in row["paths"].values())
            assert worst <= row["tolerance_logprob"]
        assert ex[model]["float32"]["paths"]["shared_prefix"]["max_abs_logprob_diff"]["max"] < 1e-4
    sizes = data["commons"]["sizes"]
    assert set(sizes) == {"3", "5"}
    for n, row in sizes.items():
        assert row["decisions_per_second"] == pytest.approx(int(n) / min(row["seconds"]), rel=0.02)
        assert row["pct_of_bf16_peak"] > 0
    assert set(data["steering"]["worst_overhead_pct"]) == {"1", "4"}
    text = "\n".join(printed)
    assert "exactness tiny-random-llama float32" in text and "    3 agents:" in text and "steering overhead" in text
    assert (tmp_path / "gpu-check.md").read_text().count("exactness") >= 4


def test_the_eager_reference_is_the_engine_oracle_and_a_wrong_engine_misses_it(monkeypatch):
    from agents.llm.backend import Backend, ScoreItem
    from agents.llm.scoring import score_reference
    from agents.llm.testing import tiny_llama, tiny_tokenizer
    from sim.bench import exactness
    from sim.bench.measure import env_requests

    requests = env_requests("commons", 2, warmup=0)
    items = [ScoreItem(r.prompt.system, r.prompt.user, r.prompt.answer_prefix, tuple(r.options)) for r in requests]
    model = tiny_llama()
    backend = Backend(model, tiny_tokenizer(), name="ref-check")
    ours = exactness.reference(backend.engine, exactness.eager_twin(model), items)
    for a, b in zip(ours, score_reference(backend.engine, items), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    real = exactness.reference
    monkeypatch.setattr(exactness, "reference", lambda *a: [x + np.eye(len(x))[0] * 0.01 for x in real(*a)])
    res = exactness.measure(model, tiny_tokenizer(), "tiny", requests)
    assert res["ok"] is False and not res["paths"]["shared_prefix"]["ok"]


def test_the_gpu_checks_token_count_is_the_hardware_sections():
    from agents.llm.backend import ScoreItem
    from agents.llm.testing import tiny_backend
    from sim.bench.gpucheck import needed_tokens
    from sim.bench.hardware import decision_tokens
    from sim.bench.measure import env_requests

    backend = tiny_backend()
    requests = env_requests("commons", 5, warmup=1)
    items = [ScoreItem(r.prompt.system, r.prompt.user, r.prompt.answer_prefix, tuple(r.options)) for r in requests]
    items.append(items[0])  # a repeated context shares its option columns
    full = decision_tokens(backend, items)
    assert needed_tokens(backend, items) == {"needed": full["needed"], "logits": full["logits"]}
