"""Reports: a self-contained report.html (plots, tables, transcript) for a run or a sweep.

>>> from sim.report import write_report
>>> write_report("runs/commons_scripted-seed0")       # a run directory
PosixPath('runs/commons_scripted-seed0/report.html')
>>> write_report("runs/commons_grid")                 # a sweep directory (results.parquet)

Beside report.html the PNGs go to ``plots/``. ``sim.runner.run`` writes a run's report
at the end unless ``output.report`` is false; ``normsim report DIR`` (re)writes one.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before any figure exists: never look for a display

import environments  # noqa: E402
from sim import safe_write  # noqa: E402
from sim.core.numbers import num, tidy_frame  # noqa: E402
from sim.core.schema import ConfigError  # noqa: E402
from sim.logger import has_journals  # noqa: E402
from sim.names import relabel  # noqa: E402
from sim.report import html  # noqa: E402
from sim.report import summary as summary_html  # noqa: E402
from sim.report.data import RunData, SweepData, detect, load_run_data, load_sweep_data  # noqa: E402
from sim.report.definitions import definitions  # noqa: E402
from sim.report.plots import Plot, generic_plots  # noqa: E402
from sim.report.transcript import MAX_DECISIONS, transcript_html  # noqa: E402
from sim.rundir import finalize, is_running  # noqa: E402

__all__ = ["detect", "register", "write_report"]


# The PNGs a report wrote, so the next report removes its own stale plots and nothing else.
MANIFEST = ".normsim-plots.json"
# The HTML files reports wrote into a folder: the next report may overwrite those, nothing else.
REPORTS = ".normsim-reports.json"

# User text (group names, descriptions, rule texts) reaches axis labels and legends: it
# is data, never mathtext ("$x$") or TeX.
_PLAIN_TEXT = {"text.usetex": False, "text.parse_math": False}


def write_report(
    path: str | Path, out: str | Path | None = None, *, max_decisions: int = MAX_DECISIONS, force: bool = False
) -> Path:
    """Write ``report.html`` (and ``plots/*.png``) for a run or sweep directory; returns the HTML path.

    A killed run's journals are finalized first (``normsim finalize``). Beside the HTML
    only the PNGs this report names are written; of the files already in ``plots/``
    only those an earlier report wrote (listed in its manifest) are removed. Elsewhere
    (``out``) no file a report did not write is overwritten and no symbolic link is
    followed: a clash is one line naming the file, before anything is written (``force``
    overwrites).
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: not a run or sweep directory")
    target = Path(out) if out is not None else path / "report.html"
    if target.is_dir():
        raise ConfigError(f"--out {target}: is a directory; give the HTML file's path, e.g. {target / 'report.html'}")
    kind = detect(path)
    if kind != "sweep" and has_journals(path) and not is_running(path):
        finalize(path)
    with matplotlib.rc_context(_PLAIN_TEXT):
        if kind == "sweep":
            text, plots = _sweep_page(load_sweep_data(path))
        else:
            text, plots = _run_page(load_run_data(path), max_decisions)
    png_dir = target.parent / "plots"
    names = {f"{plot.name}.png" for plot in plots}
    # The run's or sweep's own report.html and plots are normsim's, whoever wrote them first.
    inside = out is None or (target.name == "report.html" and target.parent.resolve() == path.resolve())
    ours = _written_before(png_dir) | (names if inside else set())
    safe_write.check(
        target, owned=inside or target.name in safe_write.read_manifest(target.parent / REPORTS), force=force
    )
    reports = target.parent / REPORTS
    if not inside:
        safe_write.check(reports, owned=safe_write.is_manifest(reports), force=force)
    if png_dir.exists() or png_dir.is_symlink():
        safe_write.ensure_dir(png_dir)
        safe_write.check(png_dir / MANIFEST, owned=safe_write.is_manifest(png_dir / MANIFEST), force=force)
        for name in names:
            safe_write.check(png_dir / name, owned=name in ours, force=force)
    safe_write.ensure_dir(png_dir)
    for old in _written_before(png_dir) - names:
        safe_write.remove(png_dir / old)
    for plot in plots:
        safe_write.write(png_dir / f"{plot.name}.png", plot.png)
    safe_write.add_to_manifest(png_dir / MANIFEST, names, replace=True, force=force)
    safe_write.write(target, text)
    if not inside:
        safe_write.add_to_manifest(reports, [target.name], force=force)
    return target


def _written_before(png_dir: Path) -> set[str]:
    return {n for n in safe_write.read_manifest(png_dir / MANIFEST) if n.endswith(".png")}


# ----------------------------------------------------------------------------- runs
def run_plots(run: RunData) -> list[Plot]:
    """The environment's own plots (its spec's ``plots``), then the generic ones: per-step
    trends of the columns its plots do not show, and action entropy."""
    try:
        spec = environments.get(run.env_type)
    except KeyError:  # a run of an environment that is not installed here: generic plots only
        return generic_plots(run)
    own: list[Plot] = []
    if spec.plots is not None:
        module, _, name = spec.plots.partition(":")
        plotter: Callable[[RunData], list[Plot]] = getattr(importlib.import_module(module), name)
        own = plotter(run)
    return own + generic_plots(run, skip_steps=spec.plotted_steps)


def _run_page(run: RunData, max_decisions: int) -> tuple[str, list[Plot]]:
    plots = run_plots(run) + summary_html.per_agent_plots(run.metrics)
    cfg, metrics = run.config, run.metrics
    status = metrics.get("status", "unknown")
    meta = " &middot; ".join(
        escape(str(x))
        for x in (
            f"environment: {run.env_type}",
            f"status: {status}",
            f"steps: {metrics.get('steps_completed', len(run.steps))} of {cfg.get('run', {}).get('steps', '?')}",
            f"seed: {cfg.get('run', {}).get('seed', '?')}",
            f"{metrics.get('wall_seconds', '?')} s",
            str(run.dir),
        )
    )
    description = f"<p>{escape(str(cfg['description']))}</p>" if cfg.get("description") else ""
    known = definitions(run.env_type)
    summary = description + "<div class='grid'>" + summary_html.metrics_table(metrics) + _population_table(cfg)
    summary += "</div>" + summary_html.decisions_by_phase(run.events, metrics)
    presentation = summary_html.presentation_html(metrics)
    sections = [
        ("summary", "Summary", summary),
        *([("presentation", "Presentation sensitivity", presentation)] if presentation else []),
        ("plots", "Plots", html.figures(plots)),
        ("definitions", "Metric definitions", summary_html.definitions_table(metrics, known)),
        ("transcript", "Transcript", transcript_html(run.events, run.prompts, max_decisions)),
        (
            "config",
            "Configuration",
            f"<details><summary>config.yaml</summary><pre>"
            f"{escape((run.dir / 'config.yaml').read_text())}</pre></details>",
        ),
    ]
    return html.page(f"normsim run report: {run.title}", meta, sections), plots


def _population_table(cfg: dict[str, Any]) -> str:
    rows = []
    for group in cfg.get("population", []):
        policy = group.get("policy", {})
        if isinstance(policy, dict):
            policy = f"{policy.get('type', '')}: {policy.get('rule') or policy.get('model') or ''}"
        rows.append((group.get("name"), group.get("size"), group.get("persona"), policy))
    return html.table(["group", "size", "persona", "policy"], rows, numeric=[False, True, False, False])


# ---------------------------------------------------------------------------- sweeps
def _sweep_page(sweep: SweepData) -> tuple[str, list[Plot]]:
    from sim.report import sweeps

    stats = tidy_frame(sweeps.summary(sweep))
    # punishment.enabled, not mechanics.punishment.enabled; 0, not -1.11e-16
    diffs = tidy_frame(relabel(sweeps.contrast_table(sweep), sweep.key_labels()))
    plots = sweeps.plots(sweep, stats, diffs)
    res = sweep.results
    counts = res["status"].value_counts().to_dict() if "status" in res else {}
    meta = " &middot; ".join(
        escape(x)
        for x in (
            f"{res['cell'].nunique()} cells",
            f"{len(res)} runs",
            ", ".join(f"{n} {s}" for s, n in counts.items()),
            str(sweep.dir),
        )
    )
    description = f"<p>{escape(str(sweep.spec['description']))}</p>" if sweep.spec.get("description") else ""
    spec_file = sweep.dir / "sweep.yaml"
    spec_text = spec_file.read_text() if spec_file.exists() else "(no sweep.yaml)"
    sections = [
        ("summary", "Summary", description + sweeps.summary_warnings_html(stats) + _cell_table(sweep, stats)),
        ("plots", "Plots", html.figures(plots)),
        (
            "contrasts",
            "Contrasts",
            sweeps.contrasts_html(diffs, sweeps.ordered_metrics(sweep), (sweep.dir / "contrasts.csv").exists()),
        ),
        ("runs", "Runs", _runs_table(sweep)),
        ("config", "Sweep file", f"<details><summary>sweep.yaml</summary><pre>{escape(spec_text)}</pre></details>"),
    ]
    return html.page(f"normsim sweep report: {sweep.title}", meta, sections), plots


def _cell_table(sweep: SweepData, stats: Any) -> str:
    from sim.report.sweeps import ordered_metrics

    labels = sweep.labels()
    shown = ordered_metrics(sweep)[:6]
    rows = []
    for cell, runs in sweep.results.groupby("cell", sort=False):
        row: list[object] = [labels.get(str(cell), str(cell)), len(runs), int((runs["status"] == "finished").sum())]
        for metric in shown:
            hit = stats[(stats["cell"] == cell) & (stats["metric"] == metric)]
            row.append(_mean_ci(hit.iloc[0]) if len(hit) else "")
        rows.append(row)
    header = ["cell", "runs", "finished", *(f"{m}: mean [95% interval]; median" for m in shown)]
    return html.table(header, rows, numeric=[False, True, True, *([True] * len(shown))])


def _mean_ci(row: Any) -> str:
    """'0.6 [0.231, 0.882] wilson; median 1' (summary.csv's numbers; no interval for a single run)."""
    median = f"; median {num(row['median'], 3)}"
    if row["ci95_low"] != row["ci95_low"]:  # NaN: fewer runs than an interval needs
        return f"{num(row['mean'], 3)}{median}; n={int(row['n'])}: too few runs for an interval"
    low, high = num(row["ci95_low"], 3), num(row["ci95_high"], 3)
    return f"{num(row['mean'], 3)} [{low}, {high}] {row['ci_method']}{median}"


def _runs_table(sweep: SweepData) -> str:
    labels = sweep.labels()
    rows = []
    for run in sweep.results.itertuples(index=False):
        where = getattr(run, "dir", None)
        link: object = ""
        if isinstance(where, str) and where:
            report = sweep.dir / where / "report.html"
            href = f"{where}/report.html" if report.exists() else where
            link = html.Raw(f'<a href="{escape(href)}">{escape(where)}</a>')
        error = str(getattr(run, "error", "") or "").strip().splitlines()[-1:] or [""]
        status = html.Raw(f'<span class="status-{escape(str(run.status))}">{escape(str(run.status))}</span>')
        rows.append((run.run, labels.get(str(run.cell), run.cell), run.seed, status, link, error[0]))
    return (
        f"<details><summary>{len(rows)} runs</summary>"
        + html.table(["run", "cell", "seed", "status", "directory", "error"], rows)
        + "</details>"
    )


# ---------------------------------------------------------------------------- command
def _cmd_report(args: argparse.Namespace) -> int:
    path = write_report(args.dir, args.out, max_decisions=args.max_decisions, force=args.force)
    print(f"report: {path.resolve()}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write report.html for a run or sweep directory",
        description=(
            "Write a self-contained report.html (plots embedded, no network needed) and plots/*.png into a run "
            "directory (metrics, plots, a searchable transcript of every decision) or a sweep directory (each "
            "metric's distribution per cell with its median and 95 % interval, survival curves, the contrasts of "
            "two-level factors paired by seed, the runs)."
        ),
        epilog=(
            "examples:\n"
            "  normsim report runs/commons_scripted-seed0\n"
            "  normsim report runs/commons_grid            # a sweep: results.parquet inside\n"
            "  normsim report runs/big-run --max-decisions 20000"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", metavar="RUN_DIR|SWEEP_DIR", help="a run directory or a sweep directory")
    p.add_argument("--out", help="where to write the HTML (default: DIR/report.html)")
    p.add_argument("--force", action="store_true", help="overwrite files at --out that a report did not write")
    p.add_argument(
        "--max-decisions",
        type=int,
        default=MAX_DECISIONS,
        help=f"longest transcript, in decisions (default {MAX_DECISIONS})",
    )
    p.set_defaults(func=_cmd_report)
