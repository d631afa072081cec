"""Bench sections for every registered environment, and for scripted societies at scale.

* ``env:<name>`` (one per environment of the registry, measured together as the
  ``environments`` section): n LLM agents play the environment's example scenario
  (:mod:`sim.bench.envs`); the environments' steps are interleaved repeat by repeat (one
  step of each, then again), so machine load hits them alike. Per environment and agent
  count: seconds per step, decisions/s, tokens computed / distinct tokens, % of the
  matmul peak (2 x parameters x the tokens the step needed, the smaller of computed and
  distinct, plus the output head at the logits it read, over the step's seconds), and
  decisions/s relative to the reference environment's
  (:func:`sim.bench.measure.reference_environment`, the one the engine sections
  measure) in the same repeat, each as min / median / max over the repeats. Each
  agent count's figures are written as soon as it finishes.
* ``scale``: seconds per agent-step of every all-scripted example at 1k / 10k / 100k
  agents and the largest / smallest ratio (:mod:`sim.bench.scale`).

A target counts as missed only when the whole spread misses it; when only part of it
does the table says "within spread".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.bench.envs import EnvRun, spread, step_row

TOKENS_TARGET = 1.3  # tokens computed / distinct tokens, per step
DPS_TARGET = 0.5  # decisions/s at least half the reference environment's (within 2x)
SCALE_TARGET = 1.5  # time per agent-step, largest / smallest society


def standing(values: dict[str, float] | None, ok: Callable[[float], bool]) -> bool | str | None:
    """True when the whole spread meets the target, False when the whole spread misses it,
    "within spread" otherwise; None when not measured."""
    if not values:
        return None
    hits = [ok(values[k]) for k in ("min", "median", "max")]
    return True if all(hits) else False if not any(hits) else "within spread"


def _peak(bench: Any) -> float:
    hw = bench.results.get("hardware") or {}
    if "matmul_peak_flops_per_second" in hw:
        return float(hw["matmul_peak_flops_per_second"])
    from sim.bench.hardware import matmul_peak

    backend = bench.backend
    dtype = str(backend.dtype).removeprefix("torch.")
    return matmul_peak(dtype, str(backend.device), size=bench.plan.peak_size, seconds=bench.plan.peak_seconds)


def environments_section(bench: Any, names: list[str], save: Callable[[], None]) -> None:
    """Fill ``bench.results["env:<name>"]`` for every name, saving after each agent count."""
    from sim.bench.hardware import flop_params
    from sim.bench.measure import reference_environment

    plan = bench.plan
    peak = _peak(bench)
    params = flop_params(bench.backend.model)
    for name in names:
        bench.results[f"env:{name}"] = {"environment": name, "sizes": {}, "repeats": plan.env_repeats}
    for n in plan.env_agents:
        runs: dict[str, EnvRun] = {}
        for name in names:
            try:
                runs[name] = EnvRun(name, n, bench.model, device=bench.device, dtype=plan.dtype)
                for _ in range(plan.env_warmup):
                    runs[name].step()
            except Exception as exc:  # one environment that cannot run must not lose the others
                bench.results[f"env:{name}"]["sizes"][str(n)] = {"error": f"{type(exc).__name__}: {exc}"}
        steps: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        for _ in range(plan.env_repeats):
            for name, env in runs.items():
                seconds, counts = env.step()
                row = step_row(seconds, counts)
                # Work the step needed, never more than it ran: tokens a step recomputes
                # (computed > distinct) or takes from the prefix cache (distinct > computed)
                # do not count.
                needed = min(counts.computed, counts.distinct())
                flops = 2.0 * params["body"] * needed + 2.0 * params["head"] * counts.logits
                row["fraction_of_peak"] = round(flops / seconds / peak, 4) if seconds > 0 else None
                steps[name].append(row)
        # Decisions/s relative to the reference environment's in the same repeat (the
        # fastest environment's when the reference could not run).
        reference = reference_environment()
        if reference in steps:
            base = [row["decisions_per_second"] or 0.0 for row in steps[reference]]
        else:
            reference = "fastest"
            base = [
                max(steps[name][r]["decisions_per_second"] or 0.0 for name in steps) for r in range(plan.env_repeats)
            ]
        for name, rows in steps.items():
            rel = [(row["decisions_per_second"] or 0.0) / b if b else None for row, b in zip(rows, base, strict=True)]
            bench.results[f"env:{name}"]["sizes"][str(n)] = {
                "agents": n,
                "steps": rows,
                "seconds_per_step": spread([r["seconds"] for r in rows]),
                "decisions_per_second": spread([r["decisions_per_second"] for r in rows]),
                "tokens_ratio": spread([r["tokens_ratio"] for r in rows]),
                "fraction_of_peak": spread([r["fraction_of_peak"] for r in rows], 4),
                "vs_reference": spread(rel),
                "reference": reference,
            }
        save()


def scale_section(bench: Any) -> dict[str, Any]:
    import environments
    from sim.bench import scale

    plan = bench.plan
    out: dict[str, Any] = {"sizes": list(plan.scale_agents), "environments": {}}
    for name in environments.names():
        if not scale.scripted(name):
            continue
        try:
            out["environments"][name] = scale.measure(
                name, plan.scale_agents, steps=plan.scale_steps, warmup=1, rounds=plan.scale_rounds
            )
        except Exception as exc:
            out["environments"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


# ----------------------------------------------------------------------------- rows
def _fmt(values: dict[str, float] | None, unit: str = "", scale: float = 1.0, digits: int = 3) -> str:
    if not values:
        return "not measured"
    v = [f"{values[k] * scale:.{digits}g}" for k in ("min", "median", "max")]
    return f"{v[1]}{unit} ({v[0]}–{v[2]})"


def _row(figure: str, value: str, ratio: str = "", target: str = "", met: Any = None) -> dict[str, Any]:
    return {"figure": figure, "value": value, "ratio": ratio, "target": target, "met": met}


def _record(targets: dict[str, Any], key: str, met: Any, value: Any, at: str) -> None:
    """A target's standing over every measured case: missed if any case's whole spread misses."""
    order = {False: 0, "within spread": 1, True: 2, None: 3}
    prev = targets.get(key)
    if prev is None or order[met] < order[prev["met"]]:
        targets[key] = {"value": value, "met": met, "at": at}


def env_rows(name: str, sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    env = sec["environment"]
    rows = []
    for n, size in sec["sizes"].items():
        at = f"{env}, {n} agents"
        if "error" in size:
            rows.append(_row(f"{at}: not measured", size["error"][:120]))
            continue
        rows.append(_row(f"{at}: seconds per step", _fmt(size["seconds_per_step"], " s")))
        rows.append(_row(f"{at}: decisions/s", _fmt(size["decisions_per_second"], "/s")))
        if size["reference"] != env:
            met = standing(size["vs_reference"], lambda v: v >= DPS_TARGET)
            _record(targets, "env_decisions", met, size["vs_reference"], at)
            figure = f"{at}: decisions/s vs {size['reference']}"
            rows.append(_row(figure, _fmt(size["vs_reference"], "×"), "", "≥ 0.5×", met))
        met = standing(size["tokens_ratio"], lambda v: v <= TOKENS_TARGET)
        _record(targets, "env_tokens", met, size["tokens_ratio"], at)
        rows.append(_row(f"{at}: tokens computed / distinct", _fmt(size["tokens_ratio"]), "", "≤ 1.3", met))
        met = standing(size["fraction_of_peak"], lambda v: v >= 0.5)
        _record(targets, "env_peak", met, size["fraction_of_peak"], at)
        rows.append(
            _row(f"{at}: % of matmul peak (whole step)", _fmt(size["fraction_of_peak"], " %", 100), "", "≥ 50 %", met)
        )
    return rows


def scale_rows(sec: dict[str, Any], targets: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for env, res in sec["environments"].items():
        if "error" in res:
            rows.append(_row(f"Scripted {env}: not measured", res["error"][:120]))
            continue
        for n, per in res["seconds_per_agent_step"].items():
            rounds = res.get("ended", {}).get(n, 0)
            ended = f"; ended before its last timed step in {rounds} round(s)" if rounds else ""
            rows.append(_row(f"Scripted {env}, {n} agents: time per agent-step{ended}", _fmt(per, " µs", 1e6)))
        small, large = res["ratio_sizes"]
        met = standing(res["ratio"], lambda v: v <= SCALE_TARGET)
        _record(targets, "scripted_scale", met, res["ratio"], env)
        rows.append(
            _row(f"Scripted {env}: {large}/{small} time per agent-step", _fmt(res["ratio"], "×"), "", "≤ 1.5×", met)
        )
    return rows
