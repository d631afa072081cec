"""The GPU check: one command, a bare machine with one NVIDIA GPU, no network, under 6 minutes.

    make gpu-wheels                      # here, with network: wheels into vendor/gpu-wheels
    make gpu-check                       # there: a venv over the preinstalled torch, then this
    python -m sim.bench.gpucheck --dry-run --out /tmp/gpu-check   # the same script on CPU, small sizes

It prints, as each part finishes (and writes ``OUT/gpu-check.json`` and ``OUT/gpu-check.md``):

* ``device``: the GPU, torch, and the measured bfloat16 matmul peak;
* ``exactness``: the engine's option log-probabilities against an eager reference
  (:mod:`sim.bench.exactness`) in float32 and bfloat16, on SmolLM2 (the embedded default
  model) and on a ~1B-parameter random Llama built in code, on both attention paths (the
  shared-prefix cascade, which on CUDA is the memory-efficient kernel's, and no prefix
  reuse), with how far bfloat16 moves the probabilities from float32;
* ``commons``: decisions/s and % of the bfloat16 peak of the batched, prefix-reusing
  path on live commons requests at 16, 256 and 1,024 agents (the 1B model, bfloat16);
* ``steering``: per-row steering overhead at 1 and 4 layers on the 1B model.

A part that would start after the time budget is skipped and says so; a part that fails
is recorded with its error and the others still run. Exit status 1 if any part failed or
an exactness check missed its tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sim.bench import cuda as bench_cuda


@dataclass(frozen=True)
class CheckPlan:
    device: str = "cuda"
    model: str = "smollm2-135m"  # the real model checked (its tokenizer serves the random one too)
    agents: tuple[int, ...] = (16, 256, 1024)  # commons sizes for decisions/s
    exact_agents: int = 8  # decisions compared with the eager reference, per model and dtype
    big_shape: dict[str, Any] = field(
        # Llama-3.2-1B's shape; positions to 32k because the commons at 1,024 agents lists
        # every fisher's catch in the shared prefix (~31,000 characters).
        default_factory=lambda: {**bench_cuda.SHAPE, "max_position_embeddings": 32768}
    )
    repeats: int = 3  # timed calls per size, best taken
    peak_size: int = 8192
    peak_seconds: float = 2.0
    steer_batch: int = 16
    steer_prompt_len: int = 128
    steer_repeats: int = 10
    budget_seconds: float = 330.0  # no part starts after this (the whole check must end within 6 min)


GPU = CheckPlan()
# The same script on CPU, sizes cut so it ends in a few minutes: 2 decisions per
# exactness row, a 4-layer "big" model of width 256, the commons at 4, 16 and 32 agents.
DRY = CheckPlan(
    device="cpu",
    agents=(4, 16, 32),
    exact_agents=2,
    big_shape={
        **bench_cuda.SHAPE,
        "hidden_size": 256,
        "intermediate_size": 1024,
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
    },
    repeats=1,
    peak_size=1024,
    peak_seconds=1.0,
    steer_batch=4,
    steer_prompt_len=32,
    steer_repeats=3,
    budget_seconds=900.0,  # a dry run checks the script: on a loaded CPU every part still runs
)


def big_model(plan: CheckPlan, tokenizer: Any) -> Any:
    """The random Llama of ``plan.big_shape`` in float32 on the plan's device, seeded (built in code, nothing read)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **plan.big_shape,
    )
    torch.manual_seed(bench_cuda.SEED)
    with torch.device(plan.device):
        model = LlamaForCausalLM(config)
    return model.eval()


def needed_tokens(backend: Any, items: Sequence[Any]) -> dict[str, int]:
    """``needed`` and ``logits`` of :func:`sim.bench.hardware.decision_tokens`, in time linear in the tokens.

    That function builds a prefix tree over every context + option sequence: minutes at
    1,024 commons agents, whose shared prefix is ~10,000 tokens. Here the contexts' tree
    is counted once and each distinct context's option-tree columns are added to it
    (an option column extends its own context only).
    """
    from agents.llm.scoring import _option_tree, prepare
    from sim.bench.envs import trie_nodes

    prepared = prepare(getattr(backend, "engine", backend), items)
    columns: dict[tuple[int, ...], set[Any]] = {}
    for p in prepared:
        columns.setdefault(tuple(p.context), set()).update(_option_tree(p.tails)[0])
    options = sum(len(c) for c in columns.values())
    kept = sum(len(_option_tree(p.tails)[0]) for p in prepared)
    return {"needed": trie_nodes(list(columns)) + options, "logits": len(prepared) + kept}


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------ parts
def part_device(plan: CheckPlan, state: dict[str, Any]) -> dict[str, Any]:
    import torch

    from sim.bench.hardware import matmul_peak

    out: dict[str, Any] = {"torch": torch.__version__, "device": plan.device}
    if plan.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
        out["capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
        out["memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    out["bf16_peak_flops_per_second"] = matmul_peak("bfloat16", plan.device, plan.peak_size, plan.peak_seconds)
    state["peak"] = out["bf16_peak_flops_per_second"]
    return out


def part_exactness(plan: CheckPlan, state: dict[str, Any]) -> dict[str, Any]:
    import torch

    from agents.llm import loading
    from sim.bench import exactness
    from sim.bench.measure import env_requests

    requests = env_requests("commons", plan.exact_agents, warmup=1)
    loaded = loading.load(plan.model, dtype="float32", device=plan.device)
    tokenizer = loaded.tokenizer
    state["tokenizer"] = tokenizer
    models: dict[str, Callable[[], Any]] = {
        plan.model: lambda: loaded.model,
        "random-llama-1b" if plan.device == "cuda" else "random-llama-small": lambda: big_model(plan, tokenizer),
    }
    out: dict[str, Any] = {}
    for name, make in models.items():
        fp32 = make()
        rows = {"float32": exactness.measure(fp32, tokenizer, name, requests)}
        bf16 = fp32.to(torch.bfloat16)  # in place: one copy of the weights at a time
        rows["bfloat16"] = exactness.measure(bf16, tokenizer, name, requests)
        rows["bf16_vs_fp32_prob_drift"] = exactness.drift(rows["bfloat16"], rows["float32"])
        for dt in ("float32", "bfloat16"):
            rows[dt].pop("reference_probs", None)
        out[name] = rows
        if name.startswith("random"):
            state["big"] = bf16  # the commons and steering parts reuse it
        else:
            del fp32, bf16
    out["ok"] = all(rows[dt]["ok"] for rows in out.values() for dt in ("float32", "bfloat16"))
    return out


def part_commons(plan: CheckPlan, state: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch

    from agents.llm.backend import Backend, ScoreItem
    from agents.llm.policy import LLMPolicy
    from sim.bench.hardware import path_flops
    from sim.bench.live import check_requests, distribution_stats
    from sim.bench.measure import env_requests

    model, peak = state["big"], state["peak"]
    out: dict[str, Any] = {"model_parameters": sum(p.numel() for p in model.parameters()), "sizes": {}}
    for n in plan.agents:
        requests = env_requests("commons", n, warmup=3)
        check_requests(requests, f"commons, {n} agents")
        items = [ScoreItem(r.prompt.system, r.prompt.user, r.prompt.answer_prefix, tuple(r.options)) for r in requests]

        def decide(reqs: Sequence[Any] = requests) -> list[Any]:
            # A fresh backend per call: no prefix cached by an earlier one.
            backend = Backend(model, state["tokenizer"], name="gpu-check", reuse_prefix=True)
            return LLMPolicy(backend).decide(reqs, np.random.default_rng(0))

        decide(requests[:2])  # kernels, allocator
        if plan.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times, decisions = [], []
        for _ in range(plan.repeats):
            _sync(plan.device)
            start = time.perf_counter()
            decisions = decide()
            _sync(plan.device)
            times.append(time.perf_counter() - start)
        backend = Backend(model, state["tokenizer"], name="gpu-check", reuse_prefix=True)
        tokens = needed_tokens(backend, items)
        flops = path_flops(model, {**tokens, "attention_kv": 0})["counted"]
        best = min(times)
        out["sizes"][str(n)] = {
            "seconds": [round(t, 4) for t in times],
            "decisions_per_second": round(n / best, 2),
            "tokens": tokens,
            "pct_of_bf16_peak": round(100 * flops / best / peak, 2),
            "gpu_peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if plan.device == "cuda"
            else None,
            # Random weights decide near uniformly: reported, not required.
            "distributions": distribution_stats([d.probs for d in decisions]),
        }
    return out


def part_steering(plan: CheckPlan, state: dict[str, Any]) -> dict[str, Any]:
    from steering.bench import overhead

    rows = overhead(
        state["big"],
        batch=plan.steer_batch,
        prompt_len=plan.steer_prompt_len,
        layer_counts=(1, 4),
        repeats=plan.steer_repeats,
        warmup=2,
    )
    worst = {str(k): max(r["overhead_pct"] for r in rows if r["layers"] == k) for k in (1, 4)}
    return {"batch": plan.steer_batch, "prompt_len": plan.steer_prompt_len, "rows": rows, "worst_overhead_pct": worst}


PARTS: dict[str, Callable[[CheckPlan, dict[str, Any]], dict[str, Any]]] = {
    "device": part_device,
    "exactness": part_exactness,
    "commons": part_commons,
    "steering": part_steering,
}


# ---------------------------------------------------------------------------- printing
def _sp(s: dict[str, float], fmt: str = ".1e") -> str:
    return f"{s['max']:{fmt}} (min {s['min']:{fmt}}, median {s['median']:{fmt}})"


def lines(name: str, res: dict[str, Any]) -> list[str]:
    """The part's result as printed lines."""
    if "error" in res or "skipped" in res:
        return [f"{name}: {'FAILED: ' + res['error'] if 'error' in res else 'skipped: ' + res['skipped']}"]
    if name == "device":
        where = f"{res.get('gpu', 'CPU')}" + (
            f" (capability {res['capability']}, {res['memory_gib']} GiB)" if "gpu" in res else ""
        )
        return [
            f"device: {where}, torch {res['torch']}; bf16 matmul peak {res['bf16_peak_flops_per_second'] / 1e12:.2f} TFLOP/s"
        ]
    if name == "exactness":
        out = []
        for model, rows in res.items():
            if not isinstance(rows, dict):  # "ok", "seconds"
                continue
            for dt in ("float32", "bfloat16"):
                r = rows[dt]
                if "refused" in r:
                    out.append(f"exactness {model} {dt}: MISSED, the engine refuses it: {r['refused']}")
                    continue
                out.append(
                    f"exactness {model} {dt} ({r['decisions']} decisions, engine path {r['attention_path']}, "
                    f"tolerance |Δ log P| ≤ {r['tolerance_logprob']:g}):"
                )
                for path, p in r["paths"].items():
                    out.append(
                        f"  {path:16s} vs eager: |Δ log P| {_sp(p['max_abs_logprob_diff'])}; "
                        f"|Δp| {_sp(p['max_abs_prob_diff'])}  {'ok' if p['ok'] else 'MISSED'}"
                    )
                out.append(
                    f"  shared_prefix vs no_prefix_reuse (CUDA attention path agreement on a GPU): "
                    f"|Δp| {_sp(r['paths_agree']['max_abs_prob_diff'])}"
                )
            if rows["bf16_vs_fp32_prob_drift"]:
                out.append(f"  {model}: bf16 vs fp32 eager, |Δp| {_sp(rows['bf16_vs_fp32_prob_drift'])}")
        return out
    if name == "commons":
        out = [
            f"commons (model of {res['model_parameters'] / 1e9:.2f} B parameters, bfloat16, batched + shared prefix):"
        ]
        for n, r in res["sizes"].items():
            mem = f", GPU peak {r['gpu_peak_memory_gib']} GiB" if r["gpu_peak_memory_gib"] is not None else ""
            out.append(
                f"  {n:>5} agents: {r['decisions_per_second']:.1f} decisions/s, {r['pct_of_bf16_peak']:.1f} % of "
                f"bf16 peak ({r['tokens']['needed']} tokens needed, best of {len(r['seconds'])}){mem}"
            )
        return out
    if name == "steering":
        w = res["worst_overhead_pct"]
        return [
            f"steering overhead (batch {res['batch']}, {res['prompt_len']} tokens, worst position): "
            f"1 layer {w['1']:+.1f} %, 4 layers {w['4']:+.1f} %"
        ]
    return [f"{name}: {res}"]


# ------------------------------------------------------------------------------- run
def run(plan: CheckPlan, out: Path, *, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Every part in order, each printed as it ends; ``out/gpu-check.json`` and ``.md`` rewritten after each."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"plan": asdict(plan)}
    state: dict[str, Any] = {}
    text: list[str] = []
    for name, fn in PARTS.items():
        elapsed = time.perf_counter() - started
        if elapsed > plan.budget_seconds:
            res: dict[str, Any] = {"skipped": f"time budget of {plan.budget_seconds:.0f} s spent ({elapsed:.0f} s)"}
        else:
            t0 = time.perf_counter()
            try:
                res = fn(plan, state)
            except Exception as exc:  # one broken part must not lose the others' numbers
                res = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0], "traceback": traceback.format_exc()}
            res["seconds"] = round(time.perf_counter() - t0, 1)
        results[name] = res
        for line in lines(name, res) + [f"  ({name}: {res.get('seconds', 0):.0f} s)"]:
            echo(line)
            text.append(line)
        results["wall_seconds"] = round(time.perf_counter() - started, 1)
        (out / "gpu-check.json").write_text(json.dumps(_clean(results), indent=2) + "\n")
        (out / "gpu-check.md").write_text("```\n" + "\n".join(text) + "\n```\n")
    echo(f"gpu check: {results['wall_seconds']:.0f} s wall; written {out / 'gpu-check.json'}, {out / 'gpu-check.md'}")
    return results


def failed(results: dict[str, Any]) -> list[str]:
    """Parts that failed, and an exactness check that missed its tolerance."""
    bad = [n for n in PARTS if isinstance(results.get(n), dict) and "error" in results[n]]
    ex = results.get("exactness", {})
    if "error" not in ex and "skipped" not in ex and not ex.get("ok", True):
        bad.append("exactness (tolerance missed)")
    return bad


def _clean(value: Any) -> Any:
    from sim.bench.report import _clean as clean

    return clean(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="on CPU with small sizes (the same script end to end)")
    parser.add_argument("--out", default="runs/gpu-check", help="directory for gpu-check.json and gpu-check.md")
    args = parser.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(
            "error: no CUDA device is visible to torch; run with --dry-run to check the script on CPU", file=sys.stderr
        )
        return 2
    results = run(DRY if args.dry_run else GPU, Path(args.out))
    bad = failed(results)
    if bad:
        print(f"gpu check: failed: {', '.join(bad)} (see {args.out}/gpu-check.json)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
