"""The Details part of bench.md: each section's context, and token accounting that explains its ratios."""

from __future__ import annotations

from typing import Any


def section_notes(name: str, sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    return _NOTES[name](sec, results)


def _throughput(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    out = [
        f"dtype {sec['dtype']}; best of {sec['repeats']} interleaved repeat(s); prompts after "
        f"{sec['prompt_warmup_rounds']} scripted rounds (filled memories).",
        "",
    ]
    hw = results.get("hardware", {}).get("sizes", {}) if isinstance(results.get("hardware"), dict) else {}
    for n, size in sec["sizes"].items():
        p, naive = size["prompt_tokens"], size["naive"]
        out.append(
            f"- {n} agents: prompts {p['mean']:.0f} tokens on average (max {p['max']}), of which "
            f"{p['shared_prefix']} are shared by all; {p['options_per_decision']:g} options per decision. "
            f"Generate-and-parse: {naive['parse_failures']}/{naive['of']} replies unparseable, e.g. "
            f"`{naive['example_reply'].strip()[:60]}`."
        )
        times = ", ".join(f"{k} {v['all_seconds']}" for k, v in size["variants"].items())
        out.append(f"  Seconds per repeat: {times}.")
        tokens = hw.get(n, {}).get("tokens")
        if tokens:
            n_agents = size["agents"]
            path = tokens["needed"] / n_agents
            naive_tokens = p["mean"] + naive["max_new_tokens"]
            out.append(
                f"  Token accounting per decision: the prefix path computes {path:.0f} tokens (own context + "
                f"options + prefix/{n_agents}); generate-and-parse computes ~{naive_tokens:.0f} (whole "
                f"prompt + up to {naive['max_new_tokens']} generated, one at a time). Both pay each agent's "
                f"own prompt, so where the hardware is saturated by one prompt (a CPU) the ratio is bounded "
                f"near {naive_tokens / path:.1f}× plus the cost of batch-1 decode steps."
            )
    return out


def _entropy(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    ways = sec["ways"]
    out = [
        f"{sec['decisions']} decisions, {sec['samples']} samples each, replies up to {sec['max_new_tokens']} tokens; "
        f"mean exact entropy {sec['mean_exact_entropy']:.3f} nats."
    ]
    for name, w in ways.items():
        if name == "exact":
            continue
        out.append(
            f"- {name}: {w['decisions_timed']} decisions timed; parse failures {100 * w['parse_failure_rate']:.0f} %; "
            f"error {w.get('mean_abs_error')} nats mean."
        )
    out.append(
        f"- Cost model: the exact pass computes each prompt once plus the option tokens (all {sec['decisions']} "
        "decisions of the round in one pass); model.generate(num_return_sequences=25) computes the prompt 25 "
        "times, then 25 rows x up to "
        f"{sec['max_new_tokens']} decode steps; batched sampling sharing the prompt computes it once (its 25 "
        "rows share it as a prefix) plus the same decode steps. The plug-in entropy of 25 draws is biased low, "
        "and free replies need not match the options."
    )
    return out


def _hardware(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    p = sec["params"]
    out = [
        f"FLOPs = 2 x {p['body'] / 1e6:.1f} M non-embedding parameters x distinct tokens needed (prefix once) + 2 x "
        f"{p['head'] / 1e6:.1f} M head parameters x kept logit positions (total {p['total'] / 1e6:.1f} M "
        f"parameters{', embeddings tied' if p['tied_embeddings'] else ''}). Peak: {sec['matmul_size']}² "
        f"{sec['dtype']} matmuls sustained over a window, the better of a reading before and after the path "
        f"(fastest single product: {sec.get('matmul_fastest_single_flops_per_second', 0) / 1e9:.1f} GFLOP/s)."
    ]
    for n, s in sec["sizes"].items():
        t = s["tokens"]
        out.append(
            f"- {n} agents: {t['needed']} tokens needed (prefix {t['prefix']}, contexts {t['context']}, "
            f"options {t['options']}), {t['padded']} run with padding, {t['logits']} logit positions; "
            f"{s['flops'] / 1e12:.2f} TFLOP in {s['seconds']:.2f} s. Attention score/value products add "
            f"{s['attention_flops_extra_pct']:.0f} % uncounted FLOPs (counted in, as PaLM's model FLOPs "
            f"utilisation counts them, the path would be at "
            f"{100 * s['fraction_of_peak'] * (1 + s['attention_flops_extra_pct'] / 100):.0f} % of the peak; "
            "the target is judged without them). A plain matmul of the path's main shape "
            f"(tokens x hidden @ hidden x MLP width) reaches {100 * s['model_shape_fraction_of_peak']:.0f} % "
            "of the peak."
        )
    prof = sec.get("profile")
    if prof:
        shares = ", ".join(f"{k.replace('_', ' ')} {100 * v:.0f} %" for k, v in prof["share"].items() if v >= 0.005)
        out.append(
            f"- Profile of one call ({prof['agents']} agents, {prof['wall_seconds']:.2f} s under the "
            f"profiler): {shares}."
        )
        if "matmul_fraction_of_peak" in prof:
            out.append(
                f"  The matrix products alone run at {100 * prof['matmul_fraction_of_peak']:.0f} % of the "
                f"peak; top ops: " + ", ".join(f"{o['op']} {100 * o['share']:.0f} %" for o in prof["top_ops"][:6]) + "."
            )
    return out


def _steering(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    from steering.bench import table

    return [
        f"Batch {sec['batch']} x {sec['prompt_len']} tokens, median of {sec['repeats']} interleaved repeats:",
        "",
        table(sec["rows"]),
    ]


def _memory(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    lines = ["| agents | RSS before deciding | peak RSS while deciding | method |", "|---:|---:|---:|---|"]
    lines += [
        f"| {r['agents']} | {r['rss_before_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB | {r['peak_method']} |"
        for r in sec["rows"]
    ]
    bounded = sec.get("bounded")
    if bounded:
        lines += [
            f"| {r['agents']} (budgets) | {r['rss_before_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB | "
            f"{r['peak_method']} |"
            for r in bounded["rows"]
        ]
        lines += [
            "",
            f"Experiment: the same with `Backend(token_budget={bounded['token_budget']}, "
            f"logit_budget={bounded['logit_budget']})` (smaller chunks): growth {bounded['growth_pct']:+.1f} % "
            f"instead of {sec['growth_pct']:+.1f} % with the default budgets.",
        ]
    return [
        f"Each count in a fresh process, one batched decision round (prompts after {sec['prompt_warmup_rounds']} "
        "scripted rounds); growth is over the smallest count. Agents are scored in chunks of bounded size (the "
        "Backend's token and logit budgets); the shared prefix's KV cache is held once, not per row, so a chunk's "
        "memory does not grow with the agent count; what grows is the allocator's retained heap and per-agent "
        "prompts.",
        "",
    ] + lines


def _sweep(sec: dict[str, Any], results: dict[str, Any]) -> list[str]:
    out = [
        f"{sec['simulations']} simulations x {sec['agents_per_simulation']} LLM agents x {sec['steps']} steps at "
        f"once on one Ray cluster of {sec['cpus']:g} CPUs (the same CPUs for both settings); hosts loaded and "
        "warmed before the clock starts; best of the repeats."
    ]
    for name, s in sec["settings"].items():
        out.append(
            f"- {name} ({s['hosts']} host(s), {s['threads_per_host']} torch thread(s) each): {s['decisions']} "
            f"decisions in {s['seconds']:.2f} s; host CPU {s['host_cpu_seconds_per_decision']:.3f} s per "
            f"decision; {s['requests_per_backend_call']:.2f} simulation batches per forward call."
        )
    return out


_NOTES = {
    "throughput": _throughput,
    "entropy": _entropy,
    "hardware": _hardware,
    "steering": _steering,
    "memory": _memory,
    "sweep": _sweep,
}
