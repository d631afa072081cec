"""bench.json and bench.md: one table (figure, value, ratio, target, met?) and where each target stands.

Every ratio is recomputed here from the measured seconds in the sections' results, so
the table can only say what was measured.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

LABELS = {
    "naive_generate": "per-agent generate-and-parse",
    "per_agent_scoring": "per-agent option scoring",
    "batched_scoring": "batched option scoring",
    "batched_prefix": "batched + shared-prefix reuse",
}
TARGETS = {
    "prefix_vs_generate": "batched with prefix reuse ≥ 5× per-agent generate-and-parse",
    "exact_entropy": "exact entropy ≥ 25× cheaper than the 25-sample estimate",
    "hardware_fraction": "≥ 50 % of measured matmul peak on the needed FLOPs",
    "steering_overhead": "steering overhead ≤ 5 % for 1 layer",
    "memory_growth": "memory growth from 10 to 100 agents ≤ 10 %",
    "env_tokens": "tokens computed ÷ distinct tokens ≤ 1.3 per step, every environment",
    "env_decisions": "decisions/s within 2× of the reference environment's at the same agent count",
    "env_peak": "≥ 50 % of matmul peak on every environment's step",
    "scripted_scale": "scripted: time per agent-step at the largest society ≤ 1.5× that at the smallest",
}


def _ok(section: Any) -> bool:
    return isinstance(section, dict) and "error" not in section and "skipped" not in section


def _row(figure: str, value: str, ratio: str = "", target: str = "", met: bool | None = None) -> dict[str, Any]:
    return {"figure": figure, "value": value, "ratio": ratio, "target": target, "met": met}


def _rate(x: float) -> str:
    return f"{x:.3g}/s"


def _secs(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _flops(x: float) -> str:
    return f"{x / 1e9:.1f} GFLOP/s" if x < 1e12 else f"{x / 1e12:.1f} TFLOP/s"


# ----------------------------------------------------------------------------- rows
def throughput_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for n, size in sec["sizes"].items():
        variants = size["variants"]
        base = variants["naive_generate"]["seconds"]
        for name, label in LABELS.items():
            v = variants[name]
            ratio = base / v["seconds"]
            target, met = "", None
            if name == "batched_prefix":
                target, met = "≥ 5×", ratio >= 5.0
                targets["prefix_vs_generate"] = {"value": round(ratio, 2), "met": met, "at": f"{n} agents"}
            rows.append(_row(f"Decisions/s, {n} agents: {label}", _rate(n_over(size, v)), f"{ratio:.2f}×", target, met))
        agree = size["agreement"]
        per = [sp for sp in agree.get("per_decision", {}).values()]
        spread = (
            f" (per decision {min(sp['min'] for sp in per):.1e} / {max(sp['median'] for sp in per):.1e} / "
            f"{agree['worst']:.1e})"
            if per
            else ""
        )
        rows.append(
            _row(
                f"Scorers agree, {n} agents (max abs prob diff)",
                f"{agree['worst']:.1e}{spread}",
                "",
                f"< {agree['tolerance']:.0e}",
                agree["ok"],
            )
        )
        if size.get("live"):
            rows.append(live_row(f"Live decisions, {n} agents", size["live"]))
    return rows


def live_row(figure: str, live: dict[str, Any]) -> dict[str, Any]:
    """How far the measured decisions are from uniform (min / median / max over decisions)."""
    from sim.bench.live import MIN_GAP

    gap, kl = live["max_minus_min"], live["kl_from_uniform"]
    value = (
        f"max − min prob {gap['min']:.2f} / {gap['median']:.2f} / {gap['max']:.2f}; "
        f"KL from uniform {kl['min']:.2f} / {kl['median']:.2f} / {kl['max']:.2f} nats"
    )
    return _row(figure + " (min / median / max)", value, "", f"median max − min ≥ {MIN_GAP}", gap["median"] >= MIN_GAP)


def n_over(size: dict[str, Any], variant: dict[str, Any]) -> float:
    return size["agents"] / variant["seconds"]


def entropy_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    ways = sec["ways"]
    exact = ways["exact"]["seconds_per_decision"]
    rows = [_row("Exact entropy (one batched scoring pass), per decision", _secs(exact), "1×")]
    if sec.get("live"):
        rows.append(live_row(f"Live decisions, entropy section ({sec['decisions']})", sec["live"]))
    for name, label in (("sampled_hf", "model.generate, EAST's way"), ("sampled_prefix", "batched, prompt shared")):
        if name not in ways:
            continue
        w = ways[name]
        ratio = w["seconds_per_decision"] / exact
        target, met = "", None
        if name == "sampled_hf":
            target, met = "≥ 25× exact", ratio >= 25.0
            targets["exact_entropy"] = {"value": round(ratio, 2), "met": met, "against": label}
        rows.append(
            _row(
                f"{sec['samples']}-sample estimate ({label}), per decision",
                _secs(w["seconds_per_decision"]),
                f"{ratio:.1f}×",
                target,
                met,
            )
        )
        if w.get("mean_abs_error") is not None:
            rows.append(
                _row(
                    f"Estimate error |H − Ĥ| ({label})",
                    f"{w['mean_abs_error']:.3f} nats mean, {w['max_abs_error']:.3f} max",
                    "",
                    "",
                    None,
                )
            )
    return rows


def hardware_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    peak = sec["matmul_peak_flops_per_second"]
    rows = [_row(f"Matmul peak ({sec['dtype']}, {sec['matmul_size']}²)", _flops(peak))]
    for n, size in sec["sizes"].items():
        fraction = size["achieved_flops_per_second"] / peak
        met = fraction >= 0.5
        targets["hardware_fraction"] = {"value": round(fraction, 4), "met": met, "at": f"{n} agents"}
        rows.append(
            _row(
                f"Decision path FLOP/s, {n} agents (batched + prefix)",
                _flops(size["achieved_flops_per_second"]),
                f"{100 * fraction:.0f} % of peak",
                "≥ 50 %",
                met,
            )
        )
    return rows


def steering_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    from sim.bench.envbench import standing

    rows = []
    spreads = sec.get("worst_overhead_pct_spread", {})
    for k in ("1", "4"):
        worst = sec["worst_overhead_pct"][k]
        sp = spreads.get(k) or {"min": worst, "median": worst, "max": worst}
        target, met = ("≤ 5 %", standing(sp, lambda v: v <= 5.0)) if k == "1" else ("", None)
        if k == "1":
            targets["steering_overhead"] = {"value": worst, "met": met, "spread": sp}
        label = f"Steering overhead, {k} layer{'s' if k != '1' else ''} (worst position, batch {sec['batch']})"
        value = f"{worst:+.1f} % ({sp['min']:+.1f} to {sp['max']:+.1f})"
        rows.append(_row(label, value, "", target, met))
    return rows


def memory_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    from sim.bench.envbench import standing

    rows = sec["rows"]
    first = rows[0]["peak_rss_mb"]
    out = []
    for r in rows:
        growth = 100.0 * (r["peak_rss_mb"] / first - 1.0)
        last = r is rows[-1]
        sp = sec.get("growth_pct_spread") or {"min": growth, "median": growth, "max": growth}
        target, met = (
            (f"≤ 10 % over {rows[0]['agents']} agents", standing(sp, lambda v: v <= 10.0)) if last else ("", None)
        )
        if last:
            targets["memory_growth"] = {"value": round(growth, 2), "met": met, "spread": sp}
        out.append(
            _row(
                f"Peak RSS, {r['agents']} agents deciding",
                f"{r['peak_rss_mb']:.0f} MB",
                f"{growth:+.1f} %" + (f" ({sp['min']:+.1f} to {sp['max']:+.1f})" if last else ""),
                target,
                met,
            )
        )
    bounded = sec.get("bounded")
    if bounded:
        b_rows = bounded["rows"]
        growth = 100.0 * (b_rows[-1]["peak_rss_mb"] / b_rows[0]["peak_rss_mb"] - 1.0)
        label = f"Peak RSS, {b_rows[-1]['agents']} agents, chunk budgets {bounded['token_budget']} tokens (experiment)"
        out.append(_row(label, f"{b_rows[-1]['peak_rss_mb']:.0f} MB", f"{growth:+.1f} %", "", None))
    return out


def sweep_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    s = sec["settings"]
    each = s["host_each"]["seconds"]
    out = []
    for name, label in (("host_each", "one host each"), ("shared_host", "one shared host")):
        row = s[name]
        out.append(
            _row(
                f"Sweep, {sec['simulations']} simulations: {label}",
                _rate(row["decisions_per_second"]),
                f"{each / row['seconds']:.2f}×",
            )
        )
    return out


def server_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    from sim.bench.server import rows

    return rows(sec, targets)


SECTION_ROWS = {
    "throughput": throughput_rows,
    "entropy": entropy_rows,
    "hardware": hardware_rows,
    "steering": steering_rows,
    "memory": memory_rows,
    "sweep": sweep_rows,
    "server": server_rows,
}


def table(results: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The table's rows and the targets' standings, from the sections' results."""
    rows: list[dict[str, Any]] = []
    targets: dict[str, Any] = {}
    for name, make in SECTION_ROWS.items():
        sec = results.get(name)
        if sec is None:
            continue
        if _ok(sec):
            rows += make(sec, targets)
            rows += [_row(f"{name}: check failed", line, "", "", False) for line in sec.get("failed_checks", [])]
        else:
            why = sec.get("skipped") or sec.get("error", "")
            rows.append(_row(f"{name}: not measured", why.splitlines()[0][:120] if why else ""))
    from sim.bench.envbench import env_rows, scale_rows

    for name, sec in results.items():
        if not name.startswith("env:"):
            continue
        if _ok(sec) and "sizes" in sec:
            rows += env_rows(name, sec, targets)
        else:
            why = sec.get("skipped") or sec.get("error", "")
            rows.append(_row(f"{name}: not measured", why.splitlines()[0][:120] if why else ""))
    scale = results.get("scale")
    if scale is not None:
        rows += (
            scale_rows(scale, targets) if _ok(scale) else [_row("scale: not measured", scale.get("error", "")[:120])]
        )
    cuda = results.get("cuda")
    if cuda is not None:
        rows.append(_row("CUDA (~1B random Llama)", cuda.get("skipped") or cuda.get("error") or cuda.get("gpu", "")))
    standings = {
        key: {"target": text, **targets.get(key, {"value": None, "met": None})} for key, text in TARGETS.items()
    }
    return rows, standings


# ------------------------------------------------------------------------- markdown
def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|")


def _met(value: bool | str | None) -> str:
    if isinstance(value, str):
        return value  # "within spread": part of the spread meets the target
    return "" if value is None else ("yes" if value else "**no**")


def markdown(results: dict[str, Any], rows: list[dict[str, Any]], standings: dict[str, Any]) -> str:
    meta = results.get("meta", {})
    lines = [
        "# normsim bench",
        "",
        f"Model `{meta.get('model')}` on {meta.get('device')} ({meta.get('machine')}, {meta.get('threads')} torch "
        f"threads, {meta.get('cpus')} CPUs), torch {meta.get('torch')}; {'quick' if meta.get('quick') else 'full'} "
        f"run, {meta.get('wall_seconds', 0):.0f} s wall.",
        "Every ratio is measured side by side in one process (variants interleaved); spreads are min / median / "
        'max over repeats, and a target is missed only when the whole spread misses it ("within spread": '
        "part of it meets it). Absolute times are context only.",
        "",
        "| figure | value | ratio | target | met? |",
        "|---|---:|---:|---|---|",
    ]
    lines += [
        f"| {_cell(r['figure'])} | {_cell(r['value'])} | {_cell(r['ratio'])} | {_cell(r['target'])} | "
        f"{_met(r['met'])} |"
        for r in rows
    ]
    lines += ["", "## Targets", ""]
    for key, s in standings.items():
        met = s["met"]
        state = "not measured" if met is None else met if isinstance(met, str) else ("met" if met else "MISSED")
        value = "" if s["value"] is None else f" (measured {_fmt_target(key, s['value'])}"
        value += f", at {s['at']})" if s.get("at") and s["value"] is not None else (")" if value else "")
        lines.append(f"- {s['target']}: **{state}**{value}")
    lines += ["", "## Details", ""]
    lines += details(results)
    return "\n".join(lines) + "\n"


def _fmt_target(key: str, value: Any) -> str:
    if isinstance(value, dict):  # a spread
        pct = key in ("env_peak",)
        f = (lambda v: f"{100 * v:.0f} %") if pct else (lambda v: f"{v:.2f}")
        return f"{f(value['median'])}, spread {f(value['min'])}–{f(value['max'])}"
    if key == "hardware_fraction":
        return f"{100 * value:.0f} %"
    if key in ("steering_overhead", "memory_growth"):
        return f"{value:+.1f} %"
    return f"{value:.2f}×"


def details(results: dict[str, Any]) -> list[str]:
    from sim.bench.notes import section_notes

    out = []
    for name in ("throughput", "entropy", "hardware", "steering", "memory", "sweep"):
        sec = results.get(name)
        if not _ok(sec):
            continue
        out += [f"### {name}", ""] + section_notes(name, sec, results) + [""]
    return out


def write(results: dict[str, Any], out: str | Path) -> None:
    """bench.json (results + table + targets) and bench.md."""
    out = Path(out)
    rows, standings = table(results)
    data = {**results, "table": rows, "targets": standings}
    (out / "bench.json").write_text(json.dumps(_clean(data), indent=2, allow_nan=False) + "\n")
    (out / "bench.md").write_text(markdown(results, rows, standings))


def _clean(value: Any) -> Any:
    """JSON-safe: numpy scalars as Python numbers, non-finite floats as null, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
