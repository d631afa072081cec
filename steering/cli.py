"""``normsim steer fit|sweep|bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sim.core.schema import ConfigError


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _run_model(run_dir: str) -> str | None:
    """The model of a run's LLM groups (from its config.yaml)."""
    from sim.config import load_scenario

    scenario = load_scenario(Path(run_dir) / "config.yaml")
    models = {g.policy.model for g in scenario.population if g.policy.type == "llm"}
    if len(models) > 1:
        raise ConfigError(f"{run_dir} uses several models ({sorted(models)}); pass --model")
    return next(iter(models), None)


def _cmd_fit(args: argparse.Namespace) -> int:
    from agents.llm import get_backend
    from steering.config import FitSpec
    from steering.fit import fit_spec

    runs = args.runs or []
    model = args.model or (_run_model(runs[0]) if runs else None) or "smollm2-135m"
    try:
        spec = FitSpec(
            method=args.method,
            layers=args.layers,
            runs=runs,
            phase=args.phase,
            positive=args.positive,
            negative=args.negative,
            quantile=args.quantile,
            center=args.center,
        )
    except ValueError as err:
        raise ConfigError(str(err)) from None
    vector = fit_spec(spec, get_backend(model))
    path = vector.save(args.out)
    norms = ", ".join(f"L{k}: {v:.3f}" for k, v in vector.norms().items())
    print(f"wrote {path} (+ .json): {vector.method} on {vector.model_id}, norms {norms}")
    if "drift_cos" in vector.params:
        drift = ", ".join(f"L{k}: {v:.2f}" for k, v in vector.params["drift_cos"].items())
        print(f"cosine with the within-episode drift (last step minus first, center={args.center}): {drift}")
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from steering.fit import layer_report

    rows = layer_report(args.runs, args.layers, phase=args.phase, center=args.center)
    print(f"EAST centred per {args.center}")
    print(
        "| layer | resid norm | within-episode spread | EAST norm | spread/EAST norm | drift cos | opposite "
        "| separation | separation/spread |\n|---:|---:|---:|---:|---:|---:|:---:|---:|---:|"
    )
    for r in rows:
        print(
            f"| {r['layer']} | {r['resid_norm']:.1f} | {r['spread']:.2f} | {r['east_norm']:.3f} | "
            f"{r['unit_coef']:.1f} | {r['drift_cos']:.2f} | {'yes' if r['opposite'] else 'no'} | "
            f"{r['separation']:.3f} | {r['snr']:.3f} |"
        )
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from sim.config import parse_overrides
    from steering.sweep import markdown, sweep

    layer_sets: list[Any] = [_ints(s) for s in args.layers] if args.layers else [None]
    table = sweep(
        args.scenario,
        args.vector,
        args.coefficients,
        args.out,
        layer_sets=layer_sets,
        groups=args.groups.split(",") if args.groups else None,
        positions=args.positions.split(","),
        operator=args.operator,
        control=args.control,
        overrides=parse_overrides(args.set or []),
        seeds=args.seeds,
        metric=args.metric,
        progress=not args.quiet,
    )
    if args.seeds:  # the per-run rows are in sweep.csv; the summary over seeds is the answer
        from steering.sweep import summarize

        print(markdown(summarize(table, args.metric)))
        print(f"tables: {Path(args.out) / 'summary.csv'}, per run: {Path(args.out) / 'sweep.csv'}")
    else:
        print(markdown(table))
        print(f"table: {Path(args.out) / 'sweep.csv'}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from agents.llm import get_backend
    from steering.bench import overhead, table

    backend = get_backend(args.model)
    rows = overhead(backend.model, batch=args.batch, prompt_len=args.prompt_len, repeats=args.repeats)
    print(f"{args.model} on {backend.device}, batch {args.batch} x {args.prompt_len} tokens, {args.repeats} repeats")
    print(table(rows))
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    steer = sub.add_parser(
        "steer",
        help="fit steering vectors and sweep their coefficients",
        description="Activation steering: fit vectors from runs or prompt sets, sweep them, measure their cost.",
        epilog="example: normsim steer fit --method east --from runs/bandit_llm-seed0 "
        "--layers 15 --out vectors/bandit_east",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = steer.add_subparsers(dest="steer_command", required=True, metavar="STEER_COMMAND")

    p = cmds.add_parser(
        "fit",
        help="fit a steering vector",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fit a vector and save it as FILE.safetensors + FILE.json. Layer L is the output of decoder block L.",
        epilog=(
            "examples:\n"
            "  normsim steer fit --method east --from runs/bandit_llm-seed0 --layers 15 --out vectors/bandit_east\n"
            "  normsim steer fit --method contrastive --from runs/commons_llm-seed0 --positive persona=altruistic \\\n"
            "      --negative persona=selfish --layers 15 --out vectors/coop\n"
            "  normsim steer fit --method east --center step --from runs/commons_east-seed0 --phase harvest \\\n"
            "      --layers 6,24 --out vectors/commons_east_step\n"
            "  normsim steer fit --method pca --positive coop.yaml --negative selfish.yaml --layers 12,15 --out v"
        ),
    )
    p.add_argument("--method", required=True, choices=["east", "contrastive", "pca", "success"])
    p.add_argument("--from", dest="runs", action="append", metavar="RUN_DIR", help="a run written with capture_layers")
    p.add_argument("--layers", type=_ints, required=True, help="comma-separated decoder layers, e.g. 10,15")
    p.add_argument("--out", required=True, help="output path (without or with .safetensors)")
    p.add_argument("--phase", help="only decisions of this phase")
    p.add_argument("--positive", help="contrastive/pca: a prompt file, or with --from an event filter column=value")
    p.add_argument("--negative", help="the other side, like --positive")
    p.add_argument("--quantile", type=float, default=0.5, help="success: payoff quantile splitting success/failure")
    p.add_argument(
        "--center",
        default="episode",
        choices=["episode", "step", "episode+step"],
        help="east: subtract each episode's mean (EAST, default), each step's mean across the agents of a run "
        "(removes context drifting within episodes), or both",
    )
    p.add_argument("--model", help="model (default: the runs' model, else smollm2-135m)")
    p.set_defaults(func=_cmd_fit)

    p = cmds.add_parser(
        "sweep",
        help="run a scenario over steering coefficients (and layers)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run SCENARIO once per (layers, coefficient) with the vector on the LLM groups; write "
        "OUT/sweep.csv and OUT/sweep.md (mean action entropy and the environment's key metrics).",
        epilog="example:\n  normsim steer sweep scenarios/bandit_llm.yaml --vector vectors/bandit_east "
        "--coefficients 0,2,4,8 --control shuffled --out runs/bandit_sweep",
    )
    p.add_argument("scenario")
    p.add_argument("--vector", required=True, help="a saved steering vector")
    p.add_argument(
        "--coefficients",
        type=_floats,
        required=True,
        help="comma-separated, e.g. 0,2,4,8; a list starting with a negative number needs '=': --coefficients=-4,0,4",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--layers", action="append", help="a layer set to apply, e.g. 15 or 10,15; repeat for a grid")
    p.add_argument("--groups", help="comma-separated groups to steer (default: every LLM group)")
    p.add_argument("--positions", default="last_prompt,generated", help="last_prompt, all_prompt, generated")
    p.add_argument("--operator", default="add", choices=["add", "add_norm", "rotate", "ablate"])
    p.add_argument("--control", choices=["shuffled"], help="also run a shuffled-vector control")
    p.add_argument(
        "--seeds",
        type=_ints,
        help="run every setting once per seed (e.g. 10,11,12); adds summary.csv with the mean and sd over seeds",
    )
    p.add_argument(
        "--metric",
        default="mean_action_entropy",
        help="what the summary over seeds reports, e.g. entropy.harvest (one phase)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario field")
    p.set_defaults(func=_cmd_sweep)

    p = cmds.add_parser(
        "layers",
        help="EAST layer choice and coefficient scale from captured runs",
        description="Per layer: residual-stream norm, within-episode spread, EAST vector norm, and "
        "Selective Steering's opposite-sign criterion (high- vs low-entropy decisions), best first.",
        epilog="example: normsim steer layers --from runs/bandit_llm-seed0 --layers 6,9,12,15",
    )
    p.add_argument("--from", dest="runs", action="append", required=True, metavar="RUN_DIR")
    p.add_argument("--layers", type=_ints, required=True)
    p.add_argument("--phase", help="only decisions of this phase")
    p.add_argument(
        "--center",
        default="episode",
        choices=["episode", "step", "episode+step"],
        help="east: subtract each episode's mean (EAST, default), each step's mean across the agents of a run "
        "(removes context drifting within episodes), or both",
    )
    p.set_defaults(func=_cmd_layers)

    p = cmds.add_parser(
        "bench",
        help="steered vs unsteered batched forward time (1 and 4 layers)",
        epilog="example: normsim steer bench --batch 16 --repeats 10 --out steer_bench.json",
    )
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", help="also write the rows as JSON")
    p.set_defaults(func=_cmd_bench)
