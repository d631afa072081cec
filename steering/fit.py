"""Fitting steering vectors from a simulation's own runs and from prompt sets.

Sources:

* runs written with ``capture_layers`` (``activations.safetensors`` + its index, see
  :mod:`agents.llm.capture`): each captured activation is the output of decoder layer L
  at a decision's last prompt token, joined to its event row on (step, phase, agent_id);
* prompt files, run through the backend's own scoring path (chat template, shared
  prefix) with capture on, so activations come from exactly where decisions are made.

:func:`fit_spec` is what an inline ``fit:`` block of a scenario runs (handed to
:func:`steering.resolve.resolve` by the runner, once per spec and model).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from agents.interfaces import Prompt
from steering import extract
from steering.config import FitSpec
from steering.resolve import ModelInfo
from steering.vectors import SteeringVector


def model_info(backend: Any) -> ModelInfo:
    """The model facts of a local backend or a model host's proxy (both answer ``info()``)."""
    return backend.info()


# ----------------------------------------------------------------------- run sources
def captured(run_dir: str | Path, layer: int, phase: str | None = None) -> tuple[torch.Tensor, pd.DataFrame]:
    """A run's captured activations at ``layer`` (N, H) and their event rows."""
    from agents.llm.capture import INDEX_FILE, TENSORS_FILE, load_activations
    from sim.logger import read_table

    run_dir = Path(run_dir)
    if not (run_dir / TENSORS_FILE).exists() or not (run_dir / INDEX_FILE).exists():
        raise FileNotFoundError(f"{run_dir} has no captured activations: run it with capture_layers on an llm policy")
    tensors, index = load_activations(run_dir)
    index = index[index["layer"] == layer]
    if index.empty:
        have = sorted(int(k.removeprefix("layer_")) for k in tensors)
        raise ValueError(f"{run_dir} captured layers {have}, not layer {layer}")
    events = read_table(run_dir, "events")
    rows = index.merge(events, on=["step", "phase", "agent_id"], how="inner", validate="one_to_one")
    if phase is not None:
        rows = rows[rows["phase"] == phase]
    if rows.empty:
        raise ValueError(f"{run_dir}: no captured decisions" + (f" in phase '{phase}'" if phase else ""))
    acts = torch.from_numpy(tensors[f"layer_{layer}"][rows["row"].to_numpy()])
    return acts, rows.reset_index(drop=True)


def _gather(run_dirs: Sequence[str | Path], layer: int, phase: str | None) -> tuple[torch.Tensor, pd.DataFrame]:
    parts = [captured(d, layer, phase) for d in run_dirs]
    frames = [rows.assign(source=str(d)) for d, (_, rows) in zip(run_dirs, parts, strict=True)]
    return torch.cat([a for a, _ in parts]), pd.concat(frames, ignore_index=True)


def fit_east(
    run_dirs: Sequence[str | Path],
    layers: Sequence[int],
    model: ModelInfo,
    *,
    phase: str | None = None,
    center: str = "episode",
) -> SteeringVector:
    """EAST from logged runs; an episode is one agent's decisions in one run, a step
    group the decisions of one run's step and phase (``center``: see
    :func:`extract.east`). The vector's params record, per layer, the cosine of the
    direction with the within-episode drift (last step's mean minus the first's)."""
    dirs, planes, drift, n = {}, {}, {}, 0
    for layer in layers:
        acts, rows = _gather(run_dirs, layer, phase)
        dirs[layer] = _east(acts, rows, center)
        planes[layer] = extract.complement_axis(acts, dirs[layer])
        drift[str(layer)] = round(_drift_cos(acts, rows, dirs[layer]), 4)
        n = len(rows)
    params = {"phase": phase, "decisions": n, "center": center, "drift_cos": drift}
    return _vector(dirs, planes, model, "east", run_dirs, params)


def _east(acts: torch.Tensor, rows: pd.DataFrame, center: str) -> torch.Tensor:
    episodes = list(zip(rows["source"], rows["agent_id"], strict=True))
    steps = list(zip(rows["source"], rows["step"], rows["phase"], strict=True))
    return extract.east(acts, rows["entropy"].to_numpy(), episodes, steps=steps, center=center)


def _drift_cos(acts: torch.Tensor, rows: pd.DataFrame, direction: torch.Tensor) -> float:
    """Cosine of ``direction`` with the drift (NaN when all decisions share one step)."""
    if rows["step"].nunique() < 2:
        return float("nan")
    return extract.cosine(direction, extract.drift_direction(acts, rows["step"].to_numpy()))


def layer_report(
    run_dirs: Sequence[str | Path], layers: Sequence[int], *, phase: str | None = None, center: str = "episode"
) -> list[dict[str, Any]]:
    """Which layers to steer with EAST, and at what coefficient scale, best first.

    Per layer: ``resid_norm``, the mean norm of the captured activations; ``spread``, the
    mean distance of an activation from its episode's mean (what EAST's centring keeps);
    ``east_norm``, the norm of the EAST vector; ``unit_coef`` = spread / east_norm, the
    coefficient at which the shift is as large as that typical within-episode
    difference; ``drift_cos``, the EAST vector's cosine with the within-episode drift
    (last step's mean activation minus the first's; ``center`` as in
    :func:`extract.east`): near 1, the vector is mostly context moving with time. ``opposite``: Selective Steering's criterion
    (:func:`extract.opposite_sign_layers`) with high-entropy decisions (above the median)
    as positives and low-entropy ones (below it) as negatives; ``snr``: its separation
    divided by the spread. Order: qualifying layers first, then by ``snr``: the raw
    separation grows with the residual norm, which grows with depth, so ranked by it
    the last layer would always win.
    """
    info, pos, neg = {}, {}, {}
    for layer in layers:
        acts, rows = _gather(run_dirs, layer, phase)
        episodes = list(zip(rows["source"], rows["agent_id"], strict=True))
        ent = torch.tensor(rows["entropy"].to_numpy(dtype="float32"))
        spread = float(extract.centre(acts, [episodes]).norm(dim=1).mean())
        u = _east(acts, rows, center)
        info[layer] = {
            "resid_norm": float(acts.float().norm(dim=1).mean()),
            "spread": spread,
            "east_norm": float(u.norm()),
            "unit_coef": spread / max(float(u.norm()), 1e-12),
            "drift_cos": _drift_cos(acts, rows, u),
        }
        median = float(ent.median())
        pos[layer], neg[layer] = acts[ent > median], acts[ent < median]
        if not len(pos[layer]) or not len(neg[layer]):
            raise ValueError(f"layer {layer}: every decision has the same entropy; no high/low split")
    rows = [
        {
            "layer": sc.layer,
            **info[sc.layer],
            "opposite": sc.opposite,
            "pos_projection": sc.pos_projection,
            "neg_projection": sc.neg_projection,
            "separation": sc.separation,
            "snr": sc.separation / max(info[sc.layer]["spread"], 1e-12),
        }
        for sc in extract.opposite_sign_layers(pos, neg)
    ]
    return sorted(rows, key=lambda r: (not r["opposite"], -r["snr"]))


def fit_success(
    run_dirs: Sequence[str | Path],
    layers: Sequence[int],
    model: ModelInfo,
    *,
    phase: str | None = None,
    quantile: float = 0.5,
) -> SteeringVector:
    """High-payoff minus low-payoff decisions (payoff: the event's ``value``)."""
    dirs, planes, n = {}, {}, 0
    for layer in layers:
        acts, rows = _gather(run_dirs, layer, phase)
        keep = rows["value"].notna().to_numpy()
        acts, payoff = acts[keep], rows["value"].to_numpy()[keep]
        dirs[layer] = extract.success_failure(acts, payoff, quantile=quantile)
        planes[layer] = extract.complement_axis(acts, dirs[layer])
        n = int(keep.sum())
    return _vector(dirs, planes, model, "success", run_dirs, {"phase": phase, "quantile": quantile, "decisions": n})


def fit_split(
    run_dirs: Sequence[str | Path],
    layers: Sequence[int],
    model: ModelInfo,
    positive: str,
    negative: str,
    *,
    phase: str | None = None,
) -> SteeringVector:
    """Mean difference between two sets of captured decisions chosen by event filters
    ('persona=altruistic', 'group=cooperators')."""
    dirs, planes = {}, {}
    for layer in layers:
        acts, rows = _gather(run_dirs, layer, phase)
        pos, neg = _where(rows, positive), _where(rows, negative)
        dirs[layer] = extract.mean_difference(acts[pos], acts[neg])
        planes[layer] = extract.complement_axis(torch.cat([acts[pos], acts[neg]]), dirs[layer])
    params = {"positive": positive, "negative": negative, "phase": phase}
    return _vector(dirs, planes, model, "contrastive", run_dirs, params)


def _where(rows: pd.DataFrame, spec: str) -> torch.Tensor:
    column, sep, value = spec.partition("=")
    if not sep or column not in rows.columns:
        raise ValueError(f"filter '{spec}' must be column=value with a column of events.parquet")
    mask = rows[column].astype(str) == value
    if not mask.any():
        raise ValueError(
            f"filter '{spec}' matches no captured decision (values: {sorted(rows[column].astype(str).unique())})"
        )
    return torch.tensor(mask.to_numpy())


# -------------------------------------------------------------------- prompt sources
def read_prompts(path: str | Path) -> list[Prompt]:
    """A YAML prompt file: a list of user texts or {system, user, answer_prefix}
    mappings, or a mapping with shared ``system``/``answer_prefix`` and ``prompts``."""
    data = yaml.safe_load(Path(path).read_text())
    system, prefix = "", ""
    if isinstance(data, dict):
        system, prefix, data = data.get("system", ""), data.get("answer_prefix", ""), data.get("prompts")
    if not isinstance(data, list) or not data:
        raise ValueError(f"{path}: expected a non-empty list of prompts")
    out = []
    for item in data:
        if isinstance(item, str):
            out.append(Prompt(system=system, user=item, answer_prefix=prefix))
        else:
            out.append(
                Prompt(
                    system=item.get("system", system),
                    user=item["user"],
                    answer_prefix=item.get("answer_prefix", prefix),
                )
            )
    return out


def prompt_activations(backend: Any, prompts: Sequence[Prompt], layers: Sequence[int]) -> dict[int, torch.Tensor]:
    """Outputs of the given layers at each prompt's last token, through the backend's
    batched scoring path (one dummy option; single-token options need no extra pass)."""
    from agents.llm.types import ScoreItem

    # a word option, like real decisions: byte-level BPE then splits context and option where decisions do
    items = [ScoreItem(p.system, p.user, p.answer_prefix, ("yes",), capture=tuple(layers)) for p in prompts]
    results = backend.score(items)
    return {layer: torch.stack([torch.from_numpy(r.activations[layer]) for r in results]) for layer in layers}


def fit_prompts(
    backend: Any,
    positive: Sequence[Prompt],
    negative: Sequence[Prompt],
    layers: Sequence[int],
    *,
    method: str = "contrastive",
    sources: Sequence[str] = (),
) -> SteeringVector:
    pos = prompt_activations(backend, positive, layers)
    neg = prompt_activations(backend, negative, layers)
    fn = extract.mean_difference if method == "contrastive" else extract.pca_direction
    dirs = {layer: fn(pos[layer], neg[layer]) for layer in layers}
    planes = {layer: extract.complement_axis(torch.cat([pos[layer], neg[layer]]), dirs[layer]) for layer in layers}
    params = {"positive_prompts": len(positive), "negative_prompts": len(negative)}
    return _vector(dirs, planes, model_info(backend), method, sources, params)


# --------------------------------------------------------------------------- common
def _vector(
    dirs: dict[int, torch.Tensor],
    planes: dict[int, torch.Tensor],
    model: ModelInfo,
    method: str,
    sources: Sequence[str | Path],
    params: dict[str, Any],
) -> SteeringVector:
    return SteeringVector(
        directions=dirs,
        planes=planes,
        model_id=model.model_id,
        hidden_size=model.hidden_size,
        num_layers=model.num_layers,
        method=method,
        source_runs=[str(s) for s in sources],
        params=params,
    )


def fit_spec(spec: FitSpec, backend: Any) -> SteeringVector:
    """Fit what a ``fit:`` block (or ``normsim steer fit``) asks for."""
    model = model_info(backend)
    if spec.method == "east":
        return fit_east(spec.runs, spec.layers, model, phase=spec.phase, center=spec.center)
    if spec.method == "success":
        return fit_success(spec.runs, spec.layers, model, phase=spec.phase, quantile=spec.quantile)
    assert spec.positive is not None and spec.negative is not None
    if spec.runs:
        return fit_split(spec.runs, spec.layers, model, spec.positive, spec.negative, phase=spec.phase)
    return fit_prompts(
        backend,
        read_prompts(spec.positive),
        read_prompts(spec.negative),
        spec.layers,
        method=spec.method,
        sources=[spec.positive, spec.negative],
    )
