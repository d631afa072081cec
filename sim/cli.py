"""The `normsim` command line.

Each command is a function registered in :data:`COMMANDS`; a command module from
another package adds itself by appending one ``module:register`` entry there. Every
command gets ``--quiet`` and ``--verbose`` (also accepted before the command name);
a command reads them as ``args.quiet`` and ``args.verbose``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim.core.numbers import tidy  # math only: --help stays fast


def _cmd_run(args: argparse.Namespace) -> int:
    from sim.runner import run

    result = run(
        args.scenario, out=args.out, seed=args.seed, overrides=args.set or None, progress=not args.quiet, live=args.live
    )
    print(f"run directory: {result.dir}")
    headline = result.scenario.spec.headline
    shown = [k for k, v in result.metrics.items() if not isinstance(v, dict | list)] if args.verbose else headline
    for key in shown:
        if key in result.metrics:
            print(f"  {key}: {_fmt(result.metrics[key])}")
    if result.report is not None:
        print(f"report: {result.report.resolve()}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sim.config import load_scenario, read_yaml

    raw = read_yaml(args.scenario)
    # A pipe (<(...), a FIFO) can be read once: what was read is validated, not a second, empty read.
    source = args.scenario if Path(args.scenario).is_file() else raw
    if "base" in raw:  # a sweep file
        from sim.sweep import validate_sweep

        for module in raw.get("imports") or []:
            print(f"warning: imports: '{module}' is imported (its code runs) here and in every worker", file=sys.stderr)
        cells, runs = validate_sweep(source, args.set or None)
        print(f"{args.scenario}: valid sweep ({cells} cells, {runs} runs)")
        return 0
    from sim.rundir import check_models
    from sim.tracking import check_tracker

    scenario = load_scenario(source, args.set or None)
    check_models(scenario)
    check_tracker(scenario)
    print(
        f"{args.scenario}: valid ({scenario.environment.type}, {scenario.n_agents} agents, {scenario.run.steps} steps)"
    )
    for i, group in enumerate(scenario.population):
        if getattr(group.policy, "trust_remote_code", False):
            print(
                f"warning: population[{i}].policy.trust_remote_code: true runs Python code shipped with "
                f"model '{group.policy.model}' on this machine",
                file=sys.stderr,
            )
    return 0


def _cmd_finalize(args: argparse.Namespace) -> int:
    from sim.rundir import finalize

    metrics = finalize(args.dir)
    if metrics is None:
        print(f"{args.dir}: nothing to finalize (no journals left)")
    else:
        dropped = metrics.get("rows_dropped")
        print(
            f"{args.dir}: finalized, status {metrics['status']}, {metrics['steps_completed']} steps"
            + (f"; dropped {dropped} rows of a step never written whole" if dropped else "")
        )
    return 0


def _fmt(value: Any) -> str:
    return f"{tidy(value):.3f}" if isinstance(value, float) else json.dumps(value)  # never -0.000


def _register_core(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a scenario file",
        description=(
            "Run a scenario and write its directory (OUT/<name>-seed<seed>): config.yaml, events.parquet (one row "
            "per decision), steps.parquet (one row per step), metrics.json and report.html with plots and a "
            "transcript. Prints the directory, the headline metrics and the report's path."
        ),
        epilog=(
            "examples:\n"
            "  normsim run scenarios/commons_scripted.yaml\n"
            "  normsim run scenarios/commons_scripted.yaml --out runs --seed 3 --set run.steps=20\n"
            "  normsim run scenarios/commons_llm.yaml --set population.0.size=8 --set output.report=false"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--out", help="parent directory for the run (default: the scenario's output.dir)")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument(
        "--live",
        action="store_true",
        help="serve a live view of the running society on 127.0.0.1 (open the URL it prints in a browser)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a field, e.g. mechanics.punishment.enabled=true"
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "validate",
        help="check a scenario file without running it",
        description=(
            "Validate a scenario file (or a sweep file: every cell): every problem is printed with its field path "
            "and what is allowed; named models must be available locally. Settings that run code from outside "
            "normsim (trust_remote_code: true, a sweep's imports:) are pointed out."
        ),
        epilog="example: normsim validate scenarios/commons_llm.yaml --set population.0.size=8",
    )
    p.add_argument("scenario", help="scenario or sweep YAML file")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field before validating")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "finalize",
        help="turn a killed run's journals into its tables and metrics.json",
        description=(
            "A run killed before it could close leaves events/steps/agents.jsonl journals; this writes the Parquet "
            "tables and metrics.json (status: killed) from them. `normsim report` does it too."
        ),
        epilog="example: normsim finalize runs/commons_scripted-seed0",
    )
    p.add_argument("dir", metavar="RUN_DIR", help="a run directory")
    p.set_defaults(func=_cmd_finalize)


# "module:function" entries; each function adds its sub-commands to the parser.
COMMANDS: list[str] = [
    "sim.cli:_register_core",
    "sim.sweep:register",
    "sim.report:register",
    "steering.cli:register",
    "sim.bench:register",
]

# command -> (its COMMANDS entry, one-line help), so `normsim --help` and each command
# import only the module they need (importing them all took 2-4 s). A test checks this
# table against what every entry registers; a command missing here still works, through
# the slow path that imports every entry.
COMMAND_INDEX: dict[str, tuple[str, str]] = {
    "run": ("sim.cli:_register_core", "run a scenario file"),
    "validate": ("sim.cli:_register_core", "check a scenario file without running it"),
    "finalize": ("sim.cli:_register_core", "turn a killed run's journals into its tables and metrics.json"),
    "sweep": ("sim.sweep:register", "run a grid of scenarios x seeds (resumable, parallel on Ray)"),
    "report": ("sim.report:register", "write report.html for a run or sweep directory"),
    "steer": ("steering.cli:register", "fit steering vectors and sweep their coefficients"),
    "bench": ("sim.bench:register", "measure the decision hot path against the naive way and the hardware limit"),
}

EXAMPLES = """\
examples:
  normsim run scenarios/commons_scripted.yaml          run a scenario; prints the run directory and report.html
  normsim validate scenarios/commons_llm.yaml          check a scenario file
  normsim report runs/commons_scripted-seed0           (re)write a run's or a sweep's report.html
  normsim sweep scenarios/commons_grid.yaml --out runs/grid
  normsim COMMAND --help                               a command's options and examples

docs: docs/quickstart.md, docs/scenario-reference.md, docs/api.md, docs/steering.md, docs/sweeps-on-ray.md
"""


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The parser; ``command`` names the one command whose module is imported ("*": all of them;
    None: none, for the top-level help). The others are listed by their one-line help."""
    parser = argparse.ArgumentParser(
        prog="normsim",
        description="Simulate societies of LLM agents: shared resources, markets and forums, with norms, sanctions and steering.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", dest="global_quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "-v", "--verbose", dest="global_verbose", action="store_true", help="more output and debug logs"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    indexed = {entry for entry, _ in COMMAND_INDEX.values()}
    wanted = COMMAND_INDEX[command][0] if command in COMMAND_INDEX else None
    for entry in COMMANDS:
        if command == "*" or entry == wanted or entry not in indexed:
            module, _, name = entry.partition(":")
            register: Callable[[argparse._SubParsersAction], None] = getattr(importlib.import_module(module), name)
            register(sub)
        else:
            for cmd, (owner, text) in COMMAND_INDEX.items():
                if owner == entry:
                    sub.add_parser(cmd, help=text)
    for parsed in sub.choices.values():
        _add_verbosity(parsed)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not a global flag), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMAND_INDEX else "*"
    return None


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    """--quiet/--verbose on a command (and its sub-commands) that does not define them itself.

    SUPPRESS as the default: a nested sub-command's parser must not reset a flag given
    to its parent (``normsim steer -q fit``).
    """
    taken = parser._option_string_actions
    for flags, dest, text in (
        (("-q", "--quiet"), "quiet", "no progress output"),
        (("-v", "--verbose"), "verbose", "more output and debug logs"),
    ):
        free = [f for f in flags if f not in taken]
        if "--" + dest in free:
            parser.add_argument(*free, dest=dest, action="store_true", default=argparse.SUPPRESS, help=text)
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for nested in getattr(action, "choices", {}).values():
            _add_verbosity(nested)


def printable(text: str) -> str:
    """Control characters (a NUL, an escape sequence) from user input shown escaped, never sent
    to the terminal raw; line breaks stay."""
    return "".join(c if c in "\n\t" or c.isprintable() else repr(c)[1:-1] for c in text)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    # A command's own flag and the one before the command name mean the same.
    args.quiet = bool(getattr(args, "quiet", False) or args.global_quiet)
    args.verbose = bool(getattr(args, "verbose", False) or args.global_verbose)
    if args.quiet and args.verbose:
        parser.error("--quiet and --verbose exclude each other")
    # Imported after parsing: `normsim --help` then loads neither pydantic nor tqdm.
    from sim.core.schema import ConfigError
    from sim.progress import configure

    configure(quiet=args.quiet, verbose=args.verbose)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"error: {printable(str(err))}", file=sys.stderr)
        return 2
    except OSError as err:  # a disk that is full or read-only, a path that cannot be written
        where = f"{err.filename}: " if err.filename else ""
        print(printable(f"error: {where}{err.strerror or err}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished steps were kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
