"""The plotting toolkit every report and every environment's plots use.

Figures are built with matplotlib's object API (``Figure``, never pyplot), so nothing
global is touched, no display is needed and reports can be written from any thread.
A plot function takes a run (anything with ``events``, ``steps`` and ``config``, e.g.
:class:`sim.report.data.RunData`) and returns a :class:`Plot` (PNG bytes and captions)
or ``None`` when the run has nothing to show for it. matplotlib loads only when this
module does, which only reports do.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Protocol

import matplotlib

matplotlib.use("Agg")  # before any figure exists: never look for a display

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


class RunView(Protocol):
    """What a plot function reads of a run."""

    events: pd.DataFrame
    steps: pd.DataFrame
    config: dict[str, Any]


DPI = 100
WIDTH = 7.5  # inches: 750 px at DPI, readable without scaling on a laptop screen


@dataclass
class Plot:
    name: str  # file stem of the PNG, unique within a report
    title: str
    caption: str
    png: bytes


def new_figure(
    rows: int = 1,
    cols: int = 1,
    height: float = 3.2,
    width: float = WIDTH,
    *,
    margins: tuple[float, float, float, float] = (0.8, 0.2, 0.35, 0.6),
    gaps: tuple[float, float] = (0.6, 0.7),
) -> tuple[Figure, np.ndarray]:
    """A figure of rows x cols panels, ``height`` inches per row.

    Margins (left, right, top, bottom) and gaps (between columns, between rows) are in
    inches and fixed: matplotlib's layout engines would take half of a report's time.
    """
    total = height * rows
    left, right, top, bottom = margins
    panel_w = max(0.5, (width - left - right - gaps[0] * (cols - 1)) / cols)
    panel_h = max(0.3, (total - top - bottom - gaps[1] * (rows - 1)) / rows)
    fig = Figure(figsize=(width, total), dpi=DPI)
    grid = {
        "left": left / width,
        "right": 1 - right / width,
        "top": 1 - top / total,
        "bottom": bottom / total,
        "wspace": gaps[0] / panel_w,
        "hspace": gaps[1] / panel_h,
    }
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=grid)
    return fig, axes


def render(fig: Figure, name: str, title: str, caption: str) -> Plot:
    buf = io.BytesIO()
    # metadata=None-valued Software key keeps the PNG byte-identical across runs of the same data
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return Plot(name=name, title=title, caption=caption, png=buf.getvalue())


def style(ax: object, xlabel: str = "step", ylabel: str = "", legend: bool = False) -> None:
    ax.set_xlabel(xlabel)  # type: ignore[attr-defined]
    ax.set_ylabel(ylabel)  # type: ignore[attr-defined]
    ax.grid(True, alpha=0.3)  # type: ignore[attr-defined]
    if xlabel == "step":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # type: ignore[attr-defined]
    if legend and ax.get_legend_handles_labels()[0]:  # type: ignore[attr-defined]
        ax.legend(fontsize=8, loc="best", framealpha=0.8)  # type: ignore[attr-defined]


def numeric(series: pd.Series) -> pd.Series:
    """A step column as floats (None -> NaN, booleans -> 0/1)."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(float)
    return pd.to_numeric(series, errors="coerce").astype(float)
