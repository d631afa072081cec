"""Run a scenario: build the Mesa model, step it, write the run directory.

>>> from sim import run
>>> result = run("scenarios/commons_scripted.yaml", seed=3, out="runs")
>>> result.metrics["survival_time"], result.events.shape
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from agents.factory import build_policy
from agents.interfaces import Policy
from agents.llm.capture import ActivationWriter
from sim.agentvars import agent_rows, attach_agent_reporters
from sim.config import Scenario, dump_scenario, load_scenario, parse_overrides
from sim.core.schema import ConfigError
from sim.live import open_live
from sim.logger import RunWriter, claim_dir, has_journals, read_table, release_dir
from sim.names import params_slug
from sim.progress import Progress, interactive
from sim.rundir import check_models, compute_metrics, finalize, is_running, now, run_record, write_json
from sim.tracking import open_tracker

log = logging.getLogger(__name__)

# Agent-steps up to which a run's model also keeps every agent row in memory (its Mesa
# collector's agent reporters); a larger run's rows are only in agents.parquet.
AGENT_ROWS_IN_MEMORY = 1_000_000


@dataclass
class RunResult:
    """A finished (or interrupted) run: its directory, metrics and tables."""

    dir: Path
    scenario: Scenario
    metrics: dict[str, Any]
    status: str = "finished"
    extras: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None  # report.html, when one was written
    # The Mesa model after its last step (sim.run's result only; None from load_run).
    model: Any = field(default=None, repr=False)

    @cached_property
    def events(self) -> pd.DataFrame:
        return read_table(self.dir, "events")

    @cached_property
    def steps(self) -> pd.DataFrame:
        return read_table(self.dir, "steps")

    @cached_property
    def agents(self) -> pd.DataFrame:
        """One row per agent per step: wealth, current rule, norm belief, sanctions, environment extras."""
        return read_table(self.dir, "agents")


def run_id_for(scenario: Scenario, overrides: Mapping[str, Any] | None = None) -> str:
    """``output.run_id``, else ``<name>-seed<seed>`` with the --set overrides between (their cell)."""
    if scenario.output.run_id:
        return scenario.output.run_id
    # What changes the simulation names the directory; where and how it is written does not.
    cell = params_slug(
        {k: v for k, v in (overrides or {}).items() if k != "run.seed" and not k.startswith("output.")},
        [g.name for g in scenario.population],
    )
    return f"{scenario.name}{'-' + cell if cell else ''}-seed{scenario.run.seed}"


def _fresh_dir(root: Path, name: str) -> Path:
    """Create root/name, or root/name-2, -3... if taken: a run never shares another's (and says so).

    Made (and marked as this process's) at once, before any model loads: two runs started
    together each get their own.
    """
    try:
        path = claim_dir(root / name, next_free=True)
    except OSError as exc:
        raise ConfigError(f"{root / name}: cannot create the run directory: {exc.strerror or exc}") from None
    if path.name != name:  # said on stderr (not only logged): a second directory must never be a surprise
        print(f"note: {root / name} already exists: this run goes to {path}", file=sys.stderr, flush=True)
    return path


def _output_root(out: str | Path | None, scenario: Scenario) -> Path:
    root = Path(out if out is not None else scenario.output.dir)
    label = "--out" if out is not None else "output.dir"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{label} {root}: is a file; expected a directory (it is created if missing)")
    for parent in root.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{label} {root}: {parent} is a file, so no directory can be made under it")
    return root


def _inside(root: Path, path: Path) -> Path:
    # run_id is validated as a plain name; this is the second line of defence.
    if not path.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"output.run_id: the run directory {path} would lie outside {root}")
    return path


def run(
    source: str | Path | dict[str, Any] | Scenario,
    *,
    out: str | Path | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    policies: Mapping[str, Policy] | None = None,
    progress: bool | None = None,
    run_dir: str | Path | None = None,
    on_step: Callable[[int, dict[str, Any]], None] | None = None,
    report: bool | None = None,
    live: bool = False,
) -> RunResult:
    """Run a scenario and write its directory.

    ``out`` is the parent directory (default: the scenario's ``output.dir``); the run
    gets its own sub-directory unless ``run_dir`` names it exactly. ``policies``
    replaces the scenario's policies by group name (for tests and custom agents).
    ``report`` (default: the scenario's ``output.report``) writes report.html at the end.
    ``progress`` (default: when someone watches, a terminal or a notebook) shows a bar.
    ``live`` serves a live view of the running society on 127.0.0.1 (its URL on stderr).
    Everything that can be checked is checked before the directory is made, so a
    mistake leaves no directory behind.
    """
    overrides = dict(_as_dict(overrides))
    if seed is not None:
        overrides["run.seed"] = seed
    scenario = load_scenario(source, overrides or None)
    made_root: Path | None = None  # removed again, if empty, when loading fails
    made_dir = True  # a caller's own (empty) directory is left in place
    if run_dir is None:
        root = _output_root(out, scenario)
        _inside(root, root / run_id_for(scenario, overrides))
        made_root = None if root.exists() else root
        run_dir = _fresh_dir(root, run_id_for(scenario, overrides))
        run_id = run_dir.name
    else:  # a caller-chosen directory (a sweep's temporary one): output.run_id, else its name
        run_id = scenario.output.run_id or Path(run_dir).name
        made_dir = not Path(run_dir).exists()
        run_dir = _claim(Path(run_dir))
    try:  # a mistake found while loading leaves no directory behind
        check_models(scenario, skip=set(policies or ()))
        started_at = now()
        built = build_policies(scenario, policies)
        model = scenario.spec.model(scenario, built, run_id=run_id)
        if scenario.n_agents * scenario.run.steps <= AGENT_ROWS_IN_MEMORY:
            attach_agent_reporters(model)  # RunResult.model's collector keeps agents.parquet's rows too
        record = run_record(scenario, built, started_at) | {"run_id": run_id}
        tracker = open_tracker(scenario, run_id)
        writer = _open_writer(run_dir, run_id, scenario)
    except BaseException:
        release_dir(run_dir, remove=made_dir)
        if made_root is not None:
            release_dir(made_root, remove=True)
        raise
    status, first_error, loop_raised = "finished", None, False
    started = time.perf_counter()
    bar = Progress(
        total=scenario.run.steps,
        label=scenario.name,
        enabled=interactive() if progress is None else progress,
        show=scenario.spec.progress,
    )
    activations, view = None, open_live(scenario, writer.dir) if live else None
    if view is not None:
        print(f"live view: {view.url}", file=sys.stderr, flush=True)
    try:
        writer.write_text("config.yaml", dump_scenario(scenario))
        write_json(writer.dir / "run.json", record)
        activations = ActivationWriter(writer.dir)  # writes files only when a policy captured something
        for _ in range(scenario.run.steps):
            if not model.running:
                break
            model.step()
            step = int(model.steps)
            activations.collect(step, model.policies.values())  # hidden-state capture, if any
            step_row = {"step": step, **_latest_row(model)}
            events = model.take_step_events()
            writer.write_step(events, step_row, agent_rows(model, step))
            if view is not None:
                view.state.update(step, step_row, events)
            bar.update(step_row)
            tracker.log_step(step, step_row)
            if on_step is not None:
                on_step(step, step_row)
    except KeyboardInterrupt:
        status, loop_raised = "interrupted", True
        raise
    except BaseException as exc:
        status, first_error, loop_raised = "failed", exc, True
        raise
    finally:
        ended_early = status == "finished" and not model.running and int(model.steps) < scenario.run.steps
        end_reason = _early_reason(model) if ended_early else None
        bar.close(end_reason)
        if view is not None:
            view.close(status)
        # Each step of the wrap-up runs even if an earlier one fails (a full disk): the
        # first error is the one raised, and metrics.json is written whenever possible.
        wrapup: list[Callable[[], Any]] = [writer.close]
        if activations is not None:
            wrapup.append(activations.close)
        if getattr(model, "system_prompts", None):
            wrapup.append(lambda: writer.write_text("prompts.json", json.dumps(model.system_prompts, indent=2)))
        for action in wrapup:
            first_error = _attempt(action, first_error)
        if first_error is not None and status == "finished":
            status = "failed"
        seconds = time.perf_counter() - started
        metrics: dict[str, Any] = {"status": status}

        def _metrics() -> None:
            metrics.update(compute_metrics(writer.dir, scenario, status, seconds))
            metrics.update(_usage(built))
            if writer.rows_dropped:  # a step cut short (a full disk): its rows are left out, and counted
                metrics["rows_dropped"] = writer.rows_dropped
            if first_error is not None:
                metrics["error"] = _one_line(first_error)
            write_json(writer.dir / "metrics.json", metrics)

        first_error = _attempt(_metrics, first_error)
        first_error = _attempt(
            lambda: write_json(writer.dir / "run.json", record | {"ended": now(), "status": status}), first_error
        )
        if loop_raised or first_error is not None:  # no report follows: the tracker ends here
            first_error = _attempt(lambda: tracker.finish(metrics, writer.dir), first_error)
        first_error = _attempt(lambda: release_dir(writer.dir), first_error)
        if first_error is not None and not loop_raised:  # the steps went well, the wrap-up did not
            raise first_error
    result = RunResult(dir=writer.dir, scenario=scenario, metrics=metrics, status=status, model=model)
    result.extras["ended"] = end_reason
    try:
        if scenario.output.report if report is None else report:
            from sim.report import write_report  # matplotlib loads only when a report is written

            result.report = write_report(result.dir)
    finally:
        tracker.finish(metrics, writer.dir)  # after the report: report.html and plots/ are uploaded too
    return result


def _claim(run_dir: Path) -> Path:
    try:
        return claim_dir(run_dir, next_free=False)
    except OSError as exc:
        raise ConfigError(f"{run_dir}: cannot create the run directory: {exc.strerror or exc}") from None


def _open_writer(run_dir: Path, run_id: str, scenario: Scenario) -> RunWriter:
    try:
        return RunWriter(run_dir, run_id=run_id, seed=scenario.run.seed)
    except OSError as exc:
        raise ConfigError(f"{run_dir}: cannot create the run directory: {exc.strerror or exc}") from None


def _attempt(action: Callable[[], Any], first_error: BaseException | None) -> BaseException | None:
    """Run ``action``; keep the earliest error (a later one must not hide it)."""
    try:
        action()
    except Exception as exc:  # noqa: BLE001
        if first_error is None:
            return exc
        log.debug("after %r, also: %r", first_error, exc)
    return first_error


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def _early_reason(model: Any) -> str:
    """Why a run stopped before its last step: the environment's own words when it has them."""
    reason = getattr(model, "end_reason", None) or ("collapsed" if getattr(model, "collapsed", False) else "stopped")
    return f"{reason} at step {int(model.steps)}"


def _usage(policies: Mapping[str, Policy]) -> dict[str, float]:
    """Server requests, tokens and cost of the policies that call servers (agents.remote:
    they expose ``usage()``), summed as ``llm_<name>`` metrics; empty for local engines."""
    total: dict[str, float] = {}
    for policy in {id(p): p for p in policies.values()}.values():
        usage = getattr(policy, "usage", None)
        if callable(usage):
            for name, value in usage().items():
                total[f"llm_{name}"] = total.get(f"llm_{name}", 0) + value
    return total


def _latest_row(model: Any) -> dict[str, Any]:
    """The DataCollector's row for the step just collected."""
    series = model.datacollector.model_vars
    return {name: values[-1] for name, values in series.items() if values}


def _as_dict(overrides: dict[str, Any] | list[str] | None) -> dict[str, Any]:
    if not overrides:
        return {}
    return overrides if isinstance(overrides, dict) else parse_overrides(overrides)


def load_run(run_dir: str | Path) -> RunResult:
    """Open a run directory written earlier (a killed run's journals are finalized first)."""
    run_dir = Path(run_dir)
    if has_journals(run_dir) and not is_running(run_dir):
        finalize(run_dir)
    scenario = load_scenario(run_dir / "config.yaml")
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    return RunResult(dir=run_dir, scenario=scenario, metrics=metrics, status=metrics.get("status", "unknown"))


def build_policies(scenario: Scenario, given: Mapping[str, Policy] | None = None) -> dict[str, Policy]:
    """Name -> policy for every group and every role the environment adds (a content
    guardian, a moderator); ``given`` replaces any of them by name. Scripted groups share one policy."""
    spec = scenario.spec
    blocks = {g.name: (g.policy, g.steering) for g in scenario.population}
    blocks.update({role: (cfg, None) for role, cfg in spec.extra_policies(scenario.environment).items()})
    given = dict(given or {})
    unknown = sorted(set(given) - set(blocks))
    if unknown:
        raise ValueError(f"policies for unknown groups {', '.join(unknown)}; groups and roles: {', '.join(blocks)}")
    policies: dict[str, Policy] = {}
    scripted: Policy | None = None
    for name, (cfg, steering) in blocks.items():
        if name in given:
            policies[name] = given[name]
        elif cfg.type == "scripted":
            scripted = scripted or build_policy(cfg, spec.rules)
            policies[name] = scripted
        else:
            policies[name] = build_policy(cfg, spec.rules, scenario.backend, steering, _fit_inline)
    return policies


def _fit_inline(spec: Any, backend: Any) -> Any:
    """Fit a group's inline ``steering: {fit: ...}`` spec (torch loads only for such groups)."""
    from steering.fit import fit_spec

    return fit_spec(spec, backend)
