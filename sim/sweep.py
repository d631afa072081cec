"""Parameter sweeps: a base scenario x a grid of overrides x seeds, run in parallel on Ray.

A sweep file::

    name: commons_grid
    base: commons_grid_base.yaml          # relative to this file, or an inline scenario
    grid:                                 # every combination of these (dotted keys)
      environment.preset: [rich, scarce]
      mechanics.punishment.enabled: [true, false]
    zip:                                  # lists varied together (one value per row)
      population.0.persona: [altruistic, selfish]
      population.0.policy: [sustainable, greedy]
    seeds: 5                              # seeds 0..4, or a list [3, 7, 11]
    backend: {kind: ray, workers: 2}
    out: runs/commons_grid

A cell is one combination of grid values and zip row; each (cell, seed) is one run,
written to ``OUT/runs/<cell>-seed<seed>`` where ``<cell>`` is a readable slug plus a
hash of the cell's scenario, so re-running a sweep finds the runs it already finished
and skips them. A run is written in a temporary directory and renamed into place only
once its ``metrics.json`` says ``finished``: an interrupted sweep never leaves a
directory that counts as finished. A run that raises is recorded (traceback kept in
``results.parquet`` and ``OUT/failed/<run>/error.txt``) while the others go on.

At the end (also after Ctrl-C) ``OUT/results.parquet`` has one row per run and
``OUT/summary.csv`` per cell and metric the mean with its 95 % interval (Wilson for
rates, bootstrap otherwise, never outside the metric's range), median, quartiles and
runs per value, and ``OUT/contrasts.csv`` each two-level factor's effect, paired by
seed (see :mod:`sim.aggregate`). How runs execute (atomically, as Ray tasks, with model
hosts for LLM groups) is in :mod:`sim.sweep_exec` and :mod:`agents.host`.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from agents.config import BackendConfig
from sim.aggregate import contrasts, headline_metrics, results_table, summarise, summary_lines, write_results
from sim.config import OutputConfig, apply_overrides, load_scenario, parse_overrides, read_yaml
from sim.core.numbers import tidy_frame
from sim.core.schema import ConfigError, JsonValue, StrictModel, format_errors
from sim.names import key_labels, params_slug, relabel
from sim.rundir import check_models
from sim.sweep_exec import RunSpec, clean_partial, execute_run, import_all, is_finished, run_on_ray, sweep_lock
from sim.sweep_tables import contrast_lines
from sim.tracking import check_tracker

# More runs than this in one sweep file is a typo (or a file made to exhaust memory).
MAX_RUNS = 100_000


class SweepFile(StrictModel):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="default: the file's stem")
    description: str = ""
    base: str | dict[str, Any] = Field(description="scenario file (relative to the sweep file) or an inline scenario")
    grid: dict[str, Annotated[list[JsonValue], Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=50, description="dotted key -> values; cells are the product"
    )
    zip: dict[str, Annotated[list[JsonValue], Field(max_length=1000)]] = Field(
        default_factory=dict, max_length=50, description="dotted key -> values varied together"
    )
    seeds: Annotated[int, Field(le=MAX_RUNS)] | Annotated[list[int], Field(max_length=MAX_RUNS)] = Field(
        3, description="a count (seeds 0..n-1) or the list of seeds"
    )
    backend: BackendConfig = Field(default_factory=lambda: BackendConfig(kind="ray"))
    out: str | None = Field(None, description="output directory (the command's --out wins)")
    imports: list[str] = Field(default_factory=list, description="modules every worker imports first (custom rules)")
    report: bool = Field(
        True, description="write OUT/report.html (per-cell metrics with 95 % CI, plots) when the sweep ends"
    )

    @field_validator("grid", "zip")
    @classmethod
    def _non_empty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"'{key}' has no values")
        return value

    @field_validator("seeds")
    @classmethod
    def _check_seeds(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, int) and value < 1:
            raise ValueError("seeds must be a positive count or a list of seeds")
        if isinstance(value, list) and (not value or len(set(value)) != len(value) or min(value) < 0):
            raise ValueError("seeds must be a non-empty list of distinct non-negative integers")
        return value

    @model_validator(mode="after")
    def _check_axes(self) -> SweepFile:
        if len({len(v) for v in self.zip.values()}) > 1:
            lengths = ", ".join(f"{k}: {len(v)}" for k, v in self.zip.items())
            raise ValueError(f"zip lists must have the same length ({lengths})")
        cells = math.prod(len(v) for v in self.grid.values()) * max([len(v) for v in self.zip.values()] or [1])
        if cells * len(self.seed_list) > MAX_RUNS:
            raise ValueError(f"{cells} cells x {len(self.seed_list)} seeds is more than {MAX_RUNS} runs")
        both = sorted(set(self.grid) & set(self.zip))
        if both:
            raise ValueError(f"keys in both grid and zip: {', '.join(both)}")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass
class SweepResult:
    dir: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    report: Path | None = None  # OUT/report.html, unless the sweep file says report: false
    env_type: str | None = None  # the environment its runs simulate
    key_labels: dict[str, str] = field(default_factory=dict)  # swept key -> readable label (sim.names)
    contrasts: pd.DataFrame = field(default_factory=pd.DataFrame)  # contrasts.csv


# ------------------------------------------------------------------------- loading
def load_sweep(source: str | Path | dict[str, Any] | SweepFile) -> tuple[SweepFile, Path]:
    """The validated sweep and the directory its relative ``base`` path is read from."""
    if isinstance(source, SweepFile):
        return source, Path.cwd()
    if isinstance(source, dict):
        data, label, where = source, "sweep", Path.cwd()
    else:
        data, label, where = read_yaml(source), str(source), Path(source).resolve().parent
        data.setdefault("name", Path(source).stem)
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_errors(err, label)) from None
    import_all(sweep.imports)
    return sweep, where


def with_overrides(
    sweep: SweepFile, overrides: dict[str, Any] | list[str] | None, seeds: int | None = None
) -> tuple[SweepFile, dict[str, Any]]:
    """``--set`` and ``--seeds`` applied: a grid key's ``--set`` replaces its levels (a list, or
    one value), a zip key's its column (a list as long as the others, or one value for every
    row); the other keys are returned to change the base. ``seeds`` replaces the seeds."""
    changes = dict(overrides) if isinstance(overrides, dict) else parse_overrides(list(overrides or []))
    update: dict[str, Any] = {"seeds": seeds} if seeds is not None else {}
    grid, zipped = dict(sweep.grid), dict(sweep.zip)
    for key in [k for k in changes if k in grid]:
        value = changes.pop(key)
        grid[key] = value if isinstance(value, list) else [value]
    rows = len(next(iter(zipped.values()))) if zipped else 0
    for key in [k for k in changes if k in zipped]:
        value = changes.pop(key)
        zipped[key] = value if isinstance(value, list) else [value] * rows
    if grid != sweep.grid or zipped != sweep.zip:
        update |= {"grid": grid, "zip": zipped}
    if not update:
        return sweep, changes
    try:
        return SweepFile.model_validate(sweep.model_dump() | update), changes
    except ValidationError as err:
        raise ConfigError(format_errors(err, "--set/--seeds")) from None


def expand(sweep: SweepFile, base_dir: Path, overrides: dict[str, Any] | list[str] | None = None) -> list[RunSpec]:
    """Every (cell, seed) of the sweep, each cell's scenario validated up front.

    ``overrides`` (``normsim sweep --set``) change the base scenario of every cell, or
    the levels of a grid or zip key they name (:func:`with_overrides`).
    """
    sweep, overrides = with_overrides(sweep, overrides)
    base = _read_base(sweep, base_dir)
    base = apply_overrides(base, overrides)
    # A sweep decides where its runs go and how they run. Per-run HTML reports are off
    # unless the base asks for them: the sweep report (and its tables) covers the runs.
    output = {"report": bool((base.pop("output", None) or {}).get("report", False))}
    base.pop("backend", None)
    grid_keys, zip_keys = list(sweep.grid), list(sweep.zip)
    zip_rows = list(zip(*sweep.zip.values(), strict=True)) if zip_keys else [()]
    specs = []
    for grid_values in itertools.product(*sweep.grid.values()):
        for zip_values in zip_rows:
            params = dict(zip(grid_keys, grid_values, strict=True)) | dict(zip(zip_keys, zip_values, strict=True))
            try:
                raw = apply_overrides(base, params)
                load_scenario(raw)
            except ConfigError as err:
                raise ConfigError(f"cell {params}: {err}") from None
            cell = cell_id(params, raw)
            for seed in sweep.seed_list:
                scenario = apply_overrides(raw, {"run.seed": seed})
                name = f"{cell}-seed{seed}"
                scenario["output"] = (
                    {**output, "run_id": name} if "report" in OutputConfig.model_fields else {"run_id": name}
                )
                scenario["backend"] = sweep.backend.model_dump(mode="json")
                specs.append(RunSpec(name=name, cell=cell, seed=seed, params=params, scenario=scenario))
    return specs


def _read_base(sweep: SweepFile, base_dir: Path) -> dict[str, Any]:
    """The base scenario: inline, or a file found relative to the sweep file."""
    if not isinstance(sweep.base, str):
        return copy.deepcopy(sweep.base)
    path = base_dir / sweep.base
    if not path.exists():
        raise ConfigError(
            f"base: {sweep.base}: no such file next to the sweep file (looked for {path}); a copied sweep file "
            "needs its base scenario copied beside it too, or 'base:' naming its path relative to the sweep file"
        )
    return read_yaml(path)


def validate_sweep(source: str | Path, overrides: list[str] | None = None, seeds: int | None = None) -> tuple[int, int]:
    """(cells, runs) of a sweep file, every cell's scenario validated; nothing is run or written."""
    sweep, base_dir = load_sweep(source)
    sweep, overrides = with_overrides(sweep, overrides, seeds)  # type: ignore[assignment]
    specs = expand(sweep, base_dir, overrides)
    check_cell_models(specs)
    return len({s.cell for s in specs}), len(specs)


def check_cell_models(specs: list[RunSpec]) -> None:
    """Every cell's LLM models are available here (once per cell), before any run starts."""
    seen = set()
    for spec in specs:
        if spec.cell not in seen:
            seen.add(spec.cell)
            try:
                scenario = load_scenario(spec.scenario)
                check_models(scenario)
                check_tracker(scenario)
            except ConfigError as err:
                raise ConfigError(f"cell {spec.params}: {err}") from None


def cell_id(params: dict[str, Any], scenario: dict[str, Any]) -> str:
    """A readable slug of the cell's values plus a hash of its whole scenario.

    The hash covers the base scenario too, so editing the base makes the sweep run the
    affected cells again instead of mixing old and new results. It hashes the raw
    dict (not the validated model) so new defaults in the code do not rename runs.
    """
    digest = hashlib.sha256(json.dumps(scenario, sort_keys=True, default=str).encode()).hexdigest()[:8]
    groups = [str(g.get("name", "")) for g in scenario.get("population") or [] if isinstance(g, dict)]
    slug = params_slug(params, groups, hashed=False)
    return f"{slug}-{digest}" if slug else digest


def run_sweep(
    source: str | Path | dict[str, Any] | SweepFile,
    out: str | Path | None = None,
    *,
    backend: dict[str, Any] | None = None,
    on_run: Callable[[dict[str, Any], int, int], None] | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    seeds: int | None = None,
) -> SweepResult:
    """Run every unfinished (cell, seed) of a sweep and write results, summary and report.

    ``backend`` overrides fields of the sweep's backend block (``{"workers": 2}``).
    ``on_run(row, done, total)`` is called as each run ends. ``overrides`` change the
    base scenario of every cell (``normsim sweep --set``); they are part of each cell's
    hash, so runs with other overrides never count as already finished; one that names a
    grid or zip key replaces its levels. ``seeds`` (``--seeds N``) runs seeds 0..N-1.
    """
    sweep, base_dir = load_sweep(source)
    sweep, overrides = with_overrides(sweep, overrides, seeds)  # type: ignore[assignment]
    if backend:
        sweep = sweep.model_copy(update={"backend": BackendConfig.model_validate(sweep.backend.model_dump() | backend)})
    target = out if out is not None else sweep.out
    if not target:
        raise ConfigError("a sweep needs an output directory: pass --out or set 'out:' in the sweep file")
    root = Path(target)
    specs = expand(sweep, base_dir, overrides)
    if sweep.backend.kind == "local" or sweep.backend.address is None:
        check_cell_models(specs)  # on this machine; a remote cluster's workers may hold other models
    with sweep_lock(root):  # one sweep per root at a time: a second one refuses, it never interferes
        return _run_locked(sweep, root, specs, on_run)


def _run_locked(
    sweep: SweepFile, root: Path, specs: list[RunSpec], on_run: Callable[[dict[str, Any], int, int], None] | None
) -> SweepResult:
    spec_text = yaml.safe_dump(sweep.model_dump(mode="json"), sort_keys=False)
    spec_file = root / "sweep.yaml"
    if not spec_file.exists() or spec_file.read_text() != spec_text:  # unchanged: its age dates the sweep
        spec_file.write_text(spec_text)
    clean_partial(root)
    skipped = [s.name for s in specs if is_finished(root / "runs" / s.name)]
    todo = [s for s in specs if s.name not in set(skipped)]
    outcomes: dict[str, dict[str, Any]] = {}
    try:
        if sweep.backend.kind == "local":
            for k, spec in enumerate(todo, 1):
                outcomes[spec.name] = execute_run(spec, str(root), tuple(sweep.imports))
                if on_run:
                    on_run(outcomes[spec.name], k, len(todo))
        else:
            run_on_ray(sweep.backend, tuple(sweep.imports), todo, root, outcomes, on_run)
    finally:
        clean_partial(root)
        results = results_table(specs, root, outcomes)
        env_type = (specs[0].scenario.get("environment") or {}).get("type") if specs else None
        summary = summarise(results, list(sweep.grid) + list(sweep.zip), env_type)
        diffs = contrasts(results, list(sweep.grid), list(sweep.zip), env_type)
        write_results(root, results, summary, diffs)
    failed = [name for name, row in outcomes.items() if row["status"] != "finished"]
    report = None
    if sweep.report and not outcomes and _report_is_current(root):
        report = root / "report.html"  # nothing ran since it was written: it already shows these runs
    elif sweep.report:  # only once every run has ended: an interrupted sweep keeps its tables and no report
        from sim.report import write_report  # matplotlib loads only here

        report = write_report(root)
    groups = [str(g.get("name")) for g in (specs[0].scenario.get("population") or [])] if specs else []
    return SweepResult(
        root,
        results,
        summary,
        ran=list(outcomes),
        skipped=skipped,
        failed=failed,
        report=report,
        env_type=env_type,
        key_labels=key_labels([*sweep.grid, *sweep.zip], groups),
        contrasts=diffs,
    )


def _report_is_current(root: Path) -> bool:
    """report.html exists and is newer than every finished run and the sweep file."""
    report = root / "report.html"
    if not report.exists():
        return False
    written = report.stat().st_mtime
    newest = max((p.stat().st_mtime for p in root.glob("runs/*/metrics.json")), default=0.0)
    return written >= newest and written >= (root / "sweep.yaml").stat().st_mtime


# --------------------------------------------------------------------------- command
def _cmd_sweep(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.local:
        overrides["kind"] = "local"
    if args.address:
        overrides |= {"kind": "ray", "address": args.address}
    if args.workers:
        overrides["workers"] = args.workers

    def report(row: dict[str, Any], done: int, total: int) -> None:
        if not args.quiet:
            first = (row.get("error") or "").strip().splitlines()[-1:] if row["status"] != "finished" else []
            note = first[0] if first else row.get("ended")  # the error, or "collapsed at step 7"
            line = f"[{done}/{total}] {row['run']}: {row['status']}" + (f" ({note})" if note else "")
            print(line, file=sys.stderr, flush=True)  # progress goes to stderr, as a run's does

    started = time.perf_counter()
    result = run_sweep(
        args.sweep, args.out, backend=overrides or None, on_run=report, overrides=args.set or None, seeds=args.seeds
    )
    n = len(result.results)
    summary = tidy_frame(result.summary).rename(columns=result.key_labels)  # 0, not 7.1e-15
    print("\n".join(summary_lines(summary, result.env_type)))
    diffs = tidy_frame(relabel(result.contrasts, result.key_labels)) if len(result.contrasts) else result.contrasts
    metrics = headline_metrics(result.env_type, list(dict.fromkeys(result.summary["metric"]))) if n else []
    print("\n".join(["", "contrasts (on minus off, 95 % interval):", *contrast_lines(diffs, metrics)]))
    print(
        f"{n} runs: {n - len(result.failed)} finished ({len(result.skipped)} already done), "
        f"{len(result.failed)} failed, {time.perf_counter() - started:.1f} s\n"
        f"results: {result.dir / 'results.parquet'}\nsummary: {result.dir / 'summary.csv'}"
        f"\ncontrasts: {result.dir / 'contrasts.csv'}" + (f"\nreport: {result.report}" if result.report else "")
    )
    return 1 if result.failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of scenarios x seeds (resumable, parallel on Ray)",
        description=(
            "Run every (cell, seed) of a sweep file as a Ray task, write each run's directory as it finishes, "
            "then OUT/results.parquet (one row per run), OUT/summary.csv (per cell and metric: mean with its 95% "
            "interval, median, quartiles, runs per value), OUT/contrasts.csv (each two-level factor's effect) "
            "and OUT/report.html (unless the sweep file says report: false). "
            "Running the same command again skips the runs already finished."
        ),
        epilog="example: normsim sweep scenarios/commons_grid.yaml --out runs/grid --workers 2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", help="sweep YAML file")
    p.add_argument("--out", help="output directory (default: the sweep file's 'out:')")
    p.add_argument("--address", help="Ray cluster to join ('auto': the running one); default: a private local cluster")
    p.add_argument("--workers", type=int, help="runs at once (default: the cluster's CPUs)")
    p.add_argument("--local", action="store_true", help="run in this process, one run after another, without Ray")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a field of the base scenario in every cell (run.steps=20), or the levels of a grid or "
        "zip key (mechanics.punishment.enabled=[true] runs only that level)",
    )
    p.add_argument("--seeds", type=int, metavar="N", help="run seeds 0..N-1 (instead of the sweep file's seeds)")
    p.add_argument("-q", "--quiet", action="store_true", help="no line per run")
    p.set_defaults(func=_cmd_sweep)
