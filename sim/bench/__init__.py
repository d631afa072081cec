"""`normsim bench`: the decision hot path measured side by side against the naive way and the hardware limit.

Every figure is measured in one process with the variants interleaved repeat by repeat
(drifting machine load hits them alike) and reported as a ratio; absolute times are
context. Sections (each a module here, each returning a JSON-able dict):

* ``throughput``: decisions per second of per-agent generate-and-parse, per-agent option
  scoring, batched option scoring and batched scoring with shared-prefix reuse, plus a
  check that all scorers agree on the probabilities;
* ``entropy``: the exact option distribution from one pass vs 25 sampled completions per
  decision (how EAST estimated entropy): time ratio and the estimate's error;
* ``hardware``: measured matmul peak vs the FLOPs the decision path needs;
* ``environments``: one section ``env:<name>`` per registered environment, n LLM agents
  playing its example scenario: decisions/s, tokens computed / distinct tokens, % of
  the matmul peak, with the spread over interleaved repeats (:mod:`sim.bench.envbench`);
* ``scale``: time per agent-step of the scripted examples at 1k, 10k and 100k agents;
* ``steering``: per-agent steered vs unsteered batched forward at 1 and 4 layers, repeated for a spread;
* ``memory``: peak resident memory while 10, 50 and 100 agents decide (fresh processes, repeated);
* ``sweep``: N simulations sharing one Ray model host vs one host each;
* ``cuda``: the same on a GPU with a ~1B-parameter random Llama (skipped without one).

``run_bench(quick, device, out)`` writes ``bench.json`` and ``bench.md`` (see :mod:`sim.bench.report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTIONS = (
    "throughput",
    "entropy",
    "hardware",
    "environments",
    "steering",
    "memory",
    "sweep",
    "scale",
    "cuda",
    "server",
)


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats of one bench run (``plan_for(quick)`` gives the two presets)."""

    model: str = "smollm2-135m"
    dtype: str = "auto"
    agents: tuple[int, ...] = (16, 64)  # decision throughput at each agent count
    prompt_warmup: int = (
        3  # scripted steps played at most before the measured one (fills memories; the latest live step counts)
    )
    repeats: int = 3  # timed repeats per variant (interleaved), best taken
    max_new_tokens: int = 16  # per-agent generate-and-parse reply length
    samples: int = 25  # sampled completions per decision for the entropy estimate (EAST)
    entropy_decisions: int = 16  # decisions whose 25-sample estimate is timed (batched sampling)
    hf_entropy_decisions: int = 2  # ... and timed with model.generate(num_return_sequences=25)
    peak_seconds: float = 3.0  # matmul peak: best of repeated timings over this long
    peak_size: int = 2048
    profile: bool = True  # profile one batched, prefix-reusing call by kind of op (at the first agent count)
    steer_batch: int = 16
    steer_prompt_len: int = 128
    steer_repeats: int = 10
    memory_agents: tuple[int, ...] = (10, 50, 100)
    memory_warmup: int = 0  # rounds before the measured decision in the memory processes
    # Experiment beside the default: the same smallest and largest counts with these
    # (token_budget, logit_budget) chunk budgets of the Backend; None (default) skips it.
    memory_budgets: tuple[int, int] | None = None
    memory_repeats: int = 2  # rounds of (10, 50, 100 agents), for the growth's spread
    steer_rounds: int = 3  # whole steering measurements, for the overhead's spread
    # Environment whose requests the engine sections (throughput, entropy, hardware, memory)
    # use; "": sim.bench.measure.reference_environment().
    environment: str = ""
    env_agents: tuple[int, ...] = (5, 20)  # LLM agents per environment section
    env_warmup: int = 1  # untimed steps before the measured ones
    env_repeats: int = 3  # measured steps per environment (interleaved across environments)
    scale_agents: tuple[int, ...] = (1000, 10000, 100000)  # scripted society sizes
    scale_steps: int = 1
    scale_rounds: int = 1
    sweep_sims: int = 2  # simulations at once in the sweep section
    sweep_agents: int = 4
    sweep_steps: int = 2
    sweep_repeats: int = 2  # rounds of (shared, one each), alternating order
    sections: tuple[str, ...] = SECTIONS
    server_url: str | None = None  # an OpenAI-compatible server for the server section (sim/bench/server.py)
    server_model: str = "smollm2-135m"


QUICK = Plan(
    agents=(16,),
    repeats=1,
    entropy_decisions=4,
    hf_entropy_decisions=1,
    peak_seconds=2.0,
    steer_batch=8,
    steer_prompt_len=64,
    steer_repeats=4,
    sweep_repeats=1,
    env_agents=(5,),
    env_repeats=3,
)


def plan_for(quick: bool, **overrides: Any) -> Plan:
    """The quick or full preset with some fields replaced."""
    return dataclasses.replace(QUICK if quick else Plan(), **overrides)


@dataclass
class Bench:
    """What the sections share: the plan, the device, the loaded backend and earlier results."""

    plan: Plan
    device: str
    model: str  # the model name or checkpoint path actually measured
    results: dict[str, Any] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)  # what sections share: requests, timings
    _backend: Any = None

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from agents.llm import get_backend

            self._backend = get_backend(self.model, dtype=self.plan.dtype, device=self.device)
        return self._backend

    @property
    def env(self) -> str:
        """The environment whose requests the engine sections measure."""
        if not self.plan.environment:
            from sim.bench.measure import reference_environment

            return reference_environment()
        return self.plan.environment

    def requests(self, n: int) -> list[Any]:
        """One step's requests of ``env``'s main phase for n agents: the latest live step (options that
        all read differently) within ``plan.prompt_warmup`` + 1 steps (:func:`sim.bench.measure.env_requests`)."""
        key = ("requests", n)
        if key not in self.cache:
            from sim.bench.measure import env_requests

            self.cache[key] = env_requests(self.env, n, warmup=self.plan.prompt_warmup)
        return self.cache[key]


def run_bench(
    quick: bool = False,
    device: str = "cpu",
    out: str | Path = "bench",
    *,
    plan: Plan | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every section of the plan; write ``out/bench.json`` and ``out/bench.md``; return the JSON dict.

    A section that fails is recorded with its error (the others still run); its
    targets then read "not measured".
    """
    from sim.bench import report
    from sim.progress import Progress

    plan = plan or plan_for(quick)
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = plan.model
    if device == "cuda":
        from sim.bench import cuda

        model = cuda.require_gpu_model()  # the ~1B random Llama, saved once as a local checkpoint
    bench = Bench(plan, device, model)
    bench.results["meta"] = _meta(quick, bench)
    order = [s for s in SECTIONS if s in plan.sections]

    def save() -> None:
        # Written after every section (and every agent count of the environment
        # sections), so an interrupted bench keeps what it measured.
        bench.results["meta"]["wall_seconds"] = round(time.perf_counter() - started, 1)
        report.write(bench.results, out)

    with Progress(total=len(order), label="bench", enabled=progress, unit="section", show=("section",)) as bar:
        for name in order:
            bar.write(f"[bench] {name} ...")
            t0 = time.perf_counter()
            if name == "environments":
                _environments(bench, save, bar)
            else:
                try:
                    bench.results[name] = _SECTION_FUNCS[name](bench)
                except Exception as exc:  # one broken section must not lose the others' numbers
                    bench.results[name] = {
                        "error": f"{type(exc).__name__}: {exc}",
                        "traceback": traceback.format_exc(),
                    }
                    bar.write(f"[bench] {name} failed: {type(exc).__name__}: {exc}")
                for line in bench.results[name].get("failed_checks", []):
                    bar.write(f"[bench] {name} check failed: {line}")
                bench.results[name]["section_seconds"] = round(time.perf_counter() - t0, 1)
            bar.update({"section": name})
            save()
    return bench.results


def _environments(bench: Bench, save: Callable[[], None], bar: Any) -> None:
    """The per-environment sections (``env:<name>``), measured together so their steps interleave."""
    import environments
    from sim.bench.envbench import environments_section

    names = environments.names()
    t0 = time.perf_counter()
    try:
        environments_section(bench, names, save)
    except Exception as exc:
        for name in names:
            bench.results.setdefault(f"env:{name}", {})["error"] = f"{type(exc).__name__}: {exc}"
            bench.results[f"env:{name}"]["traceback"] = traceback.format_exc()
        bar.write(f"[bench] environments failed: {type(exc).__name__}: {exc}")
    for name in names:
        bench.results[f"env:{name}"]["section_seconds"] = round(time.perf_counter() - t0, 1)


def _meta(quick: bool, bench: Bench) -> dict[str, Any]:
    import os

    import torch

    return {
        "quick": quick,
        "device": bench.device,
        "model": bench.model,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "plan": dataclasses.asdict(bench.plan),
    }


def _throughput(bench: Bench) -> dict[str, Any]:
    from sim.bench import throughput

    return throughput.section(bench)


def _entropy(bench: Bench) -> dict[str, Any]:
    from sim.bench import entropy

    return entropy.section(bench)


def _hardware(bench: Bench) -> dict[str, Any]:
    from sim.bench import hardware

    return hardware.section(bench)


def _scale(bench: Bench) -> dict[str, Any]:
    from sim.bench.envbench import scale_section

    return scale_section(bench)


def _steering(bench: Bench) -> dict[str, Any]:
    from sim.bench import steer

    return steer.section(bench)


def _memory(bench: Bench) -> dict[str, Any]:
    from sim.bench import memory

    return memory.section(bench)


def _sweep(bench: Bench) -> dict[str, Any]:
    from sim.bench import sweep

    return sweep.section(bench)


def _cuda(bench: Bench) -> dict[str, Any]:
    from sim.bench import cuda

    return cuda.section(bench)


def _server(bench: Bench) -> dict[str, Any]:
    from sim.bench import server

    return server.section(bench)


_SECTION_FUNCS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "throughput": _throughput,
    "entropy": _entropy,
    "hardware": _hardware,
    "scale": _scale,
    "steering": _steering,
    "memory": _memory,
    "sweep": _sweep,
    "cuda": _cuda,
    "server": _server,
}


# --------------------------------------------------------------------------- command
def _cmd_bench(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.model:
        overrides["model"] = args.model
    if args.server:
        overrides["server_url"] = args.server
    if args.environment:
        import environments

        if args.environment not in environments.names():
            allowed = ", ".join(environments.names())
            print(
                f"error: --environment '{args.environment}' is not registered; choose from {allowed}", file=sys.stderr
            )
            return 2
        overrides["environment"] = args.environment
    if args.sections:
        unknown = sorted(set(args.sections) - set(SECTIONS))
        if unknown:
            print(f"error: unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}", file=sys.stderr)
            return 2
        overrides["sections"] = tuple(args.sections)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("error: --device cuda but no CUDA device is available", file=sys.stderr)
            return 2
    results = run_bench(
        args.quick, args.device, args.out, plan=plan_for(args.quick, **overrides), progress=not args.quiet
    )
    out = Path(args.out)
    print((out / "bench.md").read_text())
    print(f"written: {out / 'bench.json'}, {out / 'bench.md'} ({results['meta']['wall_seconds']:.0f} s)")
    failed = [name for name, value in results.items() if failed_section(value)]
    if failed:
        print(f"sections that failed: {', '.join(failed)} (see bench.json)", file=sys.stderr)
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the decision hot path against the naive way and the hardware limit",
        description=(
            "Measure decision throughput (per-agent generate-and-parse vs per-agent, batched and prefix-reusing "
            "option scoring), exact entropy vs a 25-sample estimate, the fraction of this machine's matmul peak, "
            "steering overhead, memory with 10/50/100 agents and sweep throughput on Ray; write OUT/bench.json "
            "and OUT/bench.md (a table of figure, value, ratio, target, met?). Ratios are measured side by side "
            "in one process."
        ),
        epilog=(
            "examples:\n"
            "  normsim bench --quick --out /tmp/bench          all sections, small sizes (minutes on 2 cores)\n"
            "  normsim bench --out bench                       16 and 64 agents, more repeats\n"
            "  normsim bench --device cuda --out bench-gpu     the same on a GPU with a ~1B random Llama\n"
            "  normsim bench --quick --sections throughput entropy --out /tmp/b\n"
            "GPU check in one command (offline, under 6 minutes): make gpu-check (docs/gpu-check.md)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="fewer repeats, 16 agents only (all sections still run)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs (default: cpu)")
    p.add_argument("--out", required=True, help="directory for bench.json and bench.md")
    p.add_argument("--model", help="model to measure on CPU (default: smollm2-135m)")
    p.add_argument("--environment", help="environment whose requests the engine sections use (default: reference)")
    p.add_argument("--sections", nargs="+", metavar="SECTION", help=f"only these: {', '.join(SECTIONS)}")
    p.add_argument(
        "--server", metavar="URL", help="also time an OpenAI-compatible server (e.g. vllm serve) on the same round"
    )
    p.set_defaults(func=_cmd_bench)


def failed_section(value: Any) -> bool:
    """Whether a section's result is an error or holds a failed check (an agreement beyond its tolerance)."""
    return isinstance(value, dict) and ("error" in value or bool(value.get("failed_checks")))


def load(out: str | Path) -> dict[str, Any]:
    """A written bench.json."""
    return json.loads((Path(out) / "bench.json").read_text())
