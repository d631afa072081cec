"""The `normsim` command line.

Each command is a function registered in :data:`COMMANDS`; a command module from
another package adds itself by appending one ``module:register`` entry there.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from sim.schema import ConfigError

HEADLINE = (
    "survival_time", "survived", "efficiency", "equality", "over_usage", "norm_violation_rate",
    "punishment_rate", "mean_action_entropy", "violation_rate", "awareness_coverage", "mean_reward",
    "cooperation",
)  # fmt: skip


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.runner import run

    result = run(args.scenario, out=args.out, seed=args.seed, overrides=args.set or None, progress=not args.quiet)
    print(f"run directory: {result.dir}")
    for key in HEADLINE:
        if key in result.metrics:
            print(f"  {key}: {_fmt(result.metrics[key])}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sim.config import load_scenario

    scenario = load_scenario(args.scenario, args.set or None)
    print(f"{args.scenario}: valid ({scenario.environment.type}, {scenario.n_agents} agents, {scenario.run.steps} steps)")
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else json.dumps(value)


def _register_core(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario file",
        description="Run a scenario and write config.yaml, events.parquet, steps.parquet and metrics.json.",
        epilog="example: normsim run scenarios/commons_scripted.yaml --out runs --seed 3 --set run.steps=20",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="parent directory for the run (default: the scenario's output.dir)")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. mechanics.punishment.enabled=true")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "validate",
        help="check a scenario file without running it",
        epilog="example: normsim validate scenarios/commons_llm.yaml --set population.0.size=8",
    )
    p.add_argument("scenario")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=_cmd_validate)


# "module:function" entries; each function adds its sub-commands to the parser.
COMMANDS: list[str] = [
    "sim.cli:_register_core",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="normsim",
        description="Simulate societies of LLM agents: commons, shops and forums, with norms, sanctions and steering.",
        epilog="example: normsim run scenarios/commons_llm.yaml",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in COMMANDS:
        module, _, name = entry.partition(":")
        register: Callable[[argparse._SubParsersAction], None] = getattr(importlib.import_module(module), name)
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished steps were kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
